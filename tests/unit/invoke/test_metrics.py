"""Prometheus exposition: counters, gauges, histograms, label escaping, bounded cardinality."""

from __future__ import annotations

from hearth.observability import metrics
from hearth.observability.metrics import InvokeMetrics, Registry


def test_exposition_format() -> None:
    r = Registry()
    m = InvokeMetrics(r)
    m.invoked("f", "$LATEST", duration_s=0.003, error=True, cold=True)
    m.throttled("f", "$LATEST")
    r.gauge("hearth_async_queue_depth", "x").set(3, {"function": 'a"b', "qualifier": "1"})
    text = r.render()
    assert "# TYPE hearth_invocations_total counter" in text
    assert 'hearth_invocations_total{function="f",qualifier="$LATEST"} 1' in text
    assert 'hearth_errors_total{function="f",qualifier="$LATEST"} 1' in text
    assert 'hearth_throttles_total{function="f",qualifier="$LATEST"} 1' in text
    assert 'hearth_cold_starts_total{function="f",qualifier="$LATEST"} 1' in text
    assert 'hearth_duration_seconds_bucket{function="f",qualifier="$LATEST",le="0.0025"} 0' in text
    assert 'hearth_duration_seconds_bucket{function="f",qualifier="$LATEST",le="0.005"} 1' in text
    assert 'hearth_duration_seconds_bucket{function="f",qualifier="$LATEST",le="+Inf"} 1' in text
    assert 'hearth_duration_seconds_count{function="f",qualifier="$LATEST"} 1' in text
    assert 'hearth_async_queue_depth{function="a\\"b",qualifier="1"} 3' in text
    assert "# TYPE hearth_provisioned_concurrency_utilization gauge" in text
    assert text.endswith("\n")


def test_cardinality_is_bounded(monkeypatch: object) -> None:
    r = Registry()
    c = r.counter("c_total", "c")
    for i in range(metrics.MAX_SERIES + 50):
        c.inc({"function": f"f{i}"})
    assert c.value({"function": metrics.OTHER}) == 50
    assert r.render().count("c_total{") == metrics.MAX_SERIES + 1


def test_collectors_run_before_a_scrape_and_failures_are_contained() -> None:
    r = Registry()
    g = r.gauge("g", "g")
    remove = r.add_collector(lambda: g.set(7))
    r.add_collector(lambda: 1 / 0)  # type: ignore[func-returns-value]
    assert "g 7" in r.render()
    remove()


def test_gauge_replace_drops_old_series() -> None:
    r = Registry()
    g = r.gauge("g", "g")
    g.replace({(("state", "Ready"),): 2})
    g.replace({(("state", "Frozen"),): 1})
    text = r.render()
    assert 'g{state="Frozen"} 1' in text and "Ready" not in text
