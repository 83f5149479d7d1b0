"""A fake isolation backend: sandboxes whose "runtime" is a coroutine in this process.

It owns nothing real: no process, no namespace, no cgroup. Each `FakeSandbox` binds a real loopback
listener for the Runtime API and runs a small runtime client as an asyncio task that speaks the
Runtime API over it (`invocation/next`, `response`, `error`, `init/error`) and writes its output to a
real pipe, so the environment's and the pool's state machines run unchanged against it — without root
and in milliseconds. What the function does is a Python callable (`FakeFunction`).

It implements the optional abilities (`CpuShares`, `MemoryPeak`) by recording what it was asked, so
tests can see that the pool used them. It is for tests only: it isolates nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hearth.sandbox.types import SandboxSpec, SandboxStartError, SandboxStats

# What the function does with one payload: its answer, or an exception (reported as the function's
# error). `FakeExit(status)` ends the runtime, as a crash would.
Handler = Callable[[bytes], Awaitable[bytes]]
_API = "/2018-06-01/runtime/"


class FakeExit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass
class FakeFunction:
    handler: Handler
    init_error: str | None = None  # INIT fails with this errorType (posted to init/error, then exit 1)
    init_delay_s: float = 0.0
    # Awaited with the Runtime API's port before the runtime asks for its first invocation (where an
    # extension registers, in tests of the Extensions API).
    before_init: Callable[[int], Awaitable[None]] | None = None


class FakeSandbox:
    def __init__(self, spec: SandboxSpec, function: FakeFunction) -> None:
        self.spec = spec
        self.pid = -1  # no process: nothing to signal
        self.runtime_api_sock = socket.create_server(("127.0.0.1", 0))
        self.runtime_api_sock.setblocking(False)
        self.aws_api_sock: socket.socket | None = None
        self.aws_https_sock: socket.socket | None = None
        self.output_fd, self._out = os.pipe()
        self.frozen = False
        self.cpu_fraction = spec.cpu_fraction
        self.cpu_changes: list[float] = []
        self.terminated = False
        self.killed = False
        self._function = function
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._runtime())

    # -- the fake runtime -------------------------------------------------------------------------

    async def _runtime(self) -> None:
        host, port = self.runtime_api_sock.getsockname()[:2]
        reader, writer = await asyncio.open_connection(host, port)
        status = 0
        try:
            await asyncio.sleep(self._function.init_delay_s)
            if self._function.before_init is not None:
                await self._function.before_init(port)
            self._print("INIT\n")
            if self._function.init_error is not None:
                body = b'{"errorType":"%s","errorMessage":"fake"}' % self._function.init_error.encode()
                await _call(reader, writer, "POST", "init/error", body)
                status = 1
                return
            while True:
                headers, payload = await _call(reader, writer, "GET", "invocation/next")
                request_id = headers["lambda-runtime-aws-request-id"]
                self._print(f"handling {request_id}\n")
                try:
                    answer = await self._function.handler(payload)
                except FakeExit as exc:
                    status = exc.status
                    return
                except Exception as exc:  # the function's error, as a runtime reports it
                    body = b'{"errorType":"%s","errorMessage":"%s"}' % (type(exc).__name__.encode(),
                                                                        str(exc).encode())
                    await _call(reader, writer, "POST", f"invocation/{request_id}/error", body)
                    continue
                await _call(reader, writer, "POST", f"invocation/{request_id}/response", answer)
        except (ConnectionError, asyncio.IncompleteReadError):
            status = -9  # the environment went away under us
        finally:
            writer.close()
            self._end(status)

    def _print(self, text: str) -> None:
        with contextlib.suppress(OSError):
            os.write(self._out, text.encode())

    def _end(self, status: int) -> None:
        with contextlib.suppress(OSError):
            os.close(self._out)
        if not self._exit.done():
            self._exit.set_result(status)

    # -- the Sandbox protocol ---------------------------------------------------------------------

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    def stats(self) -> SandboxStats:
        return SandboxStats(memory_peak_bytes=self.memory_peak(), oom_killed=False)

    def memory_peak(self) -> int:
        return 20 << 20

    def set_cpu(self, fraction: float) -> None:
        self.cpu_fraction = fraction
        self.cpu_changes.append(fraction)

    def freeze(self) -> None:
        self.frozen = True

    def thaw(self) -> None:
        self.frozen = False

    def terminate(self) -> None:
        self.terminated = True
        self._task.cancel()
        self._task.add_done_callback(lambda _: self._end(-15))

    def kill(self) -> None:
        if self.killed:
            return
        self.killed = True
        self._task.cancel()
        self._end(-9)
        # The listener is left to the environment's Runtime API server, which closes it with itself.


class FakeBackend:
    """Starts `FakeSandbox`es running `function` (or what `functions` names for a handler)."""

    name = "fake"

    def __init__(self, function: FakeFunction, functions: dict[str, FakeFunction] | None = None) -> None:
        self._default = function
        self._functions = functions or {}
        self.sandboxes: list[FakeSandbox] = []
        self.fail_next_start = False
        self.closed = False

    async def start(self, spec: SandboxSpec) -> FakeSandbox:
        if self.closed or self.fail_next_start:
            self.fail_next_start = False
            raise SandboxStartError("the fake backend refused")
        handler = spec.env.get("_HANDLER", "")
        sandbox = FakeSandbox(spec, self._functions.get(handler, self._default))
        self.sandboxes.append(sandbox)
        return sandbox

    async def close(self) -> None:
        self.closed = True
        for sandbox in self.sandboxes:
            sandbox.kill()


async def _call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str, path: str,
                body: bytes = b"") -> tuple[dict[str, str], bytes]:
    """One HTTP/1.1 request on the keep-alive connection: (lower-cased headers, body)."""
    writer.write(f"{method} {_API}{path} HTTP/1.1\r\nHost: runtime\r\nContent-Length: {len(body)}\r\n\r\n"
                 .encode() + body)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    return headers, await reader.readexactly(length) if length else b""
