"""Cold-start and warm-invoke latency against their baselines.

Figures (all end to end through the HTTP API with one botocore client):
- cold start: the first invocation of a freshly created function (new environment, INIT included);
  baseline: the bare interpreter starting and importing the same handler module.
- cold start from a snapshot (SnapStart): the first invocation of a published SnapStart version (a
  new environment restored from the version's snapshot, taken when it was published); baseline: the
  bare interpreter (Python 3.12 or later, as SnapStart needs) starting and importing the handler. Twice:
  an empty handler, and one that imports boto3 (with that one's on-demand cold start for comparison).
- warm: an invocation served by a warm environment; baseline: a round trip through the same botocore
  client to a minimal ASGI echo app on the same ASGI server stack (uvicorn, uvloop, httptools).
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from hearth.bench.servers import BENCH_KEY, start_echo, start_hearth
from hearth.invoke.launch import SDK_DIR
from hearth.runtimes.registry import installed_runtimes

ROLE = "arn:aws:iam::000000000000:role/bench"
# The measured functions get one whole vCPU (1,769 MB), so the figures measure Hearth's path rather than
# the CPU share a smaller function buys: at 128 MB a runtime gets 7 % of a core, and back-to-back warm
# invocations would be throttled by the CFS quota exactly as on AWS.
BENCH_MEMORY_MB = 1769
PY_HANDLER = "def handler(event, context):\n    return event\n"
PY_SDK_HANDLER = "import boto3\n\ndef handler(event, context):\n    return event\n"
NODE_HANDLER = "exports.handler = async (event) => event;\n"


def _zip(name: str, content: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, content)
    return buf.getvalue()


def _client(endpoint: str) -> Any:
    return boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=BENCH_KEY[0], aws_secret_access_key=BENCH_KEY[1],
                        config=Config(retries={"max_attempts": 1}, read_timeout=60, tcp_keepalive=True))


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": statistics.median(ordered), "p99": pick(0.99), "min": ordered[0], "n": len(ordered)}


def _invoke(client: Any, name: str) -> None:
    client.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()


def _time_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _wait_active(lam: Any, name: str) -> None:
    while True:
        cfg = lam.get_function_configuration(FunctionName=name)
        if cfg["State"] == "Active":
            return
        if cfg["State"] == "Failed":
            raise RuntimeError(f"{name}: {cfg.get('StateReason')}")
        time.sleep(0.02)


def _wait_version_active(lam: Any, name: str, version: str) -> None:
    while True:
        cfg = lam.get_function_configuration(FunctionName=name, Qualifier=version)
        if cfg["State"] == "Active":
            return
        if cfg["State"] == "Failed":
            raise RuntimeError(f"{name}:{version}: {cfg.get('StateReason')}")
        time.sleep(0.02)


def _snapshot_cold_starts(lam: Any, code_dir: Path, runs: int, results: dict[str, Any]) -> None:
    """Restores from a snapshot against the bare interpreter, for two handlers: the empty one (nothing
    for a snapshot to save: the worst case) and one that imports the AWS SDK, as most Python functions
    do (there, on-demand cold starts are measured too, to show what the snapshot saves)."""
    runtime = next((r for r in sorted(installed_runtimes()) if r.startswith("python3.")
                    and int(r.split(".")[1]) >= 12), None)
    if runtime is None:
        results["python_snapshot_cold_start_ms"] = "skipped: no Python 3.12 or later installed"
        return
    results["python_snapshot_runtime"] = runtime
    python = str(installed_runtimes()[runtime].executable)
    sdk_dir = code_dir.parent / "sdk-code"
    sdk_dir.mkdir()
    (sdk_dir / "app.py").write_text(PY_SDK_HANDLER)
    env = dict(os.environ, PYTHONPATH=str(SDK_DIR))  # where the sandbox finds boto3, for the bare run
    cases = (("python_snapshot", PY_HANDLER, code_dir), ("python_sdk_snapshot", PY_SDK_HANDLER, sdk_dir))
    for label, source, cwd in cases:
        code = _zip("app.py", source)
        names = [f"bench-{label.replace('_', '-')}-{i}" for i in range(runs)]
        for name in names:
            lam.create_function(FunctionName=name, Runtime=runtime, Handler="app.handler", Role=ROLE,
                                Code={"ZipFile": code}, MemorySize=BENCH_MEMORY_MB, Timeout=30,
                                SnapStart={"ApplyOn": "PublishedVersions"})
        for name in names:
            _wait_active(lam, name)
            lam.publish_version(FunctionName=name)  # the snapshot is taken now, not in the figure
        for name in names:
            _wait_version_active(lam, name, "1")
        bare: list[float] = []
        restored: list[float] = []
        on_demand: list[float] = []
        for name in names:
            bare.append(_time_ms(partial(subprocess.run, [python, "-c", "import app"], cwd=cwd, env=env,
                                         check=True)))
            restored.append(_time_ms(partial(_invoke, lam, f"{name}:1")))
            if label == "python_sdk_snapshot":  # $LATEST of the same function starts on demand
                on_demand.append(_time_ms(partial(_invoke, lam, name)))
        results[f"{label}_bare_start_import_ms"] = percentiles(bare)
        results[f"{label}_cold_start_ms"] = percentiles(restored)
        results[f"{label}_cold_ratio"] = (results[f"{label}_cold_start_ms"]["p50"]
                                          / results[f"{label}_bare_start_import_ms"]["p50"])
        if on_demand:
            results["python_sdk_on_demand_cold_start_ms"] = percentiles(on_demand)
        for name in names:
            lam.delete_function(FunctionName=name)


def run(runs: int = 20, warm_runs: int = 300, endpoint: str | None = None) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    echo, echo_url = start_echo(tmp)
    hearth = None
    if endpoint is None:
        hearth, endpoint = start_hearth(tmp)
    results: dict[str, Any] = {"runs": runs, "warm_runs": warm_runs}
    try:
        lam = _client(endpoint)
        echo_client = _client(echo_url)
        # Warm up the baseline: the same client, the same operation, against the echo app.
        for _ in range(20):
            echo_client.invoke(FunctionName="echo", Payload=b"{}")
        code_dir = tmp / "code"
        code_dir.mkdir()
        (code_dir / "app.py").write_text(PY_HANDLER)
        (code_dir / "index.js").write_text(NODE_HANDLER)
        python = str(installed_runtimes()["python3.11"].executable)
        languages = [("python3.11", "app.py", PY_HANDLER, "app.handler", "python", [python, "-c", "import app"])]
        node_rt = next((r for r in installed_runtimes() if r.startswith("nodejs")), None)
        if node_rt:
            node = str(installed_runtimes()[node_rt].executable)
            languages.append((node_rt, "index.js", NODE_HANDLER, "index.handler", "node",
                              [node, "-e", "require('./index.js')"]))
        for runtime, filename, source, handler, label, bare_argv in languages:
            code = _zip(filename, source)
            names = [f"bench-{label}-cold-{i}" for i in range(runs)]
            for name in names:
                lam.create_function(FunctionName=name, Runtime=runtime, Handler=handler, Role=ROLE,
                                    Code={"ZipFile": code}, MemorySize=BENCH_MEMORY_MB)
            for name in names:
                _wait_active(lam, name)
            # Baseline and figure alternate, so a noisy neighbour slows both alike.
            bare: list[float] = []
            cold: list[float] = []
            for name in names:
                bare.append(_time_ms(partial(subprocess.run, bare_argv, cwd=code_dir, check=True)))
                cold.append(_time_ms(partial(_invoke, lam, name)))
            results[f"{label}_bare_start_import_ms"] = percentiles(bare)
            results[f"{label}_cold_start_ms"] = percentiles(cold)
            warm_name = names[0]
            for _ in range(20):
                lam.invoke(FunctionName=warm_name, Payload=b"{}")
            echo_samples: list[float] = []
            warm: list[float] = []
            # Blocks of calls, alternating: Hearth's deferred work (log commits, freezing) must not
            # land inside the baseline's samples, and drift on a shared machine hits both alike.
            block = 50
            for start in range(0, warm_runs, block):
                count = min(block, warm_runs - start)
                echo_samples += [_time_ms(partial(_invoke, echo_client, "echo")) for _ in range(count)]
                warm += [_time_ms(partial(_invoke, lam, warm_name)) for _ in range(count)]
            results[f"{label}_echo_round_trip_ms"] = percentiles(echo_samples)
            results[f"{label}_warm_ms"] = percentiles(warm)
            results[f"{label}_cold_ratio"] = (results[f"{label}_cold_start_ms"]["p50"]
                                              / results[f"{label}_bare_start_import_ms"]["p50"])
            results[f"{label}_warm_ratio"] = (results[f"{label}_warm_ms"]["p50"]
                                              / results[f"{label}_echo_round_trip_ms"]["p50"])
            for name in names:
                lam.delete_function(FunctionName=name)
        _snapshot_cold_starts(lam, code_dir, runs, results)
    finally:
        echo.stop()
        if hearth is not None:
            hearth.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # the servers' data and code
    return results
