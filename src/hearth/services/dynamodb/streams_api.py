"""The DynamoDB Streams API (boto3's `dynamodbstreams` client): ListStreams, DescribeStream,
GetShardIterator, GetRecords.

It owns reading the stream records the store wrote with each item write, shard iterators and AWS's
record shape. Each stream has one shard (records are ordered per table, which keeps AWS's per-item
order); a disabled stream's shard is closed (it shows an EndingSequenceNumber and GetRecords stops
giving a NextShardIterator once read to its end). Iterators are `<stream arn>|1|<base64 token>` as AWS's
look, the token naming the account, table, stream and next sequence number; valid 15 minutes as AWS's
are. It never writes.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.dynamodb.checks import not_found
from hearth.services.dynamodb.store import StreamInfo, TableStore, sequence_number

ITERATOR_TTL_S = 900
MAX_RECORDS = 1000


def parse_arn(arn: str) -> tuple[str, str, str, str] | None:
    """`arn:aws:dynamodb:region:account:table/NAME/stream/LABEL` -> (region, account, table, label)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "dynamodb":
        return None
    rest = parts[5].split("/")
    if len(rest) != 4 or rest[0] != "table" or rest[2] != "stream" or not rest[1] or not rest[3]:
        return None
    return parts[3], parts[4], rest[1], rest[3]


def api_record(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record (Lambda's event shape) as the Streams API renders it."""
    out = {k: val for k, val in record.items() if k != "userIdentity"}
    body = dict(record["dynamodb"])
    body["ApproximateCreationDateTime"] = datetime.fromtimestamp(body["ApproximateCreationDateTime"], UTC)
    for image in ("Keys", "NewImage", "OldImage"):
        if image in body:
            # Stored as Lambda's JSON event carries them (binary values base64 text); the API's blobs are
            # bytes, which its JSON protocol encodes once.
            body[image] = {name: _blobs_as_bytes(value) for name, value in body[image].items()}
    out["dynamodb"] = body
    identity = record.get("userIdentity")
    if identity:
        out["userIdentity"] = {"PrincipalId": identity["principalId"], "Type": identity["type"]}
    return out


def _blobs_as_bytes(value: dict[str, Any]) -> dict[str, Any]:
    """An attribute value with its B / BS members decoded from base64 (nested in M and L too)."""
    if "B" in value and isinstance(value["B"], str):
        return {"B": base64.b64decode(value["B"])}
    if "BS" in value:
        return {"BS": [base64.b64decode(b) if isinstance(b, str) else b for b in value["BS"]]}
    if "M" in value:
        return {"M": {k: _blobs_as_bytes(v) for k, v in value["M"].items()}}
    if "L" in value:
        return {"L": [_blobs_as_bytes(v) for v in value["L"]]}
    return value


class StreamsProvider:
    def __init__(self, store: TableStore) -> None:
        self.store = store

    def _stream(self, ctx: RequestContext, arn: str) -> StreamInfo:
        parsed = parse_arn(arn)
        found = None
        if parsed is not None and parsed[0] == ctx.region and parsed[1] == ctx.account_id:
            found = self.store.stream(parsed[1], parsed[0], parsed[2], parsed[3])
        if found is None:
            raise not_found(f"Stream: {arn} not found")
        return found

    def list_streams(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        streams = self.store.streams(ctx.account_id, ctx.region, params.get("TableName"))
        start = params.get("ExclusiveStartStreamArn")
        if start:
            arns = [s.arn for s in streams]
            streams = streams[arns.index(start) + 1:] if start in arns else streams
        limit = int(params.get("Limit") or 100)
        out: dict[str, Any] = {"Streams": [{"StreamArn": s.arn, "TableName": s.table, "StreamLabel": s.label}
                                           for s in streams[:limit]]}
        if len(streams) > limit:
            out["LastEvaluatedStreamArn"] = streams[limit - 1].arn
        return out

    def describe_stream(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        s = self._stream(ctx, params["StreamArn"])
        first = self.store.records(s, 0, 1)
        start = first[0][0] if first else self.store.next_seq(s)
        shard: dict[str, Any] = {"ShardId": s.shard_id,
                                 "SequenceNumberRange": {"StartingSequenceNumber": sequence_number(start)}}
        if not s.enabled:
            shard["SequenceNumberRange"]["EndingSequenceNumber"] = sequence_number(max(start, self.store.next_seq(s)
                                                                                        - 1))
        shards = [shard]
        if params.get("ExclusiveStartShardId") == s.shard_id:
            shards = []
        return {"StreamDescription": {
            "StreamArn": s.arn, "StreamLabel": s.label, "StreamStatus": "ENABLED" if s.enabled else "DISABLED",
            "StreamViewType": s.view_type, "CreationRequestDateTime": datetime.fromtimestamp(s.created, UTC),
            "TableName": s.table, "KeySchema": s.key_schema, "Shards": shards}}

    def get_shard_iterator(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        s = self._stream(ctx, params["StreamArn"])
        if params["ShardId"] != s.shard_id:
            raise not_found(f"Shard: {params['ShardId']} in Stream: {s.arn} not found")
        kind = params["ShardIteratorType"]
        if kind == "TRIM_HORIZON":
            first = self.store.records(s, 0, 1)
            seq = first[0][0] if first else self.store.next_seq(s)
        elif kind == "LATEST":
            seq = self.store.next_seq(s)
        else:
            text = params.get("SequenceNumber")
            if not text or not str(text).isdigit():
                raise AwsError("ValidationException", f"Invalid SequenceNumber: {text} for ShardIteratorType: "
                                                      f"{kind}")
            seq = int(str(text)) + (1 if kind == "AFTER_SEQUENCE_NUMBER" else 0)
        return {"ShardIterator": self._iterator(s, seq)}

    def _iterator(self, s: StreamInfo, seq: int) -> str:
        state = {"a": s.account, "r": s.region, "t": s.table, "l": s.label, "n": seq,
                 "i": int(self.store.clock())}
        # AWS's iterators read `<stream arn>|1|<opaque>`; tools match that prefix.
        return f"{s.arn}|1|" + base64.b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()

    def get_records(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        token = params["ShardIterator"]
        try:
            state = json.loads(base64.b64decode(token.rpartition("|")[2], validate=True))
            account, region, table, label = state["a"], state["r"], state["t"], state["l"]
            seq, issued = int(state["n"]), int(state["i"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise AwsError("ValidationException", "Invalid ShardIterator") from None
        if account != ctx.account_id or region != ctx.region:
            raise AwsError("ValidationException", "Invalid ShardIterator")
        if self.store.clock() - issued > ITERATOR_TTL_S:
            raise AwsError("ExpiredIteratorException", "Iterator expired")
        s = self.store.stream(account, region, table, label)
        if s is None:
            raise not_found(f"Stream: arn:aws:dynamodb:{region}:{account}:table/{table}/stream/{label} not found")
        limit = min(int(params.get("Limit") or MAX_RECORDS), MAX_RECORDS)
        rows = self.store.records(s, seq, limit)
        out: dict[str, Any] = {"Records": [api_record(r) for _, _, r in rows]}
        following = rows[-1][0] + 1 if rows else seq
        if s.enabled or self.store.records(s, following, 1):
            out["NextShardIterator"] = self._iterator(s, following)
        return out
