"""Metrics in Prometheus' text exposition format (version 0.0.4), served at GET /_hearth/metrics.

It owns the metric registry (counters, gauges, histograms with labels), the bound on label
cardinality, and the rendering. Components record through the module-level registry::

    from hearth.observability import metrics
    metrics.gauge("hearth_async_queue_depth", "Events waiting").set(3, {"function": "f", "qualifier": "$LATEST"})

or register a collector (a callable run just before each scrape) that sets gauges from their own
`statistics()`. Recording is a dict update: it never blocks, never raises into the caller's path for
a label problem, and never does I/O. It never decides anything from the numbers it holds.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Label values beyond this many series per metric are folded into "_other": a caller that names many
# functions cannot make the exposition (or our memory) grow without bound.
MAX_SERIES = 1000
OTHER = "_other"
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    300.0, 900.0)

Labels = Mapping[str, str]
LabelKey = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_labels(key: LabelKey, extra: tuple[str, str] | None = None) -> str:
    pairs = list(key) + ([extra] if extra else [])
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, registry: Registry) -> None:
        self.name = name
        self.help = help_text
        self._registry = registry
        self._lock = registry._lock

    def _key(self, labels: Labels | None, existing: Mapping[LabelKey, object]) -> LabelKey:
        key = tuple(sorted((labels or {}).items()))
        if key in existing or len(existing) < MAX_SERIES:
            return key
        return tuple((k, OTHER) for k, _ in key)

    def samples(self) -> list[str]:
        raise NotImplementedError

    def render(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}", *self.samples()]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, registry: Registry) -> None:
        super().__init__(name, help_text, registry)
        self._values: dict[LabelKey, float] = {}

    def inc(self, labels: Labels | None = None, amount: float = 1.0) -> None:
        if amount < 0:
            return  # counters only go up; a negative amount is a caller bug, not worth an exception here
        with self._lock:
            key = self._key(labels, self._values)
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, labels: Labels | None = None) -> float:
        return self._values.get(tuple(sorted((labels or {}).items())), 0.0)

    def samples(self) -> list[str]:
        return [f"{self.name}{_format_labels(k)} {_format_value(v)}" for k, v in sorted(self._values.items())]


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, name: str, help_text: str, registry: Registry) -> None:
        super().__init__(name, help_text, registry)
        self._values: dict[LabelKey, float] = {}

    def set(self, value: float, labels: Labels | None = None) -> None:
        with self._lock:
            self._values[self._key(labels, self._values)] = float(value)

    def inc(self, labels: Labels | None = None, amount: float = 1.0) -> None:
        with self._lock:
            key = self._key(labels, self._values)
            self._values[key] = self._values.get(key, 0.0) + amount

    def replace(self, values: Mapping[LabelKey, float]) -> None:
        """Set the whole family at once (collectors: series that disappeared are dropped)."""
        with self._lock:
            self._values = {}
            for key, value in values.items():
                folded = self._key(dict(key), self._values)
                self._values[folded] = self._values.get(folded, 0.0) + value

    def value(self, labels: Labels | None = None) -> float:
        return self._values.get(tuple(sorted((labels or {}).items())), 0.0)

    def samples(self) -> list[str]:
        return [f"{self.name}{_format_labels(k)} {_format_value(v)}" for k, v in sorted(self._values.items())]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, registry: Registry,
                 buckets: tuple[float, ...] = DURATION_BUCKETS) -> None:
        super().__init__(name, help_text, registry)
        self.buckets = tuple(sorted(buckets))
        self._counts: dict[LabelKey, list[int]] = {}  # per bucket (not cumulative), plus +Inf last
        self._sums: dict[LabelKey, float] = {}

    def observe(self, value: float, labels: Labels | None = None) -> None:
        with self._lock:
            key = self._key(labels, self._counts)
            counts = self._counts.get(key)
            if counts is None:
                counts = self._counts[key] = [0] * (len(self.buckets) + 1)
                self._sums[key] = 0.0
            index = len(self.buckets)
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    index = i
                    break
            counts[index] += 1
            self._sums[key] += value

    def count(self, labels: Labels | None = None) -> int:
        return sum(self._counts.get(tuple(sorted((labels or {}).items())), []))

    def samples(self) -> list[str]:
        lines: list[str] = []
        for key in sorted(self._counts):
            cumulative = 0
            for bound, n in zip((*self.buckets, math.inf), self._counts[key], strict=True):
                cumulative += n
                lines.append(f"{self.name}_bucket{_format_labels(key, ('le', _format_value(bound)))} {cumulative}")
            lines.append(f"{self.name}_sum{_format_labels(key)} {_format_value(self._sums[key])}")
            lines.append(f"{self.name}_count{_format_labels(key)} {cumulative}")
        return lines


class Registry:
    """Metric families by name; get-or-create, so components need no shared setup order."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # the log writer and freezer threads may record too
        self._metrics: dict[str, _Metric] = {}
        self._collectors: list[Callable[[], None]] = []

    def _get(self, name: str, help_text: str, cls: type[_Metric], **kwargs: object) -> _Metric:
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                metric = cls(name, help_text, self, **kwargs)
                self._metrics[name] = metric
            elif not isinstance(metric, cls):
                raise TypeError(f"metric {name} is a {metric.kind}, not a {cls.kind}")
            return metric

    def counter(self, name: str, help_text: str) -> Counter:
        metric = self._get(name, help_text, Counter)
        assert isinstance(metric, Counter)
        return metric

    def gauge(self, name: str, help_text: str) -> Gauge:
        metric = self._get(name, help_text, Gauge)
        assert isinstance(metric, Gauge)
        return metric

    def histogram(self, name: str, help_text: str, buckets: tuple[float, ...] = DURATION_BUCKETS) -> Histogram:
        metric = self._get(name, help_text, Histogram, buckets=buckets)
        assert isinstance(metric, Histogram)
        return metric

    def add_collector(self, collect: Callable[[], None]) -> Callable[[], None]:
        """Run `collect` before every scrape; returns a function that removes it."""
        self._collectors.append(collect)

        def remove() -> None:
            if collect in self._collectors:
                self._collectors.remove(collect)
        return remove

    def render(self) -> str:
        for collect in list(self._collectors):
            try:
                collect()
            except Exception:  # a broken collector must not take the other metrics down
                log.exception("metrics collector %r failed", collect)
        with self._lock:
            lines: list[str] = []
            for name in sorted(self._metrics):
                lines.extend(self._metrics[name].render())
        return "\n".join(lines) + "\n"


