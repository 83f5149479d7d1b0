"""The fallback isolation backend: each environment is a plain child process of the server.

It owns spawning the runtime as its own session (so the whole group can be signalled at once), its
Runtime API listener on 127.0.0.1:<ephemeral>, its output pipe, best-effort resource limits and
reaping. It must never pretend to isolate: the function sees the host's files, network and pids, and
runs as the server's user. The server reports `"isolation": "process"` and warns.

Limits, and why they are what they are:
- memory: RLIMIT_AS breaks runtimes that reserve large virtual ranges (node/V8, Go), and RLIMIT_DATA
  counts the same reservations on recent kernels. Instead a watcher polls the resident set of the
  process tree (VmRSS of the runtime and its descendants) every `MEMORY_POLL_S` and kills the group when
  it passes `memory_mb`; that kill is reported as `oom_killed`. A fast allocator can overshoot between
  two polls: this is a fallback, not a guarantee.
- pids: RLIMIT_NPROC counts every process of the *user*; as root it is not enforced at all and as any
  other user it would count the server itself, so it is not used. A fork bomb is not contained.
- RLIMIT_NOFILE 1024 and RLIMIT_CORE 0 are applied right after spawn (prlimit): a runtime cannot have
  opened many files in the few microseconds before.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import subprocess
from pathlib import Path

from hearth.sandbox.types import SandboxSpec, SandboxStats

MEMORY_POLL_S = 0.1
NOFILE_LIMIT = 1024


async def wait_pid(pid: int) -> int:
    """Wait for a child of this process without blocking the loop: exit status or -signal."""
    loop = asyncio.get_running_loop()
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        pidfd = -1
    if pidfd >= 0:
        done: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not done.done():
                done.set_result(None)

        loop.add_reader(pidfd, ready)
        try:
            await done
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return -signal.SIGKILL  # reaped elsewhere; the only way we lose a child is a kill
    return os.waitstatus_to_exitcode(status)


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids.extend(int(x) for x in f.read().split())
    except (OSError, ValueError):
        pass
    return kids


def status_kb(pid: int, field: str) -> int:
    """A kB field of `pid`'s /proc status (`"VmRSS:"`), 0 when it is gone; raw reads, as Max Memory Used
    reads it after every invocation (a text file object and a line loop cost several times the system
    calls)."""
    try:
        fd = os.open(f"/proc/{pid}/status", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        data = b"\n" + os.read(fd, 8192)
    except OSError:
        return 0
    finally:
        os.close(fd)
    start = data.find(b"\n" + field.encode())
    if start < 0:
        return 0
    start += len(field) + 1
    fields = data[start:data.find(b"\n", start)].split()
    return int(fields[0]) if fields and fields[0].isdigit() else 0


def peak_rss_kb(pid: int) -> int:
    """`pid`'s peak resident size (VmHWM) in kB, 0 when it is gone."""
    return status_kb(pid, "VmHWM:")


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of `pid` and all its descendants (best effort, racy by nature)."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += status_kb(p, "VmRSS:") * 1024
        todo.extend(_children(p))
    return total


class ProcessSandbox:
    def __init__(self, proc: subprocess.Popen[bytes], listener: socket.socket, output_fd: int,
                 memory_limit: int) -> None:
        self._proc = proc
        self.pid = proc.pid
        self.runtime_api_sock = listener
        self.aws_api_sock: socket.socket | None = None
        self.aws_https_sock: socket.socket | None = None
        self.output_fd = output_fd
        self._memory_limit = memory_limit
        self._peak = 0
        self._oom_killed = False
        self._status: int | None = None
        self._killed = False
        self._waiter = asyncio.ensure_future(self._reap())
        self._watcher = asyncio.ensure_future(self._watch_memory())

    async def _reap(self) -> int:
        status = await wait_pid(self.pid)
        self._status = status
        self._proc.returncode = status
        self._watcher.cancel()
        # The runtime is gone: whatever it left behind in its group goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        return status

    async def _watch_memory(self) -> None:
        while self._status is None:
            rss = tree_rss_bytes(self.pid)
            self._peak = max(self._peak, rss)
            if rss > self._memory_limit:
                self._oom_killed = True
                self._signal_group(signal.SIGKILL)
                return
            await asyncio.sleep(MEMORY_POLL_S)

    async def wait(self) -> int:
        return await asyncio.shield(self._waiter)

    def stats(self) -> SandboxStats:
        if self._status is None:
            self._peak = max(self._peak, status_kb(self.pid, "VmHWM:") * 1024, tree_rss_bytes(self.pid))
        return SandboxStats(memory_peak_bytes=self._peak, oom_killed=self._oom_killed)

    def _signal_group(self, sig: int) -> None:
        if self._status is not None and sig != signal.SIGKILL:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def freeze(self) -> None:
        self._signal_group(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_group(signal.SIGCONT)

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        if self._killed:
            return
        self._killed = True
        self._watcher.cancel()
        if self._status is None:
            self._signal_group(signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.runtime_api_sock.close()


class ProcessBackend:
    """Plain processes with rlimits and a memory watcher; no isolation whatsoever."""

    name = "process"

    def __init__(self) -> None:
        self._live: set[ProcessSandbox] = set()

    async def start(self, spec: SandboxSpec) -> ProcessSandbox:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        env = dict(spec.env)
        env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{port}"
        out_r, out_w = os.pipe()
        workdir = spec.workdir if Path(spec.workdir).is_dir() else str(spec.code_dir)
        try:
            # Popen (not posix_spawn) because the runtime must start in its workdir; it is kept
            # referenced until reaped so that subprocess never reaps it behind our back.
            proc = subprocess.Popen(
                spec.argv, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w,
                start_new_session=True, close_fds=True, restore_signals=True,
            )
        except OSError:
            listener.close()
            os.close(out_r)
            raise
        finally:
            os.close(out_w)
        pid = proc.pid
        for limit, value in ((resource.RLIMIT_NOFILE, NOFILE_LIMIT), (resource.RLIMIT_CORE, 0)):
            with contextlib.suppress(OSError, ValueError):
                resource.prlimit(pid, limit, (value, value))
        sandbox = ProcessSandbox(proc, listener, out_r, spec.memory_mb << 20)
        self._live.add(sandbox)
        sandbox._waiter.add_done_callback(lambda _: self._live.discard(sandbox))
        return sandbox

    async def close(self) -> None:
        for sandbox in list(self._live):
            sandbox.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sandbox.wait(), 5)
        self._live.clear()

