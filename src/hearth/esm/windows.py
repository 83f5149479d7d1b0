"""Tumbling windows of a stream event source mapping (TumblingWindowInSeconds): which window a record
belongs to, and the state a function carries from one invocation of a window to the next.

AWS's rules: a window is [k·W, (k+1)·W) of the records' arrival time in the stream; every invocation
carries `window {start, end}`, the `state` the function returned last in that window (`{}` at first),
`shardId`, `eventSourceARN`, `isFinalInvokeForWindow` and `isWindowTerminatedEarly`; when the window
is over, one final invocation (no records, `isFinalInvokeForWindow: true`) hands the function the
window's aggregate, and the state is dropped. A returned state over 1 MB ends the window early. State
lives in memory, per shard: after a restart an open window starts again from `{}` (records are never
lost: checkpoints still follow delivery). It never invokes (the poller does).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_STATE_BYTES = 1024 * 1024


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Window:
    start: float
    end: float
    state: dict[str, Any] = field(default_factory=dict)
    terminated_early: bool = False


class TumblingWindows:
    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        self._open: dict[int, Window] = {}

    def start_of(self, arrival: float) -> float:
        return math.floor(arrival / self.seconds) * self.seconds

    def split(self, records: list[Any]) -> list[tuple[float, list[Any]]]:
        """The records grouped by window, in order (a shard's arrivals only grow)."""
        groups: list[tuple[float, list[Any]]] = []
        for record in records:
            start = self.start_of(record.arrival)
            if groups and groups[-1][0] == start:
                groups[-1][1].append(record)
            else:
                groups.append((start, [record]))
        return groups

    def current(self, shard: int) -> Window | None:
        return self._open.get(shard)

    def open(self, shard: int, start: float) -> Window:
        window = self._open.get(shard)
        if window is None or window.start != start:
            window = self._open[shard] = Window(start, start + self.seconds)
        return window

    def close(self, shard: int) -> None:
        self._open.pop(shard, None)

    def ended(self, shard: int, now: float) -> bool:
        window = self._open.get(shard)
        return window is not None and (now >= window.end or window.terminated_early)

    def seconds_left(self, shard: int, now: float) -> float | None:
        window = self._open.get(shard)
        return None if window is None else max(0.0, window.end - now)

    def fields(self, shard: int, shard_id: str, source_arn: str, *, final: bool) -> dict[str, Any]:
        window = self._open[shard]
        return {"window": {"start": _iso(window.start), "end": _iso(window.end)}, "state": window.state,
                "shardId": shard_id, "eventSourceARN": source_arn, "isFinalInvokeForWindow": final,
                "isWindowTerminatedEarly": final and window.terminated_early}

    def absorb(self, shard: int, payload: bytes) -> None:
        """Keep the `state` a successful invocation returned."""
        window = self._open.get(shard)
        if window is None:
            return
        try:
            doc = json.loads(payload or b"null")
        except ValueError:
            return
        state = doc.get("state") if isinstance(doc, dict) else None
        if isinstance(state, dict):
            window.state = state
            if len(json.dumps(state).encode()) > MAX_STATE_BYTES:
                window.terminated_early = True
