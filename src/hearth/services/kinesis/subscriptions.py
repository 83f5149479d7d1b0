"""SubscribeToShard's event stream: a shard's records pushed to a registered consumer (enhanced fan-out).

It owns what a subscription sends after the operation's checks (KinesisProvider.subscribe_to_shard):
the `initial-response` event, then `SubscribeToShardEvent`s: one as soon as the subscription starts,
one whenever records arrived (the backlog first, in events of at most EVENT_BYTES of data), and an
empty one every HEARTBEAT_S while nothing arrives, each with the `ContinuationSequenceNumber` to
subscribe again from (AFTER_SEQUENCE_NUMBER: the last record sent, or the one before the position)
and `MillisBehindLatest`. A subscription ends after SUBSCRIPTION_S, as AWS's do (the consumer
subscribes again), when the stream is deleted, or when the client leaves (the gateway stops the body).

It waits on the stream service's put notification, and looks again every POLL_S so that puts this
process did not see (another node on a shared database) are pushed too. It never writes records and
never encodes anything but its events.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from hearth.aws.eventstream import initial_response, shaped_event
from hearth.aws.models import service_api
from hearth.services.kinesis.streams import StoredRecord, Stream, StreamService

SUBSCRIPTION_S = 300.0  # AWS ends a subscription after 5 minutes
HEARTBEAT_S = 5.0  # an event at least this often, records or not
POLL_S = 1.0  # look for records at least this often without a notification
EVENT_BYTES = 1 << 20  # records' data per event (at least one record)
READ_LIMIT = 1000  # records read per look


def _event_shape() -> Any:
    api = service_api("kinesis")
    assert api is not None, "botocore ships the kinesis model"
    return api.model.operation_model("SubscribeToShard").output_shape.members["EventStream"]


async def subscription(streams: StreamService, stream: Stream, shard: int, counter: int, *,
                       clock: Callable[[], float] = time.time) -> AsyncIterator[bytes]:
    """The encoded events of a subscription to `shard` of `stream` that reads from record `counter` on."""
    shape = _event_shape()
    yield initial_response()
    deadline = clock() + SUBSCRIPTION_S
    position = counter
    last_sent: float | None = None
    while True:
        records = _fitting(streams.read(stream, shard, position, READ_LIMIT))
        now = clock()
        if records or last_sent is None or now - last_sent >= HEARTBEAT_S:
            if records:
                position = records[-1].counter + 1
            yield shaped_event(shape, "SubscribeToShardEvent", _event(streams, stream, shard, position, records))
            last_sent = now
        if now >= deadline:
            return
        if records:
            continue  # the backlog first, without waiting
        if not _exists(streams, stream):
            return
        await streams.wait_for_records(stream.account, stream.region, stream.name,
                                       min(POLL_S, deadline - now, HEARTBEAT_S))


def _fitting(records: list[StoredRecord]) -> list[StoredRecord]:
    size = 0
    for i, record in enumerate(records):
        size += len(record.data) + len(record.partition_key)
        if size > EVENT_BYTES and i > 0:
            return records[:i]
    return records


def _event(streams: StreamService, stream: Stream, shard: int, position: int,
           records: list[StoredRecord]) -> dict[str, Any]:
    behind = 0
    latest = streams.latest_arrival(stream, shard)
    if records and latest is not None:
        behind = max(0, int((latest - records[-1].arrival) * 1000))
    return {
        # AWS leaves EncryptionType out of pushed records (recorded by LocalStack's AWS-validated tests).
        "Records": [{"SequenceNumber": r.sequence_number, "ApproximateArrivalTimestamp":
                     datetime.fromtimestamp(r.arrival, UTC), "Data": r.data, "PartitionKey": r.partition_key}
                    for r in records],
        "ContinuationSequenceNumber": stream.sequence(shard, max(position - 1, 0)),
        "MillisBehindLatest": behind,
    }


def _exists(streams: StreamService, stream: Stream) -> bool:
    current = streams.get(stream.account, stream.region, stream.name)
    return current is not None and current.created_ms == stream.created_ms
