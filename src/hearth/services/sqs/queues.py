"""The queue domain: durable queues and messages (ComponentDb component "sqs"), visibility, delays,
retention, redrive to dead-letter queues, FIFO groups and deduplication, and long-poll wakeups.

It owns every queue and message row and the rules that change them; the API provider (`provider.py`)
and other components (topics, destinations, event source mappings) go through `QueueService`. It never
renders API responses or parses queue URLs' hosts, and it never sleeps while holding the database.

Time comes from an injected clock (seconds since the epoch) so visibility timeouts, delays, retention
and the deduplication window are tested without waiting. Every write is one short transaction that
is durable when it returns (WAL, synchronous=FULL): an acknowledged SendMessage survives `kill -9`.

Message life cycle (one row per message): *delayed* (visible_at in the future, never received) ->
*available* (visible_at <= now) -> *in flight* (received: visible_at = now + visibility, a fresh
receipt token) -> deleted, or back to available when the visibility timeout ends. A receive that
would exceed the redrive policy's maxReceiveCount moves the row to the dead-letter queue instead.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearth.aws.authz.authorizer import ResourcePolicy
from hearth.aws.errors import AwsError
from hearth.services.sqs import errors
from hearth.services.sqs.messages import (
    Attributes,
    attributes_for_api,
    invalid_characters,
    md5_of_attributes,
    md5_of_body,
    message_size,
    normalize_attributes,
    select_attributes,
)
from hearth.store.component import ComponentDb
from hearth.store.engine import Connection, Row

Clock = Callable[[], float]

MIGRATIONS = [
    """
    CREATE TABLE sqs_queues (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        arn TEXT NOT NULL UNIQUE,
        fifo INTEGER NOT NULL,
        attributes TEXT NOT NULL,
        tags TEXT NOT NULL,
        created REAL NOT NULL,
        modified REAL NOT NULL,
        purged_at REAL,
        UNIQUE (account, region, name)
    );
    CREATE TABLE sqs_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue_id INTEGER NOT NULL REFERENCES sqs_queues (id) ON DELETE CASCADE,
        message_id TEXT NOT NULL,
        body TEXT NOT NULL,
        attributes TEXT NOT NULL,
        system TEXT NOT NULL,
        sender_id TEXT NOT NULL,
        sent REAL NOT NULL,
        visible_at REAL NOT NULL,
        receive_count INTEGER NOT NULL DEFAULT 0,
        first_receive REAL,
        receipt TEXT,
        group_id TEXT,
        dedup_id TEXT,
        sequence TEXT
    );
    CREATE INDEX sqs_messages_queue ON sqs_messages (queue_id, id);
    CREATE INDEX sqs_messages_visible ON sqs_messages (queue_id, visible_at);
    CREATE UNIQUE INDEX sqs_messages_receipt ON sqs_messages (receipt);
    CREATE TABLE sqs_dedup (
        queue_id INTEGER NOT NULL REFERENCES sqs_queues (id) ON DELETE CASCADE,
        scope TEXT NOT NULL,
        dedup_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        sequence TEXT,
        expires REAL NOT NULL,
        PRIMARY KEY (queue_id, scope, dedup_id)
    );
    """,
    # The deduplication scope a FIFO queue was created with: it stays in force when DeduplicationScope is
    # changed later (recorded by AWS: after a change to messageGroup, ids still deduplicate queue-wide).
    """
    ALTER TABLE sqs_queues ADD COLUMN dedup_scope TEXT NOT NULL DEFAULT 'queue';
    """,
    # Message move tasks (move_tasks.py): one row per task, newest first by `started`.
    """
    CREATE TABLE sqs_move_tasks (
        task_id TEXT PRIMARY KEY,
        source_arn TEXT NOT NULL,
        destination_arn TEXT,
        max_per_second INTEGER,
        status TEXT NOT NULL,
        to_move INTEGER NOT NULL,
        moved INTEGER NOT NULL,
        started REAL NOT NULL,
        failure TEXT
    );
    CREATE INDEX sqs_move_tasks_source ON sqs_move_tasks (source_arn, started);
    """,
]

DEDUP_WINDOW_S = 300.0
PURGE_INTERVAL_S = 60.0
# 1 MiB per message and per batch: AWS's limits since August 2025 (recorded by LocalStack's AWS tests).
MAX_BATCH_BYTES = 1_048_576
# 20 digits, as AWS's sequence numbers are; no long run of zeros, so a number never looks like an account id.
SEQUENCE_BASE = 18_849_496_460_467_696_128

# Settable attributes: name -> (default, validator). Ranges are AWS's.
_INT_RANGES: dict[str, tuple[int, int]] = {
    "DelaySeconds": (0, 900),
    "MaximumMessageSize": (1024, 1_048_576),
    "MessageRetentionPeriod": (60, 1_209_600),
    "ReceiveMessageWaitTimeSeconds": (0, 20),
    "VisibilityTimeout": (0, 43_200),
    "KmsDataKeyReusePeriodSeconds": (60, 86_400),
}
DEFAULTS: dict[str, str] = {
    "VisibilityTimeout": "30",
    "MaximumMessageSize": "1048576",
    "MessageRetentionPeriod": "345600",
    "DelaySeconds": "0",
    "ReceiveMessageWaitTimeSeconds": "0",
    "SqsManagedSseEnabled": "true",
}
FIFO_DEFAULTS: dict[str, str] = {
    "FifoQueue": "true",
    "ContentBasedDeduplication": "false",
    "DeduplicationScope": "queue",
    "FifoThroughputLimit": "perQueue",
}
_FIFO_ONLY = {"ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"}
_SETTABLE = set(_INT_RANGES) | {"Policy", "RedrivePolicy", "RedriveAllowPolicy", "KmsMasterKeyId",
                                "SqsManagedSseEnabled"} | _FIFO_ONLY
_COMPUTED = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed", "CreatedTimestamp", "LastModifiedTimestamp", "QueueArn")
READABLE = frozenset(_SETTABLE | set(_COMPUTED) | {"FifoQueue", "All"})
SYSTEM_ATTRIBUTES = ("SenderId", "SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp",
                     "SequenceNumber", "MessageDeduplicationId", "MessageGroupId", "AWSTraceHeader",
                     "DeadLetterQueueSourceArn")


@dataclass(frozen=True)
class Queue:
    id: int
    account: str
    region: str
    name: str
    arn: str
    fifo: bool
    attributes: dict[str, str]
    tags: dict[str, str]
    created: float
    modified: float
    purged_at: float | None
    dedup_scope: str = "queue"  # as created (see MIGRATIONS)

    def int_attr(self, name: str) -> int:
        return int(self.attributes.get(name, DEFAULTS.get(name, "0")))

    @property
    def content_based_dedup(self) -> bool:
        return self.attributes.get("ContentBasedDeduplication") == "true"

    def redrive(self) -> tuple[str, int] | None:
        raw = self.attributes.get("RedrivePolicy")
        if not raw:
            return None
        doc = json.loads(raw)
        return str(doc["deadLetterTargetArn"]), int(doc["maxReceiveCount"])


@dataclass(frozen=True)
class SendResult:
    message_id: str
    md5_of_body: str
    md5_of_attributes: str | None
    md5_of_system_attributes: str | None
    sequence_number: str | None


@dataclass
class OutgoingMessage:
    """One message to send, already carrying whatever the caller knows."""

    body: str
    attributes: dict[str, Any] | None = None  # SQS shape; BinaryValue as bytes or base64 text
    delay: int | None = None
    group_id: str | None = None
    dedup_id: str | None = None
    trace_header: str | None = None
    system_attributes: dict[str, Any] | None = None
    sender_id: str = ""
    extra_system: dict[str, str] = field(default_factory=dict)


def queue_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:sqs:{region}:{account}:{name}"


def parse_queue_arn(arn: str) -> tuple[str, str, str] | None:
    """`arn:aws:sqs:region:account:name` -> (region, account, name)."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not parts[5]:
        return None
    return parts[3], parts[4], parts[5]


