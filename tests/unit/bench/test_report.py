"""The benchmark's HTML report: verdicts, every figure, and the distributions when matplotlib is there."""

from __future__ import annotations

import importlib.util

import pytest

from hearth.bench import report

RESULTS = {
    "started": "2026-12-06T04:00:00Z",
    "latency": {
        "python_warm_1769_p50_ratio": 2.5,
        "python_warm_1769_ms": {"p50": 1.0, "p99": 2.0, "samples": [0.9, 1.0, 2.0]},
        "distributions": [{"title": "python: warm invoke", "series": {"echo": [0.3, 0.4], "warm": [0.9, 1.0]}}],
    },
}


def test_the_report_lists_verdicts_and_figures_without_raw_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "_plots_available", lambda: False)
    text = report.render(RESULTS)
    assert "<tr class='NO'>" in text  # 2.5 > 2
    assert "python_warm_1769_p50_ratio" in text
    assert "not measured" in text  # e.g. the scale section was not run
    assert "matplotlib is not installed" in text
    assert "0.9, 1.0, 2.0" not in text and '"samples"' not in text


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="the optional bench extra")
def test_distributions_are_inline_svg() -> None:
    text = report.render(RESULTS)
    assert text.count("<svg") == 1
    assert "<?xml" not in text


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="the optional bench extra")
def test_a_soak_is_drawn_over_time() -> None:
    samples = [{"t_s": float(t), "life": 1.0, "age_s": float(t), "rss_mib": 50.0, "fds": 40.0, "tasks": 30.0}
               for t in range(3)]
    text = report.render({"soak": {"samples": samples, "lost": 0, "errors": 0}})
    assert "Soak: the server over time" in text and text.count("<svg") == 1
