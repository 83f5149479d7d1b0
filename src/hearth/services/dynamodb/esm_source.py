"""A table's DynamoDB stream as the source of an event source mapping (hearth.esm's `StreamSource`).

It owns the record a function receives (the stored stream record plus `eventSourceARN`, as AWS
delivers it), the view FilterCriteria match (that same record: patterns name `eventName`,
`dynamodb.NewImage…` in DynamoDB JSON) and AWS's `DDBStreamBatchInfo` for on-failure
destinations. Lanes (ParallelizationFactor) split by the item's key, so one item's changes stay in
order. It never writes to the table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hearth.services.dynamodb.store import StreamInfo, TableStore, sequence_number
from hearth.services.dynamodb.streams_api import parse_arn


def _seconds(ts: float) -> str:
    """AWS's DDBStreamBatchInfo times: whole seconds (`2019-11-14T00:38:04Z`)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class DdbRecord:
    counter: int
    sequence_number: str
    arrival: float
    partition_key: str
    record: dict[str, Any]


class DynamoDBStreamSource:
    def __init__(self, store: TableStore, arn: str) -> None:
        self._store = store
        self._arn = arn
        self._parsed = parse_arn(arn)
        self._last: StreamInfo | None = None

    def _info(self) -> StreamInfo | None:
        if self._parsed is None:
            return None
        region, account, table, label = self._parsed
        info = self._store.stream(account, region, table, label)
        if info is not None:
            self._last = info
        return info

    def shard_count(self) -> int | None:
        return None if self._info() is None else 1

    def shard_id(self, shard: int) -> str:
        info = self._info() or self._last
        return info.shard_id if info is not None else f"shardId-{shard:020d}"

    def next_counter(self, shard: int) -> int:
        info = self._info()
        return self._store.next_seq(info) if info is not None else 0

    def first_counter_at(self, shard: int, timestamp: float) -> int:
        info = self._info()
        return self._store.first_seq_at(info, timestamp) if info is not None else 0

    def read(self, shard: int, from_counter: int, limit: int) -> list[Any]:
        info = self._info()
        if info is None:
            return []
        return [DdbRecord(seq, sequence_number(seq), created,
                          json.dumps(record["dynamodb"]["Keys"], sort_keys=True), record)
                for seq, created, record in self._store.records(info, from_counter, limit)]

    async def wait(self, timeout: float) -> bool:
        if self._parsed is None:
            return False
        region, account, table, _ = self._parsed
        return await self._store.wait_for_records(account, region, table, timeout)

    def event_record(self, record: Any) -> dict[str, Any]:
        return {**record.record, "eventSourceARN": self._arn}

    def filter_view(self, record: Any) -> dict[str, Any]:
        return self.event_record(record)

    def batch_info(self, shard: int, records: list[Any]) -> tuple[str, dict[str, Any]]:
        return "DDBStreamBatchInfo", {
            "shardId": self.shard_id(shard),
            "startSequenceNumber": records[0].sequence_number,
            "endSequenceNumber": records[-1].sequence_number,
            "approximateArrivalOfFirstRecord": _seconds(records[0].arrival),
            "approximateArrivalOfLastRecord": _seconds(records[-1].arrival),
            "batchSize": len(records),
            "streamArn": self._arn,
        }
