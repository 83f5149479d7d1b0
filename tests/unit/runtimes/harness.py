"""Run a runtime (our bootstraps or awslambdaric) as a host subprocess against a real Runtime API server.

Everything a test starts here is cleaned up by `RuntimeProcess.stop()`: the process (killed and reaped),
the server and its socket. Temporary directories come from pytest's tmp_path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from hearth.runtime_api.channel import EnvironmentChannel, Invocation, InvocationResult
from hearth.runtime_api.server import RuntimeApiServer

REPO = Path(__file__).resolve().parents[3]
PY_BOOTSTRAP = REPO / "src" / "hearth" / "runtimes" / "python" / "bootstrap.py"
NODE_BOOTSTRAP = REPO / "src" / "hearth" / "runtimes" / "nodejs" / "bootstrap.mjs"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"


def write_files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


class RuntimeProcess:
    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: Path) -> None:
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.channel = EnvironmentChannel("env-test")
        self.server = RuntimeApiServer(self.channel)
        self.proc: asyncio.subprocess.Process | None = None
        self.output = b""
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: socket.socket | None = None
        self._counter = 0

    async def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self._listener = listener
        port = listener.getsockname()[1]
        self._tasks.append(asyncio.create_task(self.server.serve(listener)))
        env = dict(self.env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}")
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, env=env, cwd=str(self.cwd),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        self._tasks.append(asyncio.create_task(self._read_output()))
        self._tasks.append(asyncio.create_task(self._watch()))

    async def _read_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            chunk = await self.proc.stdout.read(65536)
            if not chunk:
                return
            self.output += chunk

    async def _watch(self) -> None:
        assert self.proc is not None
        status = await self.proc.wait()
        self.channel.runtime_exited(status)

    async def wait_initialized(self, timeout: float = 20) -> None:
        await asyncio.wait_for(self.channel.wait_initialized(), timeout)

    async def invoke(self, payload: object = None, *, raw: bytes | None = None, timeout: float = 20,
                     request_id: str | None = None, client_context: str | None = None,
                     cognito_identity: str | None = None, timeout_ms: int = 30000) -> InvocationResult:
        self._counter += 1
        rid = request_id or f"req-{self._counter:04d}"
        body = raw if raw is not None else json.dumps(payload if payload is not None else {}).encode()
        inv = Invocation(request_id=rid, payload=body, deadline_ms=int(time.time() * 1000) + timeout_ms,
                         invoked_function_arn=ARN, trace_id=f"Root=1-5759e988-bd862e3fe1be46a994272793;Parent={rid}",
                         client_context=client_context, cognito_identity=cognito_identity)
        return await asyncio.wait_for(self.channel.invoke(inv), timeout)

    async def wait_exit(self, timeout: float = 20) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def settle_output(self) -> str:
        """The output so far, after giving the pipe reader a moment to catch up."""
        for _ in range(50):
            before = len(self.output)
            await asyncio.sleep(0.02)
            if len(self.output) == before:
                break
        return self.output.decode("utf-8", "replace")

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        await self.server.close()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5)
        if self._listener is not None:
            self._listener.close()


def base_env(task_root: Path, handler: str, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LAMBDA_TASK_ROOT": str(task_root),
        "_HANDLER": handler,
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]abc",
        "AWS_REGION": "us-east-1",
        "TZ": ":UTC",
    }
    env.update(extra)
    return env
