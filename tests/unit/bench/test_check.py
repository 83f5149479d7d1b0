"""`hearth bench --check`: which figures the promises read, how they compare, what "not measured" means."""

from __future__ import annotations

from typing import Any

from hearth.bench.check import PROMISES, Promise, evaluate, figure, missed

AT_MOST = Promise("latency", "python_warm_1769_p50_ratio", "<=", 2.0, "warm")
AT_LEAST = Promise("scale", "scale_out.environments_per_s", ">=", 200.0, "scale-out")


def test_a_figure_is_read_along_its_dotted_path() -> None:
    results = {"scale": {"scale_out": {"environments_per_s": 250}, "throughput": {"16": {"ratio": 0.7}}}}
    assert figure(results, "scale", "scale_out.environments_per_s") == 250.0
    assert figure(results, "scale", "throughput.16.ratio") == 0.7


def test_absent_or_non_numeric_figures_are_not_measured() -> None:
    results: dict[str, Any] = {"latency": {"python_snapshot_cold_start_ms": "skipped: no Python 3.12", "flag": True}}
    assert figure(results, "latency", "python_snapshot_cold_start_ms") is None
    assert figure(results, "latency", "flag") is None
    assert figure(results, "latency", "missing") is None
    assert figure(results, "esm", "send_to_handler.p50_ms") is None


def test_upper_bounds_are_met_at_the_target_and_missed_above_it() -> None:
    at, above = (evaluate({"latency": {AT_MOST.figure: v}}, (AT_MOST,))[0] for v in (2.0, 2.01))
    assert at.met is True
    assert above.met is False


def test_lower_bounds_are_met_at_the_target_and_missed_below_it() -> None:
    at, below = (evaluate({"scale": {"scale_out": {"environments_per_s": v}}}, (AT_LEAST,))[0]
                 for v in (200, 199.9))
    assert at.met is True
    assert below.met is False


def test_only_measured_misses_count() -> None:
    verdicts = evaluate({"latency": {AT_MOST.figure: 3.0}}, (AT_MOST, AT_LEAST))
    assert [v.promise for v in missed(verdicts)] == [AT_MOST]
    assert verdicts[1].met is None


def test_the_specification_targets_are_enforced() -> None:
    by_figure = {p.figure: p for p in PROMISES}
    for memory in (128, 1769):
        for stat in ("p50", "p99"):
            p = by_figure[f"python_warm_{memory}_{stat}_ratio"]
            assert (p.op, p.target) == ("<=", 2.0)
    assert (by_figure["python_snapshot_cold_ratio"].op, by_figure["python_snapshot_cold_ratio"].target) == ("<=", 0.5)
    assert by_figure["python_cold_ratio"].target == 0.5
    assert (by_figure["scale_out.environments_per_s"].op, by_figure["scale_out.environments_per_s"].target) == (
        ">=", 200.0)
    assert by_figure["send_to_handler.p50_ms"].target == 5.0
    assert by_figure["send_to_handler.p99_ms"].target == 20.0
