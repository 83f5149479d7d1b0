"""Cold-start and warm-invoke latency against their baselines, measured with a raw signed HTTP client.

Every measured call goes through `hearth.bench.rawclient.SignedClient` (http.client, keep-alive, SigV4
signed with a cached key), whose own cost is a few tens of microseconds and the same for Hearth and its
baseline. boto3 figures (about a millisecond of client work per call, which dilutes any ratio towards 1)
are kept as a second, labelled column: `*_boto3_*`.

Figures:
- cold start: the first invocation of a freshly created function (new environment, INIT included);
  baseline: the bare interpreter starting and importing the same handler module, with no PYTHONPATH or
  NODE_OPTIONS of ours (so `site` imports nothing the bare interpreter would not).
- cold start from a snapshot (SnapStart): the first invocation of a published SnapStart version;
  baseline: the bare interpreter (Python 3.12 or later, as SnapStart needs) starting and importing the
  handler. Twice: an empty handler (no extra path at all on the baseline) and one that imports boto3
  (the baseline gets exactly the SDK directory the sandbox gets, so the handler's imports are the same
  on both sides), with that one's on-demand cold start for comparison.
- warm: an invocation served by a warm environment, at 1,769 MB (one vCPU) and at 128 MB; baseline: the
  same raw client's round trip to a minimal ASGI echo app on the same ASGI server stack (uvicorn, uvloop,
  httptools). p50 and p99 of both, alternating in blocks so that drift hits both alike.
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

from hearth.bench.progress import SILENT, Progress
from hearth.bench.rawclient import SignedClient
from hearth.bench.servers import BENCH_KEY, start_echo, start_hearth
from hearth.invoke.launch import SDK_DIR
from hearth.runtimes.registry import installed_runtimes

ROLE = "arn:aws:iam::000000000000:role/bench"
# Cold starts run at one whole vCPU (1,769 MB), so they measure Hearth's path rather than the CPU share a
# smaller function buys. Warm invokes are measured at both ends of the range the promise covers.
BENCH_MEMORY_MB = 1769
WARM_MEMORY_MB = (1769, 128)
PY_HANDLER = "def handler(event, context):\n    return event\n"
PY_SDK_HANDLER = "import boto3\n\ndef handler(event, context):\n    return event\n"
NODE_HANDLER = "exports.handler = async (event) => event;\n"
BLOCK = 50  # calls per alternating block of figure and baseline
SETTLE_S = 1.0


def _zip(name: str, content: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, content)
    return buf.getvalue()


def _client(endpoint: str) -> Any:
    return boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=BENCH_KEY[0], aws_secret_access_key=BENCH_KEY[1],
                        config=Config(retries={"max_attempts": 1}, read_timeout=60, tcp_keepalive=True))


def _raw(endpoint: str) -> SignedClient:
    return SignedClient(endpoint, "lambda", BENCH_KEY[0], BENCH_KEY[1])


def bare_env(**extra: str) -> dict[str, str]:
    """The environment of a bare interpreter: ours without anything that changes what an interpreter
    loads at start (PYTHON*, NODE_OPTIONS/NODE_PATH), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k not in ("NODE_OPTIONS",
                                                                                          "NODE_PATH")}
    env.update(extra)
    return env


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": statistics.median(ordered), "p99": pick(0.99), "min": ordered[0], "n": len(ordered)}


def _series(samples: list[float]) -> dict[str, Any]:
    return {**percentiles(samples), "samples": [round(s, 4) for s in samples]}


def _invoke(client: Any, name: str) -> None:
    client.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()


def _raw_invoke(client: SignedClient, name: str, qualifier: str | None = None) -> None:
    status, body = client.invoke(name, qualifier=qualifier)
    if status != 200:
        raise RuntimeError(f"invoke {name}: HTTP {status}: {body[:200]!r}")


def _time_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _wait_active(lam: Any, name: str, qualifier: str | None = None) -> None:
    extra = {"Qualifier": qualifier} if qualifier else {}
    while True:
        cfg = lam.get_function_configuration(FunctionName=name, **extra)
        if cfg["State"] == "Active":
            return
        if cfg["State"] == "Failed":
            raise RuntimeError(f"{name}: {cfg.get('StateReason')}")
        time.sleep(0.02)


