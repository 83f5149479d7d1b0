"""TopicService fan-out with a recording router: payload shapes, filters, FIFO deduplication."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import SnsModel, SnsNotificationModel

from hearth.aws.errors import AwsError
from hearth.events.delivery import DeliveryError, DeliveryRouter, Message
from hearth.services.sns.provider import SnsDelivery, normalize_attributes
from hearth.services.sns.topics import Publication, TopicService

ACCOUNT, REGION = "000000000000", "us-east-1"
QUEUE = "arn:aws:sqs:us-east-1:000000000000:q"
FUNCTION = "arn:aws:lambda:us-east-1:000000000000:function:f"


class Recorder:
    def __init__(self) -> None:
        self.got: list[tuple[str, Message]] = []

    async def __call__(self, arn: str, message: Message) -> None:
        self.got.append((arn, message))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def topics(tmp_path: Path, recorder: Recorder) -> Iterator[TopicService]:
    router = DeliveryRouter()
    router.register("sqs", recorder)
    router.register("lambda", recorder)
    svc = TopicService(tmp_path, router, "http://127.0.0.1:4566", clock=lambda: 1_700_000_000.5)
    yield svc
    svc.close()


async def test_envelope_and_lambda_event(topics: TopicService, recorder: Recorder) -> None:
    topic = topics.create_topic(ACCOUNT, REGION, "t", {}, {})
    sqs_sub = topics.subscribe(topic, ACCOUNT, "sqs", QUEUE, {})
    fn_sub = topics.subscribe(topic, ACCOUNT, "lambda", FUNCTION, {})
    attrs = normalize_attributes({"k": {"DataType": "String", "StringValue": "v"}})
    message_id, _ = await topics.publish(topic, Publication("hello", subject="s", attributes=attrs,
                                                            trace_header="Root=1-a-b"))
    got = dict(recorder.got)  # subscribers are delivered to concurrently: no order
    assert sorted(got) == sorted([QUEUE, FUNCTION])
    q_msg, f_msg = got[QUEUE], got[FUNCTION]
    envelope = json.loads(q_msg.body)
    assert envelope["Type"] == "Notification" and envelope["MessageId"] == message_id
    assert envelope["Timestamp"] == "2023-11-14T22:13:20.500Z"
    assert envelope["MessageAttributes"] == {"k": {"Type": "String", "Value": "v"}}
    assert sqs_sub.arn in envelope["UnsubscribeURL"] and q_msg.trace_header == "Root=1-a-b"
    SnsNotificationModel.model_validate({**envelope, "SigningCertUrl": envelope["SigningCertURL"],
                                         "UnsubscribeUrl": envelope["UnsubscribeURL"]})
    event = json.loads(f_msg.body)
    SnsModel.model_validate(event)
    assert event["Records"][0]["EventSubscriptionArn"] == fn_sub.arn
    assert event["Records"][0]["Sns"]["Subject"] == "s" and f_msg.source_arn == topic.arn


async def test_raw_delivery_filter_and_structure(topics: TopicService, recorder: Recorder) -> None:
    topic = topics.create_topic(ACCOUNT, REGION, "t", {}, {})
    topics.subscribe(topic, ACCOUNT, "sqs", QUEUE, {"RawMessageDelivery": "true",
                                                     "FilterPolicy": json.dumps({"kind": ["a"]}),
                                                     "FilterPolicyScope": "MessageBody"})
    await topics.publish(topic, Publication(json.dumps({"default": "{}", "sqs": json.dumps({"kind": "a"})}),
                                            structure="json"))
    await topics.publish(topic, Publication(json.dumps({"kind": "b"})))
    assert [json.loads(m.body) for _, m in recorder.got] == [{"kind": "a"}]


async def test_fifo_topic_deduplicates(topics: TopicService, recorder: Recorder) -> None:
    topic = topics.create_topic(ACCOUNT, REGION, "t.fifo", {"FifoTopic": "true",
                                                            "ContentBasedDeduplication": "true"}, {})
    topics.subscribe(topic, ACCOUNT, "sqs", QUEUE + ".fifo", {})
    first = await topics.publish(topic, Publication("m", group_id="g"))
    again = await topics.publish(topic, Publication("m", group_id="g"))
    assert first == again and len(recorder.got) == 1
    message = recorder.got[0][1]
    assert message.group_id == "g" and message.deduplication_id
    assert json.loads(message.body)["SequenceNumber"] == first[1]


async def test_failed_delivery_is_counted_not_raised(tmp_path: Path) -> None:
    router = DeliveryRouter()

    async def refuse(arn: str, message: Message) -> None:
        raise DeliveryError("gone", "QueueDoesNotExist")

    router.register("sqs", refuse)
    svc = TopicService(tmp_path, router, "http://x")
    try:
        topic = svc.create_topic(ACCOUNT, REGION, "t", {}, {})
        svc.subscribe(topic, ACCOUNT, "sqs", QUEUE, {})
        await svc.publish(topic, Publication("m"))
        assert svc.statistics() == {"delivered": 0, "failed": 1}
    finally:
        svc.close()


async def test_sns_delivery_handler(topics: TopicService, recorder: Recorder) -> None:
    topic = topics.create_topic(ACCOUNT, REGION, "t", {}, {})
    topics.subscribe(topic, ACCOUNT, "sqs", QUEUE, {"RawMessageDelivery": "true"})
    handler = SnsDelivery(topics)
    await handler(topic.arn, Message(body='{"version": "1.0"}'))
    assert recorder.got[0][1].body == '{"version": "1.0"}'
    with pytest.raises(DeliveryError) as missing:
        await handler(topic.arn + "x", Message(body="x"))
    assert missing.value.code == "NotFound"


def test_topic_and_subscription_rules(topics: TopicService) -> None:
    topic = topics.create_topic(ACCOUNT, REGION, "t", {"DisplayName": "a"}, {})
    with pytest.raises(AwsError, match="different attributes"):
        topics.create_topic(ACCOUNT, REGION, "t", {"DisplayName": "b"}, {})
    with pytest.raises(AwsError, match="does not support raw message delivery"):
        topics.subscribe(topic, ACCOUNT, "lambda", FUNCTION, {"RawMessageDelivery": "true"})
    sub = topics.subscribe(topic, ACCOUNT, "sqs", QUEUE, {})
    assert topics.subscribe(topic, ACCOUNT, "sqs", QUEUE, {}).arn == sub.arn
    topics.set_subscription_attribute(sub, "FilterPolicy", json.dumps({"a": ["b"]}))
    attrs = topics.subscription_attributes(topics.subscription(ACCOUNT, sub.arn))
    assert attrs["FilterPolicyScope"] == "MessageAttributes" and attrs["PendingConfirmation"] == "false"
    with pytest.raises(AwsError) as other:
        topics.subscription("111111111111", sub.arn)
    assert other.value.code == "NotFound"
    with pytest.raises(AwsError, match="invalid message attribute type"):
        normalize_attributes({"x": {"DataType": "Blob", "StringValue": "1"}})


async def test_undeliverable_message_goes_to_the_redrive_queue(tmp_path: Path) -> None:
    router = DeliveryRouter()
    got: list[tuple[str, Message]] = []

    async def only_dlq(arn: str, message: Message) -> None:
        if not arn.endswith("dlq"):
            raise DeliveryError("gone", "QueueDoesNotExist")
        got.append((arn, message))

    router.register("sqs", only_dlq)
    router.register("lambda", only_dlq)
    svc = TopicService(tmp_path, router, "http://x")
    try:
        topic = svc.create_topic(ACCOUNT, REGION, "t", {}, {})
        dlq = "arn:aws:sqs:us-east-1:000000000000:dlq"
        redrive = json.dumps({"deadLetterTargetArn": dlq})
        svc.subscribe(topic, ACCOUNT, "sqs", QUEUE, {"RawMessageDelivery": "true", "RedrivePolicy": redrive})
        svc.subscribe(topic, ACCOUNT, "lambda", FUNCTION, {"RedrivePolicy": redrive})
        attrs = normalize_attributes({"a": {"DataType": "String", "StringValue": "v"}})
        await svc.publish(topic, Publication("m", attributes=attrs, group_id="g"))
        # Which subscription is tried first is not fixed (same creation time): tell them by body.
        raw = next(m for _, m in got if m.body == "m")
        enveloped = next(m for _, m in got if m.body != "m")
        assert (raw.body, raw.attributes, raw.group_id) == ("m", attrs, "g")  # a standard topic keeps the group
        # A function's undeliverable message reaches the queue in the queue subscriber's envelope.
        assert json.loads(enveloped.body)["Message"] == "m" and enveloped.attributes == {}
    finally:
        svc.close()


async def test_fifo_topic_to_standard_queue_carries_no_fifo_ids(topics: TopicService, recorder: Recorder) -> None:
    topic = topics.create_topic(ACCOUNT, REGION, "t.fifo", {"FifoTopic": "true"}, {})
    topics.subscribe(topic, ACCOUNT, "sqs", QUEUE, {})
    topics.subscribe(topic, ACCOUNT, "sqs", QUEUE + ".fifo", {})
    await topics.publish(topic, Publication("m", group_id="g", dedup_id="d"))
    got = dict(recorder.got)
    standard, fifo = got[QUEUE], got[QUEUE + ".fifo"]
    assert (standard.group_id, standard.deduplication_id) == (None, None)
    assert (fifo.group_id, fifo.deduplication_id) == ("g", "d")


async def test_http_subscription_is_confirmed_by_its_token_then_notified(topics: TopicService) -> None:
    import asyncio
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    got: list[tuple[dict[str, str], bytes]] = []
    arrived = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.end_headers()
            arrived.set()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        topic = topics.create_topic(ACCOUNT, REGION, "t", {}, {})
        sub = topics.subscribe(topic, ACCOUNT, "http", url, {})
        assert sub.pending and topics.topic_attributes(topic)["SubscriptionsPending"] == "1"
        assert await asyncio.to_thread(arrived.wait, 10)
        headers, body = got[0]
        confirmation = json.loads(body)
        assert headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
        assert confirmation["Type"] == "SubscriptionConfirmation" and confirmation["TopicArn"] == topic.arn
        assert topics.confirm(topic.arn, "f" * 256) is None
        confirmed = topics.confirm(topic.arn, confirmation["Token"])
        assert confirmed is not None and not confirmed.pending
        arrived.clear()
        await topics.publish(topic, Publication("hello"))
        assert await asyncio.to_thread(arrived.wait, 10)
        headers, body = got[1]
        assert headers["x-amz-sns-message-type"] == "Notification"
        assert json.loads(body)["Message"] == "hello"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_signing_key_is_kept_and_signs_both_versions(tmp_path: Path) -> None:
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from hearth.services.sns.signing import NOTIFICATION_FIELDS, SigningKey

    key = SigningKey(tmp_path)
    assert SigningKey(tmp_path).cert_pem == key.cert_pem  # made once, kept across restarts
    assert (tmp_path / "sns-signing" / "key.pem").stat().st_mode & 0o077 == 0
    assert key.cert_url("http://h:1") == f"http://h:1/_hearth/sns/{key.cert_name}"
    public = x509.load_pem_x509_certificate(key.cert_pem).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    message = {"Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": "x", "Timestamp": "ts"}
    text = b"Message\nx\nMessageId\nm\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n"
    for version, algorithm in (("1", hashes.SHA1()), ("2", hashes.SHA256())):
        signature = base64.b64decode(key.sign(message, NOTIFICATION_FIELDS, version))
        public.verify(signature, text, padding.PKCS1v15(), algorithm)


class _LogRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def ensure_group(self, account: str, region: str, group: str) -> None:
        pass

    def ensure_stream(self, account: str, region: str, group: str, stream: str) -> None:
        pass

    def append(self, account: str, region: str, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        self.events.extend((group, message) for _, message in events)


async def test_delivery_status_is_logged_when_the_topic_asks(tmp_path: Path, recorder: Recorder) -> None:
    router = DeliveryRouter()
    router.register("lambda", recorder)
    logs = _LogRecorder()
    svc = TopicService(tmp_path, router, "http://x", delivery_logs=logs)
    try:
        topic = svc.create_topic(ACCOUNT, REGION, "t", {}, {})
        svc.subscribe(topic, ACCOUNT, "lambda", FUNCTION, {})
        await svc.publish(topic, Publication("quiet"))
        assert logs.events == []  # no feedback role: nothing logged
        svc.set_topic_attribute(topic, "LambdaSuccessFeedbackRoleArn", "arn:aws:iam::000000000000:role/r")
        svc.set_topic_attribute(svc.topic(ACCOUNT, topic.arn), "LambdaSuccessFeedbackSampleRate", "100")
        message_id, _ = await svc.publish(svc.topic(ACCOUNT, topic.arn), Publication("Should be received"))
        (group, text), = logs.events
        record = json.loads(text)
        assert group == f"sns/{REGION}/{ACCOUNT}/t" and record["status"] == "SUCCESS"
        assert record["notification"]["messageId"] == message_id
        assert record["notification"]["messageMD5Sum"] == "c1c7ff780647014d463e6801bf83c59d"  # AWS's recording
        assert record["delivery"]["statusCode"] == 202 and "lambdaRequestId" in record["delivery"]["providerResponse"]
    finally:
        svc.close()
