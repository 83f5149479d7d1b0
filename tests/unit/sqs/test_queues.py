"""QueueService with a manual clock: visibility, delays, retention, redrive, FIFO, waits, durability."""

from __future__ import annotations

import asyncio
import hashlib
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from hearth.aws.errors import AwsError
from hearth.events.delivery import DeliveryError, Message
from hearth.services.sqs.messages import lambda_record, md5_of_attributes
from hearth.services.sqs.provider import SqsDelivery
from hearth.services.sqs.queues import OutgoingMessage, Queue, QueueService, query_code

ACCOUNT, REGION = "000000000000", "us-east-1"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(tmp_path: Path, clock: Clock) -> Iterator[QueueService]:
    service = QueueService(tmp_path, clock=clock)
    yield service
    service.close()


def _send(svc: QueueService, queue: Queue, body: str, **kwargs: object) -> str:
    return svc.send(queue, OutgoingMessage(body=body, sender_id=ACCOUNT, **kwargs)).message_id  # type: ignore[arg-type]


def test_visibility_timeout_returns_message(svc: QueueService, clock: Clock) -> None:
    q = svc.create_queue(ACCOUNT, REGION, "q", {"VisibilityTimeout": "30"})
    _send(svc, q, "m")
    first = svc.receive_now(q, attribute_names=["All"])
    assert len(first) == 1 and svc.receive_now(q) == []
    assert svc.counts(q)["ApproximateNumberOfMessagesNotVisible"] == 1
    clock.now += 30
    again = svc.receive_now(q, attribute_names=["All"])
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    assert again[0]["ReceiptHandle"] != first[0]["ReceiptHandle"]
    # the first receive's handle is stale: deleting with it succeeds but keeps the message
    svc.delete_message(q, first[0]["ReceiptHandle"])
    assert svc.counts(q)["ApproximateNumberOfMessagesNotVisible"] == 1
    svc.delete_message(q, again[0]["ReceiptHandle"])
    assert svc.counts(q) == {"ApproximateNumberOfMessages": 0, "ApproximateNumberOfMessagesNotVisible": 0,
                             "ApproximateNumberOfMessagesDelayed": 0}


def test_delay_and_retention(svc: QueueService, clock: Clock) -> None:
    q = svc.create_queue(ACCOUNT, REGION, "q", {"DelaySeconds": "10", "MessageRetentionPeriod": "60"})
    _send(svc, q, "late")
    _send(svc, q, "now", delay=0)
    assert svc.counts(q)["ApproximateNumberOfMessagesDelayed"] == 1
    assert [m["Body"] for m in svc.receive_now(q, 10, 0)] == ["now"]
    clock.now += 10
    assert sorted(m["Body"] for m in svc.receive_now(q, 10, 0)) == ["late", "now"]
    clock.now += 60
    assert svc.receive_now(q, 10) == []
    assert svc.counts(q)["ApproximateNumberOfMessages"] == 0


def test_redrive_moves_after_max_receive_count(svc: QueueService) -> None:
    dlq = svc.create_queue(ACCOUNT, REGION, "dlq", {})
    policy = json.dumps({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": "1"})
    q = svc.create_queue(ACCOUNT, REGION, "src", {"RedrivePolicy": policy})
    message_id = _send(svc, q, "poison")
    assert len(svc.receive_now(q, 1, 0)) == 1
    assert svc.receive_now(q, 1, 0) == []
    moved = svc.receive_now(dlq, attribute_names=["All"])
    assert moved[0]["MessageId"] == message_id
    assert moved[0]["Attributes"]["DeadLetterQueueSourceArn"] == q.arn
    assert moved[0]["Attributes"]["ApproximateReceiveCount"] == "2"  # the count carries over (recorded by AWS)
    assert [s.arn for s in svc.dead_letter_sources(dlq)] == [q.arn]


def test_redrive_policy_validation(svc: QueueService) -> None:
    fifo = svc.create_queue(ACCOUNT, REGION, "f.fifo", {"FifoQueue": "true"})
    with pytest.raises(AwsError) as exc:
        svc.create_queue(ACCOUNT, REGION, "s", {"RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": fifo.arn, "maxReceiveCount": 3})})
    assert exc.value.message.endswith("Dead-letter queue must be same type of queue as the source.")
    with pytest.raises(AwsError) as count:
        svc.create_queue(ACCOUNT, REGION, "s", {"RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": fifo.arn, "maxReceiveCount": 0})})
    assert "valid values are from 1 to 1000 both inclusive" in count.value.message


