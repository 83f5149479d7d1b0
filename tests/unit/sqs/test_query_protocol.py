"""SQS over the query protocol, as AWS's SQS query API reference documents it (form-encoded requests
written by hand, signed with botocore's SigV4 signer, XML answers read with ElementTree) through the
real gateway, provider and queue service."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.parsers import create_parser
from tests.unit.aws.driver import ACCESS_KEY, ACCOUNT, ENDPOINT, SECRET_KEY, AsgiResult, call_asgi, make_gateway

from hearth.aws.gateway import AwsGateway
from hearth.aws.models import load_model_data
from hearth.aws.query_compat import query_names, query_view
from hearth.services.sqs.provider import SqsProvider
from hearth.services.sqs.queues import QueueService

NS = {"q": "http://queue.amazonaws.com/doc/2012-11-05/"}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[AwsGateway]:
    queues = QueueService(tmp_path)
    yield make_gateway(tmp_path, {"sqs": [SqsProvider(queues, ENDPOINT)]})
    queues.close()


async def query(app: AwsGateway, action: str, params: dict[str, str] | None = None,
                *, secret: str = SECRET_KEY, path: str = "/", accept: str | None = None,
                ) -> tuple[AsgiResult, ET.Element]:
    """POST one signed query request the way a query-era SDK does, and parse the XML answer."""
    body = urlencode({"Action": action, "Version": "2012-11-05", **(params or {})})
    request = AWSRequest(method="POST", url=f"{ENDPOINT}{path}", data=body.encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(ACCESS_KEY, secret), "sqs", "us-east-1").add_auth(request)
    headers = [(k, v if isinstance(v, str) else v.decode()) for k, v in request.headers.items()]
    headers.append(("host", "hearth.test:4566"))
    if accept is not None:
        headers.append(("accept", accept))
    result = await call_asgi(app, "POST", path, headers=headers, body=body.encode())
    return result, ET.fromstring(result.body) if accept is None else ET.Element("json")


def text(root: ET.Element, path: str) -> str:
    found = root.find(path, NS)
    assert found is not None, path
    return found.text or ""


async def test_queue_life_cycle_over_query(gateway: AwsGateway) -> None:
    result, root = await query(gateway, "CreateQueue", {
        "QueueName": "legacy", "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "45",
        "Tag.1.Key": "team", "Tag.1.Value": "hearth"})
    assert result.status == 200
    assert result.headers["content-type"] == "text/xml"
    assert root.tag == "{http://queue.amazonaws.com/doc/2012-11-05/}CreateQueueResponse"
    url = text(root, "q:CreateQueueResult/q:QueueUrl")
    assert url == f"{ENDPOINT}/{ACCOUNT}/legacy"
    assert text(root, "q:ResponseMetadata/q:RequestId") == result.headers["x-amzn-requestid"]

    _, root = await query(gateway, "GetQueueAttributes", {
        "QueueUrl": url, "AttributeName.1": "VisibilityTimeout", "AttributeName.2": "QueueArn"})
    attrs = {text(a, "q:Name"): text(a, "q:Value") for a in root.findall("q:GetQueueAttributesResult/q:Attribute", NS)}
    assert attrs == {"VisibilityTimeout": "45", "QueueArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:legacy"}

    _, root = await query(gateway, "ListQueueTags", {"QueueUrl": url})
    tags = {text(t, "q:Key"): text(t, "q:Value") for t in root.findall("q:ListQueueTagsResult/q:Tag", NS)}
    assert tags == {"team": "hearth"}

    _, root = await query(gateway, "ListQueues", {"QueueNamePrefix": "leg"})
    assert [e.text for e in root.findall("q:ListQueuesResult/q:QueueUrl", NS)] == [url]

    result, root = await query(gateway, "DeleteQueue", {"QueueUrl": url})
    assert result.status == 200
    assert root.tag.endswith("DeleteQueueResponse")


async def test_send_receive_delete_over_query(gateway: AwsGateway) -> None:
    _, root = await query(gateway, "CreateQueue", {"QueueName": "q1"})
    url = text(root, "q:CreateQueueResult/q:QueueUrl")
    body = "hello from 2012"
    _, root = await query(gateway, "SendMessage", {
        "QueueUrl": url, "MessageBody": body,
        "MessageAttribute.1.Name": "color", "MessageAttribute.1.Value.DataType": "String",
        "MessageAttribute.1.Value.StringValue": "blue",
        "MessageAttribute.2.Name": "blob", "MessageAttribute.2.Value.DataType": "Binary",
        "MessageAttribute.2.Value.BinaryValue": "AAEC"})
    assert text(root, "q:SendMessageResult/q:MD5OfMessageBody") == hashlib.md5(body.encode()).hexdigest()
    message_id = text(root, "q:SendMessageResult/q:MessageId")
    assert text(root, "q:SendMessageResult/q:MD5OfMessageAttributes")

    receive, root = await query(gateway, "ReceiveMessage", {
        "QueueUrl": url, "MaxNumberOfMessages": "5", "AttributeName.1": "ApproximateReceiveCount",
        "AttributeName.2": "SentTimestamp", "MessageAttributeName.1": "All"})
    messages = root.findall("q:ReceiveMessageResult/q:Message", NS)
    assert len(messages) == 1
    message = messages[0]
    assert text(message, "q:MessageId") == message_id
    assert text(message, "q:Body") == body
    system = {text(a, "q:Name"): text(a, "q:Value") for a in message.findall("q:Attribute", NS)}
    assert set(system) == {"ApproximateReceiveCount", "SentTimestamp"}
    assert system["ApproximateReceiveCount"] == "1"
    user = {text(a, "q:Name"): a.find("q:Value", NS) for a in message.findall("q:MessageAttribute", NS)}
    assert set(user) == {"color", "blob"}
    assert text(user["color"], "q:StringValue") == "blue"  # type: ignore[arg-type]
    assert text(user["blob"], "q:BinaryValue") == "AAEC"  # type: ignore[arg-type]
    assert text(user["blob"], "q:DataType") == "Binary"  # type: ignore[arg-type]

    # botocore's own query parser, given the derived query model, reads the same answer.
    view = query_view("sqs")
    assert view is not None
    parsed = create_parser("query").parse(
        {"status_code": 200, "headers": {}, "body": receive.body},
        view.model.operation_model("ReceiveMessage").output_shape)
    assert parsed["Messages"][0]["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01\x02"
    assert parsed["Messages"][0]["Attributes"]["ApproximateReceiveCount"] == "1"

    result, root = await query(gateway, "DeleteMessage", {
        "QueueUrl": url, "ReceiptHandle": text(message, "q:ReceiptHandle")})
    assert result.status == 200 and root.tag.endswith("DeleteMessageResponse")
    _, root = await query(gateway, "ReceiveMessage", {"QueueUrl": url})
    assert root.findall("q:ReceiveMessageResult/q:Message", NS) == []


async def test_batches_over_query(gateway: AwsGateway) -> None:
    _, root = await query(gateway, "CreateQueue", {"QueueName": "batch"})
    url = text(root, "q:CreateQueueResult/q:QueueUrl")
    _, root = await query(gateway, "SendMessageBatch", {
        "QueueUrl": url,
        "SendMessageBatchRequestEntry.1.Id": "a", "SendMessageBatchRequestEntry.1.MessageBody": "one",
        "SendMessageBatchRequestEntry.2.Id": "b", "SendMessageBatchRequestEntry.2.MessageBody": "two",
        "SendMessageBatchRequestEntry.2.DelaySeconds": "5000"})
    ok = root.findall("q:SendMessageBatchResult/q:SendMessageBatchResultEntry", NS)
    failed = root.findall("q:SendMessageBatchResult/q:BatchResultErrorEntry", NS)
    assert [text(e, "q:Id") for e in ok] == ["a"]
    assert [(text(e, "q:Id"), text(e, "q:SenderFault")) for e in failed] == [("b", "true")]

    _, root = await query(gateway, "ReceiveMessage", {"QueueUrl": url})
    receipt = text(root, "q:ReceiveMessageResult/q:Message/q:ReceiptHandle")
    _, root = await query(gateway, "DeleteMessageBatch", {
        "QueueUrl": url, "DeleteMessageBatchRequestEntry.1.Id": "x",
        "DeleteMessageBatchRequestEntry.1.ReceiptHandle": receipt})
    assert [text(e, "q:Id") for e in root.findall("q:DeleteMessageBatchResult/q:DeleteMessageBatchResultEntry",
                                                   NS)] == ["x"]


async def test_errors_carry_the_query_codes(gateway: AwsGateway) -> None:
    result, root = await query(gateway, "GetQueueUrl", {"QueueName": "missing"})
    assert result.status == 400
    assert root.tag == "{http://queue.amazonaws.com/doc/2012-11-05/}ErrorResponse"
    assert text(root, "q:Error/q:Type") == "Sender"
    assert text(root, "q:Error/q:Code") == "AWS.SimpleQueueService.NonExistentQueue"
    # The query API's words (recorded by AWS); the JSON protocol says "The specified queue does not exist."
    assert text(root, "q:Error/q:Message") == "The specified queue does not exist for this wsdl version."
    assert text(root, "q:RequestId") == result.headers["x-amzn-requestid"]
    assert "x-amzn-query-error" not in result.headers

    _, root = await query(gateway, "CreateQueue", {"QueueName": "e"})
    url = text(root, "q:CreateQueueResult/q:QueueUrl")
    result, root = await query(gateway, "ReceiveMessage", {"QueueUrl": url, "AttributeName.1": "Nope"})
    assert (result.status, text(root, "q:Error/q:Code")) == (400, "InvalidAttributeName")
    result, root = await query(gateway, "DeleteMessage", {"QueueUrl": url, "ReceiptHandle": "garbage"})
    assert text(root, "q:Error/q:Code") == "ReceiptHandleIsInvalid"
    result, root = await query(gateway, "NoSuchAction")
    assert (result.status, text(root, "q:Error/q:Code")) == (400, "InvalidAction")
    result, root = await query(gateway, "ListQueues", secret="wrong-secret")
    assert result.status == 403
    assert text(root, "q:Error/q:Code") == "SignatureDoesNotMatch"


def test_query_names_follow_the_sqs_query_api() -> None:
    view = query_view("sqs")
    assert view is not None and view.protocol == "query"
    names = query_names(load_model_data("sqs")["shapes"])
    assert names[("ReceiveMessageRequest", "AttributeNames")] == "AttributeName"
    assert names[("ReceiveMessageRequest", "MessageAttributeNames")] == "MessageAttributeName"
    assert names[("CreateQueueRequest", "Attributes")] == "Attribute"
    assert names[("CreateQueueRequest", "tags")] == "Tag"
    assert names[("UntagQueueRequest", "TagKeys")] == "TagKey"
    assert names[("SendMessageRequest", "MessageAttributes")] == "MessageAttribute"
    assert names[("MessageAttributeValue", "StringListValues")] == "StringListValue"
    assert names[("SendMessageBatchRequest", "Entries")] == "SendMessageBatchRequestEntry"
    assert names[("ListDeadLetterSourceQueuesResult", "queueUrls")] == "QueueUrl"
    assert names[("AddPermissionRequest", "AWSAccountIds")] == "AWSAccountId"
    assert names[("AddPermissionRequest", "Actions")] == "ActionName"
    assert query_view("lambda") is None and query_view("sns") is None


async def test_a_queue_url_path_addresses_its_queue(gateway: AwsGateway) -> None:
    _, root = await query(gateway, "CreateQueue", {"QueueName": "p"})
    path = urlsplit(text(root, "q:CreateQueueResult/q:QueueUrl")).path
    result, root = await query(gateway, "GetQueueAttributes", {"AttributeName.1": "QueueArn"}, path=path)
    assert result.status == 200 and text(root, "q:GetQueueAttributesResult/q:Attribute/q:Name") == "QueueArn"
    _, root = await query(gateway, "SendMessage", {}, path=path)
    assert (text(root, "q:Error/q:Code"), text(root, "q:Error/q:Message")) == (
        "MissingParameter", "The request must contain the parameter MessageBody.")
    _, root = await query(gateway, "CreateQueue", {"QueueName": "other"}, path=path)
    assert (text(root, "q:Error/q:Code"), text(root, "q:Error/q:Message")) == (
        "InvalidAction", "The action CreateQueue is not valid for this endpoint.")
    result, root = await query(gateway, "GetQueueUrl", {"QueueName": "p"}, path=path)  # answered at a queue's URL
    assert result.status == 200 and text(root, "q:GetQueueUrlResult/q:QueueUrl").endswith("/p")


async def test_query_edges_recorded_by_aws(gateway: AwsGateway) -> None:
    _, root = await query(gateway, "CreateQueue", {"QueueName": "edges"})
    url = text(root, "q:CreateQueueResult/q:QueueUrl")
    result, _ = await query(gateway, "ReceiveMessage", {"QueueUrl": url})
    assert b"<ReceiveMessageResult/>" in result.body  # empty: one empty element
    await query(gateway, "SendMessage", {"QueueUrl": url, "MessageBody": "a\r\nb"})
    _, root = await query(gateway, "ReceiveMessage", {"QueueUrl": url})
    assert text(root, "q:ReceiveMessageResult/q:Message/q:Body") == "a\r\nb"  # "\r" survives XML parsing
    result, root = await query(gateway, "SendMessageBatch", {"QueueUrl": url})  # no entries at all
    assert result.status == 400
    assert text(root, "q:Error/q:Code") == "AWS.SimpleQueueService.EmptyBatchRequest"


async def test_add_and_remove_permission(gateway: AwsGateway) -> None:
    _, root = await query(gateway, "CreateQueue", {"QueueName": "perm"})
    url = text(root, "q:CreateQueueResult/q:QueueUrl")
    params = {"QueueUrl": url, "Label": "l1", "AWSAccountId.1": "111111111111", "ActionName.1": "ReceiveMessage"}
    result, _ = await query(gateway, "AddPermission", params)
    assert result.status == 200
    result, root = await query(gateway, "AddPermission", params)
    assert text(root, "q:Error/q:Message") == "Value l1 for parameter Label is invalid. Reason: Already exists."
    _, root = await query(gateway, "GetQueueAttributes", {"QueueUrl": url, "AttributeName.1": "Policy"})
    policy = json.loads(text(root, "q:GetQueueAttributesResult/q:Attribute/q:Value"))
    assert policy["Statement"] == [{"Sid": "l1", "Effect": "Allow",
                                    "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                                    "Action": "SQS:ReceiveMessage", "Resource": policy["Id"].split("/")[0]}]
    await query(gateway, "RemovePermission", {"QueueUrl": url, "Label": "l1"})
    _, root = await query(gateway, "GetQueueAttributes", {"QueueUrl": url, "AttributeName.1": "Policy"})
    assert root.find("q:GetQueueAttributesResult/q:Attribute", NS) is None


async def test_query_answers_json_when_asked(gateway: AwsGateway) -> None:
    _, root = await query(gateway, "CreateQueue", {"QueueName": "json-answer"})
    url = text(root, "q:CreateQueueResult/q:QueueUrl")
    await query(gateway, "SendMessage", {"QueueUrl": url, "MessageBody": "hi"})
    result, _ = await query(gateway, "ReceiveMessage", {"QueueUrl": url}, accept="application/json")
    assert result.headers["content-type"] == "application/json"
    doc = json.loads(result.body)["ReceiveMessageResponse"]
    assert doc["ReceiveMessageResult"]["messages"][0]["Body"] == "hi"
    assert doc["ResponseMetadata"]["RequestId"]
