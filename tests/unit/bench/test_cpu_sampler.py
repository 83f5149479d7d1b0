"""The scale-out benchmark's host CPU window: busy cores over a window known only after the burst."""

from __future__ import annotations

import os

import pytest

from hearth.bench.scale import _CpuSampler, _host_cpu


def _sampler(samples: list[tuple[float, float, float]]) -> _CpuSampler:
    sampler = _CpuSampler()
    sampler.samples = samples
    return sampler


def test_busy_cores_uses_the_samples_around_the_window() -> None:
    cores = os.cpu_count() or 1
    # Host-wide seconds: 10 s of CPU time pass per wall second on this fake host; half of them busy
    # inside the window, none outside it.
    samples = [(0.0, 0.0, 0.0), (1.0, 0.0, 10.0), (2.0, 5.0, 20.0), (3.0, 5.0, 30.0)]
    assert _sampler(samples).busy_cores(1.0, 2.0) == pytest.approx(cores * 0.5)


def test_busy_cores_widens_to_the_nearest_samples_outside() -> None:
    cores = os.cpu_count() or 1
    samples = [(0.0, 0.0, 0.0), (1.0, 10.0, 10.0), (2.0, 10.0, 20.0)]
    # No sample inside (0.2, 0.8): the window is measured from the samples at 0 and 1 (fully busy).
    assert _sampler(samples).busy_cores(0.2, 0.8) == pytest.approx(cores * 1.0)


def test_busy_cores_is_zero_without_enough_samples() -> None:
    assert _sampler([]).busy_cores(0.0, 1.0) == 0.0
    assert _sampler([(0.5, 1.0, 2.0)]).busy_cores(0.0, 1.0) == 0.0


def test_the_sampler_records_while_open() -> None:
    with _CpuSampler(interval_s=0.001) as sampler:
        while len(sampler.samples) < 2:
            pass
    busy, total = _host_cpu()
    assert total >= busy >= 0
    assert all(s[2] >= s[1] for s in sampler.samples)
