"""The SNS provider: one method per SNS (query protocol) operation Hearth supports.

It owns the API surface: ARN checks, request validation with SNS's messages (`Invalid parameter: ...`),
message attribute rules, batch rules, pagination and output shapes. Topics, subscriptions and
delivery live in `TopicService`. A caller only sees topics of its own account, and another account's
whose policy let it in (judged by the gateway's authorizer); any other topic is answered as NotFound.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.events.delivery import DeliveryError, Message
from hearth.services.sns.platform import PHONE_NUMBER, PlatformService, check_phone_number
from hearth.services.sns.topics import (
    AWS_PROTOCOLS,
    MAX_MESSAGE_BYTES,
    PROTOCOLS,
    Publication,
    Subscription,
    Topic,
    TopicService,
    default_policy,
    invalid,
    topic_not_found,
)

PAGE_SIZE = 100
_ENTRY_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_LAMBDA_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9_$-]+)?$")
# A phone number as SNS accepts it: digits with single separators ("+12/34-567.890"; recorded by AWS).
_PHONE = re.compile(r"^\+?\d+([./-]\d+)*$")
# The actions AddPermission may grant: SNS's topic operations (any other is "out of service scope").
_TOPIC_ACTIONS = frozenset({
    "AddPermission", "ConfirmSubscription", "CreateTopic", "DeleteTopic", "GetDataProtectionPolicy",
    "GetSubscriptionAttributes", "GetTopicAttributes", "ListSubscriptions", "ListSubscriptionsByTopic",
    "ListTagsForResource", "ListTopics", "Publish", "PutDataProtectionPolicy", "Receive", "RemovePermission",
    "SetSubscriptionAttributes", "SetTopicAttributes", "Subscribe", "TagResource", "Unsubscribe",
    "UntagResource"})
# A confirmation token as SNS hands them out: a long hex string.
_TOKEN = re.compile(r"^[0-9a-f]{64,}$")
_SQS_ARN = re.compile(r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+(\.fifo)?$")


def _attribute_error(message: str) -> AwsError:
    return AwsError("ParameterValueInvalid", message, 400)


def _check_attribute_name(name: str) -> None:
    """SNS's rules for a message attribute name, each with AWS's text, in the order AWS applies them."""
    if len(name.encode()) > 256:
        raise _attribute_error("Length of message attribute name must be less than 256 bytes.")
    bad = next((c for c in name if not (c.isascii() and (c.isalnum() or c in "-_."))), None)
    if bad is not None:
        raise _attribute_error(f"Invalid non-alphanumeric character '#x{ord(bad):X}' was found in the message "
                               "attribute name. Can only include alphanumeric characters, hyphens, underscores, "
                               "or dots.")
    if name.startswith("."):
        raise _attribute_error("Invalid message attribute name starting with character '.' was found.")
    if name.endswith("."):
        raise _attribute_error("Invalid message attribute name ending with character '.' was found.")
    if ".." in name:
        raise _attribute_error("Message attribute name can not have successive '.' character.")
    if not name or name.startswith(("AWS.", "Amazon.")):
        raise _attribute_error(f"The message attribute name '{name}' is invalid.")


def attributes_size(attributes: dict[str, Any] | None) -> int:
    """The bytes SNS counts for message attributes against the 256 KiB message limit: each name, data type
    and value."""
    total = 0
    for name, attr in (attributes or {}).items():
        total += len(name.encode()) + len(str(attr.get("DataType") or "").encode())
        value = attr.get("StringValue") if attr.get("StringValue") is not None else attr.get("BinaryValue")
        total += len(value) if isinstance(value, (bytes, bytearray)) else len(str(value or "").encode())
    return total


def normalize_attributes(attributes: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Validate SNS message attributes; return them in SQS shape with BinaryValue as base64 text."""
    out: dict[str, dict[str, Any]] = {}
    for name, attr in (attributes or {}).items():
        _check_attribute_name(name)
        data_type = str(attr.get("DataType") or "")
        base, dot, custom = data_type.partition(".")
        if base not in ("String", "Number", "Binary") or (dot and not custom):
            raise _attribute_error(f"The message attribute '{name}' has an invalid message attribute type, the set "
                                   "of supported type prefixes is Binary, Number, and String.")
        if base == "Binary":
            value = attr.get("BinaryValue")
            if not value and attr.get("StringValue"):
                raise _attribute_error(f"The message attribute '{name}' with type 'Binary' must use field 'Binary'.")
            if not value:
                raise _attribute_error(f"The message attribute '{name}' must contain non-empty message attribute "
                                       "value for message attribute type 'Binary'.")
            out[name] = {"DataType": data_type, "BinaryValue": base64.b64encode(value).decode()}
            continue
        text = attr.get("StringValue")
        if not text and attr.get("BinaryValue"):
            raise _attribute_error(f"The message attribute '{name}' with type '{base}' must use field 'String'.")
        if text is None or text == "":
            raise _attribute_error(f"The message attribute '{name}' must contain non-empty message attribute value "
                                   f"for message attribute type '{base}'.")
        if base == "Number":
            try:
                float(text)
            except ValueError:
                raise _attribute_error(f"Could not cast message attribute '{name}' value to number.") from None
        if data_type.startswith("String.Array"):
            try:
                items = json.loads(text)
            except ValueError:
                items = None
            if not isinstance(items, list):
                raise _attribute_error(f"The message attribute '{name}' with type 'String.Array' has an invalid "
                                       "value.")
        out[name] = {"DataType": data_type, "StringValue": text}
    return out


