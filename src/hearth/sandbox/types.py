"""The contract between the invoke path and the isolation backends.

It owns the description of a sandbox to start (`SandboxSpec`) and the two protocols a backend
implements (`IsolationBackend`, `Sandbox`). It never starts anything itself.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class PythonForkSpec:
    """A Python environment that a pre-started interpreter (a zygote) may fork instead of exec'ing.

    The zygote runs `python_executable`, has `bootstrap_path` imported already, and in the forked
    child calls its `main()` once isolation is in place. Backends that cannot fork run `argv`.
    """

    bootstrap_path: Path
    python_executable: Path


@dataclass(frozen=True)
class SandboxSpec:
    env_id: str
    argv: list[str]  # what to exec (absolute paths as seen inside the sandbox)
    env: dict[str, str]  # the complete environment; the backend adds AWS_LAMBDA_RUNTIME_API
    code_dir: Path  # host path, mounted read-only at /var/task
    runtime_dir: Path | None  # host path, mounted read-only at /var/runtime
    opt_dirs: tuple[Path, ...]  # layers, host paths, merged read-only at /opt (later ones win)
    extra_ro_mounts: tuple[tuple[Path, str], ...]  # (host path, path inside), read-only
    memory_mb: int
    cpu_fraction: float  # CPUs worth of quota (1.0 = one core)
    tmp_mb: int  # size of the private /tmp
    python_fork: PythonForkSpec | None = None
    workdir: str = "/var/task"
    pids_limit: int = 1024


class SandboxStartError(RuntimeError):
    """A sandbox could not be set up (the reason comes from the setup step that failed)."""


@dataclass(frozen=True)
class SandboxStats:
    memory_peak_bytes: int
    oom_killed: bool


class Sandbox(Protocol):
    """One started sandbox. Its Runtime API listener is already bound inside the sandbox's network
    (127.0.0.1:9001 for isolated backends); the server accepts on it."""

    pid: int  # the host pid the backend waits on (the sandbox's init or the runtime itself)
    runtime_api_sock: socket.socket  # listening socket for the Runtime API
    aws_api_sock: socket.socket | None  # listening socket at 127.0.0.1:4566 inside, or None
    output_fd: int  # read end of the runtime's stdout+stderr pipe; the caller closes it

    async def wait(self) -> int:
        """Wait for the runtime to exit: its exit status, or -signal when a signal killed it."""
        ...

    def stats(self) -> SandboxStats: ...

    def freeze(self) -> None:
        """Stop every process of the sandbox from running (cgroup freezer or SIGSTOP)."""
        ...

    def thaw(self) -> None: ...

    def kill(self) -> None:
        """Kill every process of the sandbox at once and release its resources; idempotent."""
        ...


class IsolationBackend(Protocol):
    name: str  # "namespace" (isolated) or "process" (plain processes with rlimits)

    async def start(self, spec: SandboxSpec) -> Sandbox: ...

    async def close(self) -> None:
        """Kill every sandbox still running and stop helper processes (zygotes)."""
        ...
