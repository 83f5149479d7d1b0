"""Cold-start and warm-invoke latency against their baselines.

Figures (all end to end through the HTTP API with one botocore client):
- cold start: the first invocation of a freshly created function (new environment, INIT included);
  baseline: the bare interpreter starting and importing the same handler module.
- warm: an invocation served by a warm environment; baseline: a round trip through the same botocore
  client to a minimal ASGI echo app on the same ASGI server stack (uvicorn, uvloop, httptools).
"""

from __future__ import annotations

import io
import statistics
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from hearth.bench.servers import BENCH_KEY, start_echo, start_hearth
from hearth.runtimes.registry import installed_runtimes

ROLE = "arn:aws:iam::000000000000:role/bench"
PY_HANDLER = "def handler(event, context):\n    return event\n"
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


def _time_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def bare_start_ms(argv: list[str], cwd: Path, runs: int) -> dict[str, float]:
    samples = [_time_ms(lambda: subprocess.run(argv, cwd=cwd, check=True)) for _ in range(runs)]
    return percentiles(samples)


def _wait_active(lam: Any, name: str) -> None:
    while True:
        cfg = lam.get_function_configuration(FunctionName=name)
        if cfg["State"] == "Active":
            return
        if cfg["State"] == "Failed":
            raise RuntimeError(f"{name}: {cfg.get('StateReason')}")
        time.sleep(0.02)


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
        # Baseline: the same client, the same operation, against the echo app.
        for _ in range(20):
            echo_client.invoke(FunctionName="echo", Payload=b"{}")
        results["echo_round_trip_ms"] = percentiles(
            [_time_ms(lambda: echo_client.invoke(FunctionName="echo", Payload=b"{}")["Payload"].read())
             for _ in range(warm_runs)])
        code_dir = tmp / "code"
        code_dir.mkdir()
        (code_dir / "app.py").write_text(PY_HANDLER)
        (code_dir / "index.js").write_text(NODE_HANDLER)
        python = installed_runtimes()["python3.11"].executable
        results["python_bare_start_import_ms"] = bare_start_ms([str(python), "-c", "import app"], code_dir, runs)
        languages = [("python3.11", "app.py", PY_HANDLER, "app.handler", "python")]
        node_rt = next((r for r in installed_runtimes() if r.startswith("nodejs")), None)
        if node_rt:
            node = str(installed_runtimes()[node_rt].executable)
            results["node_bare_start_import_ms"] = bare_start_ms([node, "-e", "require('./index.js')"], code_dir, runs)
            languages.append((node_rt, "index.js", NODE_HANDLER, "index.handler", "node"))
        for runtime, filename, source, handler, label in languages:
            code = _zip(filename, source)
            names = [f"bench-{label}-cold-{i}" for i in range(runs)]
            for name in names:
                lam.create_function(FunctionName=name, Runtime=runtime, Handler=handler, Role=ROLE,
                                    Code={"ZipFile": code})
            for name in names:
                _wait_active(lam, name)
            cold = [_time_ms(lambda n=name: lam.invoke(FunctionName=n, Payload=b"{}")["Payload"].read())  # type: ignore[misc]
                    for name in names]
            results[f"{label}_cold_start_ms"] = percentiles(cold)
            warm_name = names[0]
            for _ in range(20):
                lam.invoke(FunctionName=warm_name, Payload=b"{}")
            warm = [_time_ms(lambda n=warm_name: lam.invoke(FunctionName=n, Payload=b"{}")["Payload"].read())  # type: ignore[misc]
                    for _ in range(warm_runs)]
            results[f"{label}_warm_ms"] = percentiles(warm)
            results[f"{label}_cold_ratio"] = (results[f"{label}_cold_start_ms"]["p50"]
                                              / results[f"{label}_bare_start_import_ms"]["p50"])
            results[f"{label}_warm_ratio"] = results[f"{label}_warm_ms"]["p50"] / results["echo_round_trip_ms"]["p50"]
            for name in names:
                lam.delete_function(FunctionName=name)
    finally:
        echo.stop()
        if hearth is not None:
            hearth.stop()
    return results
