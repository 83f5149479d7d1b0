"""Rule targets served by other components: a Kinesis stream takes one record per event, keyed as the
rule says; a CloudWatch Logs group takes one log event in a stream named by the event's id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hearth.events.delivery import DeliveryError, Message
from hearth.services.events.bus import _partition_key
from hearth.services.kinesis.delivery import KinesisDelivery
from hearth.services.kinesis.streams import StreamService
from hearth.services.logs.store import LogStore
from hearth.services.logs.targets import LogsDelivery

ACCOUNT = "000000000000"
EVENT = {"id": "e-1", "detail-type": "Order", "time": "2024-01-01T00:00:00Z", "detail": {"n": 1}}


async def test_kinesis_target_puts_one_record(tmp_path: Path) -> None:
    streams = StreamService(tmp_path)
    try:
        streams.create(ACCOUNT, "us-east-1", "s", 1, "PROVISIONED")
        stream = streams.get(ACCOUNT, "us-east-1", "s")
        assert stream is not None
        deliver = KinesisDelivery(streams)
        await deliver(stream.arn, Message(body=json.dumps(EVENT), group_id="Order"))
        (record,) = streams.read(stream, 0, 0, 10)
        assert (json.loads(record.data), record.partition_key) == (EVENT, "Order")
        with pytest.raises(DeliveryError):
            await deliver(f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/missing", Message(body="{}"))
    finally:
        streams.close()


def test_kinesis_partition_key_is_the_path_selection_or_the_event_id() -> None:
    arn = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s"
    assert _partition_key({"Arn": arn, "KinesisParameters": {"PartitionKeyPath": "$.detail-type"}}, EVENT) == "Order"
    assert _partition_key({"Arn": arn}, EVENT) == "e-1"
    assert _partition_key({"Arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"}, EVENT) is None


async def test_logs_target_writes_the_event_in_a_stream_named_by_its_id(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    try:
        store.ensure_group(ACCOUNT, "us-east-1", "/aws/events/g")
        deliver = LogsDelivery(store)
        await deliver(f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/events/g", Message(body=json.dumps(EVENT)))
        (event,) = store.get_events(ACCOUNT, "us-east-1", "/aws/events/g", "e-1", start_from_head=True).events
        assert (json.loads(event.message), event.timestamp) == (EVENT, 1704067200000)
        with pytest.raises(DeliveryError):
            await deliver(f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:missing:*", Message(body="{}"))
    finally:
        store.close()