def test_fifo_group_lock_and_dedup_window(svc: QueueService, clock: Clock) -> None:
    q = svc.create_queue(ACCOUNT, REGION, "f.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"})
    a1 = _send(svc, q, "a1", group_id="A")
    assert _send(svc, q, "a1", group_id="A") == a1  # content-based duplicate
    _send(svc, q, "a2", group_id="A")
    _send(svc, q, "b1", group_id="B")
    got = svc.receive_now(q, 2, 30)
    assert [m["Body"] for m in got] == ["a1", "a2"]
    assert [m["Body"] for m in svc.receive_now(q, 10, 30)] == ["b1"]
    svc.delete_message(q, got[0]["ReceiptHandle"])
    assert svc.receive_now(q, 10) == []  # a2 still in flight: group A stays locked
    clock.now += 301
    assert _send(svc, q, "a1", group_id="A") != a1  # outside the 5-minute window


def test_fifo_rules(svc: QueueService) -> None:
    q = svc.create_queue(ACCOUNT, REGION, "f.fifo", {"FifoQueue": "true"})
    with pytest.raises(AwsError, match="MessageGroupId"):
        _send(svc, q, "x")
    with pytest.raises(AwsError, match="ContentBasedDeduplication enabled"):
        _send(svc, q, "x", group_id="g")
    with pytest.raises(AwsError, match="not valid for this queue type"):
        _send(svc, q, "x", group_id="g", dedup_id="d", delay=5)
    with pytest.raises(AwsError) as name:
        svc.create_queue(ACCOUNT, REGION, "nofifo", {"FifoQueue": "true"})
    assert "must end with .fifo suffix" in name.value.message


def test_create_is_idempotent_only_with_same_attributes(svc: QueueService) -> None:
    q = svc.create_queue(ACCOUNT, REGION, "q", {"VisibilityTimeout": "5"})
    assert svc.create_queue(ACCOUNT, REGION, "q", {"VisibilityTimeout": "5"}).id == q.id
    with pytest.raises(AwsError) as exc:
        svc.create_queue(ACCOUNT, REGION, "q", {"VisibilityTimeout": "6"})
    assert exc.value.code == "QueueNameExists"
    assert exc.value.headers["x-amzn-query-error"] == "QueueAlreadyExists;Sender"
    with pytest.raises(AwsError) as unknown:
        svc.create_queue(ACCOUNT, REGION, "q2", {"Nope": "1"})
    assert unknown.value.message == "Unknown Attribute Nope."


def test_purge_once_per_minute(svc: QueueService, clock: Clock) -> None:
    q = svc.create_queue(ACCOUNT, REGION, "q", {})
    _send(svc, q, "m")
    svc.purge(q)
    q = svc.require_arn(q.arn)
    with pytest.raises(AwsError) as exc:
        svc.purge(q)
    assert exc.value.code == "PurgeQueueInProgress"
    clock.now += 60
    svc.purge(q)
    assert svc.receive_now(q) == []


def test_receipt_handle_checks(svc: QueueService) -> None:
    q = svc.create_queue(ACCOUNT, REGION, "q", {})
    with pytest.raises(AwsError) as exc:
        svc.delete_message(q, "garbage")
    assert exc.value.message == 'The input receipt handle "garbage" is not a valid receipt handle.'
    _send(svc, q, "m")
    handle = svc.receive_now(q, 1, 0)[0]["ReceiptHandle"]
    # Visibility 0: no longer in flight, yet its latest handle may still change it (recorded by AWS).
    svc.change_visibility(q, handle, 10)
    assert svc.receive_now(q) == []
    svc.delete_message(q, handle)
    with pytest.raises(AwsError) as deleted:
        svc.change_visibility(q, handle, 10)
    assert (query_code(deleted.value), deleted.value.message) == (
        "InvalidParameterValue", f"Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does not "
                                 "exist or is not available for visibility timeout change.")


