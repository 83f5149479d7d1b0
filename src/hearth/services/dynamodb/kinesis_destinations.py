"""Kinesis streaming destinations of DynamoDB tables: Enable/Describe/Update/Disable
KinesisStreamingDestination, and the forwarder that appends each item change to the destination's
Kinesis stream in AWS's record format.

It owns the destinations' state (in the table's stored description, `_kinesis`) and the delivery
rule: a change bound for a destination is written to the store's outbox in the item's own transaction
(`store.Writer`), and the forwarder appends outbox rows to the Kinesis stream before it removes them,
so an acknowledged write reaches the stream even across `kill -9` (at least once: a crash between
the append and the removal repeats a record, which AWS also allows for these destinations).

Decisions where AWS is unclear: a destination is ACTIVE as soon as Enable returns (AWS answers
ENABLING and activates it within minutes; there is nothing to provision here), DISABLED as soon as
Disable returns; a disabled destination stays listed, as AWS lists it; changes for a stream that was
deleted meanwhile are dropped. It never reads or writes items and never serves Kinesis' own API.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Callable
from typing import Any

from hearth.aws.context import RequestContext
from hearth.background import BackgroundTask
from hearth.services.dynamodb import checks as rq
from hearth.services.dynamodb import values as v
from hearth.services.dynamodb.store import Table, TableStore
from hearth.services.kinesis.streams import StreamService, partition_hash

log = logging.getLogger(__name__)

BATCH = 500
IDLE_WAIT_S = 1.0  # a safety net: a committed write wakes the forwarder at once


def _stream_name(arn: str, ctx: RequestContext) -> str | None:
    """The stream's name when `arn` is a Kinesis stream ARN of the caller's account and region."""
    prefix = f"arn:aws:kinesis:{ctx.region}:{ctx.account_id}:stream/"
    return arn[len(prefix):] if arn.startswith(prefix) and len(arn) > len(prefix) else None


class KinesisDestinationsProvider:
    def __init__(self, store: TableStore, streams: StreamService) -> None:
        self.store = store
        self.streams = streams

    def _save(self, t: Table, destinations: list[dict[str, str]]) -> None:
        doc = copy.deepcopy(t.doc)
        doc["_kinesis"] = destinations
        self.store.update_table(t, Table(t.account, t.region, t.name, doc))

    @staticmethod
    def _find(t: Table, arn: str) -> dict[str, str] | None:
        return next((d for d in t.doc.get("_kinesis") or [] if d["StreamArn"] == arn), None)

    @staticmethod
    def _state_error(action: str, t: Table, arn: str) -> Exception:
        return v.invalid(f"Table is not in a valid state to {action} Kinesis Streaming Destination: No streaming "
                         f"destination with streamArn: {arn} found for table with tableName: {t.name}")

    def enable_kinesis_streaming_destination(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = rq.table(self.store, ctx, params["TableName"], detailed=True)
        arn = params["StreamArn"]
        name = _stream_name(arn, ctx)
        if name is None or self.streams.get(ctx.account_id, ctx.region, name) is None:
            raise rq.not_found(f"Kinesis stream: {arn} not found")
        config = dict(params.get("EnableKinesisStreamingConfiguration") or {})
        destinations = copy.deepcopy(t.doc.get("_kinesis") or [])
        current = next((d for d in destinations if d["StreamArn"] == arn), None)
        if current is not None and current["DestinationStatus"] == "ACTIVE":
            raise v.invalid(f"Table is not in a valid state to enable Kinesis Streaming Destination: Kinesis "
                            f"streaming destination with streamArn: {arn} is already enabled for table with "
                            f"tableName: {t.name}")
        if current is None:
            current = {"StreamArn": arn}
            destinations.append(current)
        current["DestinationStatus"] = "ACTIVE"
        if config.get("ApproximateCreationDateTimePrecision"):
            current["ApproximateCreationDateTimePrecision"] = config["ApproximateCreationDateTimePrecision"]
        self._save(t, destinations)
        return {"TableName": t.name, "StreamArn": arn, "DestinationStatus": "ENABLING",
                "EnableKinesisStreamingConfiguration": config}

    def describe_kinesis_streaming_destination(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = rq.table(self.store, ctx, params["TableName"], detailed=True)
        return {"TableName": t.name, "KinesisDataStreamDestinations": copy.deepcopy(t.doc.get("_kinesis") or [])}

    def update_kinesis_streaming_destination(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = rq.table(self.store, ctx, params["TableName"], detailed=True)
        arn = params["StreamArn"]
        config = {k: val for k, val in (params.get("UpdateKinesisStreamingConfiguration") or {}).items()
                  if val is not None}
        if not config:
            raise v.invalid("Streaming destination cannot be updated with given parameters: "
                            "UpdateKinesisStreamingConfiguration cannot be null or contain only null values")
        destinations = copy.deepcopy(t.doc.get("_kinesis") or [])
        current = next((d for d in destinations if d["StreamArn"] == arn and d["DestinationStatus"] == "ACTIVE"),
                       None)
        if current is None:
            raise self._state_error("enable", t, arn)
        precision = config["ApproximateCreationDateTimePrecision"]
        if (current.get("ApproximateCreationDateTimePrecision") or "MILLISECOND") == precision:
            raise v.invalid(f"Invalid Request: Precision is already set to the desired value of {precision} for "
                            f"tableId: {t.doc['TableId']}, kdsArn: {arn}")
        current["ApproximateCreationDateTimePrecision"] = precision
        self._save(t, destinations)
        return {"TableName": t.name, "StreamArn": arn, "DestinationStatus": "UPDATING",
                "UpdateKinesisStreamingConfiguration": config}

    def disable_kinesis_streaming_destination(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = rq.table(self.store, ctx, params["TableName"], detailed=True)
        arn = params["StreamArn"]
        destinations = copy.deepcopy(t.doc.get("_kinesis") or [])
        current = next((d for d in destinations if d["StreamArn"] == arn and d["DestinationStatus"] == "ACTIVE"),
                       None)
        if current is None:
            raise self._state_error("disable", t, arn)
        current["DestinationStatus"] = "DISABLED"
        self._save(t, destinations)
        return {"TableName": t.name, "StreamArn": arn, "DestinationStatus": "DISABLING"}


class KinesisForwarder:
    """Moves queued item changes from the table store's outbox into their Kinesis streams."""

    def __init__(self, store: TableStore, streams: StreamService, *, gate: Callable[[], bool] | None = None) -> None:
        self.store = store
        self.streams = streams
        self._gate = gate  # in a cluster: whether this node forwards now (it holds the lease); None: always
        self._task = BackgroundTask(self._loop)
        self.forwarded = 0

    def start(self) -> None:
        self._task.start()

    async def close(self) -> None:
        await self._task.close()

    async def _loop(self) -> None:
        while True:
            self.store.outbox_ready.clear()
            moved = 0
            try:
                if self._gate is None or self._gate():
                    moved = self.forward()
            except Exception:  # the rows stay in the outbox and are tried again
                log.exception("forwarding DynamoDB changes to Kinesis failed")
            if moved < BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.store.outbox_ready.wait(), IDLE_WAIT_S)

    def forward(self) -> int:
        """Append what the outbox holds (up to a batch) to its streams; return how many changes moved."""
        rows = self.store.outbox(BATCH)
        if not rows:
            return 0
        by_stream: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for row in rows:
            by_stream.setdefault((row["account"], row["region"], row["stream_arn"]), []).append(row)
        for (account, region, arn), batch in by_stream.items():
            stream = self.streams.get(account, region, arn.rsplit("/", 1)[-1])
            if stream is None or stream.arn != arn:
                continue  # the stream is gone: its changes are dropped with the rows below
            self.streams.put(stream, [(r["partition_key"], r["record"].encode(), partition_hash(r["partition_key"]))
                                      for r in batch])
        self.store.drop_outbox(rows)
        self.forwarded += len(rows)
        return len(rows)
