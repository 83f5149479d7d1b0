"""Time to live: the background sweeper that deletes expired items, and stream retention.

It owns when an expired item goes: AWS deletes expired items "within a few days" and never filters
reads by expiry, so reads here do not either; Hearth's sweeper runs every `interval_s` (a bounded
delay). Each deletion is an ordinary write through the store (index entries and the stream record in
the same transaction), whose stream record carries AWS's service identity
(`userIdentity: {type: Service, principalId: dynamodb.amazonaws.com}`). An item rewritten with a
later expiry between the sweep's read and its delete is kept (the expiry is checked again inside the
deleting transaction). It also drops stream records older than 24 hours. It never serves requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal

from hearth.background import BackgroundTask
from hearth.services.dynamodb.store import TableStore

log = logging.getLogger(__name__)

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
SWEEP_INTERVAL_S = 2.0
RETENTION_SWEEP_S = 60.0  # dropping day-old stream records need not take the write lock every sweep
BATCH = 100


class TtlSweeper:
    def __init__(self, store: TableStore, *, interval_s: float = SWEEP_INTERVAL_S,
                 gate: Callable[[], bool] | None = None) -> None:
        self.store = store
        # In a cluster: whether this node sweeps now (it holds the lease); None: always.
        self._gate = gate
        self.interval_s = interval_s
        self._task = BackgroundTask(self._loop)
        self.deleted = 0
        self._retention_due = 0.0

    def start(self) -> None:
        self._task.start()

    async def close(self) -> None:
        await self._task.close()

    async def _loop(self) -> None:
        while True:
            try:
                if self._gate is None or self._gate():
                    self.sweep()
            except Exception:  # a failed sweep is retried at the next interval; reads are unaffected
                log.exception("the TTL sweep failed")
            await asyncio.sleep(self.interval_s)

    def sweep(self) -> int:
        """Delete what has expired now; return how many items went."""
        now = self.store.clock()
        deleted = 0
        for table, item in self.store.expired(now, BATCH):
            name = table.ttl_attribute
            with self.store.tx() as w:
                current = w.get(table, table.key_of(item))
                if current is None or name is None or "N" not in current.get(name, {}):
                    continue
                if Decimal(current[name]["N"]) >= Decimal(repr(now)):
                    continue
                if w.put(table, current, None, identity=dict(TTL_IDENTITY)):
                    deleted += 1
        if now >= self._retention_due:
            self.store.expire_records()
            self._retention_due = now + RETENTION_SWEEP_S
        self.deleted += deleted
        return deleted
