"""Helpers for the isolation backend tests: specs and a way to run one to completion."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from hearth.sandbox.types import Sandbox, SandboxSpec

PY_PREFIX = Path(sys.base_prefix).resolve()
PY_EXE = PY_PREFIX / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"


def make_spec(code_dir: Path, argv: list[str], **kwargs: Any) -> SandboxSpec:
    spec = SandboxSpec(
        env_id="test", argv=argv, env={"PATH": "/usr/local/bin:/usr/bin:/bin", "MARK": "m-1"},
        code_dir=code_dir, runtime_dir=None, opt_dirs=(), extra_ro_mounts=((PY_PREFIX, str(PY_PREFIX)),),
        memory_mb=128, cpu_fraction=0.5, tmp_mb=8,
    )
    return replace(spec, **kwargs)


def sh(code_dir: Path, script: str, **kwargs: Any) -> SandboxSpec:
    return make_spec(code_dir, ["/bin/sh", "-c", script], **kwargs)


def py(code_dir: Path, script: str, **kwargs: Any) -> SandboxSpec:
    return make_spec(code_dir, [str(PY_EXE), "-I", "-c", script], **kwargs)


async def read_all(fd: int, timeout: float = 20.0) -> bytes:
    """Everything written to the output pipe until every writer closed it."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            if not data:
                if not done.done():
                    done.set_result(None)
                return
            chunks.append(data)

    loop.add_reader(fd, readable)
    try:
        await asyncio.wait_for(done, timeout)
    finally:
        loop.remove_reader(fd)
    return b"".join(chunks)


async def run(backend: Any, spec: SandboxSpec, timeout: float = 20.0) -> tuple[int, str, Sandbox]:
    """Start `spec`, collect its output, wait for its status; the sandbox is killed afterwards."""
    sandbox: Sandbox = await backend.start(spec)
    try:
        output = await read_all(sandbox.output_fd, timeout)
        status = await asyncio.wait_for(sandbox.wait(), timeout)
    finally:
        sandbox.kill()
        with contextlib.suppress(OSError):
            os.close(sandbox.output_fd)
    return status, output.decode(errors="replace"), sandbox