REGISTRY = Registry()


def counter(name: str, help_text: str) -> Counter:
    return REGISTRY.counter(name, help_text)


def gauge(name: str, help_text: str) -> Gauge:
    return REGISTRY.gauge(name, help_text)


def histogram(name: str, help_text: str, buckets: tuple[float, ...] = DURATION_BUCKETS) -> Histogram:
    return REGISTRY.histogram(name, help_text, buckets)


class InvokeMetrics:
    """The invoke path's metrics (AWS's CloudWatch Lambda metrics, named the Prometheus way).

    Labels are `function` (the name) and `qualifier` ($LATEST, a version or an alias).
    """

    def __init__(self, registry: Registry = REGISTRY) -> None:
        r = registry
        self.registry = registry
        self.invocations = r.counter("hearth_invocations_total", "Invocations that ran (Lambda: Invocations).")
        self.errors = r.counter("hearth_errors_total", "Invocations that ended in a function error (Lambda: Errors).")
        self.throttles = r.counter("hearth_throttles_total", "Invocations refused for concurrency (Lambda: Throttles).")
        self.duration = r.histogram("hearth_duration_seconds", "Time spent running the function (Lambda: Duration).")
        self.cold_starts = r.counter("hearth_cold_starts_total", "Invocations that needed a new environment.")
        self.init_duration = r.histogram("hearth_init_duration_seconds", "INIT phase of new environments.")
        self.restore_duration = r.histogram("hearth_restore_duration_seconds",
                                            "Restores of new environments from a SnapStart snapshot.")
        self.post_runtime_extensions = r.histogram(
            "hearth_post_runtime_extensions_duration_seconds",
            "Extensions' time after the runtime answered (Lambda: PostRuntimeExtensionsDuration).")
        self.concurrent = r.gauge("hearth_concurrent_executions",
                                  "Invocations running now (Lambda: ConcurrentExecutions).")
        self.environments = r.gauge("hearth_environments", "Execution environments by state.")
        # Placeholders other components set (async queue, provisioned concurrency, snapshot restores).
        r.gauge("hearth_async_queue_depth", "Asynchronous events waiting (Lambda: AsyncEventsReceived - dropped).")
        r.gauge("hearth_async_event_age_seconds", "Age of the oldest waiting asynchronous event (AsyncEventAge).")
        r.gauge("hearth_provisioned_concurrency_utilization",
                "Provisioned environments in use / provisioned (Lambda: ProvisionedConcurrencyUtilization).")
        r.gauge("hearth_provisioned_concurrent_executions", "Invocations running on provisioned environments.")

    @staticmethod
    def labels(function: str, qualifier: str) -> dict[str, str]:
        return {"function": function, "qualifier": qualifier}

    def invoked(self, function: str, qualifier: str, *, duration_s: float, error: bool, cold: bool) -> None:
        """One finished invocation. (INIT durations are observed by the pool, which times them.)"""
        labels = self.labels(function, qualifier)
        self.invocations.inc(labels)
        self.duration.observe(duration_s, labels)
        if error:
            self.errors.inc(labels)
        if cold:
            self.cold_starts.inc(labels)

    def throttled(self, function: str, qualifier: str) -> None:
        self.throttles.inc(self.labels(function, qualifier))
