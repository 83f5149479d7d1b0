"""What a stream event source mapping reads: the `StreamSource` protocol, and Kinesis's.

The stream poller (kinesis_poller.py) knows shards, positions, batches, retries and bisection; a
source knows one stream's storage and AWS's shapes for it: the record a function receives, the view
FilterCriteria match, and the batch description of an on-failure record (`KinesisBatchInfo`,
`DDBStreamBatchInfo`). Positions are per-shard integer counters that only increase. A source never
invokes and never checkpoints.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from hearth.esm import batching
from hearth.services.kinesis.streams import StreamService, lambda_record, shard_id


class SourceRecord(Protocol):
    @property
    def counter(self) -> int: ...
    @property
    def sequence_number(self) -> str: ...
    @property
    def arrival(self) -> float: ...
    @property
    def partition_key(self) -> str: ...


class StreamSource(Protocol):
    def shard_count(self) -> int | None:
        """How many shards the stream has; None once it is gone."""

    def shard_id(self, shard: int) -> str: ...
    def next_counter(self, shard: int) -> int: ...
    def first_counter_at(self, shard: int, timestamp: float) -> int: ...
    def read(self, shard: int, from_counter: int, limit: int) -> list[Any]: ...
    async def wait(self, timeout: float) -> bool: ...
    def event_record(self, record: Any) -> dict[str, Any]: ...
    def filter_view(self, record: Any) -> dict[str, Any]: ...
    def batch_info(self, shard: int, records: list[Any]) -> tuple[str, dict[str, Any]]: ...


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_stream_arn(arn: str) -> tuple[str, str, str] | None:
    """`arn:aws:kinesis:region:account:stream/name` -> (region, account, name)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "kinesis" or not parts[5].startswith("stream/"):
        return None
    name = parts[5][len("stream/"):]
    return (parts[3], parts[4], name) if name else None


class KinesisSource:
    """A Kinesis data stream, found by its ARN at each call (so a deleted stream is noticed)."""

    def __init__(self, streams: StreamService, arn: str, role_arn: str = "") -> None:
        self._streams = streams
        self._arn = arn
        self._parsed = parse_stream_arn(arn)
        self._last: Any = None  # the stream as last seen: a batch in flight still renders after a delete

    def _stream(self) -> Any:
        if self._parsed is None:
            return None
        region, account, name = self._parsed
        stream = self._streams.get(account, region, name)
        if stream is not None:
            self._last = stream
        return stream

    def shard_count(self) -> int | None:
        stream = self._stream()
        return None if stream is None else int(stream.shard_count)

    def shard_id(self, shard: int) -> str:
        return shard_id(shard)

    def next_counter(self, shard: int) -> int:
        return self._streams.next_counter(self._stream(), shard)

    def first_counter_at(self, shard: int, timestamp: float) -> int:
        return self._streams.first_counter_at(self._stream(), shard, timestamp)

    def read(self, shard: int, from_counter: int, limit: int) -> list[Any]:
        stream = self._stream()
        return [] if stream is None else list(self._streams.read(stream, shard, from_counter, limit))

    async def wait(self, timeout: float) -> bool:
        if self._parsed is None:
            return False
        region, account, name = self._parsed
        return await self._streams.wait_for_records(account, region, name, timeout)

    def event_record(self, record: Any) -> dict[str, Any]:
        return lambda_record(self._stream() or self._last, record)

    def filter_view(self, record: Any) -> dict[str, Any]:
        return batching.kinesis_filter_view(self.event_record(record))

    def batch_info(self, shard: int, records: list[Any]) -> tuple[str, dict[str, Any]]:
        return "KinesisBatchInfo", {
            "shardId": shard_id(shard),
            "startSequenceNumber": records[0].sequence_number,
            "endSequenceNumber": records[-1].sequence_number,
            "approximateArrivalOfFirstRecord": iso(records[0].arrival),
            "approximateArrivalOfLastRecord": iso(records[-1].arrival),
            "batchSize": len(records),
            "streamArn": self._arn,
        }
