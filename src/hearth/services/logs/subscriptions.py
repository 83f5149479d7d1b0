"""Delivery of a log group's new events to its subscription filters' destinations.

It owns the payload CloudWatch sends (`{"awslogs": {"data": base64(gzip(json))}}` holding messageType
DATA_MESSAGE, owner, logGroup, logStream, subscriptionFilters and logEvents), which events a filter's
pattern selects, and the hand-over to the `DeliveryRouter` (a function's asynchronous invocation). It
runs after PutLogEvents has stored the events and never fails the caller: like CloudWatch, delivery is
asynchronous and a destination that refuses is logged. Destinations the router does not serve (Kinesis,
Firehose) are logged and skipped (docs/design.md). Functions' own log lines are not delivered: a
function subscribed to its own group would invoke itself without end.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
from typing import Any

from hearth.events.delivery import DeliveryError, DeliveryRouter, Message
from hearth.services.logs.store import FilterPattern, LogStoreError

log = logging.getLogger(__name__)


def awslogs_payload(account: str, group: str, stream: str, filter_name: str,
                    events: list[tuple[str, int, str]]) -> str:
    """The event a subscribed function receives for (id, timestamp, message) events."""
    data = {"messageType": "DATA_MESSAGE", "owner": account, "logGroup": group, "logStream": stream,
            "subscriptionFilters": [filter_name],
            "logEvents": [{"id": key, "timestamp": ts, "message": text} for key, ts, text in events]}
    packed = base64.b64encode(gzip.compress(json.dumps(data).encode())).decode()
    return json.dumps({"awslogs": {"data": packed}})


def selected(pattern: str, events: list[tuple[str, int, str]]) -> list[tuple[str, int, str]]:
    """The events a filter pattern selects; a JSON or space-delimited pattern (not evaluated by Hearth)
    selects every event rather than none."""
    try:
        matcher = FilterPattern(pattern)
    except LogStoreError:
        return events
    return [event for event in events if matcher.matches(event[2])]


class SubscriptionDelivery:
    """Hands new events to each subscription filter's destination, in the background."""

    def __init__(self, router: DeliveryRouter) -> None:
        self._router = router
        self._pending: set[asyncio.Task[None]] = set()

    def submit(self, account: str, region: str, group: str, stream: str, filters: list[dict[str, Any]],
               events: list[tuple[str, int, str]]) -> None:
        for each in filters:
            chosen = selected(str(each.get("filterPattern") or ""), events)
            if not chosen:
                continue
            body = awslogs_payload(account, group, stream, str(each["filterName"]), chosen)
            source = f"arn:aws:logs:{region}:{account}:log-group:{group}:*"
            task = asyncio.get_running_loop().create_task(
                self._deliver(str(each["destinationArn"]), Message(body=body, source_arn=source)))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _deliver(self, destination: str, message: Message) -> None:
        try:
            await self._router.deliver(destination, message)
        except DeliveryError as exc:
            log.warning("logs: subscription delivery to %s failed: %s (%s)", destination, exc, exc.code)
