"""The Kinesis Data Streams API (boto3's `kinesis` client, json protocol 1.1).

It owns the operations' business rules, shard iterators and AWS's error codes and texts. boto3 and
the AWS CLI send JSON to Kinesis (botocore's model says `"protocol": "json"`); the Java SDK's default
CBOR is read and answered by the protocol layer (`hearth.aws.protocols.cbor`). It never stores anything
itself (`StreamService` does).

A shard iterator is an opaque base64 token naming the account, stream, shard, the next record
counter and when it was issued; it expires after 5 minutes, as AWS's do. It is checked against the
caller's account, so an iterator never reads another account's stream.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import UTC, datetime
from typing import Any

from hearth.aws import eventstream
from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.base import RawResponse
from hearth.services.kinesis.streams import (
    HASH_SPACE,
    ON_DEMAND_SHARDS,
    Stream,
    StreamService,
    hash_range,
    partition_hash,
    shard_id,
    shard_index,
)
from hearth.services.kinesis.subscriptions import subscription

ITERATOR_TTL_S = 300
MAX_RETENTION_HOURS = 8760
MIN_RETENTION_HOURS = 24
GET_RECORDS_LIMIT = 10000


def _invalid(message: str) -> AwsError:
    return AwsError("InvalidArgumentException", message)


class KinesisProvider:
    def __init__(self, streams: StreamService, *, clock: Any = time.time) -> None:
        self.streams = streams
        self._clock = clock

    # -- helpers ------------------------------------------------------------------------------------

    @staticmethod
    def _name(params: dict[str, Any]) -> str:
        arn = params.get("StreamARN")
        if arn:
            return str(arn).rsplit("/", 1)[-1]
        name = params.get("StreamName")
        if not name:
            raise _invalid("Either StreamName or StreamARN should be provided.")
        return str(name)

    def _stream(self, ctx: RequestContext, params: dict[str, Any]) -> Stream:
        name = self._name(params)
        stream = self.streams.get(ctx.account_id, ctx.region, name)
        if stream is None:
            raise AwsError("ResourceNotFoundException", f"Stream {name} under account {ctx.account_id} not found.")
        return stream

    @staticmethod
    def _shard(stream: Stream, text: str) -> int:
        index = shard_index(text)
        if index is None or index >= stream.shard_count:
            raise AwsError("ResourceNotFoundException", f"Shard {text} in stream {stream.name} under account "
                                                        f"{stream.account} does not exist")
        return index

    @staticmethod
    def _shards(stream: Stream) -> list[dict[str, Any]]:
        out = []
        for i in range(stream.shard_count):
            start, end = hash_range(i, stream.shard_count)
            out.append({"ShardId": shard_id(i),
                        "HashKeyRange": {"StartingHashKey": str(start), "EndingHashKey": str(end)},
                        "SequenceNumberRange": {"StartingSequenceNumber": stream.sequence(i, 0)}})
        return out

    @staticmethod
    def _mode(stream: Stream) -> dict[str, str]:
        return {"StreamMode": stream.mode}

    # -- streams ------------------------------------------------------------------------------------

    def create_stream(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["StreamName"]
        count = params.get("ShardCount")
        # Without a mode and without a shard count AWS creates an on-demand stream (4 shards, recorded
        # by LocalStack's test_create_stream_without_shard_count); a shard count alone means provisioned.
        mode = (params.get("StreamModeDetails") or {}).get(
            "StreamMode", "PROVISIONED" if count is not None else "ON_DEMAND")
        if mode == "ON_DEMAND":
            count = ON_DEMAND_SHARDS
        elif count is None:
            raise _invalid("ShardCount is required for PROVISIONED streams.")
        if not 1 <= int(count) <= 500:
            raise AwsError("LimitExceededException", f"This request would exceed the shard limit for the account "
                                                     f"{ctx.account_id} in {ctx.region}. Current shard count for the "
                                                     f"account: 0. Limit: 500. Number of additional shards that "
                                                     f"would have resulted from this request: {count}.")
        if not self.streams.create(ctx.account_id, ctx.region, name, int(count), mode):
            raise AwsError("ResourceInUseException", f"Stream {name} under account {ctx.account_id} already exists.")
        stream = self.streams.get(ctx.account_id, ctx.region, name)
        if stream is not None and params.get("Tags"):
            self.streams.add_tags(stream, params["Tags"])
        return {}

    def delete_stream(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.streams.delete(self._stream(ctx, params))
        return {}

    def describe_stream(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream(ctx, params)
        shards = self._shards(stream)
        start = params.get("ExclusiveStartShardId")
        if start:
            shards = [s for s in shards if s["ShardId"] > start]
        limit = int(params.get("Limit") or 100)
        return {"StreamDescription": {
            "StreamName": stream.name, "StreamARN": stream.arn, "StreamStatus": "ACTIVE",
            "StreamModeDetails": self._mode(stream), "Shards": shards[:limit], "HasMoreShards": len(shards) > limit,
            "RetentionPeriodHours": stream.retention_hours,
            "StreamCreationTimestamp": datetime.fromtimestamp(stream.created, UTC),
            "EnhancedMonitoring": [{"ShardLevelMetrics": []}], "EncryptionType": "NONE",
        }}

    def describe_stream_summary(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream(ctx, params)
        return {"StreamDescriptionSummary": {
            "StreamName": stream.name, "StreamARN": stream.arn, "StreamStatus": "ACTIVE",
            "StreamModeDetails": self._mode(stream), "RetentionPeriodHours": stream.retention_hours,
            "StreamCreationTimestamp": datetime.fromtimestamp(stream.created, UTC),
            "EnhancedMonitoring": [{"ShardLevelMetrics": []}], "EncryptionType": "NONE",
            "OpenShardCount": stream.shard_count, "ConsumerCount": len(self.streams.consumers(stream)),
        }}

    def list_streams(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        streams = self.streams.all(ctx.account_id, ctx.region)
        token = params.get("NextToken")
        start = params.get("ExclusiveStartStreamName") or (str(token) if token else None)
        if start:
            streams = [s for s in streams if s.name > start]
        limit = int(params.get("Limit") or 100)
        page, more = streams[:limit], len(streams) > limit
        out: dict[str, Any] = {
            "StreamNames": [s.name for s in page], "HasMoreStreams": more,
            "StreamSummaries": [{"StreamName": s.name, "StreamARN": s.arn, "StreamStatus": "ACTIVE",
                                 "StreamModeDetails": self._mode(s),
                                 "StreamCreationTimestamp": datetime.fromtimestamp(s.created, UTC)} for s in page],
        }
        if more:
            out["NextToken"] = page[-1].name
        return out

    def list_shards(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        token = params.get("NextToken")
        if token:
            if params.get("StreamName"):
                raise _invalid("NextToken and StreamName cannot be provided together.")
            try:
                state = json.loads(base64.b64decode(token))
                name, after = str(state["s"]), str(state["a"])
            except (ValueError, KeyError, TypeError, binascii.Error):
                raise _invalid("Invalid ShardId NextToken.") from None
            stream = self._stream(ctx, {"StreamName": name})
        else:
            stream = self._stream(ctx, params)
            after = str(params.get("ExclusiveStartShardId") or "")
        shards = [s for s in self._shards(stream) if s["ShardId"] > after]
        limit = int(params.get("MaxResults") or 1000)
        page = shards[:limit]
        out: dict[str, Any] = {"Shards": page}
        if len(shards) > limit:
            out["NextToken"] = base64.b64encode(json.dumps({"s": stream.name, "a": page[-1]["ShardId"]}).encode()
                                                ).decode()
        return out

    def increase_stream_retention_period(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream(ctx, params)
        hours = int(params["RetentionPeriodHours"])
        if hours > MAX_RETENTION_HOURS:
            raise _invalid(f"Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. Requested retention "
                           f"period ({hours} hours) is too long.")
        if hours < stream.retention_hours:
            raise _invalid(f"Requested retention period ({hours} hours) for stream {stream.name} can not be shorter "
                           f"than existing retention period ({stream.retention_hours} hours). Use "
                           "DecreaseRetentionPeriod API.")
        self.streams.set_retention(stream, hours)
        return {}

    def decrease_stream_retention_period(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream(ctx, params)
        hours = int(params["RetentionPeriodHours"])
        if hours < MIN_RETENTION_HOURS:
            raise _invalid(f"Minimum allowed retention period is {MIN_RETENTION_HOURS} hours. Requested retention "
                           f"period ({hours} hours) is too short.")
        if hours > stream.retention_hours:
            raise _invalid(f"Requested retention period ({hours} hours) for stream {stream.name} can not be longer "
                           f"than existing retention period ({stream.retention_hours} hours). Use "
                           "IncreaseRetentionPeriod API.")
        self.streams.set_retention(stream, hours)
        self.streams.expire()
        return {}

    # -- tags ---------------------------------------------------------------------------------------

    def add_tags_to_stream(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream(ctx, params)
        tags = self.streams.tags(stream)
        if len(tags.keys() | params["Tags"].keys()) > 50:
            raise _invalid("Failed to add tags to stream because the number of tags would exceed 50.")
        self.streams.add_tags(stream, params["Tags"])
        return {}

    def list_tags_for_stream(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream(ctx, params)
        items = sorted(self.streams.tags(stream).items())
        start = params.get("ExclusiveStartTagKey")
        if start:
            items = [kv for kv in items if kv[0] > start]
        limit = int(params.get("Limit") or 50)
        return {"Tags": [{"Key": k, "Value": v} for k, v in items[:limit]], "HasMoreTags": len(items) > limit}

    def remove_tags_from_stream(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.streams.remove_tags(self._stream(ctx, params), list(params["TagKeys"]))
        return {}

    # -- records ------------------------------------------------------------------------------------

    @staticmethod
    def _hash_key(partition_key: str, explicit: str | None) -> int:
        if explicit is None:
            return partition_hash(partition_key)
        if not explicit.isdigit() or int(explicit) >= HASH_SPACE:
            raise _invalid(f"Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, {HASH_SPACE - 1}]. "
                           f"Specified value: {explicit}")
        return int(explicit)

    def put_record(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream(ctx, params)
        key = self._hash_key(params["PartitionKey"], params.get("ExplicitHashKey"))
        ((shard, sequence),) = self.streams.put(stream, [(params["PartitionKey"], params["Data"], key)])
        return {"ShardId": shard_id(shard), "SequenceNumber": sequence, "EncryptionType": "NONE"}

    def put_records(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream(ctx, params)
        entries = params["Records"]
        if sum(len(e["Data"]) + len(e["PartitionKey"].encode()) for e in entries) > 5 * 1024 * 1024:
            raise _invalid("Records size exceeds 5 MB limit")
        batch = [(e["PartitionKey"], e["Data"], self._hash_key(e["PartitionKey"], e.get("ExplicitHashKey")))
                 for e in entries]
        results = self.streams.put(stream, batch)
        return {"FailedRecordCount": 0, "EncryptionType": "NONE",
                "Records": [{"SequenceNumber": seq, "ShardId": shard_id(shard)} for shard, seq in results]}

    def get_shard_iterator(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream(ctx, params)
        shard = self._shard(stream, params["ShardId"])
        counter = self._start_counter(ctx, stream, shard, params["ShardId"], params["ShardIteratorType"],
                                      params.get("StartingSequenceNumber"), params.get("Timestamp"))
        return {"ShardIterator": self._iterator(ctx, stream, shard, counter)}

    def _start_counter(self, ctx: RequestContext, stream: Stream, shard: int, shard_text: str, kind: str,
                       sequence: Any, stamp: Any) -> int:
        """The record counter a reader starting at `kind` (GetShardIterator's types, SubscribeToShard's
        StartingPosition) reads first."""
        if kind == "TRIM_HORIZON":
            records = self.streams.read(stream, shard, 0, 1)
            return records[0].counter if records else self.streams.next_counter(stream, shard)
        if kind == "LATEST":
            return self.streams.next_counter(stream, shard)
        if kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            if not sequence:
                raise _invalid(f"The StartingSequenceNumber must be specified for ShardIteratorType {kind}.")
            found = stream.counter_of(str(sequence), shard)
            if found is None:
                raise _invalid(f"StartingSequenceNumber {sequence} used in GetShardIterator on shard "
                               f"{shard_text} in stream {stream.name} under account {ctx.account_id} is "
                               "invalid because it did not come from this stream.")
            return found + (1 if kind == "AFTER_SEQUENCE_NUMBER" else 0)
        if kind == "AT_TIMESTAMP":
            if stamp is None:
                raise _invalid("The timestampInMillis parameter cannot be null for ShardIteratorType AT_TIMESTAMP.")
            return self.streams.first_counter_at(stream, shard, stamp.timestamp())
        raise _invalid(f"Invalid ShardIteratorType: {kind}")

    # -- resource policies ----------------------------------------------------------------------------

    def _stream_of_arn(self, ctx: RequestContext, arn: str) -> Stream:
        # arn:aws:kinesis:<region>:<account>:stream/<name>; another account's or region's stream is not found
        parts = arn.split(":", 5)
        name = parts[5].removeprefix("stream/") if len(parts) == 6 else arn
        stream = (self.streams.get(ctx.account_id, ctx.region, name)
                  if len(parts) == 6 and parts[3] == ctx.region and parts[4] == ctx.account_id else None)
        if stream is None:
            raise AwsError("ResourceNotFoundException", f"Stream {name} under account {ctx.account_id} not found.")
        return stream

    def put_resource_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream_of_arn(ctx, params["ResourceARN"])
        try:
            json.loads(params["Policy"])
        except ValueError:
            raise _invalid("Invalid policy document: the policy is not valid JSON.") from None
        self.streams.set_policy(stream, params["Policy"])
        return {}

    def get_resource_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        # A stream without a policy answers an empty document, not an error (recorded by AWS).
        return {"Policy": self.streams.policy(self._stream_of_arn(ctx, params["ResourceARN"])) or "{}"}

    def delete_resource_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream_of_arn(ctx, params["ResourceARN"])
        if not self.streams.set_policy(stream, None):
            raise AwsError("ResourceNotFoundException", f"No resource policy found for resource ARN "
                                                        f"{params['ResourceARN']}.")
        return {}

    # -- registered consumers (SubscribeToShard pushes to them: subscriptions.py) ------------------

    @staticmethod
    def _consumer(stream: Stream, name: str, created: float) -> dict[str, Any]:
        return {"ConsumerName": name, "ConsumerARN": f"{stream.arn}/consumer/{name}:{int(created)}",
                "ConsumerStatus": "ACTIVE", "ConsumerCreationTimestamp": created}

    def register_stream_consumer(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream_of_arn(ctx, params["StreamARN"])
        name = params["ConsumerName"]
        if not self.streams.register_consumer(stream, name):
            raise AwsError("ResourceInUseException", f"Consumer {name} under stream {stream.name} under account "
                                                      f"{ctx.account_id} already exists.")
        created = dict(self.streams.consumers(stream))[name]
        return {"Consumer": self._consumer(stream, name, created)}

    def list_stream_consumers(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream_of_arn(ctx, params["StreamARN"])
        found = self.streams.consumers(stream)
        return {"Consumers": [self._consumer(stream, name, created) for name, created in found]}

    def _named_consumer(self, ctx: RequestContext, params: dict[str, Any]) -> tuple[Stream, str, float]:
        arn = params.get("ConsumerARN")
        if arn:
            stream_arn, _, rest = str(arn).partition("/consumer/")
            name = rest.rpartition(":")[0]
        else:
            stream_arn, name = str(params.get("StreamARN") or ""), str(params.get("ConsumerName") or "")
            if not stream_arn or not name:
                raise _invalid("Either ConsumerARN or both ConsumerName and StreamARN must be provided.")
        stream = self._stream_of_arn(ctx, stream_arn)
        created = dict(self.streams.consumers(stream)).get(name)
        if created is None:
            raise AwsError("ResourceNotFoundException", f"Consumer {name} under stream {stream.name} under account "
                                                        f"{ctx.account_id} not found.")
        return stream, name, created

    def describe_stream_consumer(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stream, name, created = self._named_consumer(ctx, params)
        return {"ConsumerDescription": {**self._consumer(stream, name, created), "StreamARN": stream.arn}}

    def deregister_stream_consumer(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stream, name, _ = self._named_consumer(ctx, params)
        self.streams.deregister_consumer(stream, name)
        return {}

    async def subscribe_to_shard(self, ctx: RequestContext, params: dict[str, Any]) -> RawResponse:
        stream, _, _ = self._named_consumer(ctx, {"ConsumerARN": params["ConsumerARN"]})
        shard = self._shard(stream, params["ShardId"])
        position = params["StartingPosition"]
        counter = self._start_counter(ctx, stream, shard, params["ShardId"], position["Type"],
                                      position.get("SequenceNumber"), position.get("Timestamp"))
        return RawResponse(200, {"Content-Type": eventstream.CONTENT_TYPE},
                           subscription(self.streams, stream, shard, counter, clock=self._clock))

    def _iterator(self, ctx: RequestContext, stream: Stream, shard: int, counter: int) -> str:
        state = {"a": ctx.account_id, "r": ctx.region, "s": stream.name, "c": stream.created_ms, "h": shard,
                 "n": counter, "t": int(self._clock() * 1000)}
        return base64.b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()

    def get_records(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        # AWS accepts an iterator wrapped in double quotes (recorded by LocalStack's AWS-validated tests).
        token = str(params["ShardIterator"]).removeprefix('"').removesuffix('"')
        try:
            state = json.loads(base64.b64decode(token, validate=True))
            account, region, name = str(state["a"]), str(state["r"]), str(state["s"])
            created_ms, shard, counter, issued = int(state["c"]), int(state["h"]), int(state["n"]), int(state["t"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise _invalid(f"Invalid ShardIterator: {token}") from None
        if account != ctx.account_id or region != ctx.region:
            raise _invalid(f"Invalid ShardIterator: {token}")
        now_ms = int(self._clock() * 1000)
        if now_ms - issued > ITERATOR_TTL_S * 1000:
            raise AwsError("ExpiredIteratorException",
                           f"Iterator expired. The iterator was created at time {_iso(issued)} while right now it is "
                           f"{_iso(now_ms)} which is further in the future than the tolerated delay of "
                           f"{ITERATOR_TTL_S * 1000} milliseconds.")
        stream = self.streams.get(account, region, name)
        if stream is None or stream.created_ms != created_ms:
            raise AwsError("ResourceNotFoundException", f"Stream {name} under account {account} not found.")
        limit = int(params.get("Limit") or GET_RECORDS_LIMIT)
        records = self.streams.read(stream, shard, counter, limit)
        next_counter = records[-1].counter + 1 if records else counter
        latest = self.streams.latest_arrival(stream, shard)
        behind = 0
        if records and latest is not None:
            behind = max(0, int((latest - records[-1].arrival) * 1000))
        return {
            "Records": [{"SequenceNumber": r.sequence_number, "PartitionKey": r.partition_key, "Data": r.data,
                         "ApproximateArrivalTimestamp": datetime.fromtimestamp(r.arrival, UTC),
                         "EncryptionType": "NONE"} for r in records],
            "NextShardIterator": self._iterator(ctx, stream, shard, next_counter),
            "MillisBehindLatest": behind,
        }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%a %b %d %H:%M:%S UTC %Y")
