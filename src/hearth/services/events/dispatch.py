"""Delivery of matched events to rule targets, durably and with AWS's retry policy.

It owns the loop over the `eb_outbox` table: each accepted (event, target) pair is a row written in
the same transaction that accepted the event, so a restart loses none; a delivery is removed only
once the DeliveryRouter accepted it. A failed delivery is retried with exponential back-off until the
target's RetryPolicy says stop (default 185 attempts / 24 hours, as AWS), then goes to the target's
DeadLetterConfig queue if it has one. It never matches patterns and never invokes a function itself:
Lambda targets go through the router's `lambda` handler, which invokes asynchronously.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

from hearth.background import BackgroundTask
from hearth.events.delivery import DeliveryError, DeliveryRouter, Message
from hearth.services.events.store import Delivery, EventStore

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0


class Dispatcher:
    def __init__(self, store: EventStore, router: DeliveryRouter, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._router = router
        self._clock = clock
        self._wake = asyncio.Event()
        self._loop = BackgroundTask(self._run)
        self.delivered = 0
        self.failed = 0

    def enqueue(self, deliveries: list[Delivery]) -> None:
        self._store.enqueue(deliveries, self._clock())
        self._wake.set()

    async def run_once(self) -> int:
        """Attempt every delivery that is due now; return how many were attempted."""
        due = self._store.due(self._clock())
        for delivery in due:
            await self._attempt(delivery)
        return len(due)

    async def _attempt(self, d: Delivery) -> None:
        message = Message(body=d.body, source_arn=d.source_arn, group_id=d.group_id, trace_header=d.trace_header)
        try:
            await self._router.deliver(d.target_arn, message)
        except (DeliveryError, Exception) as exc:  # any target failure is retried, never raised
            now = self._clock()
            attempts = d.attempts + 1
            if attempts > d.max_attempts or now >= d.expires_at:
                self.failed += 1
                log.warning("giving up delivering to %s after %d attempts: %s", d.target_arn, attempts, exc)
                self._store.delivered(d.id)
                if d.dlq_arn:
                    await self._dead_letter(d, exc)
                return
            self._store.retry_at(d.id, now + min(2.0 ** d.attempts, MAX_BACKOFF_S))
            return
        self.delivered += 1
        self._store.delivered(d.id)

    async def _dead_letter(self, d: Delivery, exc: BaseException) -> None:
        code = exc.code if isinstance(exc, DeliveryError) else "InternalError"
        attributes = {
            "RULE_ARN": {"DataType": "String", "StringValue": d.source_arn or ""},
            "TARGET_ARN": {"DataType": "String", "StringValue": d.target_arn},
            "ERROR_CODE": {"DataType": "String", "StringValue": code},
            "ERROR_MESSAGE": {"DataType": "String", "StringValue": str(exc)[:256]},
        }
        try:
            await self._router.deliver(d.dlq_arn or "", Message(body=d.body, attributes=attributes,
                                                                source_arn=d.source_arn))
        except Exception as dlq_exc:
            log.warning("dead-letter queue %s refused an event: %s", d.dlq_arn, dlq_exc)

    def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except Exception:
                log.exception("event delivery loop failed; retrying")
            next_at = self._store.next_due()
            delay = 60.0 if next_at is None else max(0.0, min(60.0, next_at - self._clock()))
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def statistics(self) -> dict[str, int]:
        return {"pending": self._store.pending(), "delivered": self.delivered, "failed": self.failed}


def dumps(doc: object) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
