"""The `logs` handler of the DeliveryRouter: EventBridge rule targets write events into a log group here.

It owns how an event lands in a group: one log event whose message is the delivered text, timestamped
with the event's `time` (the delivery's time when it has none), in a log stream named by the event's id
and created on first use, as EventBridge's CloudWatch Logs target does. A group that does not exist is
the target's failure (the dispatcher retries, then gives up). It never parses API requests.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime

from hearth.events.delivery import DeliveryError, Message
from hearth.services.logs.store import LogStore, LogStoreError


class LogsDelivery:
    def __init__(self, store: LogStore) -> None:
        self.store = store

    async def __call__(self, target_arn: str, message: Message) -> None:
        # arn:aws:logs:<region>:<account>:log-group:<name>[:*]
        parts = target_arn.split(":", 6)
        if len(parts) < 7 or parts[5] != "log-group":
            raise DeliveryError(f"not a log group: {target_arn}", "InvalidParameterValueException")
        region, account, group = parts[3], parts[4], parts[6].removesuffix(":*")
        stream, stamp = _stream_and_time(message.body)
        try:
            self.store.ensure_stream(account, region, group, stream)
            self.store.append(account, region, group, stream, [(stamp, message.body)])
        except LogStoreError as err:
            raise DeliveryError(str(err), "ResourceNotFoundException") from None


def _stream_and_time(body: str) -> tuple[str, int]:
    try:
        event = json.loads(body)
    except ValueError:
        event = None
    now = int(time.time() * 1000)
    if not isinstance(event, dict):
        return str(uuid.uuid4()), now
    try:
        stamp = int(datetime.fromisoformat(str(event.get("time")).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        stamp = now
    return str(event.get("id") or uuid.uuid4()), stamp
