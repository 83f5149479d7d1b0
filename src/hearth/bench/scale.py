"""Throughput, scale-out and density of Hearth, each with its same-run baseline or target.

Figures:
- throughput at concurrency 1 / 4 / 16: warm invocations per second of an echo function, with N
  threads, each with its own raw signed keep-alive connection; baseline: the same threads against the
  minimal ASGI echo app (same ASGI stack as Hearth).
- scale-out: a burst of concurrent invocations of a fresh function (each sleeps, so none can reuse
  another's environment); new environments per second from the moment the burst is sent until the
  last invocation started running in its new environment (the handler reports its own start time:
  the clock is the host's, sandboxes share it). The client is one asyncio task per invocation on
  pre-opened connections sending one pre-signed request, so the measurement is not the client's own
  cost (100 Python threads signing with botocore spend a good part of the same 2 cores).
  Alongside: the host's busy cores over the burst and the CPU milliseconds per new environment that
  implies (a burst on 2 cores is CPU-bound: the rate is about cores / CPU per environment, and CPU
  spent by other processes on a shared host shows up here instead of as an unexplained low rate).
- density: proportional set size (PSS, /proc/<pid>/smaps_rollup) of every process of each idle warm
  Python environment, found through the sandboxes' cgroups; and how many such environments fit in
  2 GiB.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from hearth.bench.progress import SILENT, Progress
from hearth.bench.rawclient import SignedClient
from hearth.bench.servers import BENCH_KEY, start_echo, start_hearth
from hearth.sandbox.cgroups import _mounts, instance_key

ROLE = "arn:aws:iam::000000000000:role/bench"
ECHO = "def handler(event, context):\n    return event\n"
SLEEP = "import time\ndef handler(event, context):\n    time.sleep(event.get('sleep', 0.1))\n    return event\n"
# The burst's function: reports when it started (host clock), then sleeps.
STAMP = ("import time\ndef handler(event, context):\n    started = time.time()\n"
         "    time.sleep(event.get('sleep', 0.1))\n    return {'started': started}\n")
# The scale-out burst's function runs this long, so that no call of the burst can reuse an environment
# another call released: every call needs a new one, and the rate is new environments over the burst's
# wall time minus this.
BURST_SLEEP_S = 3.0
TWO_GIB = 2 << 30


def _zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", source)
    return buf.getvalue()


def _client(endpoint: str, connections: int = 10) -> Any:
    return boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=BENCH_KEY[0], aws_secret_access_key=BENCH_KEY[1],
                        config=Config(retries={"max_attempts": 1}, read_timeout=120, tcp_keepalive=True,
                                      max_pool_connections=max(10, connections)))


def _create(lam: Any, name: str, source: str, memory: int = 128) -> None:
    lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
                        Code={"ZipFile": _zip(source)}, MemorySize=memory, Timeout=60)
    while lam.get_function_configuration(FunctionName=name)["State"] != "Active":
        time.sleep(0.02)


def _health(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{endpoint}/_hearth/health", timeout=10) as resp:
        result: dict[str, Any] = json.load(resp)
        return result


def throughput(endpoint: str, name: str, concurrency: int, seconds: float) -> float:
    """Completed invocations per second with `concurrency` threads, each with its own raw signed
    keep-alive connection (the client's cost is tens of microseconds per call, the same for Hearth
    and the echo app)."""
    stop = time.monotonic() + seconds
    counts = [0] * concurrency

    def worker(i: int) -> None:
        client = SignedClient(endpoint, "lambda", BENCH_KEY[0], BENCH_KEY[1])
        try:
            while time.monotonic() < stop:
                status, body = client.invoke(name)
                if status != 200:
                    raise RuntimeError(f"invoke {name}: HTTP {status}: {body[:200]!r}")
                counts[i] += 1
        finally:
            client.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started)


def burst(endpoint: str, name: str, size: int, sleep_s: float = BURST_SLEEP_S) -> dict[str, float]:
    client = _client(endpoint, size)
    before = _health(endpoint)["environments"]
    with concurrent.futures.ThreadPoolExecutor(size) as pool:
        started = time.perf_counter()
        payload = json.dumps({"sleep": sleep_s}).encode()
        futures = [pool.submit(lambda: client.invoke(FunctionName=name, Payload=payload)["Payload"].read())
                   for _ in range(size)]
        errors = sum(1 for f in futures if f.exception() is not None)
        wall = time.perf_counter() - started
    after = _health(endpoint)["environments"]
    new = int(after["cold_starts"]) - int(before["cold_starts"])
    return {"invocations": size, "errors": errors, "wall_s": wall, "new_environments": new,
            "environments_per_s": new / max(wall - sleep_s, 1e-3),
            "parallel_inits_peak": float(after.get("parallel_inits_peak", 0))}


def _signed_invoke(endpoint: str, name: str, payload: bytes) -> tuple[str, bytes]:
    """One SigV4-signed Invoke request as raw HTTP/1.1 (path and header block), reusable for a burst."""
    url = f"{endpoint}/2015-03-31/functions/{name}/invocations"
    request = AWSRequest("POST", url, data=payload, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(BENCH_KEY[0], BENCH_KEY[1]), "lambda", "us-east-1").add_auth(request)
    parts = urlsplit(url)
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(payload)}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() not in ("host", "content-length")]
    return parts.netloc, ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            length = int(value.strip())
    return status, await reader.readexactly(length)


async def _async_burst(endpoint: str, name: str, size: int, sleep_s: float) -> tuple[float, list[Any]]:
    netloc, request = _signed_invoke(endpoint, name, json.dumps({"sleep": sleep_s}).encode())
    host, _, port = netloc.partition(":")
    conns = [await asyncio.open_connection(host, int(port)) for _ in range(size)]

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
        writer.write(request)
        status, body = await _read_response(reader)
        writer.close()
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
        return json.loads(body)

    started = time.time()
    results = await asyncio.gather(*(one(r, w) for r, w in conns), return_exceptions=True)
    return started, results


def _host_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole host since boot, from /proc/stat (Linux; zeros elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    idle = sum(fields[3:5])  # idle + iowait
    return (sum(fields) - idle) / tick, sum(fields) / tick


class _CpuSampler:
    """Host CPU use sampled every `interval_s`, so that a window known only afterwards (the burst, up to
    the last start) can be measured. Why: a scale-out burst on two cores is CPU-bound, and on a shared
    machine other processes' CPU shows up as a lower rate; this tells the two apart."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.samples: list[tuple[float, float, float]] = []  # (wall clock, busy s, total s)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), *_host_cpu()))
            self._stop.wait(self._interval_s)

    def __enter__(self) -> _CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def busy_cores(self, start: float, end: float) -> float:
        """Average number of busy cores between two wall-clock times (0 when not measurable)."""
        # The smallest sampled span that covers the window: the last sample at or before its start,
        # the first at or after its end.
        before = [s for s in self.samples if s[0] <= start][-1:]
        after = [s for s in self.samples if s[0] >= end][:1]
        if not before or not after or after[0][2] <= before[0][2]:
            return 0.0
        cores = os.cpu_count() or 1
        return cores * (after[0][1] - before[0][1]) / (after[0][2] - before[0][2])


