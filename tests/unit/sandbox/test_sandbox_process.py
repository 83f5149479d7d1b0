"""The process backend: a plain child process with a listener, one output pipe, group kill and
SIGSTOP freezing, and a polled memory limit. It isolates nothing and says so."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from pathlib import Path

import pytest
from tests.unit.sandbox.sandbox_support import py, read_all, run, sh

from hearth.sandbox.backends import PROCESS_WARNING, choose_backend
from hearth.sandbox.process import ProcessBackend, peak_rss_kb


async def test_exit_status_output_and_workdir(proc_backend: ProcessBackend, code_dir: Path) -> None:
    spec = sh(code_dir, "echo out; echo err >&2; cat hello.txt; echo $MARK; exit 6", workdir=str(code_dir))
    status, out, _ = await run(proc_backend, spec)
    assert status == 6
    assert out.split() == ["out", "err", "hello", "from", "the", "code", "dir", "m-1"]


async def test_signal_status(proc_backend: ProcessBackend, code_dir: Path) -> None:
    status, _, _ = await run(proc_backend, sh(code_dir, "kill -TERM $$", workdir=str(code_dir)))
    assert status == -signal.SIGTERM


async def test_runtime_api_listener(proc_backend: ProcessBackend, code_dir: Path) -> None:
    script = ("import os, socket\nhost, port = os.environ['AWS_LAMBDA_RUNTIME_API'].split(':')\n"
              "s = socket.create_connection((host, int(port)))\ns.sendall(b'ping')\ns.close()\n")
    sandbox = await proc_backend.start(py(code_dir, script, workdir=str(code_dir)))
    loop = asyncio.get_running_loop()
    try:
        assert sandbox.aws_api_sock is None
        sandbox.runtime_api_sock.setblocking(False)
        conn, _ = await asyncio.wait_for(loop.sock_accept(sandbox.runtime_api_sock), 10)
        with conn:
            assert await loop.sock_recv(conn, 10) == b"ping"
        assert await sandbox.wait() == 0
    finally:
        sandbox.kill()
        os.close(sandbox.output_fd)


async def test_kill_takes_the_whole_group(proc_backend: ProcessBackend, code_dir: Path) -> None:
    sandbox = await proc_backend.start(sh(code_dir, "sleep 60 & echo $!; wait", workdir=str(code_dir)))
    fd = sandbox.output_fd
    try:
        line = b""
        while not line.endswith(b"\n"):
            line += os.read(fd, 100)
        child = int(line)
        sandbox.kill()
        sandbox.kill()
        assert await asyncio.wait_for(sandbox.wait(), 10) == -signal.SIGKILL
        for _ in range(500):
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child, os.WNOHANG)
            await asyncio.sleep(0.01)
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)
    finally:
        sandbox.kill()
        os.close(fd)


async def test_freeze_and_thaw(proc_backend: ProcessBackend, code_dir: Path) -> None:
    sandbox = await proc_backend.start(sh(code_dir, "while true; do echo x; sleep 0.01; done",
                                          workdir=str(code_dir)))
    fd = sandbox.output_fd
    os.set_blocking(fd, False)

    def drain() -> bytes:
        chunks = []
        with contextlib.suppress(BlockingIOError):
            while data := os.read(fd, 65536):
                chunks.append(data)
        return b"".join(chunks)

    try:
        await asyncio.sleep(0.1)
        sandbox.freeze()
        await asyncio.sleep(0.1)
        drain()
        await asyncio.sleep(0.3)
        assert drain() == b""
        sandbox.thaw()
        await asyncio.sleep(0.2)
        assert drain() != b""
    finally:
        sandbox.kill()
        os.close(fd)
    await sandbox.wait()


async def test_memory_watcher_kills_and_reports(proc_backend: ProcessBackend, code_dir: Path) -> None:
    script = "import time\nblocks = []\nwhile True:\n    blocks.append(bytearray(16 << 20))\n    time.sleep(0.05)\n"
    status, _, sandbox = await run(proc_backend, py(code_dir, script, memory_mb=64, workdir=str(code_dir)))
    assert status == -signal.SIGKILL
    stats = sandbox.stats()
    assert stats.oom_killed
    assert stats.memory_peak_bytes > 64 << 20


async def test_close_kills_everything(code_dir: Path) -> None:
    backend = ProcessBackend()
    sandbox = await backend.start(sh(code_dir, "sleep 60", workdir=str(code_dir)))
    await backend.close()
    assert await sandbox.wait() == -signal.SIGKILL
    os.close(sandbox.output_fd)


async def test_choose_process_warns(tmp_path: Path) -> None:
    backend, warning = await choose_backend("process", tmp_path)
    try:
        assert backend.name == "process"
        assert warning == PROCESS_WARNING
    finally:
        await backend.close()


async def test_choose_rejects_unknown(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown isolation"):
        await choose_backend("vm", tmp_path)


async def test_auto_falls_back_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    backend, warning = await choose_backend("auto", tmp_path)
    try:
        assert backend.name == "process"
        assert warning is not None and "does not run as root" in warning
    finally:
        await backend.close()
    with pytest.raises(RuntimeError, match="does not run as root"):
        await choose_backend("namespace", tmp_path)


async def test_auto_picks_namespaces_when_available(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("namespace sandboxes need root")
    backend, warning = await choose_backend("auto", tmp_path / "data")
    try:
        if backend.name == "process":
            pytest.skip(f"namespace isolation unavailable here: {warning}")
        assert warning is None
    finally:
        await backend.close()


def test_listener_is_loopback_only() -> None:
    # The process backend's Runtime API must never listen beyond loopback.
    async def start() -> socket.socket:
        backend = ProcessBackend()
        sandbox = await backend.start(sh(Path("/"), "exit 0", workdir="/"))
        addr = sandbox.runtime_api_sock.getsockname()
        await sandbox.wait()
        sandbox.kill()
        os.close(sandbox.output_fd)
        await backend.close()
        assert addr[0] == "127.0.0.1"
        return sandbox.runtime_api_sock

    asyncio.run(start())


async def test_read_all_sees_eof(proc_backend: ProcessBackend, code_dir: Path) -> None:
    sandbox = await proc_backend.start(sh(code_dir, "echo done", workdir=str(code_dir)))
    try:
        assert await read_all(sandbox.output_fd) == b"done\n"
        assert await sandbox.wait() == 0
    finally:
        sandbox.kill()
        os.close(sandbox.output_fd)


def test_peak_rss_is_read_from_proc_and_zero_for_a_gone_process() -> None:
    with open(f"/proc/{os.getpid()}/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    expected = int(line.split()[1])
    assert abs(peak_rss_kb(os.getpid()) - expected) <= 1024  # a high-water mark only grows, by little here
    proc = os.fork()
    if proc == 0:
        os._exit(0)
    os.waitpid(proc, 0)
    assert peak_rss_kb(proc) == 0