def test_fifo_receive_hands_out_groups_together_and_takes_true_in_any_case(svc: QueueService) -> None:
    q = svc.create_queue(ACCOUNT, REGION, "q.fifo", {"FifoQueue": "True", "ContentBasedDeduplication": "TRUE"})
    assert q.fifo and q.attributes["ContentBasedDeduplication"] == "true"
    for body, group in (("g1-m1", "g1"), ("g2-m1", "g2"), ("g1-m2", "g1")):
        svc.send(q, OutgoingMessage(body=body, group_id=group, delay=0))
    assert [m["Body"] for m in svc.receive_now(q, 10)] == ["g1-m1", "g1-m2", "g2-m1"]
    with pytest.raises(AwsError) as info:
        svc.set_attributes(q, {"FifoQueue": "false"})
    assert info.value.message == "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not " \
                                 "supported."


def test_md5_of_attributes_matches_aws_algorithm() -> None:
    attrs = {"b": {"DataType": "Binary", "BinaryValue": b"\x01\x02"},
             "a": {"DataType": "String", "StringValue": "x"}}

    def enc(raw: bytes) -> bytes:
        return struct.pack(">I", len(raw)) + raw

    expected = hashlib.md5(enc(b"a") + enc(b"String") + b"\x01" + enc(b"x")
                           + enc(b"b") + enc(b"Binary") + b"\x02" + enc(b"\x01\x02")).hexdigest()
    assert md5_of_attributes(attrs) == expected
    assert md5_of_attributes({}) is None


def test_lambda_record_validates_against_sqs_model(svc: QueueService) -> None:
    q = svc.create_queue(ACCOUNT, REGION, "q", {})
    _send(svc, q, "payload", attributes={"k": {"DataType": "String", "StringValue": "v"},
                                         "bin": {"DataType": "Binary", "BinaryValue": b"\x00"}},
          trace_header="Root=1-abc-def")
    messages = svc.receive(ACCOUNT, REGION, q.arn, 10, 30)
    record = lambda_record(messages[0], q.arn, REGION)
    parsed = SqsModel.model_validate({"Records": [record]})
    assert parsed.Records[0].body == "payload"
    assert record["attributes"]["AWSTraceHeader"] == "Root=1-abc-def"
    assert record["messageAttributes"]["bin"]["binaryValue"] == "AA=="
    with pytest.raises(AwsError):
        svc.receive("111111111111", REGION, q.arn)  # another account's queue is not found


async def test_long_poll_wakes_on_send(svc: QueueService) -> None:
    q = svc.create_queue(ACCOUNT, REGION, "q", {})
    waiter = asyncio.create_task(svc.receive_wait(q, 1, None, 20.0))
    await asyncio.sleep(0)
    assert not waiter.done()
    _send(svc, q, "hello")
    got = await asyncio.wait_for(waiter, 5)
    assert got[0]["Body"] == "hello"


async def test_wait_for_messages_times_out_and_close_wakes(svc: QueueService) -> None:
    q = svc.create_queue(ACCOUNT, REGION, "q", {})
    assert await svc.wait_for_messages(q.arn, 0.01) is False
    waiter = asyncio.create_task(svc.wait_for_messages(q.arn, 30))
    await asyncio.sleep(0)
    svc.delete_queue(q)
    assert await asyncio.wait_for(waiter, 5) is True


