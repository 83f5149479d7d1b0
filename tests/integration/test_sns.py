"""SNS-compatible topics through boto3 and the AWS CLI: fan-out to queues and functions."""

from __future__ import annotations

import base64
import json
import urllib.request
import uuid
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import SnsModel, SnsNotificationModel
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.integration.harness import HearthServer, create_function


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sns(server: HearthServer) -> Any:
    return server.client("sns")


@pytest.fixture
def sqs(server: HearthServer) -> Any:
    return server.client("sqs")


def _queue(sqs: Any) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=_name("sub"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _bodies(sqs: Any, url: str, expected: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    for _ in range(10):
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   MessageAttributeNames=["All"])
        got.extend(resp.get("Messages", []))
        if len(got) >= expected:
            break
    return got


def _verify_signature(message: dict[str, Any]) -> None:
    """As a subscriber verifies a notification: the certificate from SigningCertURL (served by Hearth), the
    signed fields in AWS's order, SHA1 for SignatureVersion 1."""
    with urllib.request.urlopen(message["SigningCertURL"], timeout=10) as resp:
        cert = x509.load_pem_x509_certificate(resp.read())
    fields = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
    text = "".join(f"{f}\n{message[f]}\n" for f in fields if f in message)
    algorithm = hashes.SHA1() if message["SignatureVersion"] == "1" else hashes.SHA256()
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(base64.b64decode(message["Signature"]), text.encode(), padding.PKCS1v15(), algorithm)


def test_topic_lifecycle_and_errors(sns: Any) -> None:
    name = _name("t")
    arn = sns.create_topic(Name=name, Attributes={"DisplayName": "d"})["TopicArn"]
    assert arn == f"arn:aws:sns:us-east-1:000000000000:{name}"
    assert sns.create_topic(Name=name, Attributes={"DisplayName": "d"})["TopicArn"] == arn
    with pytest.raises(ClientError) as clash:
        sns.create_topic(Name=name, Attributes={"DisplayName": "other"})
    assert clash.value.response["Error"]["Code"] == "InvalidParameter"
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["TopicArn"] == arn and attrs["Owner"] == "000000000000" and attrs["DisplayName"] == "d"
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="new")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "new"
    assert {"TopicArn": arn} in sns.list_topics()["Topics"]
    sns.delete_topic(TopicArn=arn)
    with pytest.raises(sns.exceptions.NotFoundException) as missing:
        sns.publish(TopicArn=arn, Message="x")
    assert missing.value.response["Error"]["Message"] == "Topic does not exist"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(sns.exceptions.InvalidParameterException) as bad:
        sns.create_topic(Name="bad name")
    assert bad.value.response["Error"]["Message"] == "Invalid parameter: Topic Name"


def test_publish_to_queue_envelope_raw_and_filters(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name("fan"))["TopicArn"]
    env_url, env_arn = _queue(sqs)
    raw_url, raw_arn = _queue(sqs)
    filt_url, filt_arn = _queue(sqs)
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=env_arn)["SubscriptionArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=raw_arn, Attributes={"RawMessageDelivery": "true"})
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=filt_arn,
                  Attributes={"FilterPolicy": json.dumps({"color": ["red", {"prefix": "bl"}]})})
    sub_attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert sub_attrs["PendingConfirmation"] == "false" and sub_attrs["Protocol"] == "sqs"
    assert len(sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]) == 3
    message_id = sns.publish(TopicArn=topic, Message="hello", Subject="greeting", MessageAttributes={
        "color": {"DataType": "String", "StringValue": "green"}})["MessageId"]
    sns.publish(TopicArn=topic, Message="blue one", MessageAttributes={
        "color": {"DataType": "String", "StringValue": "blue"}})
    envelopes = _bodies(sqs, env_url, 2)
    first = json.loads(next(m["Body"] for m in envelopes if message_id in m["Body"]))
    assert first["Type"] == "Notification" and first["MessageId"] == message_id and first["Subject"] == "greeting"
    assert first["MessageAttributes"] == {"color": {"Type": "String", "Value": "green"}}
    SnsNotificationModel.model_validate({**first, "SigningCertUrl": first["SigningCertURL"],
                                         "UnsubscribeUrl": first["UnsubscribeURL"]})
    _verify_signature(first)
    raw = _bodies(sqs, raw_url, 2)
    assert sorted(m["Body"] for m in raw) == ["blue one", "hello"]
    assert any(m.get("MessageAttributes", {}).get("color", {}).get("StringValue") == "green" for m in raw)
    filtered = _bodies(sqs, filt_url, 1)
    assert [json.loads(m["Body"])["Message"] for m in filtered] == ["blue one"]


