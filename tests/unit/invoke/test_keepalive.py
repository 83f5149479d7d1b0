"""Keep-alive policies with a simulated clock, and the replay benchmark's arithmetic."""

from __future__ import annotations

from hearth.bench.keepalive import replay, synthetic_trace
from hearth.invoke.keepalive import FixedKeepAlive, HistogramKeepAlive, Window, make_policy


def test_fixed_window() -> None:
    assert FixedKeepAlive(600).window("f") == Window(0.0, 600)
    assert Window(0, 600).keeps(599) and not Window(0, 600).keeps(600)


def test_short_history_falls_back_to_fixed() -> None:
    policy = HistogramKeepAlive(600)
    for t in range(5):
        policy.record("f", t * 3600.0)
    assert policy.window("f") == Window(0.0, 600)


def test_hourly_timer_is_prewarmed_before_the_next_call() -> None:
    policy = HistogramKeepAlive(600)
    for i in range(30):
        policy.record("hourly", i * 3600.0)
    window = policy.window("hourly")
    assert 0 < window.prewarm_s < 3600 <= window.prewarm_s + window.keep_alive_s
    assert window.keeps(3600.0) and not window.keeps(600.0)


def test_frequent_calls_keep_a_short_window() -> None:
    policy = HistogramKeepAlive(600)
    for i in range(100):
        policy.record("hot", i * 5.0)
    window = policy.window("hot")
    assert window.prewarm_s == 0 and window.keep_alive_s < 600


def test_uniform_history_is_not_representative() -> None:
    policy = HistogramKeepAlive(600, bin_s=60, range_s=600)
    for i in range(200):
        policy.record("spread", i * 60.0 * ((i % 10) + 0.5))
    assert policy.window("spread") == Window(0.0, 600)


def test_make_policy() -> None:
    assert make_policy("fixed", 5).name == "fixed"
    assert make_policy("adaptive", 5).name == "adaptive"


def test_replay_counts_cold_starts_and_idle_time() -> None:
    trace = [(0.0, "f", 1.0), (100.0, "f", 1.0), (1000.0, "f", 1.0)]
    result = replay(trace, FixedKeepAlive(600), horizon=1000.0)
    assert result.cold_starts == 2  # the first call, and the one after a 899 s gap
    assert result.idle_env_seconds == 99.0 + 600.0


def test_adaptive_beats_fixed_on_the_synthetic_trace() -> None:
    trace = synthetic_trace(seed=7, hours=24)
    fixed = replay(trace, FixedKeepAlive(600), 24 * 3600)
    adaptive = replay(trace, HistogramKeepAlive(600), 24 * 3600)
    assert adaptive.cold_starts < fixed.cold_starts
    assert adaptive.idle_env_seconds < fixed.idle_env_seconds