async def test_delivery_handler(svc: QueueService) -> None:
    q = svc.create_queue(ACCOUNT, REGION, "q", {})
    deliver = SqsDelivery(svc)
    await deliver(q.arn, Message(body="from a topic", trace_header="Root=1-x",
                                 attributes={"a": {"DataType": "String", "StringValue": "1"}},
                                 source_arn="arn:aws:sns:us-east-1:222222222222:t"))
    got = svc.receive_now(q, attribute_names=["All"], message_attribute_names=["All"])
    assert got[0]["Attributes"]["SenderId"] == "222222222222"
    assert got[0]["MessageAttributes"]["a"]["StringValue"] == "1"
    with pytest.raises(DeliveryError) as missing:
        await deliver(q.arn + "x", Message(body="x"))
    assert missing.value.code == "QueueDoesNotExist"


def test_state_survives_reopen(tmp_path: Path, clock: Clock) -> None:
    svc = QueueService(tmp_path, clock=clock)
    q = svc.create_queue(ACCOUNT, REGION, "q", {})
    message_id = _send(svc, q, "kept")
    svc.close()
    reopened = QueueService(tmp_path, clock=clock)
    try:
        queue = reopened.get(ACCOUNT, REGION, "q")
        assert reopened.receive_now(queue)[0]["MessageId"] == message_id
    finally:
        reopened.close()


def test_standard_queues_refuse_fifo_attributes_with_aws_texts(svc: QueueService) -> None:
    for attributes, text in (({"FifoQueue": "false"}, "Unknown Attribute FifoQueue."),
                             ({"ContentBasedDeduplication": "false"}, "Unknown Attribute ContentBasedDeduplication."),
                             ({"DeduplicationScope": "queue"},
                              "You can specify the DeduplicationScope only when FifoQueue is set to true.")):
        with pytest.raises(AwsError) as info:
            svc.create_queue(ACCOUNT, REGION, "std", attributes)
        assert (info.value.code, info.value.message) == ("InvalidAttributeName", text)


# -- behaviours recorded by AWS (LocalStack's AWS-validated SQS tests) ----------------------------------

def _fifo(svc: QueueService, name: str = "f.fifo", **attributes: str) -> Queue:
    return svc.create_queue(ACCOUNT, REGION, name, {"FifoQueue": "true", "ContentBasedDeduplication": "true",
                                                    **attributes})


def _bodies(messages: list[dict[str, object]]) -> list[object]:
    return [m["Body"] for m in messages]


def test_fifo_group_reopens_when_its_first_message_is_visible_and_goes_last(svc: QueueService,
                                                                           clock: Clock) -> None:
    q = _fifo(svc)
    for body, group in (("g1-m1", "1"), ("g1-m2", "1"), ("g2-m1", "2")):
        _send(svc, q, body, group_id=group)
    first = svc.receive_now(q, 2, 30)
    assert _bodies(first) == ["g1-m1", "g1-m2"]
    clock.now += 1
    svc.change_visibility(q, str(first[0]["ReceiptHandle"]), 0)
    # g1-m1 visible again opens its group (g1-m2 stays in flight); the reopened group comes after group 2.
    assert _bodies(svc.receive_now(q, 3, 30)) == ["g2-m1", "g1-m1"]


def test_fifo_group_stops_at_its_first_invisible_message(svc: QueueService, clock: Clock) -> None:
    q = _fifo(svc, VisibilityTimeout="1")
    for body in ("foo", "bar", "baz"):
        _send(svc, q, body, group_id="1")
    received = svc.receive_now(q, 5)
    svc.change_visibility(q, str(received[1]["ReceiptHandle"]), 4)
    clock.now += 2
    assert _bodies(svc.receive_now(q, 5)) == ["foo"]


def test_standard_queue_takes_an_earlier_receipt_for_visibility(svc: QueueService, clock: Clock) -> None:
    q = svc.create_queue(ACCOUNT, REGION, "q", {})
    _send(svc, q, "m")
    old = str(svc.receive_now(q, 1, 0)[0]["ReceiptHandle"])
    assert len(svc.receive_now(q, 1, 30)) == 1
    svc.change_visibility(q, old, 0)
    assert len(svc.receive_now(q, 1, 30)) == 1


