"""The soak benchmark's growth figure: per server life, after the warm-up, the worst life counts."""

from __future__ import annotations

from hearth.bench.soak import growth


def _s(life: int, age: float, rss: float) -> dict[str, float]:
    return {"life": float(life), "age_s": age, "rss_mib": rss}


def test_growth_ignores_the_ramp_up_and_the_restart_drop() -> None:
    samples = [_s(1, 0, 10), _s(1, 30, 50), _s(1, 60, 52), _s(1, 90, 53),   # life 1: +1 in its second half
               _s(2, 0, 12), _s(2, 30, 40), _s(2, 60, 41), _s(2, 90, 45)]   # life 2: +4 in its second half
    assert growth(samples, "rss_mib", warmup_s=30) == 4.0  # the worse life: 45 - 41


def test_the_warm_up_bounds_a_short_life() -> None:
    samples = [_s(1, 0, 10), _s(1, 10, 20), _s(1, 20, 30), _s(1, 40, 90)]  # half the life is 20 s
    assert growth(samples, "rss_mib", warmup_s=30) == 0.0  # only one sample from 30 s on
    assert growth(samples, "rss_mib", warmup_s=0) == 60.0  # 90 - 30
    assert growth([], "rss_mib", warmup_s=30) == 0.0
