"""The EventBridge component as the server wires it: storage, schedule engine, dispatcher, provider.

It owns construction and the start/stop order of the component's background tasks (the schedule
engine and the delivery loop). It never holds business rules.

HEARTH_TEST_TIME_SCALE (tests only; a number > 1) makes schedule time run that many times faster
than real time, so an end-to-end test can see `rate(1 minute)` fire in about a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from hearth.events.delivery import DeliveryRouter
from hearth.services.events.bus import EventBus
from hearth.services.events.dispatch import Dispatcher
from hearth.services.events.provider import EventsProvider
from hearth.services.events.schedules import Clock, ScaledClock, ScheduleEngine, SystemClock
from hearth.services.events.store import EventStore


def clock_for(scale: float) -> Clock:
    """The schedule clock: wall time, or (tests only) wall time running `scale` times faster."""
    return ScaledClock(scale) if scale > 1.0 else SystemClock()


log = logging.getLogger(__name__)

FOLLOW_S = 1.0  # cluster: how often a node looks for rules changed through other nodes

# Whether this node fires schedule `key` at `moment` (a cluster: only the holder of the schedules lease,
# once per moment cluster-wide); None: always (one node).
FireGate = Callable[[str, datetime], bool]


class EventBridge:
    def __init__(self, data_dir: Path, router: DeliveryRouter, clock: Clock | None = None,
                 fire_gate: FireGate | None = None) -> None:
        self._fire_gate = fire_gate
        self._follower: asyncio.Task[None] | None = None
        self.store = EventStore(data_dir)
        self.dispatcher = Dispatcher(self.store, router)
        self.bus = EventBus(self.store, self.dispatcher, ScheduleEngine(self._fire, clock or SystemClock()))
        self.provider = EventsProvider(self.store, self.bus)
        router.register("events", self.bus.deliver_to_bus)

    async def _fire(self, key: str, moment: datetime) -> None:
        if self._fire_gate is not None and not self._fire_gate(key, moment):
            return
        await self.bus.fire(key, moment)

    def start(self) -> None:
        self.bus.load_schedules()
        self.bus.schedules.start()
        self.dispatcher.start()
        if self._fire_gate is not None:  # a cluster: rules change through other nodes too
            self._follower = asyncio.get_running_loop().create_task(self._follow_rules())

    async def _follow_rules(self) -> None:
        while True:
            await asyncio.sleep(FOLLOW_S)
            try:
                if self.store.changed_elsewhere():
                    self.bus.reload_schedules()
            except Exception:  # a database outage: look again at the next turn
                log.warning("following the scheduled rules failed", exc_info=True)

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
        await self.bus.schedules.close()
        await self.dispatcher.close()
        self.store.close()

    def statistics(self) -> dict[str, int]:
        return {**self.dispatcher.statistics(), "matched": self.bus.matched}
