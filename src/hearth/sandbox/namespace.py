"""The isolating backend: every environment is a process tree in its own namespaces and cgroups.

It owns the server side of sandboxes: the cgroups of each environment (`cgroups.py`), the layout of
its root filesystem (which host paths appear where, read-only), the zygotes that fork sandboxes
(`zygote.py`, one per runtime interpreter, restarted when they die) and the per-sandbox control
socket that carries the listeners and the runtime's exit status back. The privileged setup itself
happens in the zygote's child, step by step, before any user code (see zygote.py's docstring).
It never exposes Hearth's data directory (other than the function's own code and layers), /root or
the host's loopback to a sandbox, and never runs user code as root.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearth.sandbox.cgroups import (
    Cgroup,
    CgroupTree,
    CgroupUnavailable,
    Limits,
    favor_dynamic_modifications,
    instance_key,
)
from hearth.sandbox.network import Lease, NetworkPool, NetworkUnavailable
from hearth.sandbox.process import peak_rss_kb, wait_pid
from hearth.sandbox.types import SandboxSpec, SandboxStartError, SandboxStats

log = logging.getLogger(__name__)

ZYGOTE_SCRIPT = Path(__file__).resolve().parent / "zygote.py"
SANDBOX_UID = 993  # AWS runs functions as sbx_user1051 (uid 993, gid 990)
SANDBOX_GID = 990
SANDBOX_USER = "sbx_user1051"
RUNTIME_API_PORT = 9001
AWS_API_PORT = 4566
# HTTPS clients that drop a URL's port (CDK's custom-resource handlers send their cfn-response with
# `https.request({hostname, path})`) reach 127.0.0.1:443: a second listener there carries them to the
# same API (see hearth.invoke.aws_proxy).
AWS_HTTPS_PORT = 443
LISTEN = [["127.0.0.1", RUNTIME_API_PORT], ["127.0.0.1", AWS_API_PORT], ["127.0.0.1", AWS_HTTPS_PORT]]
START_TIMEOUT_S = 10.0
ZYGOTE_START_TIMEOUT_S = 30.0
NOFILE_LIMIT = 1024
SHM_MB = 64
PIDS_REFRESH_S = 1.0  # how often Max Memory Used re-lists the runtime's processes (see _runtime_peak_rss)
# CPU follows memory (memory / 1,769 MB cores), with no floor, so that the ratio between two memory
# sizes is what AWS gives. Two things keep small functions usable: a sandbox starts with the whole
# host's CPU for INIT (AWS boosts INIT too; the interpreter's start and imports are the bulk of a cold
# start) and drops to its share when the pool calls `set_cpu` after INIT; and a CFS burst (see
# cgroups.BURST_OF_QUOTA) lets an idle sandbox spend a short spike at up to twice its share.
def init_cpu_fraction() -> float:
    return float(os.cpu_count() or 1)
MAX_MESSAGE = 1 << 16
# Host system directories a runtime needs, mounted read-only at the same place.
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin")
# Host /etc entries that programs need and that hold no secrets; everything else in /etc is absent.
ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "ssl", "pki", "ca-certificates",
               "ca-certificates.conf", "alternatives", "localtime", "nsswitch.conf", "os-release",
               "mime.types", "protocols", "services", "gai.conf", "host.conf", "crypto-policies")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")
DEV_LINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
             ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
             ("pts/ptmx", "/dev/ptmx"))
# Characters that would change the meaning of an overlayfs option string.
_OVERLAY_UNSAFE = set(":,\\\n")


class NamespaceUnavailable(Exception):
    """Namespaces + cgroups cannot be used here; the message says why."""


# The names a sandbox resolves to its own loopback, where the AWS API proxy listens (port 4566):
# Hearth's API host and `sandbox.localdomain` (AWS's name for the environment itself).
SANDBOX_NAMES = ("localhost", "sandbox.localdomain", "sandbox", "localhost.localdomain")


def host_resolvers(resolv_conf: Path = Path("/etc/resolv.conf")) -> str:
    """The host's resolver configuration as a sandbox needs it: its `nameserver`, `search` and
    `options` lines, minus loopback servers (a sandbox cannot reach the host's loopback: a local
    stub resolver such as systemd-resolved's must be named by its upstream address instead)."""
    try:
        text = resolv_conf.read_text()
    except OSError:
        return ""
    keep: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] not in ("nameserver", "search", "options", "domain"):
            continue
        if words[0] == "nameserver" and (len(words) < 2 or words[1].startswith("127.") or words[1] == "::1"):
            continue
        keep.append(" ".join(words))
    return "\n".join(keep) + ("\n" if keep else "")


