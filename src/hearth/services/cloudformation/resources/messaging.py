"""CloudFormation resource types of the messaging services Hearth serves: SQS queues and their policies,
SNS topics, subscriptions and policies, EventBridge buses and rules, Kinesis streams, log groups and
SSM parameters."""

from __future__ import annotations

import json
from typing import Any

from hearth.services.cloudformation.resources.base import (
    Handler,
    Outcome,
    ResourceRequest,
    as_json,
    ignore_missing,
    tags_dict,
    tags_list,
    wait_until,
)

# -- SQS -------------------------------------------------------------------------------------------------

_QUEUE_ATTRIBUTES = ("ContentBasedDeduplication", "DeduplicationScope", "DelaySeconds", "FifoQueue",
                     "FifoThroughputLimit", "KmsDataKeyReusePeriodSeconds", "KmsMasterKeyId", "MaximumMessageSize",
                     "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds", "RedriveAllowPolicy",
                     "RedrivePolicy", "SqsManagedSseEnabled", "VisibilityTimeout")


# What a queue property removed by a stack update goes back to (recorded by AWS; CloudFormation's maximum
# message size default is 262144). DeduplicationScope, FifoThroughputLimit and SqsManagedSseEnabled keep
# their values; removing KmsMasterKeyId removes its data key period too.
_QUEUE_RESETS = {"ContentBasedDeduplication": "false", "DelaySeconds": "0", "KmsMasterKeyId": "",
                 "MaximumMessageSize": "262144", "MessageRetentionPeriod": "345600",
                 "ReceiveMessageWaitTimeSeconds": "0", "RedriveAllowPolicy": "", "RedrivePolicy": "",
                 "VisibilityTimeout": "30"}


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _queue_attributes(props: dict[str, Any], *, creating: bool) -> dict[str, str]:
    names = _QUEUE_ATTRIBUTES if creating else tuple(a for a in _QUEUE_ATTRIBUTES if a != "FifoQueue")
    return {k: _attribute_text(props[k]) for k in names if k in props}


class Queue(Handler):
    type = "AWS::SQS::Queue"
    attributes = ("Arn", "QueueName", "QueueUrl")
    replace_on = frozenset({"QueueName", "FifoQueue"})

    async def create(self, r: ResourceRequest) -> Outcome:
        fifo = str(r.properties.get("FifoQueue", "")).lower() == "true"
        name = r.name("QueueName", 80, suffix=".fifo" if fifo else "")
        out = await r.client("sqs", "CreateQueue", {
            "QueueName": name, "Attributes": _queue_attributes(r.properties, creating=True) or None,
            "tags": tags_dict(r.properties.get("Tags")) or None})
        return await self._outcome(r, out["QueueUrl"])

    async def _outcome(self, r: ResourceRequest, url: str) -> Outcome:
        attrs = await r.client("sqs", "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["QueueArn"]})
        arn = attrs["Attributes"]["QueueArn"]
        return Outcome(url, {"Arn": arn, "QueueName": arn.rsplit(":", 1)[-1], "QueueUrl": url})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        url = str(r.physical_id)
        attributes = _queue_attributes(r.properties, creating=False)
        for name, default in _QUEUE_RESETS.items():  # a property left out goes back to its default
            if name in old and name not in r.properties:
                attributes[name] = default
        if attributes:
            await r.client("sqs", "SetQueueAttributes", {"QueueUrl": url, "Attributes": attributes})
        # The template's tags replace the queue's (recorded by AWS: a tag left out is removed).
        tags = tags_dict(r.properties.get("Tags"))
        removed = sorted(set(tags_dict(old.get("Tags"))) - set(tags))
        if removed:
            await r.client("sqs", "UntagQueue", {"QueueUrl": url, "TagKeys": removed})
        if tags:
            await r.client("sqs", "TagQueue", {"QueueUrl": url, "Tags": tags})
        return await self._outcome(r, url)

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("sqs", "DeleteQueue", {"QueueUrl": str(r.physical_id)}))