def alternate(figure: Callable[[], object], baseline: Callable[[], object], runs: int,
              advance: Callable[[int], None], block: int = BLOCK) -> tuple[list[float], list[float]]:
    """(figure samples, baseline samples), `runs` of each, in alternating blocks: the figure's deferred
    work (log commits, freezing) stays out of the baseline's samples, and drift hits both alike."""
    figures: list[float] = []
    baselines: list[float] = []
    for start in range(0, runs, block):
        count = min(block, runs - start)
        baselines += [_time_ms(baseline) for _ in range(count)]
        figures += [_time_ms(figure) for _ in range(count)]
        advance(count)
    return figures, baselines


def _snapshot_cold_starts(lam: Any, raw: SignedClient, code_dir: Path, runs: int, results: dict[str, Any],
                          progress: Progress) -> None:
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
    # The empty handler's baseline gets no extra path; the SDK handler's gets the directory the sandbox
    # finds boto3 in, and nothing else.
    cases = (("python_snapshot", PY_HANDLER, code_dir, bare_env()),
             ("python_sdk_snapshot", PY_SDK_HANDLER, sdk_dir, bare_env(PYTHONPATH=str(SDK_DIR))))
    for label, source, cwd, env in cases:
        code = _zip("app.py", source)
        names = [f"bench-{label.replace('_', '-')}-{i}" for i in range(runs)]
        advance = progress.phase(f"{label}: create and publish {runs} SnapStart versions", runs)
        for name in names:
            lam.create_function(FunctionName=name, Runtime=runtime, Handler="app.handler", Role=ROLE,
                                Code={"ZipFile": code}, MemorySize=BENCH_MEMORY_MB, Timeout=30,
                                SnapStart={"ApplyOn": "PublishedVersions"})
        for name in names:
            _wait_active(lam, name)
            lam.publish_version(FunctionName=name)  # the snapshot is taken now, not in the figure
        for name in names:
            _wait_active(lam, name, "1")
            advance(1)
        bare: list[float] = []
        restored: list[float] = []
        on_demand: list[float] = []
        advance = progress.phase(f"{label}: restores vs bare {python.rsplit('/', 1)[-1]} starts", runs)
        for name in names:
            bare.append(_time_ms(partial(subprocess.run, [python, "-c", "import app"], cwd=cwd, env=env,
                                         check=True)))
            restored.append(_time_ms(partial(_raw_invoke, raw, name, "1")))
            if label == "python_sdk_snapshot":  # $LATEST of the same function starts on demand
                on_demand.append(_time_ms(partial(_raw_invoke, raw, name)))
            advance(1)
        results[f"{label}_bare_start_import_ms"] = _series(bare)
        results[f"{label}_cold_start_ms"] = _series(restored)
        results[f"{label}_cold_ratio"] = (results[f"{label}_cold_start_ms"]["p50"]
                                          / results[f"{label}_bare_start_import_ms"]["p50"])
        series = {"bare start+import": bare, "snapshot restore": restored}
        if on_demand:
            results["python_sdk_on_demand_cold_start_ms"] = _series(on_demand)
            series["on-demand cold start"] = on_demand
        results["distributions"].append({"title": f"{label}: first invoke of a published version", "series": series})
        for name in names:
            lam.delete_function(FunctionName=name)


def _languages(code_dir: Path) -> list[tuple[str, str, str, str, str, list[str]]]:
    python = str(installed_runtimes()["python3.11"].executable)
    languages = [("python3.11", "app.py", PY_HANDLER, "app.handler", "python", [python, "-c", "import app"])]
    node_rt = next((r for r in installed_runtimes() if r.startswith("nodejs")), None)
    if node_rt:
        node = str(installed_runtimes()[node_rt].executable)
        languages.append((node_rt, "index.js", NODE_HANDLER, "index.handler", "node",
                          [node, "-e", "require('./index.js')"]))
    return languages