def hosts_file(extra_names: tuple[str, ...] = ()) -> str:
    """/etc/hosts of every sandbox: loopback names, Hearth's own names (the AWS API proxy and
    function URL hosts are on the sandbox's loopback) and `sandbox.localdomain`."""
    names = " ".join(dict.fromkeys((*SANDBOX_NAMES, *extra_names)))
    return f"127.0.0.1\t{names}\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def write_hosts(etc_dir: Path, extra_names: tuple[str, ...]) -> None:
    """Replace the sandboxes' /etc/hosts atomically: the bind of /etc shows the directory's current
    files, so running sandboxes see new function URL hosts at once."""
    tmp = etc_dir / ".hosts.tmp"
    tmp.write_text(hosts_file(extra_names))
    tmp.chmod(0o644)
    os.replace(tmp, etc_dir / "hosts")


def _etc_files(resolv: str = "") -> dict[str, str]:
    return {
        "passwd": f"root:x:0:0:root:/root:/sbin/nologin\n"
                  f"{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_GID}::/tmp:/sbin/nologin\n",
        "group": f"root:x:0:\n{SANDBOX_USER}:x:{SANDBOX_GID}:\n",
        "hosts": hosts_file(),
        "resolv.conf": resolv,
        "hostname": "localhost\n",
    }


@dataclass(frozen=True)
class HostLayout:
    """What of the host appears in every sandbox (probed once)."""

    system_binds: tuple[tuple[str, str], ...]
    symlinks: tuple[tuple[str, str], ...]
    devices: tuple[str, ...]
    etc_entries: tuple[tuple[str, str], ...] = ()  # (host path, name under /etc)

    @classmethod
    def probe(cls) -> HostLayout:
        binds: list[tuple[str, str]] = []
        links: list[tuple[str, str]] = list(DEV_LINKS)
        for d in SYSTEM_DIRS:
            if os.path.islink(d):  # merged-/usr hosts: /bin -> usr/bin
                links.append((os.readlink(d), d))
            elif os.path.isdir(d):
                binds.append((d, d))
        etc: list[tuple[str, str]] = []
        for name in ETC_ENTRIES:
            real = os.path.realpath(f"/etc/{name}")
            if os.path.exists(real) and not real.startswith(("/root", "/home")):
                etc.append((real, name))
        devices = tuple(d for d in DEVICES if os.path.exists(d))
        return cls(tuple(binds), tuple(links), devices, tuple(etc))


