"""CPU follows memory, measured: the same CPU-bound work runs about 4x faster at 1,769 MB (one core)
than at 442 MB (a quarter of a core). The ratio is a property of the CFS quota, not of host speed."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.integration.harness import HearthServer, create_function, invoke_json

pytestmark = pytest.mark.integration

BUSY = """
import time
def handler(event, context):
    started, cpu = time.perf_counter(), time.process_time()
    x = 0
    for i in range(event["n"]):
        x += i * i
    return {"elapsed": time.perf_counter() - started, "cpu": time.process_time() - cpu}
"""


def busy_seconds(lam: Any, name: str, n: int) -> float:
    _, body = invoke_json(lam, name, {"n": n})
    return float(body["elapsed"])


def full_core_run(lam: Any, name: str, n: int) -> float | None:
    """Wall time of a run at one core, or None when the host could not give it a whole core (other load:
    then the run measures the neighbours, not the quota)."""
    _, body = invoke_json(lam, name, {"n": n})
    elapsed, cpu = float(body["elapsed"]), float(body["cpu"])
    return elapsed if cpu / elapsed >= 0.85 else None


def test_cpu_is_proportional_to_memory(server: HearthServer) -> None:
    if server.health()["isolation"] == "process":
        pytest.skip("CPU quotas need cgroups")
    lam = server.client("lambda")
    create_function(lam, "cpu-1769", {"app.py": BUSY}, MemorySize=1769, Timeout=60)
    create_function(lam, "cpu-442", {"app.py": BUSY}, MemorySize=442, Timeout=60)
    invoke_json(lam, "cpu-1769", {"n": 1})  # INIT runs at full speed; the share applies from here on
    invoke_json(lam, "cpu-442", {"n": 1})
    # About half a second of one core, whatever the host's speed: long enough that the CFS burst (one
    # quota's worth, 25 ms at 442 MB) and scheduling noise stay small against it.
    probe = busy_seconds(lam, "cpu-1769", 2_000_000)
    n = max(2_000_000, int(2_000_000 * 0.5 / probe))
    # The best of three interleaved rounds: other load on the host only ever makes a run slower. A
    # quarter-core run loses whatever part of its quota a busy host does not let it use, so a second
    # measurement is taken before concluding, and a host that is visibly busy skips rather than fails.
    for _attempt in range(2):
        fast = slow = float("inf")
        for _ in range(3):
            run = full_core_run(lam, "cpu-1769", n)
            if run is None:
                continue
            fast = min(fast, run)
            slow = min(slow, busy_seconds(lam, "cpu-442", n))
        if fast == float("inf"):
            pytest.skip("the host is too busy to give one sandbox a whole core; the ratio cannot be measured")
        ratio = slow / fast
        if 4 * 0.8 <= ratio <= 4 * 1.2:
            return
    load = os.getloadavg()[0]
    if load > 1.5:
        pytest.skip(f"ratio {ratio:.2f} measured on a busy host (load {load:.1f} on {os.cpu_count()} cores)")
    raise AssertionError(f"442 MB took {slow:.3f}s, 1769 MB {fast:.3f}s: ratio {ratio:.2f}, expected 4 ± 20%")