def run(runs: int = 20, warm_runs: int = 300, endpoint: str | None = None, progress: Progress = SILENT,
        boto3_runs: int = 100, snapshot: bool = True) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    echo, echo_url = start_echo(tmp)
    hearth = None
    if endpoint is None:
        hearth, endpoint = start_hearth(tmp)
    results: dict[str, Any] = {"runs": runs, "warm_runs": warm_runs, "client": "raw http.client, SigV4, keep-alive",
                               "distributions": []}
    try:
        lam = _client(endpoint)
        raw, echo_raw = _raw(endpoint), _raw(echo_url)
        echo_boto3 = _client(echo_url)
        for _ in range(20):  # warm the baseline's connection and server
            _raw_invoke(echo_raw, "echo")
            _invoke(echo_boto3, "echo")
        code_dir = tmp / "code"
        code_dir.mkdir()
        (code_dir / "app.py").write_text(PY_HANDLER)
        (code_dir / "index.js").write_text(NODE_HANDLER)
        for runtime, filename, source, handler, label, bare_argv in _languages(code_dir):
            code = _zip(filename, source)
            names = [f"bench-{label}-cold-{i}" for i in range(runs)]
            for name in names:
                lam.create_function(FunctionName=name, Runtime=runtime, Handler=handler, Role=ROLE,
                                    Code={"ZipFile": code}, MemorySize=BENCH_MEMORY_MB)
            for name in names:
                _wait_active(lam, name)
            advance = progress.phase(f"{label}: cold starts vs bare starts", runs)
            bare: list[float] = []
            cold: list[float] = []
            for name in names:  # baseline and figure alternate, so a noisy neighbour slows both alike
                bare.append(_time_ms(partial(subprocess.run, bare_argv, cwd=code_dir, env=bare_env(), check=True)))
                cold.append(_time_ms(partial(_raw_invoke, raw, name)))
                advance(1)
            results[f"{label}_bare_start_import_ms"] = _series(bare)
            results[f"{label}_cold_start_ms"] = _series(cold)
            results[f"{label}_cold_ratio"] = (results[f"{label}_cold_start_ms"]["p50"]
                                              / results[f"{label}_bare_start_import_ms"]["p50"])
            results["distributions"].append({"title": f"{label}: on-demand cold start",
                                             "series": {"bare start+import": bare, "cold start": cold}})
            for memory in WARM_MEMORY_MB:
                warm_name = names[0] if memory == BENCH_MEMORY_MB else f"bench-{label}-warm-{memory}"
                if warm_name != names[0]:
                    lam.create_function(FunctionName=warm_name, Runtime=runtime, Handler=handler, Role=ROLE,
                                        Code={"ZipFile": code}, MemorySize=memory)
                    _wait_active(lam, warm_name)
                # A precaution: the cold starts' deferred work (log commits, freezing their environments)
                # should be over before a warm phase starts.
                time.sleep(SETTLE_S)
                for _ in range(50):
                    _raw_invoke(raw, warm_name)
                advance = progress.phase(f"{label}: warm invokes at {memory} MB vs echo", warm_runs)
                warm, echo_samples = alternate(partial(_raw_invoke, raw, warm_name),
                                               partial(_raw_invoke, echo_raw, "echo"), warm_runs, advance)
                prefix = f"{label}_warm_{memory}"
                results[f"{prefix}_ms"] = _series(warm)
                results[f"{prefix}_echo_ms"] = _series(echo_samples)
                for stat in ("p50", "p99"):
                    results[f"{prefix}_{stat}_ratio"] = (results[f"{prefix}_ms"][stat]
                                                         / results[f"{prefix}_echo_ms"][stat])
                results["distributions"].append({"title": f"{label}: warm invoke at {memory} MB (raw client)",
                                                 "series": {"echo round trip": echo_samples, "warm invoke": warm}})
                if memory == BENCH_MEMORY_MB and boto3_runs:
                    advance = progress.phase(f"{label}: warm invokes through boto3 (second column)", boto3_runs)
                    warm_b, echo_b = alternate(partial(_invoke, lam, warm_name), partial(_invoke, echo_boto3, "echo"),
                                               boto3_runs, advance)
                    results[f"{prefix}_boto3_ms"] = percentiles(warm_b)
                    results[f"{prefix}_boto3_echo_ms"] = percentiles(echo_b)
                    results[f"{prefix}_boto3_p50_ratio"] = (results[f"{prefix}_boto3_ms"]["p50"]
                                                            / results[f"{prefix}_boto3_echo_ms"]["p50"])
                if warm_name != names[0]:
                    lam.delete_function(FunctionName=warm_name)
            for name in names:
                lam.delete_function(FunctionName=name)
        if snapshot:
            _snapshot_cold_starts(lam, raw, code_dir, runs, results, progress)
    finally:
        echo.stop()
        if hearth is not None:
            hearth.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # the servers' data and code
    return results