class QueuePolicy(Handler):
    type = "AWS::SQS::QueuePolicy"
    attributes = ("Id",)

    async def create(self, r: ResourceRequest) -> Outcome:
        await self._apply(r, as_json(r.properties["PolicyDocument"]))
        return Outcome(f"{r.stack_name}-{r.logical_id}", {"Id": f"{r.stack_name}-{r.logical_id}"})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        for url in set(old.get("Queues") or []) - set(r.properties.get("Queues") or []):
            await ignore_missing(r.client("sqs", "SetQueueAttributes", {"QueueUrl": url, "Attributes": {"Policy": ""}}))
        await self._apply(r, as_json(r.properties["PolicyDocument"]))
        return Outcome(str(r.physical_id), {"Id": str(r.physical_id)})

    async def _apply(self, r: ResourceRequest, policy: str) -> None:
        for url in r.properties.get("Queues") or []:
            await r.client("sqs", "SetQueueAttributes", {"QueueUrl": url, "Attributes": {"Policy": policy}})

    async def delete(self, r: ResourceRequest) -> None:
        for url in r.properties.get("Queues") or []:
            await ignore_missing(r.client("sqs", "SetQueueAttributes", {"QueueUrl": url, "Attributes": {"Policy": ""}}))


class QueueInlinePolicy(Handler):
    """One queue's `Policy` attribute, as its own resource (`Queue` is the queue's URL)."""

    type = "AWS::SQS::QueueInlinePolicy"

    async def create(self, r: ResourceRequest) -> Outcome:
        await self._set(r, str(r.properties["Queue"]), as_json(r.properties["PolicyDocument"]))
        return Outcome(f"{r.stack_name}-{r.logical_id}", {})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        if old.get("Queue") and old["Queue"] != r.properties["Queue"]:
            await ignore_missing(self._set(r, str(old["Queue"]), ""))
        await self._set(r, str(r.properties["Queue"]), as_json(r.properties["PolicyDocument"]))
        return Outcome(str(r.physical_id), {})

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(self._set(r, str(r.properties["Queue"]), ""))

    @staticmethod
    async def _set(r: ResourceRequest, url: str, policy: str) -> None:
        await r.client("sqs", "SetQueueAttributes", {"QueueUrl": url, "Attributes": {"Policy": policy}})


# -- SNS -------------------------------------------------------------------------------------------------

_TOPIC_ATTRIBUTES = ("DisplayName", "FifoTopic", "ContentBasedDeduplication", "KmsMasterKeyId", "SignatureVersion",
                     "TracingConfig", "ArchivePolicy", "DeliveryStatusLogging")


