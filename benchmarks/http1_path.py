"""The HTTP/1.1 path with and without HTTP/2 beside it: the minimal echo app of `hearth bench`'s warm-invoke
baseline, served by uvicorn + uvloop + httptools twice, once as before (`http="httptools"`) and once as
`hearth serve` now configures it (`http=hearth.http2.HttpProtocol`, which sniffs each new connection and
hands HTTP/1.1 ones to uvicorn's httptools protocol). Requests alternate between the two in blocks, so a
noisy neighbour slows both alike.

Two cases per server: requests on a kept-alive connection (what SDKs do; the first-read check is not on
this path at all) and requests on new connections (connect, request, close: where it is paid). For each,
the client's round-trip latency and the server process's own CPU time per request (Linux `/proc`), which a
busy host disturbs far less than latency.

Run: `.venv/bin/python benchmarks/http1_path.py [--blocks N] [--per-block N]`
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hearth.bench.servers import ECHO_APP, free_port

SERVE = """
import sys, uvicorn, echo_app
from hearth.http2 import HttpProtocol
http = HttpProtocol if sys.argv[2] == "hearth" else "httptools"
uvicorn.run(echo_app.app, port=int(sys.argv[1]), loop="uvloop", http=http, log_level="warning",
            access_log=False)
"""
BODY = b'{"hello": "world"}'


def _start(tmp: Path, kind: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(port), kind], cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the {kind} echo server did not start")


def _kept_alive(port: int) -> Callable[[], None]:
    conn = http.client.HTTPConnection("127.0.0.1", port)

    def call() -> None:
        conn.request("POST", "/", body=BODY, headers={"content-type": "application/json"})
        assert conn.getresponse().read() == BODY

    return call


def _new_connection(port: int) -> Callable[[], None]:
    def call() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("POST", "/", body=BODY, headers={"content-type": "application/json"})
        assert conn.getresponse().read() == BODY
        conn.close()

    return call


def _cpu_s(pid: int) -> float:
    """User + system CPU time the process has used (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _alternate(calls: dict[str, Callable[[], None]], pids: dict[str, int], blocks: int,
               per_block: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Latency samples (us) per server and its CPU seconds over them, in alternating blocks."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    cpu = dict.fromkeys(calls, 0.0)
    order = list(calls.items())
    for _ in range(blocks):
        order.reverse()  # neither server always goes first
        for name, call in order:
            before = _cpu_s(pids[name])
            for _ in range(per_block):
                started = time.perf_counter()
                call()
                samples[name].append((time.perf_counter() - started) * 1e6)
            cpu[name] += _cpu_s(pids[name]) - before
    return samples, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--per-block", type=int, default=250)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "echo_app.py").write_text(ECHO_APP)
        servers = {kind: _start(Path(tmp), kind) for kind in ("httptools", "hearth")}
        try:
            for label, make in (("kept-alive", _kept_alive), ("new connection", _new_connection)):
                calls = {kind: make(port) for kind, (_, port) in servers.items()}
                pids = {kind: proc.pid for kind, (proc, _) in servers.items()}
                _alternate(calls, pids, 2, 50)  # warm both
                samples, cpu = _alternate(calls, pids, args.blocks, args.per_block)
                for kind, values in samples.items():
                    q = statistics.quantiles(values, n=100)
                    print(f"{label:>15} {kind:>9}: p50 {q[49]:7.1f} us  p90 {q[89]:7.1f} us  "
                          f"p99 {q[98]:7.1f} us  server CPU {cpu[kind] / len(values) * 1e6:6.1f} us/request  "
                          f"(n={len(values)})")
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
