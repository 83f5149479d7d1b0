"""Bucket event notifications: which configurations an event matches, the event in AWS's shape, and
the durable outbox's delivery loop.

It owns the rules of a NotificationConfiguration (event names with wildcards, prefix/suffix filter
rules), the `Records[]` document AWS sends (eventVersion 2.1, `s3.bucket`, `s3.object`, a
sequencer that grows per key) and the `s3:TestEvent` sent to queues when a configuration is set.
Events are queued by the store in the transaction that changed the object; the `Dispatcher` hands
them to the `DeliveryRouter` ("lambda" = asynchronous invoke, "sqs", "sns") and forgets one only
when it was accepted, so every committed change is delivered at least once, across restarts.
It never decides whether a configuration may be set (the provider checks targets).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from hearth.events.delivery import DeliveryError, DeliveryRouter, Message
from hearth.services.s3.store import Outgoing, S3Store

log = logging.getLogger(__name__)

KINDS = (("LambdaFunctionConfigurations", "LambdaFunctionArn"), ("QueueConfigurations", "QueueArn"),
         ("TopicConfigurations", "TopicArn"))

EVENT_NAMES = frozenset({
    "s3:ObjectCreated:*", "s3:ObjectCreated:Put", "s3:ObjectCreated:Post", "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload", "s3:ObjectRemoved:*", "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated", "s3:ObjectTagging:*", "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete", "s3:LifecycleExpiration:*", "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated", "s3:ObjectRestore:*", "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed", "s3:ObjectRestore:Delete", "s3:ReducedRedundancyLostObject",
    "s3:Replication:*", "s3:IntelligentTiering", "s3:ObjectAcl:Put", "s3:LifecycleTransition",
})

RETRY_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
# A notification refused this many times (about a day at the longest delay) is dropped, with a log line.
MAX_ATTEMPTS = 1440


def event_matches(configured: list[str], event_name: str) -> bool:
    """`event_name` is e.g. "ObjectCreated:Put"; configured names carry "s3:" and may end in "*"."""
    full = f"s3:{event_name}"
    return any(name == full or (name.endswith("*") and full.startswith(name[:-1])) for name in configured)


def filter_matches(config: dict[str, Any], key: str) -> bool:
    rules = (((config.get("Filter") or {}).get("Key") or {}).get("FilterRules")) or []
    for rule in rules:
        name = str(rule.get("Name", "")).lower()
        value = str(rule.get("Value", ""))
        if name == "prefix" and not key.startswith(value):
            return False
        if name == "suffix" and not key.endswith(value):
            return False
    return True


def targets(notification: dict[str, Any], event_name: str, key: str) -> list[str]:
    """The ARNs of the configurations an event on `key` matches."""
    found: list[str] = []
    for kind, arn_member in KINDS:
        for config in notification.get(kind) or []:
            if event_matches(config.get("Events") or [], event_name) and filter_matches(config, key):
                found.append(config[arn_member])
    return found


def config_id(notification: dict[str, Any], arn: str) -> str:
    for kind, arn_member in KINDS:
        for config in notification.get(kind) or []:
            if config.get(arn_member) == arn:
                return str(config.get("Id") or "")
    return ""


def record(*, event_name: str, region: str, bucket: str, owner: str, key: str, size: int | None,
           etag: str | None, version_id: str | None, sequencer: int, principal: str, source_ip: str,
           request_id: str, configuration_id: str, when: float) -> dict[str, Any]:
    """One `Records[]` entry as AWS writes it."""
    from urllib.parse import quote_plus

    obj: dict[str, Any] = {"key": quote_plus(key, safe="/")}
    if size is not None:
        obj["size"] = size
    if etag:
        obj["eTag"] = etag.strip('"')
    if version_id and version_id != "null":
        obj["versionId"] = version_id
    obj["sequencer"] = f"{sequencer:016X}"
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(when * 1000) % 1000:03d}Z"
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": stamp,
        "eventName": event_name,
        "userIdentity": {"principalId": f"AWS:{principal}" if principal else "Anonymous"},
        "requestParameters": {"sourceIPAddress": source_ip},
        "responseElements": {"x-amz-request-id": request_id.replace("-", "")[:16].upper(),
                             "x-amz-id-2": request_id},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": owner},
                       "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }


_REASONS = {"ObjectCreated:Put": "PutObject", "ObjectCreated:Copy": "CopyObject",
            "ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload", "ObjectCreated:Post": "PostObject",
            "ObjectRemoved:Delete": "DeleteObject", "ObjectRemoved:DeleteMarkerCreated": "DeleteObject",
            "LifecycleExpiration:Delete": "Lifecycle Expiration",
            "LifecycleExpiration:DeleteMarkerCreated": "Lifecycle Expiration"}


def eventbridge_event(*, event_name: str, account: str, region: str, bucket: str, key: str, size: int | None,
                      etag: str | None, version_id: str | None, sequencer: int, principal: str, source_ip: str,
                      request_id: str, when: float) -> dict[str, Any] | None:
    """The event S3 sends to the account's default bus (EventBridgeConfiguration), or None for event
    kinds S3 does not send there."""
    import uuid

    created = event_name.startswith("ObjectCreated")
    if not created and not event_name.startswith(("ObjectRemoved", "LifecycleExpiration")):
        return None
    obj: dict[str, Any] = {"key": key}
    if created:
        obj.update({"size": size, "etag": (etag or "").strip('"')})
    if version_id and version_id != "null":
        obj["version-id"] = version_id
    obj["sequencer"] = f"{sequencer:016X}"
    detail: dict[str, Any] = {"version": "0", "bucket": {"name": bucket}, "object": obj,
                              "request-id": request_id.replace("-", "")[:16].upper(), "requester": principal or account,
                              "source-ip-address": source_ip, "reason": _REASONS.get(event_name, event_name)}
    if not created:
        detail["deletion-type"] = ("Delete Marker Created" if event_name.endswith("DeleteMarkerCreated")
                                   else "Permanently Deleted")
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Object Created" if created else "Object Deleted",
            "source": "aws.s3", "account": account, "time": stamp, "region": region,
            "resources": [f"arn:aws:s3:::{bucket}"], "detail": detail}


def test_event(bucket: str, when: float, request_id: str) -> str:
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(when * 1000) % 1000:03d}Z"
    return json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": stamp, "Bucket": bucket,
                       "RequestId": request_id.replace("-", "")[:16].upper(), "HostId": request_id})


class Dispatcher:
    """Delivers the outbox in order of queuing; a refused delivery is retried with a growing delay."""

    def __init__(self, store: S3Store, router: DeliveryRouter) -> None:
        self._store = store
        self._router = router
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def notify(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            delay = await self._deliver_pending()
            if delay is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    async def _deliver_pending(self) -> float | None:
        """Delivers what is queued; the delay before retrying refused ones (None: nothing left)."""
        retry: float | None = None
        for event_id, event, attempts in self._store.pending(100):
            try:
                await self._router.deliver(event.target, Message(event.body, source_arn=event.source_arn))
            except DeliveryError as exc:
                if attempts + 1 >= MAX_ATTEMPTS:
                    log.error("s3 notification to %s dropped after %d refusals (%s)", event.target, attempts + 1, exc)
                    self._store.delivered(event_id)
                    continue
                log.warning("s3 notification to %s refused (%s); retrying", event.target, exc)
                self._store.failed(event_id)
                delay = RETRY_DELAYS_S[min(attempts, len(RETRY_DELAYS_S) - 1)]
                retry = delay if retry is None else min(retry, delay)
                continue
            except Exception:
                log.exception("s3 notification to %s failed; retrying", event.target)
                self._store.failed(event_id)
                retry = RETRY_DELAYS_S[-1] if retry is None else retry
                continue
            self._store.delivered(event_id)
        return retry


def outgoing(target: str, records: list[dict[str, Any]], bucket: str) -> Outgoing:
    return Outgoing(target, json.dumps({"Records": records}), f"arn:aws:s3:::{bucket}")
