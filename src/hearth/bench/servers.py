"""Processes a benchmark needs: a throwaway Hearth server and the minimal ASGI echo baseline."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ECHO_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
'''

BENCH_KEY = ("AKIAHEARTHBENCH00000", "hearth-bench-secret-000000000000000000000", "000000000000")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


class Process:
    def __init__(self, argv: list[str], url: str, env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        _wait_http(url, self.proc)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_echo(tmp: Path) -> tuple[Process, str]:
    (tmp / "echo_app.py").write_text(ECHO_APP)
    port = free_port()
    proc = Process([sys.executable, "-m", "uvicorn", "echo_app:app", "--port", str(port), "--loop", "uvloop",
                    "--http", "httptools", "--log-level", "warning", "--no-access-log"],
                   f"http://127.0.0.1:{port}/", cwd=str(tmp))
    return proc, f"http://127.0.0.1:{port}"


def hearth_env() -> dict[str, str]:
    """A benchmark server's environment: ours without AWS_/HEARTH_ settings, plus the bench key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HEARTH_"))}
    env.update(HEARTH_ACCESS_KEY_ID=BENCH_KEY[0], HEARTH_SECRET_ACCESS_KEY=BENCH_KEY[1],
               HEARTH_ACCOUNT_ID=BENCH_KEY[2], HEARTH_KEEP_ALIVE="600")
    return env


def wait_running(url: str, timeout: float = 60.0) -> None:
    """Health answers before start-up finishes; wait for "running"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/_hearth/health", timeout=2) as resp:
            if json.load(resp).get("status") == "running":
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


def start_hearth(tmp: Path, *extra: str) -> tuple[Process, str]:
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="data-", dir=tmp))
    url = f"http://127.0.0.1:{port}"
    proc = Process([sys.executable, "-m", "hearth", "serve", "--port", str(port), "--data-dir", str(data), *extra],
                   f"{url}/_hearth/health", env=hearth_env())
    wait_running(url)
    _bench_role(url)
    return proc, url


def _bench_role(url: str) -> None:
    """The benchmarks' execution role (`role/bench`): Lambda may assume it; it may do anything."""
    import boto3

    from hearth.cli.roles import ADMINISTRATOR, ensure_execution_role

    iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id=BENCH_KEY[0],
                       aws_secret_access_key=BENCH_KEY[1])
    ensure_execution_role(iam, "bench", ADMINISTRATOR)