def burst_rate(endpoint: str, name: str, size: int, sleep_s: float = BURST_SLEEP_S) -> dict[str, float]:
    """Scale-out: `size` concurrent invocations of a fresh STAMP function; new environments per second
    until the last invocation started. Also the host's busy cores over that window and the CPU time per
    new environment it implies (every process on the host, Hearth's and anyone else's)."""
    before = _health(endpoint)["environments"]
    with _CpuSampler() as cpu:
        started, results = asyncio.run(_async_burst(endpoint, name, size, sleep_s))
    after = _health(endpoint)["environments"]
    ok = [r for r in results if isinstance(r, dict) and "started" in r]
    new = int(after["cold_starts"]) - int(before["cold_starts"])
    last = max((r["started"] for r in ok), default=started) - started
    busy = cpu.busy_cores(started, started + last)
    return {"invocations": size, "errors": size - len(ok), "new_environments": new, "last_started_s": last,
            "environments_per_s": new / max(last, 1e-3),
            "parallel_inits_peak": float(after.get("parallel_inits_peak", 0)),
            "host_busy_cores": busy, "host_cpu_ms_per_environment": busy * last * 1000 / max(new, 1)}


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def sandbox_pss(data_dir: Path) -> list[int]:
    """PSS in bytes of each sandbox (every process of its cgroup) of the server using `data_dir`."""
    instance = instance_key(data_dir)
    for mount_point, fstype, options in _mounts():
        if fstype == "cgroup2" or "memory" in options:
            root = Path(mount_point) / "hearth" / instance
            if root.is_dir() and any(p.is_dir() for p in root.iterdir()):
                break
    else:
        return []
    sizes = []
    for group in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            pids = [int(x) for x in (group / "cgroup.procs").read_text().split()]
        except OSError:
            continue
        if pids:
            sizes.append(sum(_pss_kib(pid) for pid in pids) * 1024)
    return sizes


def run(seconds: float = 2.0, burst_size: int = 100, density_envs: int = 20,
        progress: Progress = SILENT) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="hearth-bench-scale-"))
    echo, echo_url = start_echo(tmp)
    hearth, endpoint = start_hearth(tmp)
    args = [str(a) for a in hearth.proc.args]  # type: ignore[union-attr]
    data_dir = Path(args[args.index("--data-dir") + 1])
    results: dict[str, Any] = {}
    try:
        lam = _client(endpoint)
        _create(lam, "bench-echo", ECHO)
        rows = {}
        advance = progress.phase("throughput at concurrency 1, 4, 16; scale-out burst; density", 5)
        for concurrency in (1, 4, 16):
            throughput(endpoint, "bench-echo", concurrency, 0.3)  # warm environments and servers
            throughput(echo_url, "echo", concurrency, 0.3)
            base = throughput(echo_url, "echo", concurrency, seconds)
            figure = throughput(endpoint, "bench-echo", concurrency, seconds)
            rows[str(concurrency)] = {"hearth_rps": figure, "echo_rps": base, "ratio": figure / base}
            advance(1)
        results["throughput"] = rows
        _create(lam, "bench-burst", STAMP)
        results["scale_out"] = burst_rate(endpoint, "bench-burst", burst_size)
        advance(1)
        # Density: N idle warm environments of one function (a burst of N concurrent calls that each
        # sleep makes N environments), then frozen and measured.
        _create(lam, "bench-density", SLEEP)
        burst(endpoint, "bench-density", density_envs)
        time.sleep(0.5)  # let releases freeze
        sizes = sandbox_pss(data_dir)
        advance(1)
        if sizes:
            per_env = statistics.median(sizes)
            results["density"] = {"environments_measured": len(sizes), "pss_mib_p50": per_env / (1 << 20),
                                  "pss_mib_max": max(sizes) / (1 << 20), "fit_in_2gib": int(TWO_GIB // per_env)}
        else:
            results["density"] = {"environments_measured": 0, "note": "no cgroups found (process isolation?)"}
        for name in ("bench-echo", "bench-burst", "bench-density"):
            lam.delete_function(FunctionName=name)
    finally:
        echo.stop()
        hearth.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # the servers' data and code
    return results