def test_publish_batch_and_message_structure(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name("batch"))["TopicArn"]
    url, arn = _queue(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    out = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
        {"Id": "1", "Message": "a"}, {"Id": "2", "Message": ""},
        {"Id": "3", "Message": json.dumps({"default": "d", "sqs": "for queues"}), "MessageStructure": "json"}])
    assert sorted(e["Id"] for e in out["Successful"]) == ["1", "3"]
    assert out["Failed"][0]["Id"] == "2" and out["Failed"][0]["Code"] == "InvalidParameter"
    assert sorted(m["Body"] for m in _bodies(sqs, url, 2)) == ["a", "for queues"]
    with pytest.raises(ClientError) as structure:
        sns.publish(TopicArn=topic, Message=json.dumps({"sqs": "x"}), MessageStructure="json")
    assert structure.value.response["Error"]["Message"] == \
        "Invalid parameter: Message Structure - No default entry in JSON message body"


def test_fifo_topic_to_fifo_queue(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name("ft") + ".fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    url = sqs.create_queue(QueueName=_name("fq") + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    first = sns.publish(TopicArn=topic, Message="one", MessageGroupId="g", MessageDeduplicationId="1")
    dup = sns.publish(TopicArn=topic, Message="one", MessageGroupId="g", MessageDeduplicationId="1")
    assert dup["MessageId"] == first["MessageId"] and first["SequenceNumber"]
    sns.publish(TopicArn=topic, Message="two", MessageGroupId="g", MessageDeduplicationId="2")
    got = _bodies(sqs, url, 2)
    assert [m["Body"] for m in got] == ["one", "two"]


def test_publish_to_lambda_subscriber(server: HearthServer, sns: Any, sqs: Any) -> None:
    # The function forwards the event it received to a queue, so the test can read it.
    url, _ = _queue(sqs)
    lam = server.client("lambda")
    code = ("import json, os, boto3\n"
            "def handler(event, context):\n"
            "    boto3.client('sqs').send_message(QueueUrl=os.environ['OUT'], MessageBody=json.dumps(event))\n")
    fn = _name("snsfn")
    cfg = create_function(lam, fn, {"app.py": code}, Environment={"Variables": {"OUT": url}}, Timeout=30)
    topic = sns.create_topic(Name=_name("tl"))["TopicArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=cfg["FunctionArn"])["SubscriptionArn"]
    message_id = sns.publish(TopicArn=topic, Message="to a function", MessageAttributes={
        "n": {"DataType": "Number", "StringValue": "7"}})["MessageId"]
    got: list[dict[str, Any]] = []
    for _ in range(30):
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages", [])
        if got:
            break
    assert got, "the function did not receive the SNS event"
    event = json.loads(got[0]["Body"])
    parsed = SnsModel.model_validate(event)
    record = event["Records"][0]
    assert record["EventSubscriptionArn"] == sub and record["EventSource"] == "aws:sns"
    assert record["Sns"]["MessageId"] == message_id and record["Sns"]["Message"] == "to a function"
    assert record["Sns"]["MessageAttributes"] == {"n": {"Type": "Number", "Value": "7"}}
    assert parsed.Records[0].Sns.TopicArn == topic


def test_subscription_errors(sns: Any) -> None:
    topic = sns.create_topic(Name=_name("se"))["TopicArn"]
    with pytest.raises(ClientError) as bad_arn:
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint="not-an-arn")
    assert bad_arn.value.response["Error"]["Message"] == "Invalid parameter: SQS endpoint ARN"
    with pytest.raises(ClientError) as bad_policy:
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:000000000000:x",
                      Attributes={"FilterPolicy": json.dumps({"a": [{"wat": 1}]})})
    # At Subscribe AWS says "Attributes Reason: " first (recorded by LocalStack's AWS-validated tests).
    assert bad_policy.value.response["Error"]["Message"].startswith("Invalid parameter: Attributes Reason: "
                                                                    "FilterPolicy:")
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.get_subscription_attributes(SubscriptionArn=f"{topic}:{uuid.uuid4()}")


def test_aws_cli(server: HearthServer) -> None:
    name = _name("cli")
    arn = json.loads(server.aws("sns", "create-topic", "--name", name).stdout)["TopicArn"]
    assert arn in server.aws("sns", "list-topics").stdout
    out = json.loads(server.aws("sns", "publish", "--topic-arn", arn, "--message", "hi", "--message-attributes",
                                '{"k": {"DataType": "String", "StringValue": "v"}}').stdout)
    assert out["MessageId"]
    attrs = json.loads(server.aws("sns", "get-topic-attributes", "--topic-arn", arn).stdout)["Attributes"]
    assert attrs["TopicArn"] == arn
    server.aws("sns", "delete-topic", "--topic-arn", arn)
    missing = server.aws("sns", "get-topic-attributes", "--topic-arn", arn, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