class SnsProvider:
    def __init__(self, topics: TopicService) -> None:
        self.topics = topics
        self.platform = PlatformService(topics.db)  # the same database: its rows live in the "sns" component

    def _topic(self, ctx: RequestContext, arn: str, param: str = "TopicArn") -> Topic:
        parts = _arn_parts(arn, param)
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sns" or parts[3] != ctx.region:
            # A topic of another region is named by an ARN this region's endpoint does not accept (AWS).
            raise invalid(param)
        topic = self.topics.find_topic(arn)
        if topic is None or not ctx.may_use(topic.account):  # another account's only when its policy lets in
            raise topic_not_found()
        return topic

    # -- topics -----------------------------------------------------------------------------------

    def create_topic(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        tags = {t["Key"]: t["Value"] for t in params.get("Tags") or []}
        topic = self.topics.create_topic(ctx.account_id, ctx.region, params["Name"], params.get("Attributes") or {},
                                         tags)
        return {"TopicArn": topic.arn}

    def delete_topic(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        try:
            topic = self._topic(ctx, params["TopicArn"])
        except AwsError as err:
            if err.code == "NotFound":
                return {}  # deleting a topic that does not exist succeeds, as in AWS
            raise
        self.topics.delete_topic(topic)
        return {}

    def list_topics(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arns = [{"TopicArn": t.arn} for t in self.topics.list_topics(ctx.account_id, ctx.region)]
        return _page(arns, params.get("NextToken"), "Topics")

    def get_topic_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"Attributes": self.topics.topic_attributes(self._topic(ctx, params["TopicArn"]))}

    def set_topic_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        topic = self._topic(ctx, params["TopicArn"])
        self.topics.set_topic_attribute(topic, params["AttributeName"], params.get("AttributeValue") or "")
        return {}

    def tag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        topic = self._topic(ctx, params["ResourceArn"], "ResourceArn")
        keys = [t["Key"] for t in params.get("Tags") or []]
        if len(set(keys)) != len(keys):
            raise invalid("Duplicated keys are not allowed.")
        tags = {**topic.tags, **{t["Key"]: t["Value"] for t in params.get("Tags") or []}}
        self.topics.set_tags(topic, tags)
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        topic = self._topic(ctx, params["ResourceArn"], "ResourceArn")
        keys = set(params.get("TagKeys") or [])
        self.topics.set_tags(topic, {k: v for k, v in topic.tags.items() if k not in keys})
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        topic = self._topic(ctx, params["ResourceArn"], "ResourceArn")
        return {"Tags": [{"Key": k, "Value": v} for k, v in topic.tags.items()]}

    # -- subscriptions ----------------------------------------------------------------------------

    def subscribe(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        topic = self._topic(ctx, params["TopicArn"])
        protocol = str(params["Protocol"]).lower()
        endpoint = params.get("Endpoint") or ""
        if protocol not in PROTOCOLS:
            if protocol in AWS_PROTOCOLS:
                raise invalid(f"Hearth does not support the {protocol} protocol")
            raise invalid(f"Amazon SNS does not support this protocol string: {params['Protocol']}")
        if protocol == "sqs" and not _SQS_ARN.match(endpoint):
            raise invalid("SQS endpoint ARN")
        if protocol == "sqs" and endpoint.endswith(".fifo") and not topic.fifo:
            raise invalid("Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be subscribed to standard "
                          "SNS topics")  # sic: AWS says "Invalid parameter" twice
        if protocol == "sms" and not _PHONE.match(endpoint):
            raise AwsError("InvalidParameter", f"Invalid SMS endpoint: {endpoint}", 400)
        if protocol in ("http", "https") and not endpoint.lower().startswith(f"{protocol}://"):
            raise invalid(f"Endpoint Reason: {protocol.upper()} endpoint must start with {protocol}://")
        if protocol in ("email", "email-json") and "@" not in endpoint:
            raise invalid("Email address")
        if protocol == "lambda" and not _LAMBDA_ARN.match(endpoint):
            raise invalid("Lambda endpoint ARN")
        if topic.fifo and protocol == "lambda":
            raise invalid("Invalid protocol type: lambda")
        sub = self.topics.subscribe(topic, ctx.account_id, protocol, endpoint, params.get("Attributes") or {},
                                    principal=ctx.principal.caller_arn)
        if sub.pending and not params.get("ReturnSubscriptionArn"):
            return {"SubscriptionArn": "pending confirmation"}  # AWS's words until it is confirmed
        return {"SubscriptionArn": sub.arn}

    def confirm_subscription(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        # HTTP(S) and e-mail subscriptions wait for the token Hearth made for them (queues, functions and
        # phone numbers are confirmed when made): a token of the wrong shape is "Invalid token" (AWS).
        token = str(params.get("Token") or "")
        if not _TOKEN.match(token):
            raise AwsError("InvalidParameter", "Invalid token", 400)
        sub = self.topics.confirm(str(params["TopicArn"]), token)
        if sub is None or not ctx.may_use(sub.topic_arn.split(":")[4]):
            raise invalid("Token")
        return {"SubscriptionArn": sub.arn}

    # -- topic policy -----------------------------------------------------------------------------

    def add_permission(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        topic = self._topic(ctx, params["TopicArn"])
        label = params["Label"]
        policy = json.loads(topic.attributes.get("Policy") or default_policy(topic.arn, topic.account))
        statements = policy.setdefault("Statement", [])
        if any(s.get("Sid") == label for s in statements):
            raise invalid("Statement already exists")
        actions = list(params.get("ActionName") or [])
        if not actions or any(a not in _TOPIC_ACTIONS for a in actions):
            raise invalid("Policy statement action out of service scope!")
        principals = [f"arn:aws:iam::{account}:root" for account in params.get("AWSAccountId") or []]
        granted = [f"SNS:{a}" for a in actions]
        # One value is written as a string, several as a list (AWS's rendering).
        statements.append({"Sid": label, "Effect": "Allow",
                           "Principal": {"AWS": principals[0] if len(principals) == 1 else principals},
                           "Action": granted[0] if len(granted) == 1 else granted, "Resource": topic.arn})
        self.topics.set_topic_attribute(topic, "Policy", json.dumps(policy, separators=(",", ":")))
        return {}

    def remove_permission(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        topic = self._topic(ctx, params["TopicArn"])
        policy = json.loads(topic.attributes.get("Policy") or default_policy(topic.arn, topic.account))
        kept = [s for s in policy.get("Statement") or [] if s.get("Sid") != params["Label"]]
        if len(kept) != len(policy.get("Statement") or []):
            policy["Statement"] = kept
            self.topics.set_topic_attribute(topic, "Policy", json.dumps(policy, separators=(",", ":")))
        return {}

    def put_data_protection_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        topic = self._topic(ctx, params["ResourceArn"], "ResourceArn")
        self.topics.set_topic_attribute(topic, "DataProtectionPolicy", params["DataProtectionPolicy"])
        return {}

    def get_data_protection_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        topic = self._topic(ctx, params["ResourceArn"], "ResourceArn")
        policy = topic.attributes.get("DataProtectionPolicy")
        return {"DataProtectionPolicy": policy} if policy else {}

    # -- platform applications and endpoints (stored; nothing is pushed) -------------------------

    def create_platform_application(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        app = self.platform.create_application(ctx.account_id, ctx.region, params.get("Name") or "",
                                               params.get("Platform") or "", params.get("Attributes") or {})
        return {"PlatformApplicationArn": app.arn}

    def get_platform_application_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        app = self.platform.application(ctx.account_id, params["PlatformApplicationArn"])
        return {"Attributes": self.platform.application_attributes(app)}

    def set_platform_application_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.platform.set_application_attributes(ctx.account_id, params["PlatformApplicationArn"],
                                                 params.get("Attributes") or {})
        return {}

    def delete_platform_application(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.platform.delete_application(ctx.account_id, params["PlatformApplicationArn"])
        return {}

    def list_platform_applications(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        apps = [{"PlatformApplicationArn": a.arn, "Attributes": self.platform.application_attributes(a)}
                for a in self.platform.applications(ctx.account_id, ctx.region)]
        return _page(apps, params.get("NextToken"), "PlatformApplications")

    def create_platform_endpoint(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        endpoint = self.platform.create_endpoint(ctx.account_id, params["PlatformApplicationArn"], params["Token"],
                                                 params.get("CustomUserData"), params.get("Attributes") or {})
        return {"EndpointArn": endpoint.arn}

    def get_endpoint_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"Attributes": self.platform.endpoint(ctx.account_id, params["EndpointArn"]).attributes}

    def set_endpoint_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.platform.set_endpoint_attributes(ctx.account_id, params["EndpointArn"], params.get("Attributes") or {})
        return {}

    def delete_endpoint(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.platform.delete_endpoint(ctx.account_id, params["EndpointArn"])
        return {}

    def list_endpoints_by_platform_application(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        endpoints = [{"EndpointArn": e.arn, "Attributes": e.attributes}
                     for e in self.platform.endpoints(ctx.account_id, params["PlatformApplicationArn"])]
        return _page(endpoints, params.get("NextToken"), "Endpoints")

    # -- SMS settings (stored; no text message is sent) -------------------------------------------

    def set_sms_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.platform.set_sms_attributes(ctx.account_id, ctx.region, params.get("attributes") or {})
        return {}

    def get_sms_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stored = self.platform.sms_attributes(ctx.account_id, ctx.region)
        wanted = params.get("attributes")
        return {"attributes": {k: v for k, v in stored.items() if not wanted or k in wanted}}

    def opt_in_phone_number(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        check_phone_number(params["phoneNumber"])
        return {}  # nothing is ever opted out here: no message ever went to a phone

    def check_if_phone_number_is_opted_out(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        check_phone_number(params["phoneNumber"])
        return {"isOptedOut": False}

    def list_phone_numbers_opted_out(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"phoneNumbers": []}

    def _subscription_arn(self, ctx: RequestContext, arn: str) -> Subscription:
        parts = _arn_parts(arn, "SubscriptionArn")
        if parts[0] != "arn" or parts[2] != "sns":
            raise invalid("SubscriptionArn")
        if len(parts) != 7:
            raise invalid("SubscriptionId")  # a topic's ARN, or one without the subscription's id
        return self.topics.subscription(ctx.account_id, arn)

    def unsubscribe(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        try:
            sub = self._subscription_arn(ctx, params["SubscriptionArn"])
        except AwsError as err:
            if err.code == "NotFound":
                return {}  # unsubscribing twice succeeds, as in AWS
            raise
        self.topics.unsubscribe(sub)
        return {}

    def list_subscriptions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        subs = [_subscription_entry(s) for s in self.topics.account_subscriptions(ctx.account_id, ctx.region)]
        return _page(subs, params.get("NextToken"), "Subscriptions")

    def list_subscriptions_by_topic(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        topic = self._topic(ctx, params["TopicArn"])
        subs = [_subscription_entry(s) for s in self.topics.subscriptions(topic.arn)]
        return _page(subs, params.get("NextToken"), "Subscriptions")

    def get_subscription_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        sub = self._subscription_arn(ctx, params["SubscriptionArn"])
        return {"Attributes": self.topics.subscription_attributes(sub)}

    def set_subscription_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        sub = self._subscription_arn(ctx, params["SubscriptionArn"])
        name = params["AttributeName"]
        if name not in ("DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery",
                        "RedrivePolicy", "SubscriptionRoleArn", "ReplayPolicy"):
            raise invalid("AttributeName")
        self.topics.set_subscription_attribute(sub, name, params.get("AttributeValue") or "")
        return {}

    # -- publishing -------------------------------------------------------------------------------

    @staticmethod
    def _check_message(message: str | None) -> None:
        if message is None or message == "":
            raise _EntryFailure("InvalidParameter", "Invalid parameter: Empty message", 400)

    def _publication(self, ctx: RequestContext, topic: Topic, entry: dict[str, Any]) -> Publication:
        message = entry.get("Message")
        self._check_message(message)
        assert message is not None
        if len(message.encode("utf-8")) + attributes_size(entry.get("MessageAttributes")) > MAX_MESSAGE_BYTES:
            raise invalid("Message too long")  # attributes count against the limit too
        subject = entry.get("Subject")
        if subject is not None and (subject == "" or len(subject) > 100 or
                                    any(not (32 <= ord(c) < 127) for c in subject)):
            raise invalid("Subject")
        structure = entry.get("MessageStructure")
        if structure is not None:
            if structure != "json":
                raise invalid("MessageStructure")
            try:
                doc = json.loads(message)
            except ValueError:
                raise invalid("Message Structure - JSON message body failed to parse") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("default"), str):
                raise invalid("Message Structure - No default entry in JSON message body")
        group = entry.get("MessageGroupId")
        dedup = entry.get("MessageDeduplicationId")
        if topic.fifo:
            if not group:
                raise invalid("The MessageGroupId parameter is required for FIFO topics")
            if not dedup and topic.attributes.get("ContentBasedDeduplication") != "true":
                raise invalid("The topic should either have ContentBasedDeduplication enabled or "
                              "MessageDeduplicationId provided explicitly")
        elif dedup:
            raise invalid("MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter "
                          "that is not valid for this topic type")
        return Publication(message=message, subject=subject, structure=structure,
                           attributes=normalize_attributes(entry.get("MessageAttributes")),
                           group_id=group, dedup_id=dedup, trace_header=ctx.headers.get("x-amzn-trace-id"))

    async def publish(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        phone = params.get("PhoneNumber")
        if phone:
            if not PHONE_NUMBER.match(phone):
                raise invalid(f"PhoneNumber Reason: {phone} is not valid to publish to")
            # Accepted and dropped, as a `sms` subscriber's copy is: Hearth sends no text messages.
            self._check_message(params.get("Message"))
            return {"MessageId": str(uuid.uuid4())}
        if "TopicArn" in params:
            arn, param = str(params["TopicArn"]), "TopicArn"
        elif params.get("TargetArn"):
            arn, param = str(params["TargetArn"]), "TargetArn"
            if ":endpoint/" in arn:  # a mobile push endpoint: Hearth has no platform applications
                raise invalid("TargetArn Reason: No endpoint found for the target arn specified")
        else:
            raise invalid("TopicArn or TargetArn Reason: no value for required parameter")
        topic = self._topic(ctx, arn, param)
        message_id, sequence = await self.topics.publish(topic, self._publication(ctx, topic, params))
        out: dict[str, Any] = {"MessageId": message_id}
        if sequence is not None:
            out["SequenceNumber"] = sequence
        return out

    async def publish_batch(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        topic = self._topic(ctx, params["TopicArn"])
        entries: list[dict[str, Any]] = params.get("PublishBatchRequestEntries") or []
        if not entries:
            raise AwsError("EmptyBatchRequest", "The batch request doesn't contain any entries.", 400)
        if len(entries) > 10:
            raise AwsError("TooManyEntriesInBatchRequest", "The batch request contains more entries than "
                           "permissible.", 400)
        ids = [str(e.get("Id", "")) for e in entries]
        for entry_id in ids:
            if len(entry_id) > 80:
                raise AwsError("InvalidBatchEntryId", "The Id of a batch entry in the batch request is too long: "
                               f"{entry_id}", 400)
            if not _ENTRY_ID.match(entry_id):
                raise AwsError("InvalidBatchEntryId", "The Id of a batch entry in the batch request contains an "
                               f"impermissible character: {entry_id}", 400)
        if len(set(ids)) != len(ids):
            raise AwsError("BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the same Id.",
                           400)
        if sum(len(str(e.get("Message", "")).encode()) + attributes_size(e.get("MessageAttributes"))
               for e in entries) > MAX_MESSAGE_BYTES:
            raise AwsError("BatchRequestTooLong", "The length of all the messages put together is more than the "
                           "limit.", 400)
        successful: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        # An entry AWS refuses (no group id on a FIFO topic, a bad message structure, bad attributes) fails
        # the whole request, before anything is published: AWS answers it as the request's error.
        publications: list[Publication | None] = []
        for entry in entries:
            try:
                publications.append(self._publication(ctx, topic, entry))
            except _EntryFailure as err:  # an empty message fails its entry only
                failed.append({"Id": entry["Id"], "Code": err.code, "Message": err.message,
                               "SenderFault": err.sender_fault})
                publications.append(None)
        for entry, pub in zip(entries, publications, strict=True):
            if pub is None:
                continue
            message_id, sequence = await self.topics.publish(topic, pub)
            result: dict[str, Any] = {"Id": entry["Id"], "MessageId": message_id}
            if sequence is not None:
                result["SequenceNumber"] = sequence
            successful.append(result)
        return {"Successful": successful, "Failed": failed}


class _EntryFailure(AwsError):
    """A message PublishBatch reports in `Failed` instead of refusing the whole request."""


def _arn_parts(arn: str, param: str) -> list[str]:
    parts = arn.split(":")
    if len(parts) < 6:
        raise invalid(f"{param} Reason: An ARN must have at least 6 elements, not {len(parts)}")
    return parts


def _subscription_entry(sub: Subscription) -> dict[str, Any]:
    # A subscription awaiting its confirmation is listed without its ARN (AWS).
    return {"SubscriptionArn": "PendingConfirmation" if sub.pending else sub.arn, "Owner": sub.owner,
            "Protocol": sub.protocol, "Endpoint": sub.endpoint,
            "TopicArn": sub.topic_arn}


def _page(items: list[dict[str, Any]], token: str | None, key: str) -> dict[str, Any]:
    start = 0
    if token:
        try:
            start = int(base64.b64decode(token, validate=True).decode())
        except (binascii.Error, ValueError):
            raise invalid("NextToken") from None
    out: dict[str, Any] = {key: items[start:start + PAGE_SIZE]}
    if start + PAGE_SIZE < len(items):
        out["NextToken"] = base64.b64encode(str(start + PAGE_SIZE).encode()).decode()
    return out


class SnsDelivery:
    """The `sns` handler of the DeliveryRouter: destinations and dead-letter configs publish here."""

    def __init__(self, topics: TopicService) -> None:
        self.topics = topics

    async def __call__(self, target_arn: str, message: Message) -> None:
        topic = self.topics.find_topic(target_arn)
        if topic is None:
            raise DeliveryError(f"The topic {target_arn} does not exist.", "NotFound")
        pub = Publication(message=message.body, attributes=dict(message.attributes) or None,
                          group_id=message.group_id, dedup_id=message.deduplication_id,
                          trace_header=message.trace_header)
        if topic.fifo and not pub.group_id:
            raise DeliveryError("The MessageGroupId parameter is required for FIFO topics", "InvalidParameter")
        await self.topics.publish(topic, pub)
