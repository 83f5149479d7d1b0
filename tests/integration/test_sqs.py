"""SQS-compatible queues through boto3 and the AWS CLI against a real server."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.integration.harness import ACCESS_KEY, SECRET_KEY, HearthServer


def _name(prefix: str = "q") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sqs(server: HearthServer) -> Any:
    return server.client("sqs")


def _error(exc: pytest.ExceptionInfo[ClientError]) -> dict[str, Any]:
    return dict(exc.value.response["Error"])


def test_queue_lifecycle_and_errors(server: HearthServer, sqs: Any) -> None:
    name = _name()
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "40"})["QueueUrl"]
    assert url == f"{server.endpoint}/000000000000/{name}"
    # Idempotent with the same attributes; a different value is QueueNameExists.
    assert sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "40"})["QueueUrl"] == url
    with pytest.raises(sqs.exceptions.QueueNameExists) as exc:
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "41"})
    assert _error(exc)["Code"] == "QueueAlreadyExists"
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    assert url in sqs.list_queues(QueueNamePrefix=name[:6])["QueueUrls"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["QueueArn"] == f"arn:aws:sqs:us-east-1:000000000000:{name}"
    assert attrs["VisibilityTimeout"] == "40" and attrs["ApproximateNumberOfMessages"] == "0"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "3"})
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds"])["Attributes"] == \
        {"DelaySeconds": "3"}
    with pytest.raises(ClientError) as bad:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "99999"})
    assert _error(bad)["Code"] == "InvalidAttributeValue"
    sqs.tag_queue(QueueUrl=url, Tags={"team": "a", "env": "dev"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["env"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a"}
    # The AWS-style URL of the same queue works too.
    aws_url = f"https://sqs.us-east-1.amazonaws.com/000000000000/{name}"
    assert sqs.get_queue_attributes(QueueUrl=aws_url, AttributeNames=["QueueArn"])["Attributes"]
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as gone:
        sqs.get_queue_url(QueueName=name)
    err = _error(gone)
    assert err["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert err["Message"] == "The specified queue does not exist."
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as invalid:
        sqs.create_queue(QueueName="bad name!")
    assert _error(invalid)["Message"] == \
        "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"


def test_list_queues_paginates(sqs: Any) -> None:
    prefix = _name("page")
    urls = {sqs.create_queue(QueueName=f"{prefix}-{i}")["QueueUrl"] for i in range(5)}
    seen: set[str] = set()
    kwargs: dict[str, Any] = {"QueueNamePrefix": prefix, "MaxResults": 2}
    while True:
        page = sqs.list_queues(**kwargs)
        seen.update(page.get("QueueUrls", []))
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert seen == urls


def test_send_receive_attributes_and_trace_header(server: HearthServer) -> None:
    sqs = server.client("sqs")
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:3"

    def add_trace(request: Any, **_: Any) -> None:
        request.headers["X-Amzn-Trace-Id"] = trace

    sqs.meta.events.register("before-sign.sqs.SendMessage", add_trace)
    url = sqs.create_queue(QueueName=_name())["QueueUrl"]
    attributes = {"color": {"DataType": "String", "StringValue": "red"},
                  "size": {"DataType": "Number", "StringValue": "12"},
                  "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="hello", MessageAttributes=attributes)
    assert sent["MD5OfMessageBody"] == "5d41402abc4b2a76b9719d911017c592"
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"],
                              WaitTimeSeconds=1)["Messages"]
    assert len(got) == 1
    message = got[0]
    assert message["Body"] == "hello" and message["MessageId"] == sent["MessageId"]
    assert message["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert message["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\xff"
    system = message["Attributes"]
    assert system["ApproximateReceiveCount"] == "1" and system["AWSTraceHeader"] == trace
    assert system["SenderId"] == "000000000000" and int(system["SentTimestamp"]) > 0
    only = sqs.send_message(QueueUrl=url, MessageBody="x")
    again = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["col.*"], WaitTimeSeconds=1)["Messages"]
    assert again[0]["MessageId"] == only["MessageId"] and "Attributes" not in again[0]


def test_visibility_receipts_and_delete(sqs: Any) -> None:
    url = sqs.create_queue(QueueName=_name())["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")
    first = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0]
    second = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30,
                                 MessageSystemAttributeNames=["ApproximateReceiveCount"])
    second_msg = second["Messages"][0]
    assert second_msg["ReceiptHandle"] != first["ReceiptHandle"]
    assert second_msg["Attributes"]["ApproximateReceiveCount"] == "2"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)  # in flight
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert counts["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=second_msg["ReceiptHandle"], VisibilityTimeout=0)
    third = sqs.receive_message(QueueUrl=url)["Messages"][0]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])  # stale: succeeds, deletes nothing
    sqs.delete_message(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"])
    with pytest.raises(ClientError) as bad:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    assert _error(bad)["Code"] == "ReceiptHandleIsInvalid"
    with pytest.raises(ClientError) as deleted:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"], VisibilityTimeout=5)
    # AWS answers a deleted message's handle so (LocalStack's AWS-validated
    # test_change_visibility_on_deleted_message_raises_invalid_parameter_value).
    assert _error(deleted)["Code"] == "InvalidParameterValue"
    assert "Messages" not in sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)


def test_long_poll_returns_when_a_message_arrives(server: HearthServer, sqs: Any) -> None:
    url = sqs.create_queue(QueueName=_name())["QueueUrl"]
    result: dict[str, Any] = {}

    def poll() -> None:
        result.update(server.client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=20))

    thread = threading.Thread(target=poll)
    thread.start()
    sqs.send_message(QueueUrl=url, MessageBody="wake up")
    thread.join(timeout=25)
    assert not thread.is_alive()
    assert result["Messages"][0]["Body"] == "wake up"


def test_batches_and_limits(sqs: Any) -> None:
    url = sqs.create_queue(QueueName=_name())["QueueUrl"]
    out = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "MessageBody": "one"}, {"Id": "b", "MessageBody": "two", "DelaySeconds": 1000}])
    assert [e["Id"] for e in out["Successful"]] == ["a"]
    assert out["Failed"][0]["Id"] == "b" and out["Failed"][0]["Code"] == "InvalidParameterValue"
    assert out["Failed"][0]["SenderFault"] is True
    with pytest.raises(ClientError) as distinct:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "x", "MessageBody": "1"}, {"Id": "x", "MessageBody": "2"}])
    assert _error(distinct)["Code"] == "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
    with pytest.raises(ClientError) as many:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"e{i}", "MessageBody": "m"} for i in range(11)])
    assert _error(many)["Message"] == "Maximum number of entries per request are 10. You have sent 11."
    with pytest.raises(ClientError) as big:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1_048_577)  # 1 MiB, AWS's limit since 2025
    assert _error(big)["Message"] == \
        "One or more parameters are invalid. Reason: Message must be shorter than 1048576 bytes."
    with pytest.raises(ClientError) as count:
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    assert _error(count)["Message"] == \
        "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided."
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "ok", "ReceiptHandle": got[0]["ReceiptHandle"]}, {"Id": "bad", "ReceiptHandle": "zzz"}])
    assert [e["Id"] for e in deleted["Successful"]] == ["ok"]
    assert deleted["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    sqs.purge_queue(QueueUrl=url)
    with pytest.raises(ClientError) as purge:
        sqs.purge_queue(QueueUrl=url)
    assert _error(purge)["Code"] == "AWS.SimpleQueueService.PurgeQueueInProgress"


def test_redrive_to_dead_letter_queue(sqs: Any) -> None:
    dlq_url = sqs.create_queue(QueueName=_name("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    url = sqs.create_queue(QueueName=_name("src"), Attributes={"RedrivePolicy": policy})["QueueUrl"]
    src_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sent = sqs.send_message(QueueUrl=url, MessageBody="poison")
    for _ in range(2):
        assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0]["Body"] == "poison"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)  # the third receive moves it
    moved = sqs.receive_message(QueueUrl=dlq_url, MessageSystemAttributeNames=["All"])["Messages"][0]
    assert moved["MessageId"] == sent["MessageId"]
    assert moved["Attributes"]["DeadLetterQueueSourceArn"] == src_arn
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq_url)["queueUrls"] == [url]
    with pytest.raises(ClientError) as bad:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn + "-missing", "maxReceiveCount": 2})})
    assert _error(bad)["Code"] == "InvalidParameterValue"


def test_fifo_groups_order_and_deduplication(sqs: Any) -> None:
    name = _name("f") + ".fifo"
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true",
                                                       "ContentBasedDeduplication": "true"})["QueueUrl"]
    first = sqs.send_message(QueueUrl=url, MessageBody="a1", MessageGroupId="A")
    duplicate = sqs.send_message(QueueUrl=url, MessageBody="a1", MessageGroupId="A")
    assert duplicate["MessageId"] == first["MessageId"] and first["SequenceNumber"]
    sqs.send_message(QueueUrl=url, MessageBody="a2", MessageGroupId="A")
    sqs.send_message(QueueUrl=url, MessageBody="b1", MessageGroupId="B", MessageDeduplicationId="d-b1")
    one = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, MessageSystemAttributeNames=["All"])["Messages"][0]
    assert one["Body"] == "a1" and one["Attributes"]["MessageGroupId"] == "A"
    # Group A is locked while a1 is in flight: only B is receivable.
    rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in rest] == ["b1"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=one["ReceiptHandle"])
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]] == ["a2"]
    with pytest.raises(ClientError) as missing:
        sqs.send_message(QueueUrl=url, MessageBody="x")
    assert _error(missing)["Message"] == "The request must contain the parameter MessageGroupId."


def test_aws_cli(server: HearthServer) -> None:
    # AWS CLI v1 replaces the endpoint of `sqs` commands with queue.amazonaws.com unless --endpoint-url is
    # given (it ignores AWS_ENDPOINT_URL there): the harness adds --endpoint-url, as README tells users to.
    def aws(*args: str, check: bool = True) -> Any:
        return server.aws("sqs", *args, check=check)

    name = _name("cli")
    url = json.loads(aws("create-queue", "--queue-name", name).stdout)["QueueUrl"]
    aws("send-message", "--queue-url", url, "--message-body", "from the cli",
        "--message-attributes", '{"k": {"DataType": "String", "StringValue": "v"}}')
    got = json.loads(aws("receive-message", "--queue-url", url, "--message-attribute-names", "All",
                         "--attribute-names", "ApproximateReceiveCount", "SentTimestamp").stdout)
    assert got["Messages"][0]["Body"] == "from the cli"
    assert set(got["Messages"][0]["Attributes"]) == {"ApproximateReceiveCount", "SentTimestamp"}
    assert got["Messages"][0]["MessageAttributes"]["k"]["StringValue"] == "v"
    attrs = json.loads(aws("get-queue-attributes", "--queue-url", url, "--attribute-names", "All").stdout)
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert url in aws("list-queues").stdout
    aws("delete-queue", "--queue-url", url)
    missing = aws("get-queue-url", "--queue-name", name, check=False)
    assert missing.returncode != 0
    assert "AWS.SimpleQueueService.NonExistentQueue" in missing.stderr
    assert "The specified queue does not exist." in missing.stderr


def test_messages_survive_kill_9(fresh_server: HearthServer) -> None:
    fresh_server.start()
    sqs = fresh_server.client("sqs")
    url = sqs.create_queue(QueueName="durable")["QueueUrl"]
    ids = {sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")["MessageId"] for i in range(5)}
    fifo = sqs.create_queue(QueueName="durable.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    sqs.send_message(QueueUrl=fifo, MessageBody="f", MessageGroupId="g", MessageDeduplicationId="d")
    fresh_server.kill9()
    fresh_server.start()
    sqs = fresh_server.client("sqs")
    got: set[str] = set()
    for _ in range(5):
        got.update(m["MessageId"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
                   .get("Messages", []))
    assert got == ids
    assert sqs.receive_message(QueueUrl=fifo)["Messages"][0]["Body"] == "f"
    # The deduplication window survives the restart too.
    again = sqs.send_message(QueueUrl=fifo, MessageBody="f2", MessageGroupId="g", MessageDeduplicationId="d")
    assert again["MessageId"]
    assert fresh_server.stop() == 0


def test_query_protocol_over_http(server: HearthServer) -> None:
    """A query-era SDK's request (form-encoded Action, SigV4) gets an XML answer with query error codes."""
    ns = {"q": "http://queue.amazonaws.com/doc/2012-11-05/"}

    def call(action: str, **params: str) -> tuple[int, ET.Element]:
        body = urlencode({"Action": action, "Version": "2012-11-05", **params}).encode()
        request = AWSRequest(method="POST", url=f"{server.endpoint}/", data=body,
                             headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "sqs", "us-east-1").add_auth(request)
        prepared = urllib.request.Request(request.url, data=body, method="POST", headers=dict(request.headers))
        try:
            with urllib.request.urlopen(prepared, timeout=30) as resp:
                return resp.status, ET.fromstring(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, ET.fromstring(err.read())

    name = _name("query")
    status, root = call("CreateQueue", QueueName=name)
    assert status == 200
    url = root.findtext("q:CreateQueueResult/q:QueueUrl", namespaces=ns)
    assert url == f"{server.endpoint}/000000000000/{name}"
    call("SendMessage", QueueUrl=url, MessageBody="old school")
    status, root = call("ReceiveMessage", QueueUrl=url, **{"AttributeName.1": "ApproximateReceiveCount"})
    assert root.findtext("q:ReceiveMessageResult/q:Message/q:Body", namespaces=ns) == "old school"
    assert root.findtext("q:ReceiveMessageResult/q:Message/q:Attribute/q:Name", namespaces=ns) == \
        "ApproximateReceiveCount"
    call("DeleteQueue", QueueUrl=url)
    status, root = call("GetQueueUrl", QueueName=name)
    assert status == 400
    assert root.findtext("q:Error/q:Code", namespaces=ns) == "AWS.SimpleQueueService.NonExistentQueue"


def test_shutdown_ends_long_polls(fresh_server: HearthServer) -> None:
    fresh_server.start()
    sqs = fresh_server.client("sqs")
    url = sqs.create_queue(QueueName=_name("shutdown"))["QueueUrl"]
    polled: dict[str, Any] = {}
    started = threading.Event()

    def poll() -> None:
        started.set()
        try:
            polled["answer"] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)
        except Exception as exc:  # the test asserts on what happened, whatever it was
            polled["error"] = exc

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        assert started.wait(10)
        _wait_for_waiter(fresh_server)
        t0 = time.monotonic()
        code = fresh_server.stop(timeout=15)
        elapsed = time.monotonic() - t0
    finally:
        thread.join(30)
    assert code == 0, fresh_server.log()
    assert elapsed < 5, f"shutdown took {elapsed:.1f} s with a long poll open"
    assert "error" not in polled, polled
    assert polled["answer"].get("Messages", []) == []


def _wait_for_waiter(srv: HearthServer) -> None:
    """Until the server holds the long poll (so the SIGTERM really interrupts a waiting request)."""
    deadline = time.monotonic() + 10
    while srv.health()["sqs"].get("waiting_queues", 0) < 1:
        assert time.monotonic() < deadline, "the long poll never started waiting"
        time.sleep(0.05)