def test_fifo_receipt_expires_with_the_visibility_timeout(svc: QueueService, clock: Clock) -> None:
    q = _fifo(svc, VisibilityTimeout="1")
    _send(svc, q, "m", group_id="1")
    receipt = str(svc.receive_now(q)[0]["ReceiptHandle"])
    clock.now += 1
    with pytest.raises(AwsError) as err:
        svc.delete_message(q, receipt)
    assert err.value.message.endswith("Reason: The receipt handle has expired.")


def test_purge_forgets_deduplication_ids(svc: QueueService, clock: Clock) -> None:
    q = _fifo(svc)
    _send(svc, q, "one", group_id="g", dedup_id="d")
    svc.purge(q)
    _send(svc, q, "two", group_id="g", dedup_id="d")
    assert _bodies(svc.receive_now(q)) == ["two"]


def test_dedup_scope_stays_as_created(svc: QueueService) -> None:
    q = _fifo(svc, ContentBasedDeduplication="false")
    _send(svc, q, "one", group_id="g1", dedup_id="d")
    q = svc.set_attributes(q, {"DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId"})
    assert svc.get_attributes(q, ["DeduplicationScope"]) == {"DeduplicationScope": "messageGroup"}
    _send(svc, q, "two", group_id="g2", dedup_id="d")  # still a duplicate queue-wide
    assert _bodies(svc.receive_now(q, 10)) == ["one"]


def test_a_queue_may_be_its_own_dead_letter_queue(svc: QueueService) -> None:
    q = svc.create_queue(ACCOUNT, REGION, "self", {})
    svc.set_attributes(q, {"RedrivePolicy": json.dumps({"deadLetterTargetArn": q.arn, "maxReceiveCount": "42"})})
    assert json.loads(svc.require_arn(q.arn).attributes["RedrivePolicy"])["maxReceiveCount"] == 42


def test_removing_the_kms_key_removes_its_data_key_period(svc: QueueService) -> None:
    q = svc.create_queue(ACCOUNT, REGION, "kms", {})
    q = svc.set_attributes(q, {"KmsMasterKeyId": "k", "KmsDataKeyReusePeriodSeconds": "6000"})
    q = svc.set_attributes(q, {"KmsMasterKeyId": "", "KmsDataKeyReusePeriodSeconds": "300"})
    assert "KmsDataKeyReusePeriodSeconds" not in svc.get_attributes(q, ["All"])


def test_message_attribute_rules(svc: QueueService) -> None:
    q = svc.create_queue(ACCOUNT, REGION, "attrs", {})
    _send(svc, q, "m", attributes={"attr.1øßä": {"DataType": "String", "StringValue": "v"},
                                   "Hello": {"DataType": "String", "StringValue": "x"},
                                   "Help.Me": {"DataType": "String", "StringValue": "y"}})
    for bad in ("aWs.x", "AMAZON.x", "a§b"):
        with pytest.raises(AwsError, match="is invalid"):
            _send(svc, q, "m", attributes={bad: {"DataType": "String", "StringValue": "v"}})
    with pytest.raises(AwsError) as err:
        _send(svc, q, "m", attributes={"E": {"DataType": "String", "StringValue": ""}})
    assert err.value.message == "Message (user) attribute 'E' must contain a non-empty value of type 'String'."
    got = svc.receive_now(q, 1, 0, message_attribute_names=["Hel.*"])[0]["MessageAttributes"]
    assert sorted(got) == ["Hello", "Help.Me"]
    assert len(svc.receive_now(q, 1, 0, message_attribute_names=["*"])[0]["MessageAttributes"]) == 3


def test_fifo_empty_deduplication_id_is_invalid(svc: QueueService) -> None:
    q = _fifo(svc, ContentBasedDeduplication="false")
    with pytest.raises(AwsError) as err:
        _send(svc, q, "m", group_id="g", dedup_id="")
    assert err.value.message.startswith("Value  for parameter MessageDeduplicationId is invalid.")