def valid_queue_name(name: str, fifo: bool) -> bool:
    base = name[:-5] if fifo and name.endswith(".fifo") else name
    if fifo and not name.endswith(".fifo"):
        return False
    if not 1 <= len(name) <= 80 or not base:
        return False
    return all(c.isascii() and (c.isalnum() or c in "-_") for c in base)


def _query_code(err: AwsError) -> str:
    header = err.headers.get("x-amzn-query-error")
    return header.split(";", 1)[0] if header else err.code


class QueueService:
    """Durable queues. Methods are synchronous except the waits; call them on the event loop thread."""

    def __init__(self, data_dir: Path, *, clock: Clock = time.time, recheck_s: float | None = None,
                 announce: Callable[[str], None] | None = None) -> None:
        self.db = ComponentDb(data_dir, "sqs", MIGRATIONS)
        self.clock = clock
        # In a cluster a change through another node reaches the waiters here as a notice (`wake`, from
        # hearth.cluster.notices); a long poll also looks again at least this often, in case a notice was
        # lost (None: one node, every send wakes its waiters).
        self._recheck_s = recheck_s
        self._announce = announce  # tells the other nodes of a change on a queue (a cluster)
        self._events: dict[str, asyncio.Event] = {}
        self._closed = False  # closing: long polls answer at once with what is there
        self._db_closed = False

    def stop_waiting(self) -> None:
        """The server is stopping: every long poll answers now (with what is there, or empty) and new
        ones do not wait, so in-flight ReceiveMessage calls do not hold the shutdown for up to 20 s."""
        self._closed = True
        for event in self._events.values():
            event.set()
        self._events.clear()

    @property
    def closing(self) -> bool:
        """The server is stopping: background work (move tasks) ends."""
        return self._closed

    def close(self) -> None:
        self.stop_waiting()
        self._db_closed = True
        self.db.close()

    # -- queues -----------------------------------------------------------------------------------

    def create_queue(self, account: str, region: str, name: str, attributes: dict[str, str],
                     tags: dict[str, str] | None = None) -> Queue:
        fifo_raw = attributes.get("FifoQueue")
        # Booleans are read without regard to case ("True" creates a FIFO queue, recorded by AWS).
        if fifo_raw is not None and fifo_raw.lower() not in ("true", "false"):
            raise errors.invalid_attribute_value("FifoQueue")
        fifo = fifo_raw is not None and fifo_raw.lower() == "true"
        if fifo_raw is not None and not fifo and not name.endswith(".fifo"):
            raise errors.invalid_attribute_name("FifoQueue")  # a standard queue takes no FifoQueue, even "false"
        if not valid_queue_name(name, fifo):
            if fifo:
                raise errors.invalid_parameter(
                    "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, "
                    "must end with .fifo suffix and be 1 to 80 in length.")
            raise errors.invalid_parameter(
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
        arn = queue_arn(region, account, name)
        requested = {k: v for k, v in attributes.items() if k != "FifoQueue"}
        existing = self.find(account, region, name)
        if existing is not None:
            for key, value in attributes.items():
                current = existing.attributes.get(key, "false" if key == "FifoQueue" else None)
                if key == "FifoQueue":
                    current = "true" if existing.fifo else "false"
                    value = value.lower()
                if current != self._normalize_value(key, value):
                    raise errors.queue_name_exists(key)
            return existing
        clean = self._validate_attributes(requested, fifo=fifo, arn=arn, creating=True, account=account)
        effective = {**DEFAULTS, **(FIFO_DEFAULTS if fifo else {}), **clean}
        if tags and len(tags) > 50:
            raise errors.too_many_tags()
        now = self.clock()
        with self.db.tx() as db:
            db.execute("INSERT INTO sqs_queues (account, region, name, arn, fifo, attributes, tags, created, "
                       "modified, dedup_scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (account, region, name, arn, int(fifo), json.dumps(effective), json.dumps(tags or {}),
                        now, now, effective.get("DeduplicationScope", "queue")))
        created = self.find(account, region, name)
        assert created is not None
        return created

    def find(self, account: str, region: str, name: str) -> Queue | None:
        rows = self.db.query("SELECT * FROM sqs_queues WHERE account = ? AND region = ? AND name = ?",
                             (account, region, name))
        return _queue(rows[0]) if rows else None

    def get(self, account: str, region: str, name: str) -> Queue:
        queue = self.find(account, region, name)
        if queue is None:
            raise errors.queue_does_not_exist()
        return queue

    def by_arn(self, arn: str) -> Queue | None:
        rows = self.db.query("SELECT * FROM sqs_queues WHERE arn = ?", (arn,))
        return _queue(rows[0]) if rows else None

    def resource_policy(self, arn: str) -> ResourcePolicy | None:
        """The queue's owner and its `Policy` attribute, for the gateway's authorizer."""
        queue = self.by_arn(arn)
        return None if queue is None else ResourcePolicy(queue.account, queue.attributes.get("Policy") or None)

    def require_arn(self, arn: str, account: str | None = None) -> Queue:
        queue = self.by_arn(arn)
        if queue is None or (account is not None and queue.account != account):
            raise errors.queue_does_not_exist()
        return queue

    def list_queues(self, account: str, region: str, prefix: str = "") -> list[Queue]:
        rows = self.db.query("SELECT * FROM sqs_queues WHERE account = ? AND region = ? AND substr(name, 1, ?) = ? "
                             "ORDER BY name", (account, region, len(prefix), prefix))
        return [_queue(r) for r in rows]

    def dead_letter_sources(self, dlq: Queue) -> list[Queue]:
        rows = self.db.query("SELECT * FROM sqs_queues WHERE account = ? AND region = ? ORDER BY name",
                             (dlq.account, dlq.region))
        return [q for q in map(_queue, rows) if (r := q.redrive()) is not None and r[0] == dlq.arn]

    def delete_queue(self, queue: Queue) -> None:
        with self.db.tx() as db:
            db.execute("DELETE FROM sqs_messages WHERE queue_id = ?", (queue.id,))
            db.execute("DELETE FROM sqs_dedup WHERE queue_id = ?", (queue.id,))
            db.execute("DELETE FROM sqs_queues WHERE id = ?", (queue.id,))
        self._notify(queue.arn)  # long polls on it end with QueueDoesNotExist

    def set_attributes(self, queue: Queue, attributes: dict[str, str]) -> Queue:
        clean = self._validate_attributes(attributes, fifo=queue.fifo, arn=queue.arn, creating=False,
                                          account=queue.account)
        merged = dict(queue.attributes)
        for key, value in clean.items():
            if value == "" and key in ("RedrivePolicy", "RedriveAllowPolicy", "Policy", "KmsMasterKeyId"):
                merged.pop(key, None)
            else:
                merged[key] = value
        if clean.get("KmsMasterKeyId") == "":
            # The data key period belongs to the KMS key: removing the key removes it (recorded by AWS).
            merged.pop("KmsDataKeyReusePeriodSeconds", None)
        with self.db.tx() as db:
            db.execute("UPDATE sqs_queues SET attributes = ?, modified = ? WHERE id = ?",
                       (json.dumps(merged), self.clock(), queue.id))
        self._notify(queue.arn)  # a shorter delay or a redrive change can make messages receivable
        return self.require_arn(queue.arn)

    def get_attributes(self, queue: Queue, names: Iterable[str]) -> dict[str, str]:
        wanted = set(names)
        for name in wanted:
            if name not in READABLE:
                raise errors.invalid_attribute_name(name)
        everything = "All" in wanted
        out: dict[str, str] = {}
        counts = self.counts(queue) if everything or wanted & set(_COMPUTED[:3]) else {}
        computed: dict[str, str] = {
            "QueueArn": queue.arn,
            "CreatedTimestamp": str(int(queue.created)),
            "LastModifiedTimestamp": str(int(queue.modified)),
            **{k: str(v) for k, v in counts.items()},
        }
        for key, value in {**computed, **queue.attributes}.items():
            if everything or key in wanted:
                out[key] = value
        return out

    def counts(self, queue: Queue) -> dict[str, int]:
        now = self.clock()
        self._expire(queue, now)
        rows = self.db.query(
            # CASE, not SUM of a comparison: PostgreSQL has no SUM(boolean).
            "SELECT SUM(CASE WHEN visible_at <= ? THEN 1 ELSE 0 END) AS visible, "
            "SUM(CASE WHEN visible_at > ? AND receive_count > 0 THEN 1 ELSE 0 END) AS inflight, "
            "SUM(CASE WHEN visible_at > ? AND receive_count = 0 THEN 1 ELSE 0 END) AS delayed "
            "FROM sqs_messages WHERE queue_id = ?",
            (now, now, now, queue.id))
        row = rows[0]
        return {"ApproximateNumberOfMessages": int(row["visible"] or 0),
                "ApproximateNumberOfMessagesNotVisible": int(row["inflight"] or 0),
                "ApproximateNumberOfMessagesDelayed": int(row["delayed"] or 0)}

    def tag(self, queue: Queue, tags: dict[str, str]) -> None:
        merged = {**queue.tags, **tags}
        if len(merged) > 50:
            raise errors.too_many_tags()
        with self.db.tx() as db:
            db.execute("UPDATE sqs_queues SET tags = ? WHERE id = ?", (json.dumps(merged), queue.id))

    def untag(self, queue: Queue, keys: Iterable[str]) -> None:
        remaining = {k: v for k, v in queue.tags.items() if k not in set(keys)}
        with self.db.tx() as db:
            db.execute("UPDATE sqs_queues SET tags = ? WHERE id = ?", (json.dumps(remaining), queue.id))

    def purge(self, queue: Queue) -> None:
        now = self.clock()
        if queue.purged_at is not None and now - queue.purged_at < PURGE_INTERVAL_S:
            raise errors.purge_in_progress(queue.arn)
        with self.db.tx() as db:
            db.execute("DELETE FROM sqs_messages WHERE queue_id = ? AND sent <= ?", (queue.id, now))
            # A purge forgets the deduplication ids too: the same id is accepted again (recorded by AWS).
            db.execute("DELETE FROM sqs_dedup WHERE queue_id = ?", (queue.id,))
            db.execute("UPDATE sqs_queues SET purged_at = ? WHERE id = ?", (now, queue.id))

    # -- attribute validation ---------------------------------------------------------------------

    @staticmethod
    def _normalize_value(key: str, value: str) -> str:
        if key in ("RedrivePolicy", "RedriveAllowPolicy") and value:
            try:
                doc = json.loads(value)
            except ValueError:
                return value
            if key == "RedrivePolicy" and isinstance(doc, dict) and "maxReceiveCount" in doc:
                doc["maxReceiveCount"] = int(doc["maxReceiveCount"])
            return json.dumps(doc, separators=(",", ":"))
        return value

    def _validate_attributes(self, attributes: dict[str, str], *, fifo: bool, arn: str, creating: bool,
                             account: str) -> dict[str, str]:
        clean: dict[str, str] = {}
        for key, value in attributes.items():
            if key == "FifoQueue" and fifo and not creating:
                # A FIFO queue may be told it is one; it cannot become a standard queue.
                if value.lower() != "true":
                    raise errors.invalid_attribute_value("FifoQueue", "Modifying queue type is not supported.")
                continue
            if key in ("DeduplicationScope", "FifoThroughputLimit") and not fifo:
                raise errors.sqs_error("InvalidAttributeName", "InvalidAttributeName",
                                       f"You can specify the {key} only when FifoQueue is set to true.")
            if key not in _SETTABLE or (key in _FIFO_ONLY and not fifo):
                raise errors.invalid_attribute_name(key)
            if key in _INT_RANGES:
                low, high = _INT_RANGES[key]
                if not value.strip().lstrip("-").isdigit() or not low <= int(value) <= high:
                    raise errors.invalid_attribute_value(key)
                clean[key] = str(int(value))
            elif key in ("ContentBasedDeduplication", "SqsManagedSseEnabled"):
                if value.lower() not in ("true", "false"):
                    raise errors.invalid_attribute_value(key)
                clean[key] = value.lower()
            elif key == "DeduplicationScope":
                if value not in ("messageGroup", "queue"):
                    raise errors.invalid_attribute_value(key)
                clean[key] = value
            elif key == "FifoThroughputLimit":
                if value not in ("perQueue", "perMessageGroupId"):
                    raise errors.invalid_attribute_value(key)
                clean[key] = value
            elif key == "RedrivePolicy":
                clean[key] = self._redrive_policy(value, fifo=fifo, source_arn=arn, account=account)
            elif key == "RedriveAllowPolicy":
                clean[key] = _redrive_allow_policy(value)
            elif key == "Policy":
                if value:
                    try:
                        json.loads(value)
                    except ValueError:
                        raise errors.invalid_attribute_value(key) from None
                clean[key] = value
            else:
                clean[key] = value
        if clean.get("FifoThroughputLimit") == "perMessageGroupId" and clean.get("DeduplicationScope") == "queue":
            raise errors.invalid_attribute_value("FifoThroughputLimit",
                                                 "The perMessageGroupId value is allowed only when the value "
                                                 "for DeduplicationScope is messageGroup")
        return clean

    def _redrive_policy(self, raw: str, *, fifo: bool, source_arn: str, account: str) -> str:
        if raw == "":
            return ""

        def bad(reason: str) -> AwsError:
            return errors.invalid_parameter_value("RedrivePolicy", raw, reason)

        try:
            doc = json.loads(raw)
        except ValueError:
            raise bad("Redrive policy is not a valid JSON map.") from None
        if not isinstance(doc, dict):
            raise bad("Redrive policy is not a valid JSON map.")
        for key in ("deadLetterTargetArn", "maxReceiveCount"):
            if key not in doc:
                raise bad(f"Redrive policy does not contain mandatory attribute: {key}.")
        unknown = set(doc) - {"deadLetterTargetArn", "maxReceiveCount"}
        if unknown:
            raise bad("Only following attributes are supported: [deadLetterTargetArn, maxReceiveCount].")
        try:
            count = int(doc["maxReceiveCount"])
        except (TypeError, ValueError):
            count = 0
        if not 1 <= count <= 1000:
            raise bad(f"Invalid value for maxReceiveCount: {doc['maxReceiveCount']}, valid values are from 1 to "
                      "1000 both inclusive.")
        target = str(doc["deadLetterTargetArn"])
        dlq = self.by_arn(target)
        # A queue may be its own dead-letter queue (AWS accepts it).
        if dlq is None or dlq.account != account:
            raise bad("Dead letter target does not exist.")
        if dlq.fifo != fifo:
            raise bad("Dead-letter queue must be same type of queue as the source.")
        allow = dlq.attributes.get("RedriveAllowPolicy")
        if allow:
            policy = json.loads(allow)
            permission = policy.get("redrivePermission")
            if permission == "denyAll" or (permission == "byQueue"
                                           and source_arn not in policy.get("sourceQueueArns", [])):
                raise bad("Dead-letter queue does not allow this source queue (RedriveAllowPolicy).")
        return json.dumps({"deadLetterTargetArn": target, "maxReceiveCount": count}, separators=(",", ":"))

    # -- messages ---------------------------------------------------------------------------------

    def send(self, queue: Queue, message: OutgoingMessage) -> SendResult:
        result = self.send_batch(queue, [message])[0]
        if isinstance(result, AwsError):
            raise result
        return result

    def send_batch(self, queue: Queue, messages: list[OutgoingMessage]) -> list[SendResult | AwsError]:
        """Send several messages in one transaction; an entry that breaks a rule gets its error instead."""
        now = self.clock()
        prepared: list[tuple[OutgoingMessage, Attributes, dict[str, str]] | AwsError] = []
        for message in messages:
            try:
                prepared.append(self._check(queue, message))
            except AwsError as err:
                prepared.append(err)
        results: list[SendResult | AwsError] = []
        with self.db.tx() as db:
            self._expire_dedup(db, now)
            for item in prepared:
                if isinstance(item, AwsError):
                    results.append(item)
                    continue
                results.append(self._insert(db, queue, now, *item))
        if any(isinstance(r, SendResult) for r in results):
            self._notify(queue.arn)
        return results

    def _check(self, queue: Queue, message: OutgoingMessage,
               ) -> tuple[OutgoingMessage, Attributes, dict[str, str]]:
        if message.body == "":
            raise errors.missing_parameter("MessageBody")
        if invalid_characters(message.body):
            raise errors.sqs_error("InvalidMessageContents", "InvalidMessageContents",
                                   "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | "
                                   "#x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
        attributes = normalize_attributes(message.attributes)
        system: dict[str, str] = dict(message.extra_system)
        if message.system_attributes:
            for name, attr in message.system_attributes.items():
                if name != "AWSTraceHeader" or attr.get("DataType") != "String" or not attr.get("StringValue"):
                    raise errors.invalid_parameter(f"Message system attribute name '{name}' is invalid.")
                system["AWSTraceHeader"] = str(attr["StringValue"])
        elif message.trace_header:
            system["AWSTraceHeader"] = message.trace_header
        limit = queue.int_attr("MaximumMessageSize")
        if message_size(message.body, attributes) > limit:
            raise errors.invalid_parameter(
                f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes.")
        if message.delay is not None:
            if queue.fifo and message.delay != 0:  # 0 is accepted: it asks for no delay
                raise errors.invalid_parameter_value(
                    "DelaySeconds", message.delay,
                    "The request include parameter that is not valid for this queue type.")
            if not 0 <= message.delay <= 900:
                raise errors.invalid_parameter_value("DelaySeconds", message.delay,
                                                     "DelaySeconds must be >= 0 and <= 900.")
        if queue.fifo:
            if not message.group_id:
                raise errors.missing_parameter("MessageGroupId")
            if message.dedup_id == "":  # given but empty: invalid, not missing (recorded by AWS)
                raise _invalid_id("MessageDeduplicationId", "")
            if not message.dedup_id and not queue.content_based_dedup:
                raise errors.invalid_parameter("The queue should either have ContentBasedDeduplication enabled "
                                               "or MessageDeduplicationId provided explicitly")
        elif message.dedup_id:
            raise errors.invalid_parameter_value("MessageDeduplicationId", message.dedup_id,
                                                 "The request include parameter that is not valid for this "
                                                 "queue type.")
        for name, value in (("MessageGroupId", message.group_id), ("MessageDeduplicationId", message.dedup_id)):
            if value is not None and (not 1 <= len(value) <= 128 or
                                      any(not (33 <= ord(c) <= 126) for c in value)):
                raise _invalid_id(name, value)
        return message, attributes, system

    def _insert(self, db: Connection, queue: Queue, now: float, message: OutgoingMessage,
                attributes: Attributes, system: dict[str, str]) -> SendResult:
        md5_attrs = md5_of_attributes(attributes)
        md5_system = md5_of_attributes({"AWSTraceHeader": {"DataType": "String",
                                                           "StringValue": system["AWSTraceHeader"]}}
                                       ) if "AWSTraceHeader" in system and message.system_attributes else None
        dedup_id = message.dedup_id
        scope = ""
        if queue.fifo and not dedup_id:
            dedup_id = hashlib.sha256(message.body.encode("utf-8")).hexdigest()
        if queue.fifo:
            assert dedup_id is not None
            by_group = queue.dedup_scope == "messageGroup"
            scope = (message.group_id or "") if by_group else ""
            seen = db.execute("SELECT message_id, sequence FROM sqs_dedup WHERE queue_id = ? AND scope = ? AND "
                              "dedup_id = ? AND expires > ?", (queue.id, scope, dedup_id, now)).fetchone()
            if seen is not None:
                return SendResult(seen["message_id"], md5_of_body(message.body), md5_attrs, md5_system,
                                  seen["sequence"])
        message_id = str(uuid.uuid4())
        # A FIFO queue's messages take the queue's delay (a message may only say 0).
        delay = message.delay if message.delay is not None and not queue.fifo else queue.int_attr("DelaySeconds")
        row_id = db.execute(
            "INSERT INTO sqs_messages (queue_id, message_id, body, attributes, system, sender_id, sent, visible_at, "
            "group_id, dedup_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (queue.id, message_id, message.body, json.dumps(attributes), json.dumps(system), message.sender_id,
             now, now + delay, message.group_id, dedup_id if queue.fifo else None)).fetchall()[0]["id"]
        sequence: str | None = None
        if queue.fifo:
            sequence = str(SEQUENCE_BASE + int(row_id))
            db.execute("UPDATE sqs_messages SET sequence = ? WHERE id = ?", (sequence, row_id))
            db.execute("INSERT INTO sqs_dedup (queue_id, scope, dedup_id, message_id, sequence, expires) "
                       "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (queue_id, scope, dedup_id) DO UPDATE SET "
                       "message_id = excluded.message_id, sequence = excluded.sequence, expires = excluded.expires",
                       (queue.id, scope, dedup_id, message_id, sequence, now + DEDUP_WINDOW_S))
        return SendResult(message_id, md5_of_body(message.body), md5_attrs, md5_system, sequence)

    def receive_now(self, queue: Queue, max_messages: int = 1, visibility: int | None = None, *,
                    attribute_names: Iterable[str] = (), message_attribute_names: Iterable[str] = (),
                    ) -> list[dict[str, Any]]:
        """Receive up to `max_messages` available messages at once (no waiting), as the API shapes them."""
        now = self.clock()
        timeout = queue.int_attr("VisibilityTimeout") if visibility is None else visibility
        redrive = queue.redrive()
        dlq = self.by_arn(redrive[0]) if redrive else None
        self._expire(queue, now)
        picked: list[Row] = []
        moved = False
        # Not flushed to disk before answering: a receive lost to a power failure only makes its messages
        # visible again early (at-least-once allows it), and waiting for the disk here was most of the
        # SendMessage -> handler latency of queue mappings. A redrive move commits with it (the same rule:
        # lost, the message is received once more from its source queue). It survives kill -9.
        with self.db.tx(flush=False) as db:
            if queue.fifo:
                picked, moved = self._pick_fifo(db, queue, now, max_messages, redrive, dlq)
            else:
                last_id = 0
                while len(picked) < max_messages:
                    rows = db.execute("SELECT * FROM sqs_messages WHERE queue_id = ? AND visible_at <= ? AND id > ? "
                                      "ORDER BY id LIMIT 64", (queue.id, now, last_id)).fetchall()
                    if not rows:
                        break
                    for row in rows:
                        last_id = row["id"]
                        if redrive and dlq is not None and row["receive_count"] >= redrive[1]:
                            self._move_to_dlq(db, row, queue, dlq, now)
                            moved = True
                            continue
                        picked.append(row)
                        if len(picked) >= max_messages:
                            break
            out: list[Row] = []
            for row in picked:
                receipt = _new_receipt(row["message_id"])
                db.execute("UPDATE sqs_messages SET visible_at = ?, receive_count = receive_count + 1, "
                           "first_receive = COALESCE(first_receive, ?), receipt = ? WHERE id = ?",
                           (now + timeout, now, receipt, row["id"]))
                out.append(db.execute("SELECT * FROM sqs_messages WHERE id = ?", (row["id"],)).fetchone())
        if moved and dlq is not None:
            self._notify(dlq.arn)
        names = set(attribute_names)
        return [self._render(row, names, list(message_attribute_names)) for row in out]

    def _pick_fifo(self, db: Connection, queue: Queue, now: float, max_messages: int,
                   redrive: tuple[str, int] | None, dlq: Queue | None) -> tuple[list[Row], bool]:
        """The messages a FIFO receive hands out, and whether some moved to the dead-letter queue.

        Per group, in send order: the leading messages that are visible, up to the first one that is not
        (in flight or delayed): so a group is locked while its first message is in flight, and opens again
        as soon as that message is visible again, even if later ones are still in flight (recorded by AWS).
        Groups come in the order their first handed-out message became visible (a group whose messages
        were received and became visible again goes behind the groups never received), ties by send order.
        """
        rows = db.execute("SELECT * FROM sqs_messages WHERE queue_id = ? ORDER BY id LIMIT ?",
                          (queue.id, _FIFO_SCAN)).fetchall()
        groups: dict[str, list[Row]] = {}
        blocked: set[str] = set()
        moved = False
        for row in rows:
            group = row["group_id"]
            if group in blocked:
                continue
            if row["visible_at"] > now:
                blocked.add(group)
                continue
            if redrive and dlq is not None and row["receive_count"] >= redrive[1]:
                self._move_to_dlq(db, row, queue, dlq, now)
                moved = True
                continue
            groups.setdefault(group, []).append(row)
        ordered = sorted(groups.values(), key=lambda g: (g[0]["visible_at"], g[0]["id"]))
        return [row for group_rows in ordered for row in group_rows][:max_messages], moved

    def move_message(self, source_arn: str, destination_arn: str | None) -> bool:
        """A move task's step: the source's oldest available message goes to `destination_arn`, or back to
        the queue it was dead-lettered from; False when none is available. QueueDoesNotExist when either
        queue is gone."""
        source = self.by_arn(source_arn)
        if source is None:
            raise errors.queue_does_not_exist()
        now = self.clock()
        with self.db.tx() as db:
            row = db.execute("SELECT * FROM sqs_messages WHERE queue_id = ? AND visible_at <= ? ORDER BY id LIMIT 1",
                             (source.id, now)).fetchone()
            if row is None:
                return False
            system = json.loads(row["system"])
            origin = system.pop("DeadLetterQueueSourceArn", None)
            target_arn = destination_arn or origin
            rows = db.execute("SELECT id FROM sqs_queues WHERE arn = ?", (target_arn,)).fetchall() \
                if target_arn else []
            if not rows:
                raise errors.queue_does_not_exist()
            # A fresh start in its new queue: visible now, never received there.
            db.execute("UPDATE sqs_messages SET queue_id = ?, visible_at = ?, receive_count = 0, first_receive = NULL, "
                       "receipt = NULL, system = ? WHERE id = ?", (rows[0]["id"], now, json.dumps(system), row["id"]))
        assert target_arn is not None
        self._notify(target_arn)
        return True

    def _move_to_dlq(self, db: Connection, row: Row, source: Queue, dlq: Queue, now: float) -> None:
        system = json.loads(row["system"])
        system["DeadLetterQueueSourceArn"] = source.arn
        # The message keeps its id, body, attributes and original SentTimestamp (retention counts from it).
        # It keeps its receive count too: received from the dead-letter queue, a message moved after one
        # receive says ApproximateReceiveCount 2 (recorded by AWS).
        db.execute("UPDATE sqs_messages SET queue_id = ?, visible_at = ?, receipt = NULL, system = ? WHERE id = ?",
                   (dlq.id, now, json.dumps(system), row["id"]))

    def _render(self, row: Row, names: set[str], message_attribute_names: list[str]) -> dict[str, Any]:
        attributes: Attributes = json.loads(row["attributes"])
        system: dict[str, str] = json.loads(row["system"])
        selected = select_attributes(attributes, message_attribute_names)
        out: dict[str, Any] = {
            "MessageId": row["message_id"],
            "ReceiptHandle": row["receipt"],
            "MD5OfBody": md5_of_body(row["body"]),
            "Body": row["body"],
        }
        every = "All" in names
        system_values: dict[str, str | None] = {
            "SenderId": row["sender_id"],
            "SentTimestamp": str(int(row["sent"] * 1000)),
            "ApproximateReceiveCount": str(row["receive_count"]),
            "ApproximateFirstReceiveTimestamp": str(int(row["first_receive"] * 1000)),
            "SequenceNumber": row["sequence"],
            "MessageDeduplicationId": row["dedup_id"],
            "MessageGroupId": row["group_id"],
            "AWSTraceHeader": system.get("AWSTraceHeader"),
            "DeadLetterQueueSourceArn": system.get("DeadLetterQueueSourceArn"),
        }
        chosen = {k: v for k, v in system_values.items() if v is not None and (every or k in names)}
        if chosen:
            out["Attributes"] = chosen
        if selected:
            out["MD5OfMessageAttributes"] = md5_of_attributes(selected)
            out["MessageAttributes"] = attributes_for_api(selected)
        return out

    def delete_message(self, queue: Queue, receipt: str, *, flush: bool = True) -> None:
        _check_receipt(receipt)
        with self.db.tx(flush=flush) as db:
            if queue.fifo:
                # A FIFO message's handle expires with its visibility timeout (recorded by AWS).
                row = db.execute("SELECT visible_at FROM sqs_messages WHERE queue_id = ? AND receipt = ?",
                                 (queue.id, receipt)).fetchone()
                if row is not None and row["visible_at"] <= self.clock():
                    raise errors.invalid_parameter_value("ReceiptHandle", receipt, "The receipt handle has expired.")
            # A stale handle (the message was received again since) succeeds without deleting, as in AWS.
            db.execute("DELETE FROM sqs_messages WHERE queue_id = ? AND receipt = ?", (queue.id, receipt))
        if queue.fifo:
            self._notify(queue.arn)  # the deleted message may have been its group's lock

    def change_visibility(self, queue: Queue, receipt: str, timeout: int) -> None:
        _check_receipt(receipt)
        if not 0 <= timeout <= 43_200:
            raise errors.invalid_parameter_value("VisibilityTimeout", timeout,
                                                 "Must be between 0 and 43200, if provided.")
        now = self.clock()
        with self.db.tx() as db:
            row = db.execute("SELECT id, visible_at FROM sqs_messages WHERE queue_id = ? AND receipt = ?",
                             (queue.id, receipt)).fetchone()
            if row is None and not queue.fifo:
                # A standard queue takes an earlier handle of a message received again since (recorded by
                # AWS: the first receive's handle ends the second receive's visibility timeout).
                row = db.execute("SELECT id, visible_at FROM sqs_messages WHERE queue_id = ? AND message_id = ? "
                                 "AND receive_count > 0", (queue.id, _receipt_message_id(receipt))).fetchone()
            if row is None:
                # The handle is well-formed but its message is gone (deleted): AWS's text for that.
                raise errors.invalid_parameter_value("ReceiptHandle", receipt, "Message does not exist or is not "
                                                     "available for visibility timeout change.")
            # A message whose visibility timeout expired may still be changed with its latest handle (AWS).
            db.execute("UPDATE sqs_messages SET visible_at = ? WHERE id = ?", (now + timeout, row["id"]))
        if timeout == 0:
            self._notify(queue.arn)

    # -- housekeeping -----------------------------------------------------------------------------

    def _expire(self, queue: Queue, now: float) -> None:
        cutoff = now - queue.int_attr("MessageRetentionPeriod")
        if self.db.query("SELECT 1 FROM sqs_messages WHERE queue_id = ? AND sent <= ? LIMIT 1", (queue.id, cutoff)):
            with self.db.tx() as db:
                db.execute("DELETE FROM sqs_messages WHERE queue_id = ? AND sent <= ?", (queue.id, cutoff))

    @staticmethod
    def _expire_dedup(db: Connection, now: float) -> None:
        db.execute("DELETE FROM sqs_dedup WHERE expires <= ?", (now,))

    def next_visible_in(self, queue: Queue) -> float | None:
        """Seconds until the next delayed or in-flight message becomes receivable, if any."""
        now = self.clock()
        rows = self.db.query("SELECT MIN(visible_at) AS t FROM sqs_messages WHERE queue_id = ? AND visible_at > ?",
                             (queue.id, now))
        value = rows[0]["t"]
        return None if value is None else max(0.0, float(value) - now)

    # -- waiting ----------------------------------------------------------------------------------

    def _notify(self, arn: str) -> None:
        self.wake(arn)
        if self._announce is not None:
            self._announce(arn)

    def wake(self, arn: str) -> None:
        """Wake this node's waiters on the queue `arn` (they re-read it)."""
        event = self._events.pop(arn, None)
        if event is not None:
            event.set()

    async def wait_for_messages(self, queue_arn: str, timeout: float) -> bool:
        """Wait until something may have become receivable on the queue (a send, a visibility reset, a
        deletion of the queue) or `timeout` seconds pass. True if woken. Callers re-check by receiving."""
        if self._closed or timeout <= 0:
            return False
        if self._recheck_s is not None:
            timeout = min(timeout, self._recheck_s)  # a cluster: another node's send wakes nobody here
        event = self._events.get(queue_arn)
        if event is None:
            event = self._events[queue_arn] = asyncio.Event()
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def receive_wait(self, queue: Queue, max_messages: int, visibility: int | None, wait_s: float, *,
                           attribute_names: Iterable[str] = (), message_attribute_names: Iterable[str] = (),
                           ) -> list[dict[str, Any]]:
        """Long polling: return as soon as a message is receivable, or [] after `wait_s` seconds."""
        names, message_names = list(attribute_names), list(message_attribute_names)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            current = self.require_arn(queue.arn)  # deleted meanwhile -> QueueDoesNotExist
            found = self.receive_now(current, max_messages, visibility, attribute_names=names,
                                     message_attribute_names=message_names)
            remaining = deadline - loop.time()
            if found or remaining <= 0 or self._closed:
                return found
            upcoming = self.next_visible_in(current)
            timeout = remaining if upcoming is None else min(remaining, upcoming + 0.005)
            await self.wait_for_messages(current.arn, timeout)
            if self._db_closed:
                return []  # closed while waiting (without stop_waiting first): nothing can be read

    # -- the internal API for other components (event source mappings, destinations) ---------------

    def receive(self, account: str, region: str, arn: str, max_messages: int = 10,
                visibility: int | None = None) -> list[dict[str, Any]]:
        """Receive with every system and message attribute, as a poller needs them (no waiting)."""
        queue = self._internal(account, region, arn)
        return self.receive_now(queue, max_messages, visibility, attribute_names=["All"],
                                message_attribute_names=["All"])

    def delete(self, account: str, region: str, arn: str, receipt: str) -> None:
        """A poller's delete of a batch it delivered. Not flushed to disk before returning (it survives
        kill -9): lost to a power failure, the message is delivered once more, as at-least-once allows;
        flushing here blocked the event loop for a disk write after every batch."""
        self.delete_message(self._internal(account, region, arn), receipt, flush=False)

    def change_message_visibility(self, account: str, region: str, arn: str, receipt: str, timeout: int) -> None:
        self.change_visibility(self._internal(account, region, arn), receipt, timeout)

    def send_message(self, account: str, region: str, arn: str, message: OutgoingMessage) -> SendResult:
        return self.send(self._internal(account, region, arn), message)

    def _internal(self, account: str, region: str, arn: str) -> Queue:
        queue = self.require_arn(arn, account)
        if queue.region != region:
            raise errors.queue_does_not_exist()
        return queue

    def statistics(self) -> dict[str, int]:
        rows = self.db.query("SELECT (SELECT COUNT(*) FROM sqs_queues) AS queues, "
                             "(SELECT COUNT(*) FROM sqs_messages) AS messages")
        return {"queues": int(rows[0]["queues"]), "messages": int(rows[0]["messages"]),
                "waiting_queues": len(self._events)}


def query_code(err: AwsError) -> str:
    """The code a batch result entry carries for an error (the legacy query code, as AWS sends it)."""
    return _query_code(err)


def _invalid_id(name: str, value: str) -> AwsError:
    return errors.invalid_parameter_value(name, value, f"{name} can only include alphanumeric and punctuation "
                                          "characters. 1 to 128 in length.")


def _queue(row: Row) -> Queue:
    return Queue(id=row["id"], account=row["account"], region=row["region"], name=row["name"], arn=row["arn"],
                 fifo=bool(row["fifo"]), attributes=json.loads(row["attributes"]), tags=json.loads(row["tags"]),
                 created=row["created"], modified=row["modified"], purged_at=row["purged_at"],
                 dedup_scope=row["dedup_scope"])


def _redrive_allow_policy(raw: str) -> str:
    if raw == "":
        return ""

    def bad(reason: str) -> AwsError:
        return errors.invalid_parameter_value("RedriveAllowPolicy", raw, reason)

    try:
        doc = json.loads(raw)
    except ValueError:
        raise bad("Redrive allow policy is not a valid JSON map.") from None
    if not isinstance(doc, dict) or doc.get("redrivePermission") not in ("allowAll", "denyAll", "byQueue"):
        raise bad("Invalid value for redrivePermission, valid values are: allowAll, denyAll, byQueue.")
    sources = doc.get("sourceQueueArns")
    if doc["redrivePermission"] == "byQueue":
        if not isinstance(sources, list) or not 1 <= len(sources) <= 10:
            raise bad("sourceQueueArns must contain between 1 and 10 queue ARNs when redrivePermission is byQueue.")
    elif sources:
        raise bad("sourceQueueArns is only allowed when redrivePermission is byQueue.")
    return json.dumps(doc, separators=(",", ":"))


_RECEIPT_PREFIX = b"hearth1:"


# How many available messages a FIFO receive looks at to hand out whole groups.
_FIFO_SCAN = 1000


def _new_receipt(message_id: str) -> str:
    # Unique per receive: a fresh random part each time; the message id inside only helps debugging.
    raw = _RECEIPT_PREFIX + message_id.encode() + b":" + secrets.token_bytes(48)
    return base64.b64encode(raw).decode()


def _receipt_message_id(receipt: str) -> str:
    """The message id inside a handle `_check_receipt` accepted."""
    return base64.b64decode(receipt).split(b":", 2)[1].decode(errors="replace")


def _check_receipt(receipt: str) -> None:
    try:
        raw = base64.b64decode(receipt, validate=True)
    except (binascii.Error, ValueError):
        raise errors.receipt_handle_invalid(receipt) from None
    if not raw.startswith(_RECEIPT_PREFIX) or raw.count(b":") < 2:
        raise errors.receipt_handle_invalid(receipt)
