"""SnsProvider's request checks with AWS's texts (recorded by LocalStack's AWS-validated tests): ARNs,
regions, tags, message sizes and structures, attribute names and types, batches, FIFO rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hearth.aws.context import Principal, RequestContext
from hearth.aws.errors import AwsError
from hearth.events.delivery import DeliveryRouter, Message
from hearth.services.sns.provider import SnsProvider
from hearth.services.sns.topics import TopicService

ACCOUNT = "000000000000"


class Recorder:
    def __init__(self) -> None:
        self.got: list[tuple[str, Message]] = []

    async def __call__(self, arn: str, message: Message) -> None:
        self.got.append((arn, message))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def sns(tmp_path: Path, recorder: Recorder) -> Iterator[SnsProvider]:
    router = DeliveryRouter()
    router.register("sqs", recorder)
    svc = TopicService(tmp_path, router, "http://127.0.0.1:4566")
    yield SnsProvider(svc)
    svc.close()


def ctx(region: str = "us-east-1") -> RequestContext:
    return RequestContext("sns", "X", region, Principal("AK", ACCOUNT), "rid")


async def error(call: Any, *args: Any) -> tuple[str, str]:
    with pytest.raises(AwsError) as info:
        result = call(*args)
        if hasattr(result, "__await__"):
            await result
    return info.value.code, info.value.message


async def test_arns_regions_and_tags(sns: SnsProvider) -> None:
    arn = sns.create_topic(ctx(), {"Name": "t"})["TopicArn"]
    assert await error(sns.get_topic_attributes, ctx(), {"TopicArn": "randomstring"}) == (
        "InvalidParameter", "Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not 1")
    assert await error(sns.publish, ctx(), {"TopicArn": "", "Message": "m"}) == (
        "InvalidParameter", "Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not 1")
    assert await error(sns.get_topic_attributes, ctx("eu-west-1"), {"TopicArn": arn}) == (
        "InvalidParameter", "Invalid parameter: TopicArn")
    assert await error(sns.unsubscribe, ctx(), {"SubscriptionArn": "arn:aws:sns:us-east-1:random"}) == (
        "InvalidParameter", "Invalid parameter: SubscriptionArn Reason: An ARN must have at least 6 elements, not 5")
    assert await error(sns.unsubscribe, ctx(), {"SubscriptionArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:random"}) == (
        "InvalidParameter", "Invalid parameter: SubscriptionId")
    assert sns.unsubscribe(ctx(), {"SubscriptionArn": f"{arn}:0f7d5971-aa8b-4bd5-b585-0826e9f93a66"}) == {}
    tags = [{"Key": "k", "Value": "v"}, {"Key": "k", "Value": "v"}]
    assert await error(sns.tag_resource, ctx(), {"ResourceArn": arn, "Tags": tags}) == (
        "InvalidParameter", "Invalid parameter: Duplicated keys are not allowed.")
    assert await error(sns.create_topic, ctx(), {"Name": "t", "Attributes": {"FifoTopic": "true"}}) == (
        "InvalidParameter", "Invalid parameter: Topic Name")
    assert await error(sns.subscribe, ctx(), {"TopicArn": arn, "Protocol": "test-protocol"}) == (
        "InvalidParameter", "Invalid parameter: Amazon SNS does not support this protocol string: test-protocol")


async def test_message_size_structure_and_attributes(sns: SnsProvider, recorder: Recorder) -> None:
    arn = sns.create_topic(ctx(), {"Name": "t"})["TopicArn"]
    attrs = {"attr1": {"DataType": "Number", "StringValue": "1"}}
    too_long = "a" * (262_144 - len("attr1Number1") + 1)
    assert await error(sns.publish, ctx(), {"TopicArn": arn, "Message": too_long, "MessageAttributes": attrs}) == (
        "InvalidParameter", "Invalid parameter: Message too long")
    assert await error(sns.publish, ctx(), {"TopicArn": arn, "MessageStructure": "json",
                                            "Message": json.dumps({"default": {"object": "x"}})}) == (
        "InvalidParameter", "Invalid parameter: Message Structure - No default entry in JSON message body")
    for name, text in (("a^*?", "Invalid non-alphanumeric character '#x5E' was found in the message attribute "
                                "name. Can only include alphanumeric characters, hyphens, underscores, or dots."),
                       (".abc", "Invalid message attribute name starting with character '.' was found."),
                       ("abc.", "Invalid message attribute name ending with character '.' was found."),
                       ("a..b", "Message attribute name can not have successive '.' character.")):
        assert await error(sns.publish, ctx(), {"TopicArn": arn, "Message": "m", "MessageAttributes": {
            name: {"DataType": "String", "StringValue": "v"}}}) == ("ParameterValueInvalid", text)
    assert await error(sns.publish, ctx(), {"TopicArn": arn, "Message": "m", "MessageAttributes": {
        "a": {"DataType": "String", "BinaryValue": b"x"}}}) == (
        "ParameterValueInvalid", "The message attribute 'a' with type 'String' must use field 'String'.")
    assert (await error(sns.publish, ctx(), {"TopicArn": arn, "Message": "m", "MessageAttributes": {
        "a": {"DataType": "String.", "StringValue": "x"}}}))[1].endswith("type prefixes is Binary, Number, and String.")
    # A protocol's non-string entry is ignored: the queue gets the default text.
    sns.subscribe(ctx(), {"TopicArn": arn, "Protocol": "sqs", "Endpoint": "arn:aws:sqs:us-east-1:000000000000:q",
                          "Attributes": {"RawMessageDelivery": "true"}})
    await sns.publish(ctx(), {"TopicArn": arn, "MessageStructure": "json",
                              "Message": json.dumps({"default": "default field", "sqs": {"field": "value"}})})
    assert recorder.got[-1][1].body == "default field"


async def test_batches_and_fifo_rules(sns: SnsProvider, recorder: Recorder) -> None:
    fifo = sns.create_topic(ctx(), {"Name": "t.fifo", "Attributes": {"FifoTopic": "true",
                                                                    "ContentBasedDeduplication": "true"}})["TopicArn"]
    assert await error(sns.publish_batch, ctx(), {"TopicArn": fifo, "PublishBatchRequestEntries": [
        {"Id": "1", "Message": "no group"}]}) == (
        "InvalidParameter", "Invalid parameter: The MessageGroupId parameter is required for FIFO topics")
    assert await error(sns.publish_batch, ctx(), {"TopicArn": fifo, "PublishBatchRequestEntries": [
        {"Id": "message.id", "Message": "m", "MessageGroupId": "g"}]}) == (
        "InvalidBatchEntryId", "The Id of a batch entry in the batch request contains an impermissible character: "
                               "message.id")
    assert (await error(sns.publish_batch, ctx(), {"TopicArn": fifo, "PublishBatchRequestEntries": [
        {"Id": "a" * 81, "Message": "m", "MessageGroupId": "g"}]}))[1].startswith(
        "The Id of a batch entry in the batch request is too long: aaa")
    standard = sns.create_topic(ctx(), {"Name": "s"})["TopicArn"]
    assert await error(sns.subscribe, ctx(), {"TopicArn": standard, "Protocol": "sqs",
                                              "Endpoint": "arn:aws:sqs:us-east-1:000000000000:q.fifo"}) == (
        "InvalidParameter", "Invalid parameter: Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be "
                            "subscribed to standard SNS topics")
    sub = sns.subscribe(ctx(), {"TopicArn": fifo, "Protocol": "sqs",
                                "Endpoint": "arn:aws:sqs:us-east-1:000000000000:q.fifo"})["SubscriptionArn"]
    redrive = json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq"})
    assert await error(sns.set_subscription_attributes, ctx(), {
        "SubscriptionArn": sub, "AttributeName": "RedrivePolicy", "AttributeValue": redrive}) == (
        "InvalidParameter", "Invalid parameter: RedrivePolicy: must use a FIFO queue as DLQ for a FIFO Subscription "
                            "to a FIFO Topic.")
    assert await error(sns.set_subscription_attributes, ctx(), {
        "SubscriptionArn": sub, "AttributeName": "RedrivePolicy", "AttributeValue": "{invalidjson}"}) == (
        "InvalidParameter", "Invalid parameter: RedrivePolicy: failed to parse JSON. Unexpected character ('i' "
                            "(code 105)): was expecting double-quote to start field name\n at [Source: REDACTED "
                            "(`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: 1, column: 2]")
    await sns.publish(ctx(), {"TopicArn": fifo, "Message": "m", "MessageGroupId": "g"})
    envelope = json.loads(recorder.got[-1][1].body)
    assert "Signature" not in envelope and "SigningCertURL" not in envelope  # FIFO notifications are unsigned


async def test_sms_subscriptions_are_kept_not_sent(sns: SnsProvider, recorder: Recorder) -> None:
    arn = sns.create_topic(ctx(), {"Name": "t"})["TopicArn"]
    for bad in ("+15--551234567", "NAA+15551234567", "+15551234567.", "/+15551234567"):
        assert await error(sns.subscribe, ctx(), {"TopicArn": arn, "Protocol": "sms", "Endpoint": bad}) == (
            "InvalidParameter", f"Invalid SMS endpoint: {bad}")
    sub = sns.subscribe(ctx(), {"TopicArn": arn, "Protocol": "sms", "Endpoint": "+12/34-567.890"})
    assert sns.list_subscriptions_by_topic(ctx(), {"TopicArn": arn})["Subscriptions"][0]["Protocol"] == "sms"
    await sns.publish(ctx(), {"TopicArn": arn, "Message": "m"})
    assert recorder.got == []
    assert sns.get_subscription_attributes(ctx(), sub)["Attributes"]["PendingConfirmation"] == "false"


async def test_platform_applications_and_sms_settings_are_stored_with_aws_texts(sns: SnsProvider) -> None:
    attrs = {"PlatformPrincipal": "p", "PlatformCredential": "c"}
    assert await error(sns.create_platform_application, ctx(), {"Name": "@x", "Platform": "ADM",
                                                                "Attributes": attrs}) == (
        "InvalidParameter", "Invalid parameter: @x Reason: must contain only characters 'a'-'z', 'A'-'Z', '0'-'9', "
        "'_', '-', and '.'")
    assert await error(sns.create_platform_application, ctx(), {"Name": "a", "Platform": "AAA",
                                                                "Attributes": attrs}) == (
        "InvalidParameter", "Invalid parameter: Platform Reason: AAA is not supported")
    assert (await error(sns.create_platform_application, ctx(), {"Name": "a", "Platform": "ADM",
                                                                 "Attributes": {"PlatformPrincipal": "p"}}))[1] == (
        "Invalid parameter: Attributes Reason: PlatformPrincipal attribute provided without PlatformCredential")
    app = sns.create_platform_application(ctx(), {"Name": "a", "Platform": "ADM", "Attributes": attrs})
    arn = app["PlatformApplicationArn"]
    assert arn == f"arn:aws:sns:us-east-1:{ACCOUNT}:app/ADM/a"
    assert "PlatformCredential" not in sns.get_platform_application_attributes(
        ctx(), {"PlatformApplicationArn": arn})["Attributes"]
    missing = f"arn:aws:sns:us-east-1:{ACCOUNT}:app/ADM/none"
    assert await error(sns.get_platform_application_attributes, ctx(), {"PlatformApplicationArn": missing}) == (
        "NotFound", "PlatformApplication does not exist")
    endpoint = sns.create_platform_endpoint(ctx(), {"PlatformApplicationArn": arn, "Token": "t1"})["EndpointArn"]
    same = sns.create_platform_endpoint(ctx(), {"PlatformApplicationArn": arn, "Token": "t1"})["EndpointArn"]
    assert same == endpoint
    assert sns.get_endpoint_attributes(ctx(), {"EndpointArn": endpoint})["Attributes"] == {"Enabled": "true",
                                                                                            "Token": "t1"}
    assert await error(sns.get_endpoint_attributes, ctx(), {"EndpointArn": endpoint + "x"}) == (
        "NotFound", "Endpoint does not exist")
    sns.delete_endpoint(ctx(), {"EndpointArn": endpoint})
    assert sns.list_endpoints_by_platform_application(ctx(), {"PlatformApplicationArn": arn})["Endpoints"] == []

    assert await error(sns.set_sms_attributes, ctx(), {"attributes": {"DefaultSendID": "x"}}) == (
        "InvalidParameter", "DefaultSendID is not a valid attribute")
    assert await error(sns.set_sms_attributes, ctx(), {"attributes": {"DefaultSMSType": "x"}}) == (
        "InvalidParameter", "DefaultSMSType is invalid")
    sns.set_sms_attributes(ctx(), {"attributes": {"DefaultSMSType": "Promotional"}})
    assert sns.get_sms_attributes(ctx(), {})["attributes"] == {"DefaultSMSType": "Promotional"}
    assert await error(sns.opt_in_phone_number, ctx(), {"phoneNumber": "invalid"}) == (
        "InvalidParameter", "Invalid parameter: PhoneNumber Reason: input incorrectly formatted")
    assert await error(sns.publish, ctx(), {"PhoneNumber": "+1a234", "Message": "m"}) == (
        "InvalidParameter", "Invalid parameter: PhoneNumber Reason: +1a234 is not valid to publish to")
    assert "MessageId" in await sns.publish(ctx(), {"PhoneNumber": "+15551234567", "Message": "m"})


async def test_permissions_data_protection_and_confirmation(sns: SnsProvider) -> None:
    arn = sns.create_topic(ctx(), {"Name": "t"})["TopicArn"]
    sns.add_permission(ctx(), {"TopicArn": arn, "Label": "l", "AWSAccountId": [ACCOUNT], "ActionName": ["Publish"]})
    policy = json.loads(sns.get_topic_attributes(ctx(), {"TopicArn": arn})["Attributes"]["Policy"])
    assert policy["Statement"][1] == {"Sid": "l", "Effect": "Allow",
                                      "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                      "Action": "SNS:Publish", "Resource": arn}
    assert await error(sns.add_permission, ctx(), {"TopicArn": arn, "Label": "l", "AWSAccountId": [ACCOUNT],
                                                   "ActionName": ["Publish"]}) == (
        "InvalidParameter", "Invalid parameter: Statement already exists")
    assert (await error(sns.add_permission, ctx(), {"TopicArn": arn, "Label": "m", "AWSAccountId": [ACCOUNT],
                                                    "ActionName": ["Nope"]}))[1] == (
        "Invalid parameter: Policy statement action out of service scope!")
    sns.remove_permission(ctx(), {"TopicArn": arn, "Label": "l"})
    policy = json.loads(sns.get_topic_attributes(ctx(), {"TopicArn": arn})["Attributes"]["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["__default_statement_ID"]

    sns.put_data_protection_policy(ctx(), {"ResourceArn": arn, "DataProtectionPolicy": '{"Name": "p"}'})
    assert sns.get_data_protection_policy(ctx(), {"ResourceArn": arn}) == {"DataProtectionPolicy": '{"Name": "p"}'}
    assert "DataProtectionPolicy" not in sns.get_topic_attributes(ctx(), {"TopicArn": arn})["Attributes"]

    assert await error(sns.confirm_subscription, ctx(), {"TopicArn": arn, "Token": "random"}) == (
        "InvalidParameter", "Invalid token")
    assert await error(sns.confirm_subscription, ctx(), {"TopicArn": arn, "Token": "ab" * 64}) == (
        "InvalidParameter", "Invalid parameter: Token")


async def test_subscription_principal_idempotency_and_shown_scope(sns: SnsProvider) -> None:
    arn = sns.create_topic(ctx(), {"Name": "t"})["TopicArn"]
    user = RequestContext("sns", "X", "us-east-1", Principal("AK", ACCOUNT, kind="user",
                                                             arn=f"arn:aws:iam::{ACCOUNT}:user/u"), "rid")
    queue = f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"
    sub = sns.subscribe(user, {"TopicArn": arn, "Protocol": "sqs", "Endpoint": queue,
                               "Attributes": {"RawMessageDelivery": "true", "FilterPolicyScope": "MessageBody",
                                              "FilterPolicy": ""}})["SubscriptionArn"]
    attrs = sns.get_subscription_attributes(ctx(), {"SubscriptionArn": sub})["Attributes"]
    assert attrs["SubscriptionPrincipal"] == f"arn:aws:iam::{ACCOUNT}:user/u"
    assert "FilterPolicy" not in attrs and "FilterPolicyScope" not in attrs  # no policy: no scope shown
    # Asking again with a default value left implicit before is the same subscription.
    again = sns.subscribe(ctx(), {"TopicArn": arn, "Protocol": "sqs", "Endpoint": queue,
                                  "Attributes": {"RawMessageDelivery": "true", "FilterPolicyScope": "MessageBody"}})
    assert again["SubscriptionArn"] == sub