def build_etc(target: Path, layout: HostLayout, *, resolv: str = "") -> None:
    """The sandboxes' /etc, built once per server start and bind-mounted read-only as a whole.

    One bind instead of one per entry: mounts take a kernel-wide lock, and during a burst of cold
    starts every sandbox's setup queues on it (scale-out). The copies hold the same entries the
    sandbox used to see, minus private key directories (/etc/ssl/private)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(mode=0o755, parents=True)
    target.chmod(0o755)
    for name, content in _etc_files(resolv).items():
        (target / name).write_text(content)
        (target / name).chmod(0o644)
    for real, name in layout.etc_entries:
        dst = target / name
        if os.path.isdir(real):
            shutil.copytree(real, dst, symlinks=True, ignore=shutil.ignore_patterns("private"))
        else:
            shutil.copyfile(real, dst)
            dst.chmod(0o644)


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _recv(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One message from a non-blocking SEQPACKET socket; (None, []) at end of stream."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            fds = array.array("i")
            data, anc, _, _ = sock.recvmsg(MAX_MESSAGE, socket.CMSG_LEN(16 * fds.itemsize))
            break
        except (BlockingIOError, InterruptedError):
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(sock.fileno(), _set_once, ready)
            try:
                await ready
            finally:
                loop.remove_reader(sock.fileno())
        except ConnectionError:
            return None, []
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    message = json.loads(data)
    if not isinstance(message, dict):
        message = {}
    return message, list(fds)


def _clone_init_pid(group: Cgroup) -> int:
    """The host pid of a clone's init (pid 1 of its namespace), found among its cgroup's processes."""
    for pid in group.pids():
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    if line.split()[-1] == "1":
                        return pid
                    break
    raise SandboxStartError("the clone's init process is gone")


class Zygote:
    """One pre-started interpreter (see zygote.py) and the socket to it."""

    def __init__(self, python: str, bootstrap: str | None) -> None:
        self.python = python
        self.bootstrap = bootstrap
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.preload_error: str | None = None
        self._reaper: asyncio.Task[int] | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self._reaper is not None and not self._reaper.done()

    async def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [self.python, "-I", str(ZYGOTE_SCRIPT), str(theirs.fileno()), str(os.getpid()),
                 self.bootstrap or ""],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, start_new_session=True,
                cwd="/",
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self._reaper = asyncio.ensure_future(self._reap(self.proc))
        ours.setblocking(False)
        self.sock = ours
        try:
            ready, fds = await asyncio.wait_for(_recv(ours), ZYGOTE_START_TIMEOUT_S)
        except TimeoutError:
            ready, fds = None, []
        for fd in fds:
            os.close(fd)
        if not ready or not ready.get("ready"):
            await self.stop()
            raise NamespaceUnavailable(f"the sandbox zygote for {self.python} did not start")
        self.preload_error = ready.get("preload_error")
        if self.preload_error:
            log.warning("zygote %s cannot preload %s (%s): python sandboxes will exec instead",
                        self.python, self.bootstrap, self.preload_error)

    @staticmethod
    async def _reap(proc: subprocess.Popen[bytes]) -> int:
        status = await wait_pid(proc.pid)
        proc.returncode = status
        return status

    def send(self, request: dict[str, Any], fds: list[int]) -> None:
        assert self.sock is not None
        data = json.dumps(request).encode()
        self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())])

    async def stop(self) -> None:
        if self.sock is not None:
            self.sock.close()  # the zygote exits at end of stream
            self.sock = None
        if self.proc is not None and self._reaper is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._reaper), 2)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self._reaper


@dataclass(eq=False)
class NamespaceSandbox:
    pid: int
    runtime_api_sock: socket.socket
    aws_api_sock: socket.socket | None
    aws_https_sock: socket.socket | None
    output_fd: int
    _ctl: socket.socket
    _cgroup: Cgroup
    _backend: NamespaceBackend
    _status: asyncio.Task[int] = field(init=False)
    _final_stats: SandboxStats | None = None
    _killed: bool = False
    template_sock: socket.socket | None = None  # a SnapStart template's socket for clone requests
    # The runtime's processes, for Max Memory Used, and when they were last listed (see _runtime_peak_rss).
    _runtime_pids: list[int] = field(default_factory=list)
    _pids_listed_at: float = -1e18
    network_lease: Lease | None = None  # its interface (hearth.sandbox.network), released at kill

    def __post_init__(self) -> None:
        self._status = asyncio.ensure_future(self._watch())

    async def _watch(self) -> int:
        try:
            while True:
                message, fds = await _recv(self._ctl)
                for fd in fds:
                    os.close(fd)
                if message is None:
                    return -9  # init was killed (kill(), or the whole tree died): SIGKILL
                if "exit" in message:
                    return int(message["exit"])
        finally:
            self._ctl.close()

    async def wait(self) -> int:
        return await asyncio.shield(self._status)

    def stats(self) -> SandboxStats:
        if self._final_stats is not None:
            return self._final_stats
        return SandboxStats(memory_peak_bytes=self._cgroup.memory_peak(), oom_killed=self._cgroup.oom_killed())

    def memory_peak(self) -> int:
        """Just the peak (read after every invocation for REPORT's Max Memory Used): the larger of the
        cgroup's peak charge and the runtime's own peak resident size.

        The cgroup is charged only for pages the sandbox itself faulted in; the interpreter and the
        modules it shares copy-on-write with the zygote it was forked from are charged to the
        zygote, so a no-op Python function's cgroup peak is ~4 MB. AWS reports the runtime's whole
        footprint (tens of MB), and users size MemorySize from that line, so the runtime's processes'
        peak RSS (VmHWM, shared pages included; init, Hearth's own helper, left out) counts too."""
        if self._final_stats is not None:
            return self._final_stats.memory_peak_bytes
        return max(self._cgroup.memory_peak(), self._runtime_peak_rss())

    def _runtime_peak_rss(self) -> int:
        # Listing the sandbox's processes costs a read per cgroup directory after every invocation, and
        # they rarely change between invocations: the list is refreshed at most every PIDS_REFRESH_S. A
        # process started since counts from the next refresh; its own pages are in the cgroup's peak
        # meanwhile (only pages shared with the zygote are not).
        now = time.monotonic()
        if now - self._pids_listed_at > PIDS_REFRESH_S:
            self._runtime_pids = [pid for pid in self._cgroup.pids() if pid != self.pid]
            self._pids_listed_at = now
        return sum(peak_rss_kb(pid) for pid in self._runtime_pids) * 1024

    def raise_memory_limit(self, memory_bytes: int) -> None:
        """A SnapStart template's headroom: each clone's page tables are charged to it (see snapshot.py)."""
        if not self._killed:
            self._cgroup.raise_memory_limit(memory_bytes)

    def set_cpu(self, fraction: float) -> None:
        """The sandbox's CPU share from now on, in cores (after INIT: memory / 1,769 MB)."""
        if not self._killed:
            self._cgroup.set_cpu(fraction)

    def freeze(self) -> None:
        if not self._killed:
            self._cgroup.freeze(wait=False)

    def thaw(self) -> None:
        if not self._killed:
            self._cgroup.thaw()

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        if self._killed:
            return
        self._killed = True
        try:
            self._final_stats = self.stats()
        except OSError:
            self._final_stats = SandboxStats(0, False)
        if not self._cgroup.destroy():
            self._backend.remove_later(self._cgroup)
        for s in (self.runtime_api_sock, self.aws_api_sock, self.aws_https_sock, self.template_sock):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
        self._backend.forget(self)
        if self.network_lease is not None:
            self._backend.release_network(self.network_lease)
            self.network_lease = None


class NamespaceBackend:
    name = "namespace"

    def __init__(self, data_dir: Path, tree: CgroupTree, root_dir: Path,
                 network: NetworkPool | None = None) -> None:
        self._data_dir = data_dir
        self._network = network
        self._tree = tree
        self._root_dir = root_dir
        self._layout = HostLayout.probe()
        self._etc_dir = data_dir / "sandbox-etc"  # inside the 0700 data dir: nobody else can touch it
        self._zygotes: dict[tuple[str, str | None], Zygote] = {}
        self._zygote_locks: dict[tuple[str, str | None], asyncio.Lock] = {}
        self._live: set[NamespaceSandbox] = set()
        self._busy: list[Cgroup] = []
        self._busy_task: asyncio.Task[None] | None = None
        self._counter = 0
        self._closed = False
        self._dynmods_fd: int | None = None  # holds the `favordynmods` hierarchy (see cgroups.py)

    # -- opening --------------------------------------------------------------------------------

    @classmethod
    async def open(cls, data_dir: Path, *, self_test: bool = True, cgroup_version: int | None = None,
                   favor_dynmods: bool = True, network: NetworkPool | None = None) -> NamespaceBackend:
        """Probe and prepare: root, cgroups (leftovers of a killed run removed), a zygote, one real
        sandbox started and reaped. Raises NamespaceUnavailable with the reason."""
        if sys.platform != "linux":
            raise NamespaceUnavailable("namespaces need Linux")
        if os.geteuid() != 0:
            raise NamespaceUnavailable("the server does not run as root")
        try:
            tree = CgroupTree.detect(instance_key(data_dir), prefer=cgroup_version)
        except CgroupUnavailable as exc:
            raise NamespaceUnavailable(f"no usable cgroup hierarchy ({exc})") from exc
        left = tree.clean()
        if left:
            log.warning("could not remove leftover cgroups: %s", ", ".join(left))
        # An empty directory each sandbox mounts its new root on (inside its own mount namespace, so
        # one directory serves all). Named after the instance so that a killed server's is reused.
        root_dir = Path(tempfile.gettempdir()) / f"hearth-sandbox-root-{instance_key(data_dir)}"
        root_dir.mkdir(mode=0o700, exist_ok=True)
        backend = cls(data_dir, tree, root_dir, network)
        if favor_dynmods:
            backend._dynmods_fd = favor_dynamic_modifications()
        try:
            build_etc(backend._etc_dir, backend._layout, resolv=host_resolvers() if network else "")
            await backend._zygote(sys.executable, None)
            if self_test:
                await backend._self_test()
        except NamespaceUnavailable:
            await backend.close()
            raise
        except Exception as exc:
            await backend.close()
            raise NamespaceUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return backend

    async def _self_test(self) -> None:
        with tempfile.TemporaryDirectory(prefix="hearth-probe-") as code_dir:
            code = Path(code_dir)
            code.chmod(0o755)  # the sandbox user must be able to enter its /var/task
            spec = SandboxSpec(
                env_id="probe", argv=["/bin/sh", "-c", "exit 7"], env={"PATH": "/usr/bin:/bin"},
                code_dir=code, runtime_dir=None, opt_dirs=(), extra_ro_mounts=(), memory_mb=64,
                cpu_fraction=0.5, tmp_mb=1,
            )
            try:
                sandbox = await self.start(spec)
            except SandboxStartError as exc:
                raise NamespaceUnavailable(f"a test sandbox failed to start ({exc})") from exc
            output = b""
            try:
                status = await asyncio.wait_for(sandbox.wait(), START_TIMEOUT_S)
                os.set_blocking(sandbox.output_fd, False)
                with contextlib.suppress(OSError):
                    output = os.read(sandbox.output_fd, 4096)
            finally:
                sandbox.kill()
                os.close(sandbox.output_fd)
            if status != 7:
                said = output.decode(errors="replace").strip()
                raise NamespaceUnavailable(f"a test sandbox exited with {status} instead of 7: {said}")

    # -- zygotes --------------------------------------------------------------------------------

    async def _zygote(self, python: str, bootstrap: str | None) -> Zygote:
        key = (python, bootstrap)
        lock = self._zygote_locks.setdefault(key, asyncio.Lock())
        async with lock:
            zygote = self._zygotes.get(key)
            if zygote is not None and zygote.alive:
                return zygote
            if zygote is not None:
                log.warning("sandbox zygote for %s died; restarting it", python)
                await zygote.stop()
            zygote = Zygote(python, bootstrap)
            await zygote.start()
            self._zygotes[key] = zygote
            return zygote

    async def _zygote_for(self, spec: SandboxSpec) -> tuple[Zygote, bool]:
        """The zygote to fork `spec` from, and whether it can run the Python bootstrap in-process."""
        fork = spec.python_fork
        if fork is not None and fork.python_executable.exists():
            try:
                zygote = await self._zygote(str(fork.python_executable), str(fork.bootstrap_path))
            except (OSError, NamespaceUnavailable) as exc:
                log.warning("no zygote for %s (%s); using exec", fork.python_executable, exc)
            else:
                return zygote, zygote.preload_error is None
        return await self._zygote(sys.executable, None), False

    # -- sandboxes ------------------------------------------------------------------------------

    def _request(self, spec: SandboxSpec, group: Cgroup, python_fork: bool) -> dict[str, Any]:
        binds: list[tuple[str, str]] = list(self._layout.system_binds)
        binds.append((str(self._etc_dir), "/etc"))
        binds.append((str(spec.code_dir), "/var/task"))
        if spec.runtime_dir is not None:
            binds.append((str(spec.runtime_dir), "/var/runtime"))
        overlay: dict[str, Any] | None = None
        if len(spec.opt_dirs) == 1:
            binds.append((str(spec.opt_dirs[0]), "/opt"))
        elif spec.opt_dirs:
            lower = [str(p) for p in reversed(spec.opt_dirs)]  # overlayfs: leftmost wins; later layers win
            if any(set(p) & _OVERLAY_UNSAFE for p in lower):
                raise SandboxStartError("a layer path contains a character overlayfs cannot take")
            overlay = {"lower": lower, "target": "/opt"}
        for extra_host, extra_target in spec.extra_ro_mounts:
            binds.append((str(extra_host), extra_target))
        for source, target in binds:
            if not target.startswith("/") or ".." in target.split("/"):
                raise SandboxStartError(f"bad mount target {target!r}")
            if not os.path.exists(source):
                raise SandboxStartError(f"mount source {source} does not exist")
        binds.sort(key=lambda b: b[1])
        env = dict(spec.env)
        env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{RUNTIME_API_PORT}"
        self._counter += 1
        return {
            "cgroups": group.procs_files,
            "hostname": f"169.254.{(self._counter >> 8) % 256}.{self._counter % 256}",
            "uid": SANDBOX_UID,
            "gid": SANDBOX_GID,
            "root": str(self._root_dir),
            "ro_binds": binds,
            "overlay": overlay,
            "etc_files": {},  # all of /etc is one read-only bind (build_etc)
            "devices": list(self._layout.devices),
            "symlinks": list(self._layout.symlinks),
            "tmp_mb": max(1, spec.tmp_mb),
            "shm_mb": min(SHM_MB, max(1, spec.memory_mb)),
            "listen": LISTEN,
            "argv": spec.argv,
            "env": env,
            "workdir": spec.workdir,
            "python_fork": python_fork,
            "nofile": NOFILE_LIMIT,
            "snapshot_module": spec.snapshot_module,  # an exec'd template's bootstrap loads it (zygote.py)
        }

    async def start(self, spec: SandboxSpec, *, template: bool = False) -> NamespaceSandbox:
        """Start a sandbox. A `template` (SnapStart) runs INIT and then waits for clone requests on
        its `template_sock` (see `template_ready` and `clone`); it needs a Python zygote."""
        if self._closed:
            raise SandboxStartError("the namespace backend is closed")
        zygote, python_fork = await self._zygote_for(spec)
        if template and not python_fork and not spec.snapshot_module:
            raise SandboxStartError("a snapshot template needs the Python runtime's zygote")
        group = self._new_group(spec)
        try:
            return await self._start_in(zygote, spec, group, python_fork, template)
        except BaseException:
            if not group.destroy():
                self.remove_later(group)
            raise

    def _new_group(self, spec: SandboxSpec) -> Cgroup:
        self._counter += 1
        return self._tree.create(
            f"{spec.env_id[:40]}-{self._counter}",
            Limits(spec.memory_mb << 20, max(spec.cpu_fraction, init_cpu_fraction()), spec.pids_limit),
        )

    async def _start_in(self, zygote: Zygote, spec: SandboxSpec, group: Cgroup, python_fork: bool,
                        template: bool) -> NamespaceSandbox:
        request = self._request(spec, group, python_fork)
        lease = await self._lease(spec)
        if lease is not None:
            request["netns"] = True  # the prepared namespace's fd comes last (see zygote.serve)
        ctl, ctl_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        tmpl, tmpl_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) if template else (None, None)
        out_r, out_w = os.pipe()
        fds = [ctl_theirs.fileno(), out_w] + ([tmpl_theirs.fileno()] if tmpl_theirs is not None else [])
        if lease is not None:
            fds.append(lease.fd)
        try:
            try:
                zygote.send(request, fds)
            except OSError:  # the zygote died since we last used it: restart it once
                zygote = await self._zygote(zygote.python, zygote.bootstrap)
                zygote.send(request, fds)
        except BaseException:
            ctl.close()
            os.close(out_r)
            if tmpl is not None:
                tmpl.close()
            if lease is not None:
                self.release_network(lease)
            raise
        finally:
            ctl_theirs.close()
            os.close(out_w)
            if tmpl_theirs is not None:
                tmpl_theirs.close()
            if lease is not None:
                lease.close_fd()  # the sandbox's init holds the namespace from now on
        try:
            sandbox = await self._setup_done(spec, group, ctl, out_r)
        except BaseException:
            if lease is not None:
                self.release_network(lease)
            raise
        sandbox.network_lease = lease
        if tmpl is not None:
            tmpl.setblocking(False)
            sandbox.template_sock = tmpl
        return sandbox

    async def _lease(self, spec: SandboxSpec) -> Lease | None:
        """The prepared network namespace `spec` asks for (None: an empty one of its own, loopback only)."""
        if self._network is None or spec.network is None:
            return None
        try:
            return await self._network.lease(spec.network.key, spec.network.owner)
        except NetworkUnavailable as exc:
            raise SandboxStartError(f"network: {exc}") from exc

    def set_names(self, names: tuple[str, ...]) -> None:
        """Host names every sandbox resolves to its own loopback (function URL hosts), from now on."""
        try:
            write_hosts(self._etc_dir, names)
        except OSError as exc:
            log.warning("cannot update the sandboxes' /etc/hosts: %s", exc)

    def release_network(self, lease: Lease) -> None:
        if self._network is not None:
            self._network.release(lease)

    async def _setup_done(self, spec: SandboxSpec, group: Cgroup, ctl: socket.socket, out_r: int,
                          *, clone: bool = False) -> NamespaceSandbox:
        """Wait for a sandbox's (or clone's) setup to report and wrap it; closes ctl and out_r on failure."""
        ctl.setblocking(False)
        try:
            try:
                message, fds = await asyncio.wait_for(_recv(ctl), START_TIMEOUT_S)
            except TimeoutError:
                message, fds = {"error": "timed out setting up the sandbox"}, []
            if message is None or "pid" not in message or len(fds) != len(LISTEN):
                for fd in fds:
                    os.close(fd)
                reason = (message or {}).get("error", "the sandbox setup process died")
                raise SandboxStartError(str(reason))
            pid = _clone_init_pid(group) if clone else int(message["pid"])
        except BaseException:
            ctl.close()
            os.close(out_r)
            raise
        if log.isEnabledFor(logging.DEBUG) and isinstance(message.get("trace"), list):
            log.debug("sandbox %s setup (ms since the fork): %s", spec.env_id, ", ".join(
                f"{step} {(t - message['trace'][0][1]) * 1000:.1f}" for step, t in message["trace"]))
        runtime_sock = socket.socket(fileno=fds[0])
        aws_sock = socket.socket(fileno=fds[1])
        https_sock = socket.socket(fileno=fds[2])
        sandbox = NamespaceSandbox(pid, runtime_sock, aws_sock, https_sock, out_r, ctl, group, self)
        self._live.add(sandbox)
        return sandbox

    # -- SnapStart ------------------------------------------------------------------------------

    async def template_ready(self, template: NamespaceSandbox) -> bool:
        """Wait until a template's runtime has run INIT and its before-snapshot hooks (True), or has
        gone away (False)."""
        if template.template_sock is None:
            return False
        message, fds = await _recv(template.template_sock)
        for fd in fds:
            os.close(fd)
        return bool(message and message.get("ready"))

    async def clone(self, template: NamespaceSandbox, spec: SandboxSpec) -> NamespaceSandbox:
        """A new sandbox forked from a ready template: the template's memory copy-on-write, with its
        own cgroup, namespaces, /tmp, listeners, output and environment variables (from `spec`)."""
        if self._closed:
            raise SandboxStartError("the namespace backend is closed")
        if template.template_sock is None or template._killed:
            raise SandboxStartError("the snapshot template is gone")
        group = self._new_group(spec)
        ctl: socket.socket | None = None
        out_r = -1
        handed_over = False  # from then on, _setup_done owns ctl and out_r
        try:
            env = dict(spec.env)
            env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{RUNTIME_API_PORT}"
            self._counter += 1
            request = {
                "hostname": f"169.254.{(self._counter >> 8) % 256}.{self._counter % 256}",
                "env": env,
                "tmp_mb": max(1, spec.tmp_mb),
                "shm_mb": min(SHM_MB, max(1, spec.memory_mb)),
                "listen": LISTEN,
            }
            if spec.restore_argv:  # started by the clone's init beside its runtime (zygote.py, SnapStart)
                request["extensions"] = list(spec.restore_argv)
            ctl, ctl_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            out_r, out_w = os.pipe()
            # Opened here, as root: the clone (the sandbox user, no capabilities) joins its cgroups
            # by writing to these, which the kernel checks against the opener's credentials.
            procs = [os.open(path, os.O_WRONLY | os.O_CLOEXEC) for path in group.procs_files]
            try:
                data = json.dumps(request).encode()
                template.template_sock.sendmsg(
                    [data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                              array.array("i", [ctl_theirs.fileno(), out_w, *procs]).tobytes())])
            except OSError as exc:
                raise SandboxStartError(f"the snapshot template is gone ({exc})") from exc
            finally:
                ctl_theirs.close()
                os.close(out_w)
                for fd in procs:
                    os.close(fd)
            handed_over = True
            sandbox = await self._setup_done(spec, group, ctl, out_r, clone=True)
            # A clone made its network namespace itself (in its own user namespace, which cannot join
            # one of the host's): its interface is made in it now, before it is handed out.
            if self._network is not None and spec.network is not None:
                try:
                    sandbox.network_lease = await asyncio.to_thread(
                        self._network.attach, spec.network.key, spec.network.owner, sandbox.pid)
                except NetworkUnavailable as exc:
                    sandbox.kill()
                    raise SandboxStartError(f"network: {exc}") from exc
            return sandbox
        except BaseException:
            if not handed_over:
                if ctl is not None:
                    ctl.close()
                if out_r >= 0:
                    os.close(out_r)
            if not group.destroy():
                self.remove_later(group)
            raise

    def forget(self, sandbox: NamespaceSandbox) -> None:
        self._live.discard(sandbox)

    def remove_later(self, group: Cgroup) -> None:
        """A killed group whose processes are still exiting: removed by a background retry."""
        self._busy.append(group)
        if self._busy_task is None or self._busy_task.done():
            self._busy_task = asyncio.ensure_future(self._remove_busy())

    async def _remove_busy(self) -> None:
        delay = 0.01
        while self._busy:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            self._busy = [g for g in self._busy if not g.destroy(0)]

    def statistics(self) -> dict[str, object]:
        return {
            "backend": self.name,
            "cgroup_version": self._tree.version,
            "live_sandboxes": len(self._live),
            "zygotes": [z.python for z in self._zygotes.values() if z.alive],
        }

    async def close(self) -> None:
        """Kill every sandbox, stop the zygotes, remove our cgroups and the root mount point."""
        self._closed = True
        for sandbox in list(self._live):
            sandbox.kill()
        for zygote in list(self._zygotes.values()):
            await zygote.stop()
        self._zygotes.clear()
        left = self._tree.clean()
        if left:
            log.warning("cgroups still busy at shutdown: %s", ", ".join(left))
        if self._busy_task is not None:
            self._busy_task.cancel()
        self._busy.clear()
        self._tree.remove_root()
        with contextlib.suppress(OSError):
            self._root_dir.rmdir()
        if self._dynmods_fd is not None:
            os.close(self._dynmods_fd)
            self._dynmods_fd = None
