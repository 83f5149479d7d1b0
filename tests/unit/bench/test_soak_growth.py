"""The soak benchmark's growth figure: per server life, after the warm-up, the worst life counts."""

from __future__ import annotations

from hearth.bench.soak import growth


def _s(life: int, age: float, rss: float) -> dict[str, float]:
    return {"life": float(life), "age_s": age, "rss_mib": rss}


def test_growth_ignores_the_warm_up_and_the_restart_drop() -> None:
    samples = [_s(1, 0, 10), _s(1, 30, 50), _s(1, 60, 52), _s(1, 90, 53),   # life 1: +3 after warm-up
               _s(2, 0, 12), _s(2, 30, 40), _s(2, 60, 41), _s(2, 90, 45)]   # life 2: +5 after warm-up
    assert growth(samples, "rss_mib", warmup_s=30) == 5.0  # the worse life: 45 - 40


def test_a_life_without_two_samples_after_its_warm_up_counts_as_flat() -> None:
    assert growth([_s(1, 0, 10), _s(1, 40, 90)], "rss_mib", warmup_s=30) == 0.0
    assert growth([], "rss_mib", warmup_s=30) == 0.0