class Topic(Handler):
    type = "AWS::SNS::Topic"
    attributes = ("TopicArn", "TopicName")
    replace_on = frozenset({"TopicName", "FifoTopic"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        fifo = str(p.get("FifoTopic", "")).lower() == "true"
        name = r.name("TopicName", 256, suffix=".fifo" if fifo else "")
        attributes = {k: _attribute_text(p[k]) for k in _TOPIC_ATTRIBUTES
                      if k in p and k not in ("ArchivePolicy", "DeliveryStatusLogging")}
        out = await r.client("sns", "CreateTopic", {"Name": name, "Attributes": attributes or None,
                                                    "Tags": tags_list(p.get("Tags")) or None})
        arn = out["TopicArn"]
        r.created = arn
        for sub in p.get("Subscription") or []:
            await r.client("sns", "Subscribe", {"TopicArn": arn, "Protocol": sub["Protocol"],
                                                "Endpoint": sub["Endpoint"]})
        return Outcome(arn, {"TopicArn": arn, "TopicName": arn.rsplit(":", 1)[-1]})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        arn = str(r.physical_id)
        for key in ("DisplayName", "KmsMasterKeyId", "ContentBasedDeduplication", "SignatureVersion"):
            if r.properties.get(key) != old.get(key):
                await r.client("sns", "SetTopicAttributes", {"TopicArn": arn, "AttributeName": key,
                                                             "AttributeValue": _attribute_text(
                                                                 r.properties.get(key, ""))})
        old_subs = {(s["Protocol"], s["Endpoint"]) for s in old.get("Subscription") or []}
        new_subs = {(s["Protocol"], s["Endpoint"]) for s in r.properties.get("Subscription") or []}
        for protocol, endpoint in new_subs - old_subs:
            await r.client("sns", "Subscribe", {"TopicArn": arn, "Protocol": protocol, "Endpoint": endpoint})
        if old_subs - new_subs:
            listed = await r.client("sns", "ListSubscriptionsByTopic", {"TopicArn": arn})
            for sub in listed.get("Subscriptions", []):
                if (sub["Protocol"], sub["Endpoint"]) in old_subs - new_subs:
                    await ignore_missing(r.client("sns", "Unsubscribe", {"SubscriptionArn": sub["SubscriptionArn"]}))
        return Outcome(arn, {"TopicArn": arn, "TopicName": arn.rsplit(":", 1)[-1]})

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("sns", "DeleteTopic", {"TopicArn": str(r.physical_id)}))


_SUBSCRIPTION_ATTRIBUTES = ("DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery",
                            "RedrivePolicy", "SubscriptionRoleArn", "ReplayPolicy")


class Subscription(Handler):
    type = "AWS::SNS::Subscription"
    attributes = ("Arn",)
    replace_on = frozenset({"TopicArn", "Protocol", "Endpoint"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        attributes = {k: _attribute_text(p[k]) for k in _SUBSCRIPTION_ATTRIBUTES if k in p}
        out = await r.client("sns", "Subscribe", {"TopicArn": p["TopicArn"], "Protocol": p["Protocol"],
                                                  "Endpoint": p.get("Endpoint"), "Attributes": attributes or None,
                                                  "ReturnSubscriptionArn": True})
        return Outcome(out["SubscriptionArn"], {"Arn": out["SubscriptionArn"]})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        arn = str(r.physical_id)
        for key in _SUBSCRIPTION_ATTRIBUTES:
            if r.properties.get(key) != old.get(key):
                await r.client("sns", "SetSubscriptionAttributes", {
                    "SubscriptionArn": arn, "AttributeName": key,
                    "AttributeValue": _attribute_text(r.properties.get(key, ""))})
        return Outcome(arn, {"Arn": arn})

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("sns", "Unsubscribe", {"SubscriptionArn": str(r.physical_id)}))


class TopicPolicy(Handler):
    type = "AWS::SNS::TopicPolicy"
    attributes = ("Id",)

    async def create(self, r: ResourceRequest) -> Outcome:
        await self._apply(r)
        return Outcome(f"{r.stack_name}-{r.logical_id}", {"Id": f"{r.stack_name}-{r.logical_id}"})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        await self._apply(r)
        return Outcome(str(r.physical_id), {"Id": str(r.physical_id)})

    async def _apply(self, r: ResourceRequest) -> None:
        for arn in r.properties.get("Topics") or []:
            await r.client("sns", "SetTopicAttributes", {"TopicArn": arn, "AttributeName": "Policy",
                                                         "AttributeValue": as_json(r.properties["PolicyDocument"])})

    async def delete(self, r: ResourceRequest) -> None:
        return None  # the topic keeps its default policy once the stack's statement is gone


# -- EventBridge -----------------------------------------------------------------------------------------


class EventBus(Handler):
    type = "AWS::Events::EventBus"
    attributes = ("Arn", "Name", "Policy")
    replace_on = frozenset({"Name", "EventSourceName"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        out = await r.client("events", "CreateEventBus", {
            "Name": p["Name"], "EventSourceName": p.get("EventSourceName"), "Description": p.get("Description"),
            "Tags": tags_list(p.get("Tags")) or None})
        return Outcome(p["Name"], {"Arn": out["EventBusArn"], "Name": p["Name"], "Policy": ""})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        out = await r.client("events", "DescribeEventBus", {"Name": str(r.physical_id)})
        return Outcome(str(r.physical_id), {"Arn": out["Arn"], "Name": out["Name"], "Policy": out.get("Policy", "")})

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("events", "DeleteEventBus", {"Name": str(r.physical_id)}))


class Rule(Handler):
    type = "AWS::Events::Rule"
    attributes = ("Arn",)
    replace_on = frozenset({"Name", "EventBusName"})

    async def create(self, r: ResourceRequest) -> Outcome:
        name = r.name("Name", 64)
        return await self._put(r, name)

    async def _put(self, r: ResourceRequest, name: str, old: dict[str, Any] | None = None) -> Outcome:
        p = r.properties
        bus = p.get("EventBusName")
        bus_name = str(bus).rsplit("/", 1)[-1] if bus else None
        out = await r.client("events", "PutRule", {
            "Name": name, "EventPattern": as_json(p["EventPattern"]) if "EventPattern" in p else None,
            "ScheduleExpression": p.get("ScheduleExpression"), "State": p.get("State", "ENABLED"),
            "Description": p.get("Description"), "RoleArn": p.get("RoleArn"), "EventBusName": bus_name})
        targets = [_target(t) for t in p.get("Targets") or []]
        old_ids = {t["Id"] for t in (old or {}).get("Targets") or []} - {t["Id"] for t in targets}
        if old_ids:
            await r.client("events", "RemoveTargets", {"Rule": name, "EventBusName": bus_name, "Ids": sorted(old_ids)})
        if targets:
            await r.client("events", "PutTargets", {"Rule": name, "EventBusName": bus_name, "Targets": targets})
        physical = f"{bus_name}|{name}" if bus_name and bus_name != "default" else name
        return Outcome(physical, {"Arn": out["RuleArn"]})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        name = str(r.physical_id).rsplit("|", 1)[-1]
        return await self._put(r, name, old)

    async def delete(self, r: ResourceRequest) -> None:
        bus, _, name = str(r.physical_id).rpartition("|")
        bus_name = bus or None
        ids = [t["Id"] for t in r.properties.get("Targets") or []]
        if ids:
            await ignore_missing(r.client("events", "RemoveTargets", {"Rule": name, "EventBusName": bus_name,
                                                                      "Ids": ids}))
        await ignore_missing(r.client("events", "DeleteRule", {"Name": name, "EventBusName": bus_name}))


def _target(t: dict[str, Any]) -> dict[str, Any]:
    out = dict(t)
    if "Input" in out and not isinstance(out["Input"], str):
        out["Input"] = json.dumps(out["Input"])
    return out


# -- Kinesis, Logs, SSM ----------------------------------------------------------------------------------


class Stream(Handler):
    type = "AWS::Kinesis::Stream"
    attributes = ("Arn",)
    replace_on = frozenset({"Name"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        name = r.name("Name", 128)
        mode = (p.get("StreamModeDetails") or {}).get("StreamMode", "PROVISIONED")
        params: dict[str, Any] = {"StreamName": name, "StreamModeDetails": {"StreamMode": mode}}
        if mode != "ON_DEMAND":
            params["ShardCount"] = int(p.get("ShardCount", 1))
        await r.client("kinesis", "CreateStream", params)
        r.created = name
        return await self._settle(r, name)

    async def _settle(self, r: ResourceRequest, name: str) -> Outcome:
        arn = ""

        async def active() -> bool:
            nonlocal arn
            out = await r.client("kinesis", "DescribeStreamSummary", {"StreamName": name})
            arn = out["StreamDescriptionSummary"]["StreamARN"]
            return bool(out["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE")

        await wait_until(active, 120, f"stream {name} to become ACTIVE")
        hours = r.properties.get("RetentionPeriodHours")
        if hours and int(hours) > 24:
            await r.client("kinesis", "IncreaseStreamRetentionPeriod", {"StreamName": name,
                                                                        "RetentionPeriodHours": int(hours)})
        tags = tags_dict(r.properties.get("Tags"))
        if tags:
            await r.client("kinesis", "AddTagsToStream", {"StreamName": name, "Tags": tags})
        return Outcome(name, {"Arn": arn})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        return await self._settle(r, str(r.physical_id))

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("kinesis", "DeleteStream", {"StreamName": str(r.physical_id),
                                                                  "EnforceConsumerDeletion": True}))


class LogGroup(Handler):
    type = "AWS::Logs::LogGroup"
    attributes = ("Arn",)
    replace_on = frozenset({"LogGroupName", "LogGroupClass"})

    async def create(self, r: ResourceRequest) -> Outcome:
        name = r.name("LogGroupName", 512)
        await r.client("logs", "CreateLogGroup", {"logGroupName": name,
                                                  "tags": tags_dict(r.properties.get("Tags")) or None,
                                                  "kmsKeyId": r.properties.get("KmsKeyId")})
        r.created = name
        return await self._retention(r, name)

    async def _retention(self, r: ResourceRequest, name: str) -> Outcome:
        days = r.properties.get("RetentionInDays")
        if days:
            await r.client("logs", "PutRetentionPolicy", {"logGroupName": name, "retentionInDays": int(days)})
        else:
            await ignore_missing(r.client("logs", "DeleteRetentionPolicy", {"logGroupName": name}))
        return Outcome(name, {"Arn": f"arn:aws:logs:{r.region}:{r.account}:log-group:{name}:*"})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        return await self._retention(r, str(r.physical_id))

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("logs", "DeleteLogGroup", {"logGroupName": str(r.physical_id)}))


class Parameter(Handler):
    type = "AWS::SSM::Parameter"
    attributes = ("Type", "Value")
    replace_on = frozenset({"Name"})

    async def create(self, r: ResourceRequest) -> Outcome:
        name = r.name("Name", 1011)
        if not name.startswith("/") and "/" in name:
            name = "/" + name
        if "Name" not in r.properties:
            name = name.replace("/", "-")
        return await self._put(r, name, overwrite=False)

    async def _put(self, r: ResourceRequest, name: str, *, overwrite: bool) -> Outcome:
        p = r.properties
        await r.client("ssm", "PutParameter", {
            "Name": name, "Value": str(p["Value"]), "Type": p["Type"], "Description": p.get("Description"),
            "AllowedPattern": p.get("AllowedPattern"), "Tier": p.get("Tier"), "DataType": p.get("DataType"),
            "Policies": p.get("Policies"), "Overwrite": overwrite or None,
            "Tags": None if overwrite else (tags_list(p.get("Tags")) or None)})
        return Outcome(name, {"Type": p["Type"], "Value": str(p["Value"])})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        outcome = await self._put(r, str(r.physical_id), overwrite=True)
        # PutParameter with Overwrite takes no tags: the template's tags are applied apart.
        before, after = tags_dict(old.get("Tags")), tags_dict(r.properties.get("Tags"))
        target = {"ResourceType": "Parameter", "ResourceId": str(r.physical_id)}
        if gone := [k for k in before if k not in after]:
            await r.client("ssm", "RemoveTagsFromResource", {**target, "TagKeys": gone})
        if after and after != before:
            await r.client("ssm", "AddTagsToResource", {**target, "Tags": tags_list(after)})
        return outcome

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("ssm", "DeleteParameter", {"Name": str(r.physical_id)}))


class EventBusPolicy(Handler):
    """One statement of a bus's resource policy (EventBridge PutPermission / RemovePermission)."""

    type = "AWS::Events::EventBusPolicy"
    replace_on = frozenset({"EventBusName", "StatementId"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        bus, sid = str(p.get("EventBusName") or "default"), str(p["StatementId"])
        statement = p.get("Statement")
        if statement is not None:  # the statement as written: merged into the bus's policy under its Sid
            described = await r.client("events", "DescribeEventBus", {"Name": bus})
            policy = json.loads(described.get("Policy") or '{"Version": "2012-10-17", "Statement": []}')
            policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != sid] + [{**statement, "Sid": sid}]
            await r.client("events", "PutPermission", {"EventBusName": bus, "Policy": json.dumps(policy)})
        else:
            await r.client("events", "PutPermission", {
                "EventBusName": bus, "StatementId": sid, "Action": p.get("Action"), "Principal": p.get("Principal"),
                "Condition": p.get("Condition")})
        r.created = f"{bus}-{sid}"
        return Outcome(f"{bus}-{sid}")

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        return await self.create(r)

    async def delete(self, r: ResourceRequest) -> None:
        p = r.properties
        await ignore_missing(r.client("events", "RemovePermission", {
            "EventBusName": str(p.get("EventBusName") or "default"), "StatementId": str(p["StatementId"])}))


class LogStream(Handler):
    type = "AWS::Logs::LogStream"
    updatable = False  # both its properties need a new stream

    async def create(self, r: ResourceRequest) -> Outcome:
        group = str(r.properties["LogGroupName"])
        name = r.name("LogStreamName", 512)
        await r.client("logs", "CreateLogStream", {"logGroupName": group, "logStreamName": name})
        r.created = name
        return Outcome(name)

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("logs", "DeleteLogStream", {
            "logGroupName": str(r.properties["LogGroupName"]), "logStreamName": str(r.physical_id)}))


HANDLERS: tuple[type[Handler], ...] = (Queue, QueuePolicy, QueueInlinePolicy, Topic, Subscription, TopicPolicy,
                                      EventBus, Rule, Stream, LogGroup, Parameter, EventBusPolicy, LogStream)
