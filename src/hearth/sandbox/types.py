"""The contract between the invoke path and the isolation backends.

It owns the description of a sandbox to start (`SandboxSpec`), the two protocols every backend
implements (`IsolationBackend`, `Sandbox`) and the optional abilities some have, each a protocol of its
own: `CpuShares` (change a sandbox's CPU quota after INIT), `MemoryPeak` (read the peak alone, cheaper
than `stats()`), `MemoryLimit` (raise the memory limit of a running sandbox) and `Snapshots` (a
backend that starts snapshot templates and clones them). Callers ask `isinstance(x, Ability)`; no
code probes for method names. It never starts anything itself.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class PythonForkSpec:
    """A Python environment that a pre-started interpreter (a zygote) may fork instead of exec'ing.

    The zygote runs `python_executable`, has `bootstrap_path` imported already, and in the forked
    child calls its `main()` once isolation is in place. Backends that cannot fork run `argv`.
    """

    bootstrap_path: Path
    python_executable: Path


@dataclass(frozen=True)
class NetworkRequest:
    """Which network a sandbox's interface is on: "egress" (Hearth's bridge to the host's routes) or a
    VPC configuration's key, and the function its traffic is counted for. Backends without networks
    ignore it (the process backend shares the host's network)."""

    key: str
    owner: str


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
    network: NetworkRequest | None = None
    # What a SnapStart clone of this spec's template starts beside its runtime: the extensions launcher
    # in restore mode (the template itself never runs it). Empty: nothing (every function without
    # extensions).
    restore_argv: tuple[str, ...] = ()
    # Where the zygote module is mounted when the runtime is exec'd (through AWS_LAMBDA_EXEC_WRAPPER)
    # and may be a SnapStart template: the Python bootstrap it ends in waits for clone requests itself,
    # with the zygote's code. Empty: a template must be a fork of the runtime's zygote.
    snapshot_module: str = ""


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
    aws_https_sock: socket.socket | None  # listening socket at 127.0.0.1:443 inside, or None
    output_fd: int  # read end of the runtime's stdout+stderr pipe; the caller closes it

    async def wait(self) -> int:
        """Wait for the runtime to exit: its exit status, or -signal when a signal killed it."""
        ...

    def stats(self) -> SandboxStats: ...

    def freeze(self) -> None:
        """Stop every process of the sandbox from running (cgroup freezer or SIGSTOP)."""
        ...

    def thaw(self) -> None: ...

    def terminate(self) -> None:
        """Ask the runtime to stop (SIGTERM to the process the backend waits on); never raises."""
        ...

    def kill(self) -> None:
        """Kill every process of the sandbox at once and release its resources; idempotent."""
        ...


class IsolationBackend(Protocol):
    name: str  # "namespace" (isolated) or "process" (plain processes with rlimits)

    async def start(self, spec: SandboxSpec) -> Sandbox: ...

    async def close(self) -> None:
        """Kill every sandbox still running and stop helper processes (zygotes)."""
        ...


# -- optional abilities -------------------------------------------------------------------------------


@runtime_checkable
class CpuShares(Protocol):
    """A sandbox whose CPU quota can change while it runs (INIT at full CPU, then its share)."""

    def set_cpu(self, fraction: float) -> None:
        """CPUs worth of quota from now on (1.0 = one core). Raises OSError."""
        ...


@runtime_checkable
class MemoryPeak(Protocol):
    """A sandbox that can read its memory peak alone (one read, where `stats()` also reads OOM events)."""

    def memory_peak(self) -> int:
        """Bytes. Raises OSError."""
        ...


@runtime_checkable
class MemoryLimit(Protocol):
    """A sandbox whose memory limit can be raised while it runs (a snapshot template's, per clone)."""

    def raise_memory_limit(self, memory_bytes: int) -> None:
        """Never lowers the limit. Raises OSError."""
        ...


@runtime_checkable
class Snapshots(Protocol):
    """A backend that can run INIT once into a template and clone environments from it."""

    async def start(self, spec: SandboxSpec, *, template: bool = False) -> Sandbox: ...

    async def template_ready(self, template: Sandbox) -> bool:
        """Wait until the template has run INIT and its before-snapshot hooks: False if it died."""
        ...

    async def clone(self, template: Sandbox, spec: SandboxSpec) -> Sandbox:
        """A new sandbox forked from the template, in its own groups. Raises SandboxStartError."""
        ...
