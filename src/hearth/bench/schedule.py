"""Schedule firing accuracy: how late the event bus's schedule engine fires a rule after its due time.

It runs the real `ScheduleEngine` with a clock 60 times faster than wall time (so `rate(1 minute)`
is due every real second) and records, for every firing, the real time between the due moment and the
moment the engine fired. No server is started: this measures the scheduler, not delivery (delivery to
a function is the async-invoke path, measured by the latency suite).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import datetime
from typing import Any

from hearth.services.events.schedules import ScaledClock, ScheduleEngine, parse_schedule

SCALE = 60.0


def run(firings: int = 20, rules: int = 50) -> dict[str, Any]:
    return asyncio.run(_run(firings, rules))


async def _run(firings: int, rules: int) -> dict[str, Any]:
    clock = ScaledClock(SCALE)
    delays_ms: list[float] = []
    done = asyncio.Event()

    async def fire(key: str, due: datetime) -> None:
        fired_real = time.monotonic()
        # The real moment the due time corresponds to on the scaled clock.
        due_real = clock.monotonic_at(due)
        delays_ms.append((fired_real - due_real) * 1000)
        if len(delays_ms) >= firings * rules:
            done.set()

    engine = ScheduleEngine(fire, clock)
    for i in range(rules):  # many rules due at once, as on a busy bus
        engine.set(f"rule-{i}", parse_schedule("rate(1 minute)", clock.now()))
    engine.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=firings * 60 / SCALE + 30)
    finally:
        await engine.close()
    ordered = sorted(delays_ms)
    return {
        "rules": rules,
        "firings": len(ordered),
        "clock_scale": SCALE,
        "delay_p50_ms": statistics.median(ordered),
        "delay_p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "delay_max_ms": ordered[-1],
        "early_firings": sum(1 for d in ordered if d < -1.0),
    }
