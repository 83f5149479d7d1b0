"""Control groups for sandboxes, on cgroup v1 (one hierarchy per controller) or v2 (unified).

It owns Hearth's subtree `hearth/<instance>/` in each hierarchy it uses and one child group per
environment: memory limit (swap off), CPU quota, pids limit, freezer, peak memory and OOM-kill
accounting, killing everything in a group and removing it. `<instance>` is derived from the data
directory, so a restarted server cleans up what a crashed run of the same server left behind without
touching another server's sandboxes. It never moves the server itself into a group and never touches
groups outside its subtree, with one exception it is asked for: `favor_dynamic_modifications`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import logging
import os
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# AWS enforces a function's share over 20 ms windows (measured: a function that spends its share of
# a 20 ms window early is paused until the window ends, and not otherwise), where Linux's default is
# 100 ms. The same share over a shorter window means shorter pauses: at 128 MB, 1.4 ms of CPU per
# 20 ms rather than 7.2 ms per 100 ms (docs/design.md, "Concurrency, CPU and keep-alive").
CFS_PERIOD_US = 20_000
# CFS burst (kernel 5.14+, where the files exist): a sandbox that stayed under its quota may spend what
# it saved, up to one more quota, in a later period. Short bursts (a request's parsing, a page-fault
# storm) then run at up to twice the share, while sustained work still gets exactly its share. The
# kernel refuses a burst larger than the quota.
BURST_OF_QUOTA = 1.0
V1_CONTROLLERS = ("memory", "cpu", "pids", "freezer")
V2_CONTROLLERS = ("memory", "pids", "cpu")
FREEZE_TIMEOUT_S = 2.0


log = logging.getLogger(__name__)


def favor_dynamic_modifications() -> int | None:
    """Ask the kernel to favour moving processes between cgroups over fork and exit.

    Every environment start moves a process into its new groups. By default each move waits for an
    RCU grace period (the kernel's global cgroup threadgroup lock is a per-CPU rwsem; its writers pay):
    6-19 ms per move measured on a 2-core VM, so most of a cold start. A cgroup hierarchy mounted with
    `favordynmods` (Linux 6.0+) keeps that lock in writer-friendly mode for the whole machine while it
    exists: a move then costs about 0.4 ms, at the price of slightly dearer forks and exits everywhere.
    We mount a controller-less hierarchy named `hearth` with that option, detach it at once (it appears
    nowhere) and hold it by a descriptor: the returned fd, to close at shutdown. None when the kernel
    refuses (older kernels, no privilege); nothing else changes then. Some kernels keep the mode until
    reboot even after the hierarchy is gone.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    target = tempfile.mkdtemp(prefix="hearth-cgroup-")
    try:
        flags = 2 | 4 | 8  # nosuid, nodev, noexec
        if libc.mount(b"cgroup", target.encode(), b"cgroup", flags, b"none,name=hearth,favordynmods") != 0:
            log.debug("cgroup favordynmods unavailable: %s", os.strerror(ctypes.get_errno()))
            return None
        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        libc.umount2(target.encode(), 2)  # MNT_DETACH: the descriptor keeps the hierarchy
        return fd
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(target)


class CgroupUnavailable(Exception):
    """No writable cgroup hierarchy with the controllers sandboxes need."""


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: Path) -> str:
    # Raw descriptors: stats are read after every invocation, and a text file object costs several
    # times the system calls themselves.
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 65536).decode()
    finally:
        os.close(fd)


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, options) of every cgroup mount."""
    found = []
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
                mount_point = parts[1].replace("\\040", " ")
                found.append((mount_point, parts[2], set(parts[3].split(","))))
    return found


def cpu_quota_us(fraction: float) -> int:
    """CFS quota per period for `fraction` cores (1 ms minimum: the kernel refuses less)."""
    return max(1000, int(fraction * CFS_PERIOD_US))


def instance_key(data_dir: Path) -> str:
    return "i" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Limits:
    memory_bytes: int
    cpu_fraction: float
    pids: int


class Cgroup:
    """One environment's group (one directory per v1 hierarchy, or one v2 directory)."""

    def __init__(self, tree: CgroupTree, name: str, dirs: dict[str, Path]) -> None:
        self.tree = tree
        self.name = name
        self.dirs = dirs  # controller (or "unified") -> directory
        self.removed = False

    @property
    def procs_files(self) -> list[str]:
        """Where a process writes its pid to join this group (every hierarchy)."""
        return [str(d / "cgroup.procs") for d in self._unique_dirs()]

    def _unique_dirs(self) -> list[Path]:
        seen: list[Path] = []
        for d in self.dirs.values():
            if d not in seen:
                seen.append(d)
        return seen

    def _dir(self, controller: str) -> Path:
        return self.dirs["unified"] if self.tree.version == 2 else self.dirs[controller]

    def pids(self) -> list[int]:
        found: set[int] = set()
        for d in self._unique_dirs():
            with contextlib.suppress(OSError, ValueError):
                found.update(int(x) for x in _read(d / "cgroup.procs").split())
        return sorted(found)

    # -- accounting -----------------------------------------------------------------------------

    def memory_peak(self) -> int:
        d = self._dir("memory")
        if self.tree.version == 2:
            try:
                return int(_read(d / "memory.peak"))
            except (OSError, ValueError):
                return int(_read(d / "memory.current"))
        return int(_read(d / "memory.max_usage_in_bytes"))

    def oom_killed(self) -> bool:
        d = self._dir("memory")
        name = "memory.events" if self.tree.version == 2 else "memory.oom_control"
        try:
            for line in _read(d / name).splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value) > 0
        except (OSError, ValueError):
            return False
        if self.tree.version == 1:  # kernels before 4.13 have no counter: hitting the limit is the hint
            with contextlib.suppress(OSError, ValueError):
                return int(_read(d / "memory.failcnt")) > 0
        return False

    def raise_memory_limit(self, memory_bytes: int) -> None:
        """A higher memory limit for a running group (v1: memsw first, it must stay >= the limit)."""
        if self.tree.version == 2:
            _write(self.dirs["unified"] / "memory.max", str(memory_bytes))
            return
        mem = self.dirs["memory"]
        if self.tree.has_memsw:
            _write(mem / "memory.memsw.limit_in_bytes", str(memory_bytes))
        _write(mem / "memory.limit_in_bytes", str(memory_bytes))

    # -- CPU ------------------------------------------------------------------------------------

    def set_cpu(self, fraction: float) -> None:
        """Change the CPU quota (cores' worth) of a running group, with its burst where supported."""
        quota = cpu_quota_us(fraction)
        burst = int(quota * BURST_OF_QUOTA)
        if self.tree.version == 2:
            d = self.dirs["unified"]
            with contextlib.suppress(OSError):  # the burst must never exceed the quota: lower it first
                _write(d / "cpu.max.burst", "0")
            _write(d / "cpu.max", f"{quota} {CFS_PERIOD_US}")
            with contextlib.suppress(OSError):
                _write(d / "cpu.max.burst", str(burst))
            return
        d = self.dirs["cpu"]
        has_burst = (d / "cpu.cfs_burst_us").exists()
        if has_burst:
            with contextlib.suppress(OSError):
                _write(d / "cpu.cfs_burst_us", "0")
        _write(d / "cpu.cfs_quota_us", str(quota))
        if has_burst:
            with contextlib.suppress(OSError):
                _write(d / "cpu.cfs_burst_us", str(burst))

    def cpu_quota(self) -> float:
        """The current quota in cores (for tests and statistics)."""
        if self.tree.version == 2:
            quota, _, period = _read(self.dirs["unified"] / "cpu.max").partition(" ")
            return float("inf") if quota == "max" else int(quota) / int(period)
        d = self.dirs["cpu"]
        quota_us = int(_read(d / "cpu.cfs_quota_us"))
        return float("inf") if quota_us < 0 else quota_us / int(_read(d / "cpu.cfs_period_us"))

    # -- freezer --------------------------------------------------------------------------------

    def freeze(self, wait: bool = True) -> None:
        """Freeze every process of the group; with `wait`, return once the kernel reports it frozen.

        Between invocations the server does not wait (the kernel finishes freezing on its own, and a
        thaw that arrives first simply cancels it): waiting would put a sleep on the invoke path.
        """
        if self.tree.version == 2:
            d = self.dirs["unified"]
            _write(d / "cgroup.freeze", "1")
            if wait:
                self._wait_until(lambda: "frozen 1" in _read(d / "cgroup.events"))
        else:
            d = self.dirs["freezer"]
            _write(d / "freezer.state", "FROZEN")
            if wait:
                self._wait_until(lambda: _read(d / "freezer.state").strip() == "FROZEN")

    def thaw(self) -> None:
        if self.tree.version == 2:
            _write(self.dirs["unified"] / "cgroup.freeze", "0")
        else:
            _write(self.dirs["freezer"] / "freezer.state", "THAWED")

    @staticmethod
    def _wait_until(check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + FREEZE_TIMEOUT_S
        delay = 0.0002
        while not check():
            if time.monotonic() > deadline:
                raise OSError(errno.ETIMEDOUT, "cgroup did not freeze in time")
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    # -- kill / remove --------------------------------------------------------------------------

    def kill_all(self) -> None:
        """SIGKILL every process in the group at once (a fork bomb cannot race the kill)."""
        if self.removed:
            return
        if self.tree.version == 2:
            kill_file = self.dirs["unified"] / "cgroup.kill"
            try:
                _write(kill_file, "1")
                return
            except OSError:
                pass  # kernels before 5.14: freeze, kill, thaw
        with contextlib.suppress(OSError):
            self.freeze()
        for _ in range(3):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        # Killed tasks of a frozen group only die once thawed.
        with contextlib.suppress(OSError):
            self.thaw()

    def try_remove(self) -> bool:
        """rmdir the group's directories; False while processes are still leaving."""
        if self.removed:
            return True
        ok = True
        for d in self._unique_dirs():
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError:
                ok = False
        self.removed = ok
        return ok

    def destroy(self, wait_s: float = 0.05) -> bool:
        """Kill and remove, retrying briefly; False if the group is still busy (retry later)."""
        self.kill_all()
        deadline = time.monotonic() + wait_s
        while True:
            if self.try_remove():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)


