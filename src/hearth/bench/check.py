"""The promises of docs/specification.md as data, and their verdict on one benchmark run.

It owns the list of measured promises `hearth bench --check` enforces: where each figure lives in the
results, the comparison and the target. A promise whose figure the run did not measure (a section not
run, a runtime not installed) is reported as "not measured", never as met nor as missed. It never runs
a benchmark and never prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Promise:
    section: str          # the results' top-level key (a `hearth bench --section`)
    figure: str           # dotted path inside that section
    op: str               # "<=" or ">="
    target: float
    meaning: str


@dataclass(frozen=True)
class Verdict:
    promise: Promise
    measured: float | None

    @property
    def met(self) -> bool | None:
        """True/False once measured; None when the run did not measure the figure."""
        if self.measured is None:
            return None
        if self.promise.op == "<=":
            return self.measured <= self.promise.target
        return self.measured >= self.promise.target


def _warm(label: str, memory: int, stat: str) -> Promise:
    return Promise("latency", f"{label}_warm_{memory}_{stat}_ratio", "<=", 2.0,
                   f"{label} warm invoke {stat} at {memory:,} MB / echo round trip {stat} (raw signed client)")


PROMISES: tuple[Promise, ...] = (
    *(_warm(label, memory, stat) for label in ("python", "node") for memory in (128, 1769)
      for stat in ("p50", "p99")),
    Promise("latency", "python_snapshot_cold_ratio", "<=", 0.5,
            "snapshot start p50 of an empty handler / bare python3.12 start+import p50"),
    Promise("latency", "python_sdk_snapshot_cold_ratio", "<=", 0.5,
            "snapshot start p50 of a handler importing boto3 / bare start+import p50"),
    Promise("latency", "python_cold_ratio", "<=", 0.5, "on-demand cold start p50 / bare python start+import p50"),
    Promise("latency", "node_cold_ratio", "<=", 0.5, "on-demand cold start p50 / bare node start+require p50"),
    Promise("scale", "scale_out.environments_per_s", ">=", 200.0, "new environments per second in a burst"),
    Promise("scale", "throughput.16.ratio", ">=", 0.5, "throughput at concurrency 16 / echo app's"),
    Promise("scale", "density.pss_mib_p50", "<=", 10.0, "PSS MiB per idle warm Python environment"),
    Promise("esm", "send_to_handler.p50_ms", "<=", 5.0, "SendMessage -> handler p50 ms through a queue mapping"),
    Promise("esm", "send_to_handler.p99_ms", "<=", 20.0, "SendMessage -> handler p99 ms through a queue mapping"),
    Promise("network", "vpc_cold_ratio", "<=", 1.1, "VPC function cold start p50 / non-VPC cold start p50"),
    Promise("soak", "errors", "<=", 0.0, "failed calls outside the restart window"),
    Promise("soak", "lost", "<=", 0.0, "acknowledged events or messages never delivered"),
    Promise("soak", "fd_growth", "<=", 16.0, "server open files growth over the run (after warm-up)"),
    Promise("soak", "rss_growth_mib", "<=", 64.0, "server RSS growth MiB over the run (after warm-up)"),
)


def figure(results: dict[str, Any], section: str, path: str) -> float | None:
    """The number at `section`.`path` in `results`, or None when absent or not a number."""
    node: Any = results.get(section)
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    return float(node)


def evaluate(results: dict[str, Any], promises: tuple[Promise, ...] = PROMISES) -> list[Verdict]:
    return [Verdict(p, figure(results, p.section, p.figure)) for p in promises]


def missed(verdicts: list[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.met is False]
