"""The topic domain: durable topics and subscriptions (ComponentDb component "sns"), publishing with
filter policies, and fan-out to subscribers through the DeliveryRouter.

It owns topic and subscription rows, FIFO topic deduplication and sequence numbers, and the exact
payloads subscribers receive: AWS's SNS envelope (or the raw message) for queues, AWS's `aws:sns`
event for functions. It never imports the queue or function services: every delivery goes through
`DeliveryRouter.deliver(endpoint_arn, Message)`; the `lambda` handler enqueues an asynchronous
invocation, the `sqs` handler sends to the queue.

Deliveries run before Publish answers, so an acknowledged publish has reached every subscriber's
durable store (queue rows, async-invoke events). A failing delivery is logged and counted, never
raised to the publisher (as in AWS, where the publisher is not told about subscriber failures).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hearth.aws.authz.authorizer import ResourcePolicy
from hearth.aws.errors import AwsError
from hearth.events.delivery import DeliveryError, DeliveryRouter, Message
from hearth.invoke.logs import LogSink
from hearth.services.sns import filter_policy
from hearth.services.sns.http_endpoints import HttpPoster
from hearth.services.sns.signing import CONFIRMATION_FIELDS, NOTIFICATION_FIELDS, SigningKey
from hearth.store.component import ComponentDb

log = logging.getLogger(__name__)
Clock = Callable[[], float]

MIGRATIONS = [
    """
    CREATE TABLE sns_topics (
        arn TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        fifo INTEGER NOT NULL,
        attributes TEXT NOT NULL,
        tags TEXT NOT NULL,
        sequence INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL
    );
    CREATE INDEX sns_topics_account ON sns_topics (account, region, name);
    CREATE TABLE sns_subscriptions (
        arn TEXT PRIMARY KEY,
        topic_arn TEXT NOT NULL REFERENCES sns_topics (arn) ON DELETE CASCADE,
        owner TEXT NOT NULL,
        protocol TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        attributes TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX sns_subscriptions_topic ON sns_subscriptions (topic_arn, created);
    CREATE TABLE sns_dedup (
        topic_arn TEXT NOT NULL REFERENCES sns_topics (arn) ON DELETE CASCADE,
        dedup_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        sequence TEXT NOT NULL,
        expires REAL NOT NULL,
        PRIMARY KEY (topic_arn, dedup_id)
    );
    """,
    # Who subscribed (SubscriptionPrincipal: the caller's identity, a user's or role's ARN or the root's);
    # whether the subscription awaits its confirmation (HTTP(S) and e-mail), and the token that confirms it;
    # platform applications, endpoints and SMS settings (stored only: see platform.py).
    """
    ALTER TABLE sns_subscriptions ADD COLUMN principal TEXT NOT NULL DEFAULT '';
    ALTER TABLE sns_subscriptions ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sns_subscriptions ADD COLUMN token TEXT NOT NULL DEFAULT '';
    CREATE TABLE sns_platform_apps (
        arn TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        platform TEXT NOT NULL,
        attributes TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX sns_platform_apps_account ON sns_platform_apps (account, region);
    CREATE TABLE sns_platform_endpoints (
        arn TEXT PRIMARY KEY,
        app_arn TEXT NOT NULL,
        token TEXT NOT NULL,
        attributes TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX sns_platform_endpoints_app ON sns_platform_endpoints (app_arn, created);
    CREATE TABLE sns_sms_attributes (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        attributes TEXT NOT NULL,
        PRIMARY KEY (account, region)
    );
    """,
]

DEDUP_WINDOW_S = 300.0
SEQUENCE_BASE = 10_000_000_000_000_000_000
MAX_MESSAGE_BYTES = 262_144
# `sms` subscriptions are kept and listed but never delivered: Hearth sends no text messages. E-mail ones
# stay pending (no mail is sent to confirm them); HTTP(S) ones are confirmed by their endpoint.
PROTOCOLS = ("lambda", "sqs", "sms", "http", "https", "email", "email-json")
AWS_PROTOCOLS = ("application", "firehose")
CONFIRMED_BY_SUBSCRIBER = ("http", "https", "email", "email-json")

TOPIC_ATTRIBUTES = {"DisplayName", "Policy", "DeliveryPolicy", "KmsMasterKeyId", "TracingConfig", "SignatureVersion",
                    "ContentBasedDeduplication", "ArchivePolicy", "DataProtectionPolicy", "FifoThroughputScope",
                    *(f"{p}{s}" for p in ("HTTP", "Firehose", "Lambda", "Application", "SQS")
                      for s in ("SuccessFeedbackRoleArn", "SuccessFeedbackSampleRate", "FailureFeedbackRoleArn"))}
SUBSCRIPTION_ATTRIBUTES = {"DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery",
                           "RedrivePolicy", "SubscriptionRoleArn", "ReplayPolicy"}
# The prefix of a topic's feedback attributes for each protocol (LambdaSuccessFeedbackRoleArn, ...).
_FEEDBACK_PREFIX = {"lambda": "Lambda", "sqs": "SQS", "http": "HTTP", "https": "HTTP", "application": "Application",
                    "firehose": "Firehose"}
_SUBSCRIPTION_DEFAULTS = {"RawMessageDelivery": "false", "FilterPolicyScope": "MessageAttributes"}
EFFECTIVE_DELIVERY_POLICY = json.dumps({"http": {
    "defaultHealthyRetryPolicy": {"minDelayTarget": 20, "maxDelayTarget": 20, "numRetries": 3,
                                  "numMaxDelayRetries": 0, "numNoDelayRetries": 0, "numMinDelayRetries": 0,
                                  "backoffFunction": "linear"},
    "disableSubscriptionOverrides": False,
    "defaultRequestPolicy": {"headerContentType": "text/plain; charset=UTF-8"}}}, separators=(",", ":"))


def invalid(what: str) -> AwsError:
    return AwsError("InvalidParameter", f"Invalid parameter: {what}", 400)


def topic_not_found() -> AwsError:
    return AwsError("NotFound", "Topic does not exist", 404)


def subscription_not_found() -> AwsError:
    return AwsError("NotFound", "Subscription does not exist", 404)


@dataclass(frozen=True)
class Topic:
    arn: str
    account: str
    region: str
    name: str
    fifo: bool
    attributes: dict[str, str]
    tags: dict[str, str]


@dataclass(frozen=True)
class Subscription:
    arn: str
    topic_arn: str
    owner: str
    protocol: str
    endpoint: str
    attributes: dict[str, str]
    principal: str = ""  # the subscriber's ARN ("" for rows from before it was kept: the owner's root)
    pending: bool = False  # awaiting ConfirmSubscription with `token`
    token: str = ""

    @property
    def raw(self) -> bool:
        return self.attributes.get("RawMessageDelivery") == "true"


@dataclass
class Publication:
    """One message to publish, validated by the provider (attributes in SQS shape, binary as base64)."""

    message: str
    subject: str | None = None
    structure: str | None = None
    attributes: dict[str, dict[str, Any]] | None = None
    group_id: str | None = None
    dedup_id: str | None = None
    trace_header: str | None = None


def valid_topic_name(name: str, fifo: bool) -> bool:
    base = name[:-5] if fifo and name.endswith(".fifo") else name
    if fifo and not name.endswith(".fifo"):
        return False
    return 1 <= len(name) <= 256 and bool(base) and all(c.isascii() and (c.isalnum() or c in "-_") for c in base)


def default_policy(arn: str, account: str) -> str:
    actions = ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission",
               "SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"]
    return json.dumps({"Version": "2008-10-17", "Id": "__default_policy_ID", "Statement": [{
        "Sid": "__default_statement_ID", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": actions,
        "Resource": arn, "Condition": {"StringEquals": {"AWS:SourceOwner": account}}}]}, separators=(",", ":"))


class TopicService:
    """Durable topics and subscriptions; `publish` fans out through the router."""

    def __init__(self, data_dir: Path, router: DeliveryRouter, endpoint_url: str, *,
                 clock: Clock = time.time, delivery_logs: LogSink | None = None) -> None:
        self.db = ComponentDb(data_dir, "sns", MIGRATIONS)
        self.router = router
        self.http = HttpPoster()
        # Delivery status logging (a topic's <Protocol>Success/FailureFeedbackRoleArn): CloudWatch Logs' sink.
        self.delivery_logs = delivery_logs
        self.signing = SigningKey(data_dir)
        self.endpoint_url = endpoint_url.rstrip("/")
        self.clock = clock
        self.delivered = 0
        self.failed = 0

    def close(self) -> None:
        self.db.close()

    # -- topics -----------------------------------------------------------------------------------

    def create_topic(self, account: str, region: str, name: str, attributes: dict[str, str],
                     tags: dict[str, str]) -> Topic:
        fifo_raw = attributes.get("FifoTopic", "false")
        if fifo_raw not in ("true", "false"):
            raise invalid("FifoTopic")
        fifo = fifo_raw == "true"
        if not valid_topic_name(name, fifo):
            raise invalid("Topic Name")  # the same text for FIFO names (recorded by AWS)
        arn = f"arn:aws:sns:{region}:{account}:{name}"
        requested = {k: v for k, v in attributes.items() if k != "FifoTopic"}
        self._check_topic_attributes(requested, fifo)
        existing = self.find_topic(arn)
        if existing is not None:
            if any(existing.attributes.get(k, "") != v for k, v in requested.items()) or \
                    existing.fifo != fifo:
                raise invalid("Attributes Reason: Topic already exists with different attributes")
            if tags and any(existing.tags.get(k) != v for k, v in tags.items()):
                raise invalid("Tags Reason: Topic already exists with different tags")
            return existing
        with self.db.tx() as db:
            db.execute("INSERT INTO sns_topics (arn, account, region, name, fifo, attributes, tags, created) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (arn, account, region, name, int(fifo), json.dumps(requested), json.dumps(tags),
                        self.clock()))
        topic = self.find_topic(arn)
        assert topic is not None
        return topic

    @staticmethod
    def _check_topic_attributes(attributes: dict[str, str], fifo: bool) -> None:
        for key, value in attributes.items():
            if key not in TOPIC_ATTRIBUTES:
                raise invalid("AttributeName")
            if key == "ContentBasedDeduplication":
                if not fifo:
                    raise invalid("ContentBasedDeduplication Reason: Content-based deduplication can only be "
                                  "set for FIFO topics")
                if value not in ("true", "false"):
                    raise invalid("ContentBasedDeduplication")
            if key in ("Policy", "DeliveryPolicy") and value:
                try:
                    json.loads(value)
                except ValueError:
                    raise invalid(f"{key}: failed to parse JSON") from None

    def find_topic(self, arn: str) -> Topic | None:
        rows = self.db.query("SELECT * FROM sns_topics WHERE arn = ?", (arn,))
        return _topic(rows[0]) if rows else None

    def resource_policy(self, arn: str) -> ResourcePolicy | None:
        """The topic's owner and the `Policy` it was given (AWS's default one grants only its owner), for
        the gateway's authorizer."""
        topic = self.find_topic(arn)
        return None if topic is None else ResourcePolicy(topic.account, topic.attributes.get("Policy") or None)

    def topic(self, account: str, arn: str) -> Topic:
        topic = self.find_topic(arn)
        if topic is None or topic.account != account:
            raise topic_not_found()
        return topic

    def list_topics(self, account: str, region: str) -> list[Topic]:
        rows = self.db.query("SELECT * FROM sns_topics WHERE account = ? AND region = ? ORDER BY arn",
                             (account, region))
        return [_topic(r) for r in rows]

    def delete_topic(self, topic: Topic) -> None:
        with self.db.tx() as db:
            db.execute("DELETE FROM sns_subscriptions WHERE topic_arn = ?", (topic.arn,))
            db.execute("DELETE FROM sns_dedup WHERE topic_arn = ?", (topic.arn,))
            db.execute("DELETE FROM sns_topics WHERE arn = ?", (topic.arn,))

    def topic_attributes(self, topic: Topic) -> dict[str, str]:
        counts = self.db.query("SELECT SUM(1 - pending) AS n, SUM(pending) AS p FROM sns_subscriptions "
                               "WHERE topic_arn = ?", (topic.arn,))
        out = {
            "Policy": default_policy(topic.arn, topic.account),
            "Owner": topic.account,
            "SubscriptionsPending": str(counts[0]["p"] or 0),
            "TopicArn": topic.arn,
            "EffectiveDeliveryPolicy": EFFECTIVE_DELIVERY_POLICY,
            "SubscriptionsConfirmed": str(counts[0]["n"] or 0),
            "DisplayName": "",
            "SubscriptionsDeleted": "0",
        }
        if topic.fifo:
            out.update(FifoTopic="true", ContentBasedDeduplication="false")
        # The data protection policy is answered by GetDataProtectionPolicy only (AWS leaves it out here).
        out.update({k: v for k, v in topic.attributes.items() if k != "DataProtectionPolicy"})
        return out

    def set_topic_attribute(self, topic: Topic, name: str, value: str) -> None:
        if name == "FifoTopic":
            raise invalid("AttributeName")
        self._check_topic_attributes({name: value}, topic.fifo)
        merged = {**topic.attributes, name: value}
        with self.db.tx() as db:
            db.execute("UPDATE sns_topics SET attributes = ? WHERE arn = ?", (json.dumps(merged), topic.arn))

    def set_tags(self, topic: Topic, tags: dict[str, str]) -> None:
        if len(tags) > 50:
            raise AwsError("TagLimitExceeded", "Could not complete request: tag quota of per resource exceeded",
                           400)
        with self.db.tx() as db:
            db.execute("UPDATE sns_topics SET tags = ? WHERE arn = ?", (json.dumps(tags), topic.arn))

    # -- subscriptions ----------------------------------------------------------------------------

    def subscribe(self, topic: Topic, owner: str, protocol: str, endpoint: str,
                  attributes: dict[str, str], principal: str = "") -> Subscription:
        clean = self._check_subscription_attributes(protocol, attributes)
        for existing in self.subscriptions(topic.arn):
            if existing.protocol == protocol and existing.endpoint == endpoint:
                # Compared with what the subscription has in effect: an attribute left at its default
                # (RawMessageDelivery false, scope MessageAttributes) equals the default asked for (AWS).
                if any(existing.attributes.get(k, _SUBSCRIPTION_DEFAULTS.get(k)) != v for k, v in clean.items()):
                    raise invalid("Attributes Reason: Subscription already exists with different attributes")
                return existing
        arn = f"{topic.arn}:{uuid.uuid4()}"
        pending = protocol in CONFIRMED_BY_SUBSCRIBER
        token = secrets.token_hex(128) if pending else ""
        with self.db.tx() as db:
            db.execute("INSERT INTO sns_subscriptions (arn, topic_arn, owner, protocol, endpoint, attributes, "
                       "created, principal, pending, token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (arn, topic.arn, owner, protocol, endpoint, json.dumps(clean), self.clock(), principal,
                        int(pending), token))
        found = self.find_subscription(arn)
        assert found is not None
        if protocol in ("http", "https"):
            self._send_confirmation(topic, found)
        return found

    def _send_confirmation(self, topic: Topic, sub: Subscription) -> None:
        """AWS's SubscriptionConfirmation, POSTed to the endpoint: it confirms by calling ConfirmSubscription
        with the token (or by visiting SubscribeURL)."""
        message_id = str(uuid.uuid4())
        timestamp = _timestamp(self.clock())
        text = (f"You have chosen to subscribe to the topic {topic.arn}.\nTo confirm the subscription, visit the "
                "SubscribeURL included in this message.")
        version = topic.attributes.get("SignatureVersion", "1")
        doc = {"Type": "SubscriptionConfirmation", "MessageId": message_id, "Token": sub.token,
               "TopicArn": topic.arn, "Message": text,
               "SubscribeURL": f"{self.endpoint_url}/?Action=ConfirmSubscription&TopicArn={topic.arn}"
                               f"&Token={sub.token}",
               "Timestamp": timestamp, "SignatureVersion": version}
        doc.update(Signature=self.signing.sign(doc, CONFIRMATION_FIELDS, version),
                   SigningCertURL=self.signing.cert_url(self.endpoint_url))
        self.http.post(sub.endpoint, json.dumps(doc, indent=2, separators=(",", " : ")), {
            "x-amz-sns-message-type": "SubscriptionConfirmation", "x-amz-sns-message-id": message_id,
            "x-amz-sns-topic-arn": topic.arn})

    def confirm(self, topic_arn: str, token: str) -> Subscription | None:
        """The subscription `token` confirms (now confirmed), or None when no pending one has it."""
        rows = self.db.query("SELECT arn FROM sns_subscriptions WHERE topic_arn = ? AND token = ?",
                             (topic_arn, token))
        if not rows:
            return None
        with self.db.tx() as db:
            db.execute("UPDATE sns_subscriptions SET pending = 0 WHERE arn = ?", (rows[0]["arn"],))
        return self.find_subscription(rows[0]["arn"])

    @staticmethod
    def _check_subscription_attributes(protocol: str, attributes: dict[str, str],
                                       reason: str = "Attributes Reason: ") -> dict[str, str]:
        """The attributes as stored, or AWS's error; `reason` prefixes the texts at Subscribe ("Attributes
        Reason: "), not at SetSubscriptionAttributes."""
        clean: dict[str, str] = {}
        for key, value in attributes.items():
            if key not in SUBSCRIPTION_ATTRIBUTES:
                raise invalid("Attributes Reason: Unknown attribute " + key)
            if key == "RawMessageDelivery":
                if value.lower() not in ("true", "false"):
                    raise invalid(f"{reason}RawMessageDelivery: Invalid value [{value}]. Must be true or false.")
                if protocol == "lambda" and value.lower() == "true":
                    raise invalid("Attributes Reason: Delivery protocol [lambda] does not support raw message "
                                  "delivery.")
                value = value.lower()
            if key == "RedrivePolicy" and value:
                try:
                    redrive = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise invalid(f"{reason}RedrivePolicy: {filter_policy.json_failure(exc)}") from None
                target = str(redrive.get("deadLetterTargetArn", "")) if isinstance(redrive, dict) else ""
                if len(target.split(":")) < 6 or not target.startswith("arn:"):
                    raise invalid(f"{reason}RedrivePolicy: deadLetterTargetArn is an invalid arn")
            if key == "FilterPolicyScope" and value not in ("MessageAttributes", "MessageBody"):
                raise invalid(f"{reason}FilterPolicyScope: Invalid value [{value}]. Please use either MessageBody "
                              "or MessageAttributes")
            clean[key] = value
        policy = clean.get("FilterPolicy")
        if policy:
            try:
                filter_policy.parse(policy, clean.get("FilterPolicyScope", "MessageAttributes"))
            except filter_policy.FilterPolicyError as exc:
                raise invalid(f"{reason}{exc}" if exc.bare else f"{reason}FilterPolicy: {exc}") from None
            clean.setdefault("FilterPolicyScope", "MessageAttributes")
        return clean

    def find_subscription(self, arn: str) -> Subscription | None:
        rows = self.db.query("SELECT * FROM sns_subscriptions WHERE arn = ?", (arn,))
        return _subscription(rows[0]) if rows else None

    def subscription(self, account: str, arn: str) -> Subscription:
        sub = self.find_subscription(arn)
        if sub is None or sub.topic_arn.split(":")[4] != account:
            raise subscription_not_found()
        return sub

    def subscriptions(self, topic_arn: str) -> list[Subscription]:
        rows = self.db.query("SELECT * FROM sns_subscriptions WHERE topic_arn = ? ORDER BY created, arn",
                             (topic_arn,))
        return [_subscription(r) for r in rows]

    def account_subscriptions(self, account: str, region: str) -> list[Subscription]:
        rows = self.db.query("SELECT s.* FROM sns_subscriptions s JOIN sns_topics t ON t.arn = s.topic_arn "
                             "WHERE t.account = ? AND t.region = ? ORDER BY s.created, s.arn", (account, region))
        return [_subscription(r) for r in rows]

    def unsubscribe(self, sub: Subscription) -> None:
        with self.db.tx() as db:
            db.execute("DELETE FROM sns_subscriptions WHERE arn = ?", (sub.arn,))

    def subscription_attributes(self, sub: Subscription) -> dict[str, str]:
        shown = dict(sub.attributes)
        if not shown.get("FilterPolicy"):
            # An empty policy is no policy, and the scope is shown only beside a policy (AWS).
            shown.pop("FilterPolicy", None)
            shown.pop("FilterPolicyScope", None)
        return {
            "ConfirmationWasAuthenticated": "false" if sub.pending else "true",
            "Endpoint": sub.endpoint,
            "Owner": sub.owner,
            "PendingConfirmation": "true" if sub.pending else "false",
            "Protocol": sub.protocol,
            "RawMessageDelivery": "false",
            "SubscriptionArn": sub.arn,
            "SubscriptionPrincipal": sub.principal or f"arn:aws:iam::{sub.owner}:root",
            "TopicArn": sub.topic_arn,
            **shown,
        }

    def set_subscription_attribute(self, sub: Subscription, name: str, value: str) -> None:
        merged = {**sub.attributes, name: value}
        if name == "FilterPolicy" and value == "":
            merged.pop("FilterPolicy")
            merged.pop("FilterPolicyScope", None)
        clean = self._check_subscription_attributes(sub.protocol, merged, reason="")
        fifo_pair = sub.topic_arn.endswith(".fifo") and sub.endpoint.endswith(".fifo")
        if (name == "RedrivePolicy" and value and fifo_pair
                and not str(json.loads(value)["deadLetterTargetArn"]).endswith(".fifo")):
            raise invalid("RedrivePolicy: must use a FIFO queue as DLQ for a FIFO Subscription to a FIFO Topic.")
        with self.db.tx() as db:
            db.execute("UPDATE sns_subscriptions SET attributes = ? WHERE arn = ?", (json.dumps(clean), sub.arn))

    # -- publishing -------------------------------------------------------------------------------

    def accept(self, topic: Topic, pub: Publication) -> tuple[str, str | None, bool]:
        """Assign the message id (and FIFO sequence number); False when a FIFO duplicate is dropped."""
        if not topic.fifo:
            return str(uuid.uuid4()), None, True
        now = self.clock()
        dedup = pub.dedup_id or hashlib.sha256(pub.message.encode()).hexdigest()
        pub.dedup_id = dedup
        with self.db.tx() as db:
            db.execute("DELETE FROM sns_dedup WHERE expires <= ?", (now,))
            seen = db.execute("SELECT message_id, sequence FROM sns_dedup WHERE topic_arn = ? AND dedup_id = ?",
                              (topic.arn, dedup)).fetchone()
            if seen is not None:
                return str(seen["message_id"]), str(seen["sequence"]), False
            db.execute("UPDATE sns_topics SET sequence = sequence + 1 WHERE arn = ?", (topic.arn,))
            number = db.execute("SELECT sequence FROM sns_topics WHERE arn = ?", (topic.arn,)).fetchone()[0]
            sequence = str(SEQUENCE_BASE + int(number))
            message_id = str(uuid.uuid4())
            db.execute("INSERT INTO sns_dedup (topic_arn, dedup_id, message_id, sequence, expires) "
                       "VALUES (?, ?, ?, ?, ?)", (topic.arn, dedup, message_id, sequence, now + DEDUP_WINDOW_S))
        return message_id, sequence, True

    async def publish(self, topic: Topic, pub: Publication) -> tuple[str, str | None]:
        message_id, sequence, fresh = self.accept(topic, pub)
        if fresh:
            await self.fan_out(topic, pub, message_id, sequence)
        return message_id, sequence

    async def fan_out(self, topic: Topic, pub: Publication, message_id: str, sequence: str | None) -> None:
        timestamp = _timestamp(self.clock())
        for sub in self.subscriptions(topic.arn):
            if sub.protocol in ("sms", "email", "email-json") or sub.pending:
                continue  # kept, never sent (see PROTOCOLS); a pending subscription gets nothing yet
            text = message_for(pub, sub.protocol)
            policy = sub.attributes.get("FilterPolicy")
            if policy:
                scope = sub.attributes.get("FilterPolicyScope", "MessageAttributes")
                if not filter_policy.matches(json.loads(policy), scope, pub.attributes or {}, text):
                    continue
            if sub.protocol in ("http", "https"):
                self._post_notification(topic, sub, pub, text, message_id, sequence, timestamp)
                continue
            started = self.clock()
            try:
                await self.router.deliver(sub.endpoint, self._message(topic, sub, pub, text, message_id, sequence,
                                                                      timestamp))
            except DeliveryError as exc:
                self.failed += 1
                log.warning("sns: delivery of %s from %s to %s failed: %s (%s)", message_id, topic.arn,
                            sub.endpoint, exc, exc.code)
                self._log_delivery(topic, sub, text, message_id, timestamp, started, exc)
                await self._dead_letter(topic, sub, pub, text, message_id, sequence, timestamp)
            else:
                self.delivered += 1
                self._log_delivery(topic, sub, text, message_id, timestamp, started, None)

    def _log_delivery(self, topic: Topic, sub: Subscription, text: str, message_id: str, timestamp: str,
                      started: float, failure: DeliveryError | None) -> None:
        """AWS's delivery status record, in `sns/<region>/<account>/<topic>` (`…/Failure` for failures),
        when the topic asks for it for the subscriber's protocol (and the success sample picks it)."""
        prefix = _FEEDBACK_PREFIX.get(sub.protocol)
        if self.delivery_logs is None or prefix is None:
            return
        if failure is None:
            if not topic.attributes.get(f"{prefix}SuccessFeedbackRoleArn"):
                return
            try:
                rate = float(topic.attributes.get(f"{prefix}SuccessFeedbackSampleRate") or 0)
            except ValueError:
                rate = 0.0
            if secrets.randbelow(100) >= rate:
                return
        elif not topic.attributes.get(f"{prefix}FailureFeedbackRoleArn"):
            return
        now = self.clock()
        if sub.protocol == "lambda":
            response = {"lambdaRequestId": str(uuid.uuid4())} if failure is None else {"ErrorCode": failure.code,
                                                                                        "ErrorMessage": str(failure)}
            status = 202 if failure is None else 404
        else:
            response = {"sqsRequestId": str(uuid.uuid4())} if failure is None else {"ErrorCode": failure.code,
                                                                                     "ErrorMessage": str(failure)}
            status = 200 if failure is None else 400
        record = {
            "notification": {"messageMD5Sum": hashlib.md5(text.encode()).hexdigest(),
                             "messageId": message_id, "topicArn": topic.arn,
                             # AWS's records write the publish time as "2023-06-20 12:09:33.046"
                             "timestamp": timestamp.replace("T", " ").rstrip("Z")},
            "delivery": {"deliveryId": str(uuid.uuid4()), "destination": sub.endpoint,
                         "providerResponse": json.dumps(response, separators=(",", ":")),
                         "dwellTimeMs": max(0, int((now - started) * 1000)), "statusCode": status},
            "status": "SUCCESS" if failure is None else "FAILURE",
        }
        group = f"sns/{topic.region}/{topic.account}/{topic.name}" + ("" if failure is None else "/Failure")
        try:
            self.delivery_logs.append(topic.account, topic.region, group, str(uuid.uuid4()),
                                      [(int(now * 1000), json.dumps(record))])
        except RuntimeError:  # the log writer is closed: the server is stopping
            pass

    def _post_notification(self, topic: Topic, sub: Subscription, pub: Publication, text: str, message_id: str,
                           sequence: str | None, timestamp: str) -> None:
        body = text if sub.raw else sqs_envelope(self.endpoint_url, self.signing, topic, sub, pub, text, message_id,
                                                 sequence, timestamp)
        headers = {"x-amz-sns-message-type": "Notification", "x-amz-sns-message-id": message_id,
                   "x-amz-sns-topic-arn": topic.arn, "x-amz-sns-subscription-arn": sub.arn}
        if sub.raw:
            headers["x-amz-sns-rawdelivery"] = "true"
        self.http.post(sub.endpoint, body, headers)

    async def _dead_letter(self, topic: Topic, sub: Subscription, pub: Publication, text: str, message_id: str,
                           sequence: str | None, timestamp: str) -> None:
        """A message its subscriber could not take goes to the subscription's dead-letter queue, if it has
        one (RedrivePolicy), as a queue subscriber would have received it (raw or in the envelope)."""
        policy = sub.attributes.get("RedrivePolicy")
        if not policy:
            return
        target = str(json.loads(policy).get("deadLetterTargetArn") or "")
        try:
            await self.router.deliver(target, self._queue_message(topic, sub, pub, text, message_id, sequence,
                                                                  timestamp, target))
        except DeliveryError as exc:
            log.warning("sns: dead-lettering %s of %s to %s failed: %s (%s)", message_id, sub.arn, target, exc,
                        exc.code)

    def _message(self, topic: Topic, sub: Subscription, pub: Publication, text: str, message_id: str,
                 sequence: str | None, timestamp: str) -> Message:
        if sub.protocol == "lambda":
            event = lambda_event(self.endpoint_url, self.signing, topic, sub, pub, text, message_id, timestamp)
            return Message(body=json.dumps(event), trace_header=pub.trace_header, source_arn=topic.arn)
        return self._queue_message(topic, sub, pub, text, message_id, sequence, timestamp, sub.endpoint)

    def _queue_message(self, topic: Topic, sub: Subscription, pub: Publication, text: str, message_id: str,
                       sequence: str | None, timestamp: str, queue_arn: str) -> Message:
        raw = sub.raw and sub.protocol == "sqs"
        body = text if raw else sqs_envelope(self.endpoint_url, self.signing, topic, sub, pub, text, message_id,
                                             sequence, timestamp)
        fifo_queue = queue_arn.endswith(".fifo")
        # A FIFO queue gets the group and deduplication ids; a standard queue gets the group id a standard
        # topic was published with (AWS keeps it there), never a FIFO topic's.
        return Message(body=body, attributes=dict(pub.attributes or {}) if raw else {},
                       trace_header=pub.trace_header, source_arn=topic.arn,
                       group_id=pub.group_id if fifo_queue or not topic.fifo else None,
                       deduplication_id=pub.dedup_id if fifo_queue and topic.fifo else None)

    def statistics(self) -> dict[str, int]:
        return {"delivered": self.delivered, "failed": self.failed}


def message_for(pub: Publication, protocol: str) -> str:
    """The text a subscriber of `protocol` receives (MessageStructure json picks a per-protocol text)."""
    if pub.structure != "json":
        return pub.message
    doc = json.loads(pub.message)
    value = doc.get(protocol)
    # A protocol's entry that is not a string is ignored: the subscriber gets the default text (AWS).
    return value if isinstance(value, str) else str(doc["default"])


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _attributes_for_envelope(attributes: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, attr in (attributes or {}).items():
        value = attr.get("StringValue")
        if value is None:
            raw = attr.get("BinaryValue", "")
            value = raw if isinstance(raw, str) else base64.b64encode(raw).decode()
        out[name] = {"Type": str(attr["DataType"]), "Value": str(value)}
    return out


def _unsubscribe_url(endpoint: str, sub: Subscription) -> str:
    return f"{endpoint}/?Action=Unsubscribe&SubscriptionArn={sub.arn}"


def sqs_envelope(endpoint: str, key: SigningKey, topic: Topic, sub: Subscription, pub: Publication, text: str,
                 message_id: str, sequence: str | None, timestamp: str) -> str:
    """AWS's notification JSON as an SQS subscriber receives it (AWS pretty-prints it this way), signed with
    Hearth's key (verifiable against the certificate at SigningCertURL)."""
    unsubscribe = _unsubscribe_url(endpoint, sub)
    doc: dict[str, Any] = {"Type": "Notification", "MessageId": message_id}
    if sequence is not None:
        doc["SequenceNumber"] = sequence
    doc["TopicArn"] = topic.arn
    if pub.subject is not None:
        doc["Subject"] = pub.subject
    doc.update({"Message": text, "Timestamp": timestamp})
    if not topic.fifo:
        # AWS signs standard topics' notifications only: a FIFO topic's carry no signature fields.
        version = topic.attributes.get("SignatureVersion", "1")
        doc.update({
            "SignatureVersion": version,
            "Signature": key.sign(doc, NOTIFICATION_FIELDS, version),
            "SigningCertURL": key.cert_url(endpoint),
        })
    doc["UnsubscribeURL"] = unsubscribe
    attributes = _attributes_for_envelope(pub.attributes)
    if attributes:
        doc["MessageAttributes"] = attributes
    return json.dumps(doc, indent=2, separators=(",", " : "), ensure_ascii=False)


def lambda_event(endpoint: str, key: SigningKey, topic: Topic, sub: Subscription, pub: Publication, text: str,
                 message_id: str, timestamp: str) -> dict[str, Any]:
    """AWS's `aws:sns` event for one notification to a function subscriber."""
    version = topic.attributes.get("SignatureVersion", "1")
    signed = {"Type": "Notification", "MessageId": message_id, "TopicArn": topic.arn, "Subject": pub.subject,
              "Message": text, "Timestamp": timestamp}
    return {"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": sub.arn,
        "Sns": {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": topic.arn,
            "Subject": pub.subject,
            "Message": text,
            "Timestamp": timestamp,
            # AWS's events say version 1 whatever the topic's SignatureVersion, though the signature is
            # made with the topic's (SHA256 for 2): recorded by AWS, kept as AWS does.
            "SignatureVersion": "1",
            "Signature": key.sign(signed, NOTIFICATION_FIELDS, version),
            "SigningCertUrl": key.cert_url(endpoint),
            "UnsubscribeUrl": _unsubscribe_url(endpoint, sub),
            "MessageAttributes": _attributes_for_envelope(pub.attributes),
        },
    }]}


def _topic(row: Any) -> Topic:
    return Topic(arn=row["arn"], account=row["account"], region=row["region"], name=row["name"],
                 fifo=bool(row["fifo"]), attributes=json.loads(row["attributes"]), tags=json.loads(row["tags"]))


def _subscription(row: Any) -> Subscription:
    return Subscription(arn=row["arn"], topic_arn=row["topic_arn"], owner=row["owner"], protocol=row["protocol"],
                        endpoint=row["endpoint"], attributes=json.loads(row["attributes"]), principal=row["principal"],
                        pending=bool(row["pending"]), token=row["token"])