class CgroupTree:
    """Hearth's subtree in the host's cgroup hierarchies; `version` is 1 or 2."""

    def __init__(self, version: int, roots: dict[str, Path]) -> None:
        self.version = version
        self.roots = roots  # controller (or "unified") -> hearth/<instance> directory
        self.has_memsw = False
        self.has_swap_max = False

    @classmethod
    def detect(cls, instance: str, prefer: int | None = None) -> CgroupTree:
        """Find a usable hierarchy and create `hearth/<instance>` in it. Raises CgroupUnavailable."""
        mounts = _mounts()
        errors: list[str] = []
        order = (2, 1) if prefer != 1 else (1, 2)
        for version in order:
            try:
                tree = cls._v2(mounts, instance) if version == 2 else cls._v1(mounts, instance)
            except (CgroupUnavailable, OSError) as exc:
                errors.append(f"cgroup v{version}: {exc}")
                continue
            return tree
        raise CgroupUnavailable("; ".join(errors))

    @classmethod
    def _v2(cls, mounts: list[tuple[str, str, set[str]]], instance: str) -> CgroupTree:
        for mount_point, fstype, _ in mounts:
            if fstype != "cgroup2":
                continue
            root = Path(mount_point)
            available = set(_read(root / "cgroup.controllers").split())
            missing = [c for c in V2_CONTROLLERS if c not in available]
            if missing:
                continue
            enable = " ".join(f"+{c}" for c in V2_CONTROLLERS)
            hearth = root / "hearth"
            hearth.mkdir(exist_ok=True)
            _write(root / "cgroup.subtree_control", enable)
            _write(hearth / "cgroup.subtree_control", enable)
            mine = hearth / instance
            mine.mkdir(exist_ok=True)
            _write(mine / "cgroup.subtree_control", enable)
            tree = cls(2, {"unified": mine})
            tree.has_swap_max = (mine / "memory.swap.max").exists()
            return tree
        raise CgroupUnavailable("no cgroup2 mount offers the memory, pids and cpu controllers")

    @classmethod
    def _v1(cls, mounts: list[tuple[str, str, set[str]]], instance: str) -> CgroupTree:
        roots: dict[str, Path] = {}
        for controller in V1_CONTROLLERS:
            for mount_point, fstype, options in mounts:
                if fstype == "cgroup" and controller in options:
                    roots[controller] = Path(mount_point) / "hearth" / instance
                    break
            else:
                raise CgroupUnavailable(f"no cgroup v1 hierarchy with the {controller} controller")
        for d in set(roots.values()):
            d.mkdir(parents=True, exist_ok=True)
        tree = cls(1, roots)
        tree.has_memsw = (roots["memory"] / "memory.memsw.limit_in_bytes").exists()
        return tree

    def _unique_roots(self) -> list[Path]:
        seen: list[Path] = []
        for d in self.roots.values():
            if d not in seen:
                seen.append(d)
        return seen

    def create(self, name: str, limits: Limits) -> Cgroup:
        dirs = {key: root / name for key, root in self.roots.items()}
        group = Cgroup(self, name, dirs)
        try:
            for d in group._unique_dirs():
                d.mkdir()
            self._apply(group, limits)
        except OSError:
            group.destroy()
            raise
        return group

    def _apply(self, group: Cgroup, limits: Limits) -> None:
        if self.version == 2:
            d = group.dirs["unified"]
            _write(d / "memory.max", str(limits.memory_bytes))
            if self.has_swap_max:
                _write(d / "memory.swap.max", "0")
            group.set_cpu(limits.cpu_fraction)
            _write(d / "pids.max", str(limits.pids))
            return
        mem = group.dirs["memory"]
        _write(mem / "memory.limit_in_bytes", str(limits.memory_bytes))
        if self.has_memsw:
            _write(mem / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
        with contextlib.suppress(OSError):  # refused when the parent uses hierarchy-wide swappiness
            _write(mem / "memory.swappiness", "0")
        _write(group.dirs["cpu"] / "cpu.cfs_period_us", str(CFS_PERIOD_US))
        group.set_cpu(limits.cpu_fraction)
        _write(group.dirs["pids"] / "pids.max", str(limits.pids))

    def existing(self) -> list[Cgroup]:
        """Groups in our subtree, e.g. left behind by a server that was killed."""
        names: set[str] = set()
        for root in self._unique_roots():
            with contextlib.suppress(OSError):
                names.update(entry.name for entry in os.scandir(root) if entry.is_dir())
        return [Cgroup(self, name, {k: r / name for k, r in self.roots.items()}) for name in sorted(names)]

    def clean(self, wait_s: float = 2.0) -> list[str]:
        """Kill and remove every group in our subtree; the names that could not be removed."""
        groups = self.existing()
        for group in groups:
            group.kill_all()
        deadline = time.monotonic() + wait_s
        left = groups
        while left and time.monotonic() < deadline:
            left = [g for g in left if not g.try_remove()]
            if left:
                time.sleep(0.005)
        return [g.name for g in left]

    def remove_root(self) -> None:
        """Remove our (empty) instance directory; the shared `hearth/` parent stays."""
        for d in self._unique_roots():
            with contextlib.suppress(OSError):
                os.rmdir(d)
