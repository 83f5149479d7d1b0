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

from hearth.events.delivery import DeliveryError, DeliveryRouter, Message, arn_service
from hearth.services.logs.store import FilterPattern, LogStoreError

log = logging.getLogger(__name__)


def awslogs_data(account: str, group: str, stream: str, filter_name: str,
                 events: list[tuple[str, int, str]]) -> bytes:
    """The gzipped DATA_MESSAGE for (id, timestamp, message) events: a Kinesis record's data as it is."""
    data = {"messageType": "DATA_MESSAGE", "owner": account, "logGroup": group, "logStream": stream,
            "subscriptionFilters": [filter_name],
            "logEvents": [{"id": key, "timestamp": ts, "message": text} for key, ts, text in events]}
    return gzip.compress(json.dumps(data).encode())


def awslogs_payload(account: str, group: str, stream: str, filter_name: str,
                    events: list[tuple[str, int, str]]) -> str:
    """The event a subscribed function receives: the gzipped data, base64, under `awslogs`."""
    packed = base64.b64encode(awslogs_data(account, group, stream, filter_name, events)).decode()
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
            destination = str(each["destinationArn"])
            source = f"arn:aws:logs:{region}:{account}:log-group:{group}:*"
            if arn_service(destination) == "kinesis":  # a stream gets the gzipped JSON as its record's data
                message = Message(body="", source_arn=source,
                                  data=awslogs_data(account, group, stream, str(each["filterName"]), chosen))
            else:
                message = Message(body=awslogs_payload(account, group, stream, str(each["filterName"]), chosen),
                                  source_arn=source)
            task = asyncio.get_running_loop().create_task(self._deliver(destination, message))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _deliver(self, destination: str, message: Message) -> None:
        try:
            await self._router.deliver(destination, message)
        except DeliveryError as exc:
            log.warning("logs: subscription delivery to %s failed: %s (%s)", destination, exc, exc.code)
