"""The table store: a write and its stream record commit together or not at all; TTL sweeps and stream
retention with a manual clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hearth.services.dynamodb.kinesis_destinations import KinesisForwarder
from hearth.services.dynamodb.store import STREAM_RETENTION_S, Table, TableStore
from hearth.services.dynamodb.ttl import TtlSweeper
from hearth.services.kinesis.streams import StreamService


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _table(store: TableStore, ttl: bool = False) -> Table:
    doc: dict[str, Any] = {
        "TableName": "t", "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}], "_created": store.clock(),
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "LatestStreamLabel": "label", "TableArn": "arn:aws:dynamodb:us-east-1:1:table/t",
    }
    if ttl:
        doc["_ttl"] = {"AttributeName": "exp", "Enabled": True}
    table = Table("1", "us-east-1", "t", doc)
    assert store.create_table(table)
    return table


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = TableStore(tmp_path, clock=Clock())
    yield s
    s.close()


def _records(store: TableStore) -> list[dict[str, Any]]:
    (stream,) = store.streams("1", "us-east-1", "t")
    return [r for _, _, r in store.records(stream, 0, 100)]


def test_a_failed_transaction_leaves_neither_item_nor_record(store: TableStore) -> None:
    table = _table(store)
    with pytest.raises(RuntimeError), store.tx() as w:
        w.put(table, None, {"id": {"S": "a"}})
        raise RuntimeError("crash between the item and the commit")
    assert store.get_item(table, {"id": {"S": "a"}}) is None and _records(store) == []
    with store.tx() as w:
        assert w.put(table, None, {"id": {"S": "a"}, "n": {"N": "1"}})
        assert not w.put(table, {"id": {"S": "a"}, "n": {"N": "1"}}, {"id": {"S": "a"}, "n": {"N": "1.0"}})
    assert [r["eventName"] for r in _records(store)] == ["INSERT"]  # the no-op write left no record


def test_ttl_sweep_deletes_expired_items_as_the_service(store: TableStore) -> None:
    table = _table(store, ttl=True)
    clock: Clock = store.clock  # type: ignore[assignment]
    with store.tx() as w:
        w.put(table, None, {"id": {"S": "old"}, "exp": {"N": str(int(clock.now) - 1)}})
        w.put(table, None, {"id": {"S": "later"}, "exp": {"N": str(int(clock.now) + 60)}})
        w.put(table, None, {"id": {"S": "ancient"}, "exp": {"N": "1000"}})  # > 5 years past: ignored (AWS)
        w.put(table, None, {"id": {"S": "text"}, "exp": {"S": "1"}})  # not a number: never expires
    sweeper = TtlSweeper(store)
    assert sweeper.sweep() == 1
    removes = [r for r in _records(store) if r["eventName"] == "REMOVE"]
    assert [r["dynamodb"]["Keys"] for r in removes] == [{"id": {"S": "old"}}]
    assert removes[0]["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    clock.now += 61
    assert sweeper.sweep() == 1 and store.get_item(table, {"id": {"S": "later"}}) is None
    assert store.get_item(table, {"id": {"S": "ancient"}}) is not None


def test_stream_records_are_kept_24_hours(store: TableStore) -> None:
    table = _table(store)
    clock: Clock = store.clock  # type: ignore[assignment]
    with store.tx() as w:
        w.put(table, None, {"id": {"S": "a"}})
    clock.now += STREAM_RETENTION_S - 1
    assert len(_records(store)) == 1
    clock.now += 2
    assert _records(store) == [] and store.expire_records() == 1


def test_kinesis_destination_changes_commit_with_the_item_and_are_forwarded(store: TableStore,
                                                                             tmp_path: Path) -> None:
    streams = StreamService(tmp_path / "kinesis")
    try:
        assert streams.create("1", "us-east-1", "dest", 1, "PROVISIONED")
        stream = streams.get("1", "us-east-1", "dest")
        assert stream is not None
        base = _table(store)
        table = Table(base.account, base.region, base.name,
                      {**base.doc, "_kinesis": [{"StreamArn": stream.arn, "DestinationStatus": "ACTIVE"}]})
        store.update_table(base, table)
        with pytest.raises(RuntimeError), store.tx() as w:
            w.put(table, None, {"id": {"S": "lost"}})
            raise RuntimeError("crash before the commit")
        assert store.outbox(10) == []  # nothing queued for a write that did not happen
        with store.tx() as w:
            w.put(table, None, {"id": {"S": "a"}})
            w.put(table, {"id": {"S": "a"}}, None, identity={"type": "Service", "principalId": "x"})
        assert len(store.outbox(10)) == 2 and store.outbox_ready.is_set()
        forwarder = KinesisForwarder(store, streams)
        assert forwarder.forward() == 2 and store.outbox(10) == [] and forwarder.forward() == 0
        records = [json.loads(r.data) for r in streams.read(stream, 0, 0, 10)]
        assert [r["eventName"] for r in records] == ["INSERT", "REMOVE"]
        assert records[0]["userIdentity"] is None and records[1]["userIdentity"]["principalId"] == "x"
        assert records[0]["dynamodb"]["ApproximateCreationDateTime"] == int(store.clock() * 1000)
    finally:
        streams.close()
