"""Keep-alive policies: how long an idle environment of a function stays warm, and when to pre-warm one.

Two policies, chosen with HEARTH_KEEP_ALIVE_POLICY:

- `fixed` (default): keep an idle environment for `keep_alive_s` after its last invocation.
- `adaptive`: the hybrid histogram policy of "Serverless in the Wild" (Shahrad et al., USENIX ATC 2020).
  Per function it keeps a histogram of invocation inter-arrival times (1-minute bins over 4 hours).
  The pre-warm window is the histogram's head (5th percentile, minus a 10 % margin): after an
  invocation nothing is kept for that long, then an environment is started shortly before the next
  call is expected. The keep-alive window reaches the tail (99th percentile, plus a 10 % margin).
  When the history is short (few inter-arrivals), mostly out of the histogram's range, or not
  representative (bin counts nearly uniform: coefficient of variation below a threshold), it falls
  back to the fixed keep-alive, as the paper falls back to a standard policy.

A `Window(prewarm_s, keep_alive_s)` is measured from the end of the last invocation: keep nothing in
[0, prewarm_s), keep one environment in [prewarm_s, prewarm_s + keep_alive_s). With prewarm_s = 0 the
environment simply stays warm for keep_alive_s.

Policies are pure: they take the time as an argument (replayable with a simulated clock) and never
start or stop anything; the pool acts on their windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

BIN_S = 60.0
RANGE_S = 4 * 3600.0
HEAD_PERCENTILE = 5.0
TAIL_PERCENTILE = 99.0
MARGIN = 0.10
MIN_SAMPLES = 16  # inter-arrivals needed before the histogram is trusted (sparse data looks peaky)
MAX_OUT_OF_RANGE = 0.5  # share of inter-arrivals beyond the range above which the histogram is not trusted
MIN_CV = 2.0  # the paper's representativeness threshold on the bins' coefficient of variation


@dataclass(frozen=True)
class Window:
    prewarm_s: float
    keep_alive_s: float

    def keeps(self, idle_s: float) -> bool:
        """Whether an environment should be warm `idle_s` after the last invocation ended."""
        return self.prewarm_s <= idle_s < self.prewarm_s + self.keep_alive_s


class KeepAlivePolicy(Protocol):
    name: str

    def record(self, function: str, now: float) -> None:
        """An invocation of `function` arrived at `now` (seconds, any monotonic clock)."""
        ...

    def window(self, function: str) -> Window: ...

    def forget(self, function: str) -> None: ...


class FixedKeepAlive:
    name = "fixed"

    def __init__(self, keep_alive_s: float = 600.0) -> None:
        self.keep_alive_s = keep_alive_s

    def record(self, function: str, now: float) -> None:
        return None

    def window(self, function: str) -> Window:
        return Window(0.0, self.keep_alive_s)

    def forget(self, function: str) -> None:
        return None


@dataclass
class _History:
    last: float | None = None
    bins: list[int] = field(default_factory=list)
    out_of_range: int = 0
    cached: Window | None = None


class HistogramKeepAlive:
    """The hybrid histogram policy; `fallback_s` is the fixed keep-alive used when history says little."""

    name = "adaptive"

    def __init__(self, fallback_s: float = 600.0, *, bin_s: float = BIN_S, range_s: float = RANGE_S,
                 head: float = HEAD_PERCENTILE, tail: float = TAIL_PERCENTILE, margin: float = MARGIN,
                 min_samples: int = MIN_SAMPLES, min_cv: float = MIN_CV) -> None:
        self.fallback = Window(0.0, fallback_s)
        self.bin_s = bin_s
        self.n_bins = max(1, int(range_s // bin_s))
        self.head = head
        self.tail = tail
        self.margin = margin
        self.min_samples = min_samples
        self.min_cv = min_cv
        self._histories: dict[str, _History] = {}

    def record(self, function: str, now: float) -> None:
        h = self._histories.get(function)
        if h is None:
            h = self._histories[function] = _History(bins=[0] * self.n_bins)
        if h.last is not None:
            gap = max(0.0, now - h.last)
            index = int(gap // self.bin_s)
            if index < self.n_bins:
                h.bins[index] += 1
            else:
                h.out_of_range += 1
            h.cached = None
        h.last = now

    def window(self, function: str) -> Window:
        h = self._histories.get(function)
        if h is None:
            return self.fallback
        if h.cached is None:
            h.cached = self._compute(h)
        return h.cached

    def forget(self, function: str) -> None:
        self._histories.pop(function, None)

    def _compute(self, h: _History) -> Window:
        total = sum(h.bins)
        if total < self.min_samples or h.out_of_range > MAX_OUT_OF_RANGE * (total + h.out_of_range):
            return self.fallback
        mean = total / self.n_bins
        variance = sum((c - mean) ** 2 for c in h.bins) / self.n_bins
        if math.sqrt(variance) / mean < self.min_cv:
            return self.fallback
        head_bin = self._percentile_bin(h.bins, total, self.head)
        tail_bin = self._percentile_bin(h.bins, total, self.tail)
        prewarm = head_bin * self.bin_s * (1 - self.margin)  # the head bin's lower edge, a little early
        end = (tail_bin + 1) * self.bin_s * (1 + self.margin)  # the tail bin's upper edge, a little late
        return Window(prewarm, max(self.bin_s, end - prewarm))

    @staticmethod
    def _percentile_bin(bins: list[int], total: int, percentile: float) -> int:
        target = total * percentile / 100.0
        seen = 0
        for index, count in enumerate(bins):
            seen += count
            if seen >= target and count:
                return index
        return len(bins) - 1

    def statistics(self) -> dict[str, object]:
        return {"functions": len(self._histories)}


def make_policy(name: str, keep_alive_s: float) -> KeepAlivePolicy:
    if name == "fixed":
        return FixedKeepAlive(keep_alive_s)
    if name == "adaptive":
        return HistogramKeepAlive(keep_alive_s)
    raise ValueError(f"unknown keep-alive policy {name!r} (fixed or adaptive)")
