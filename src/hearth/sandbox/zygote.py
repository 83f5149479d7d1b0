"""The sandbox zygote: a pre-started interpreter that forks isolated environments on request.

Run as ``python -I zygote.py <socket fd> <server pid> [bootstrap.py]`` by the namespace backend, as
root, under the interpreter of the runtime it serves (any Python 3.8-3.14). It is stdlib-only and must
never import hearth: it runs outside Hearth's virtualenv. It owns the privileged, synchronous setup of
one sandbox, step by step, and ends every sandbox in either ``execve`` or the runtime bootstrap's
``main()`` as an unprivileged user. It never runs user code as root and never keeps a sandbox's fds.

Messages on the zygote socket (SOCK_SEQPACKET, one JSON object per message):
  zygote → server  {"ready": true, "preload_error": str|null} once, after pre-importing.
  server → zygote  a sandbox request (see `NamespaceBackend._request`) with fds [ctl, output], plus a
                   third fd for a SnapStart template: the socket its runtime keeps (see the SnapStart
                   section below: templates and their clones).
Messages on a sandbox's `ctl` socket (SOCK_SEQPACKET), sent by the sandbox:
  {"pid": <host pid of init>, "trace": [[step, CLOCK_MONOTONIC s]...]}
      + fds [runtime listener, aws listener, aws https listener]        setup finished
  {"error": "<step>: <reason>"}                                          setup failed
  {"exit": <status>}   the runtime exited (status, or -signal); the sandbox ends with it

Process tree of one sandbox (every process is in the sandbox's cgroups before user code runs):
  zygote ─clone(2) into a new pid namespace→ I (pid 1 there: sets up, then reaps, forwards SIGTERM
                 and reports the exit)
                    ─fork→ R (the runtime: drops privileges, then exec or bootstrap main())
I, in order:
  1. PR_SET_PDEATHSIG(SIGKILL) (dies with the zygote), own session, default signal handlers.
  2. Join the cgroups the server created (cgroup.procs), so every descendant is limited; then
     unshare(NEWNS|NEWUTS|NEWIPC|NEWNET|NEWCGROUP) (the cgroup namespace rooted at our groups); make
     every mount private. With networking on, the network namespace is not new but joined: setns(2)
     into the one the server prepared (its veth, address and routes ready; hearth.sandbox.network).
  3. Hostname; bring `lo` up (ioctl); bind the listeners 127.0.0.1:9001, :4566 and :443 inside the netns.
  4. Build the new root on a tmpfs: symlinks (/bin -> usr/bin, /dev/fd ...); binds of the system
     dirs, a minimal /etc, /var/task, /var/runtime, /opt (overlay of layers), extra read-only mounts;
     then the whole tree read-only, nosuid, nodev at once (mount_setattr); then device binds and a
     size-limited /tmp (mode 1777) and /dev/shm.
  5. Mount a fresh /proc, pivot_root into the new root (the old root is detached), remount the root
     read-only.
  6. Fork R, send {"pid"} and the listeners to the server, drop to the sandbox user (non-dumpable)
     and wait. When R exits, report its status and exit: the kernel kills whatever else is left in
     the pid namespace. The zygote reaps I.
R: own session, rlimits (NOFILE, CORE), fds 0=/dev/null 1=2=output, every other fd closed,
setgroups([]), setresgid, setresuid, PR_SET_NO_NEW_PRIVS, chdir, environment replaced, then
execve(argv) or the pre-imported bootstrap's main().

Non-goals: no seccomp filter (the kernel's full syscall surface is reachable by an unprivileged user;
no protection against kernel exploits — run Hearth in a VM for that). Sandboxes started here have no
user namespace; a SnapStart clone makes one of its own (uid and gid mapped to themselves), because it
is isolated by a process that has no privilege left.
"""

from __future__ import annotations

import array
import atexit

# Pre-imported so that forked runtimes do not pay for them.
import base64  # noqa: F401
import ctypes
import datetime  # noqa: F401
import decimal  # noqa: F401
import errno
import fcntl
import gc
import http.client  # noqa: F401
import importlib.util
import io
import json
import logging  # noqa: F401
import os
import platform
import resource
import signal
import socket
import struct
import sys
import time
import traceback
import uuid  # noqa: F401
from typing import Any, NoReturn

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_NOEXEC = 8
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41}.get(platform.machine(), 155)
SYS_CAPSET = {"x86_64": 126, "aarch64": 91, "arm64": 91}.get(platform.machine(), 126)
SYS_CLONE = {"x86_64": 56, "aarch64": 220, "arm64": 220}.get(platform.machine(), 56)
SYS_CLOSE_RANGE = 436  # the same number on every architecture
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (Linux 5.12+)
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MAX_MESSAGE = 1 << 20
SNAPSHOT_VARIABLE = "_HEARTH_SNAPSHOT"  # an exec'd template's instructions (see _runtime)
TEMPLATE_FD = 3  # in a SnapStart template's runtime: the socket clone requests arrive on
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                     signal.SIGUSR2)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
# The same C library, called with the GIL held: a raw clone(2) must not let another thread run between
# the interpreter's before-fork and after-fork bookkeeping.
_pylibc = ctypes.PyDLL(None, use_errno=True)
_pylibc.syscall.restype = ctypes.c_long
_pyapi = ctypes.pythonapi

_bootstrap: Any = None  # the pre-imported runtime bootstrap module, when there is one
_base_sys_path: list[str] = list(sys.path)
_terminated: list[int] = []  # in a sandbox's init: the SIGTERM it forwarded (SHUTDOWN has begun)


class SetupError(Exception):
    pass


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)}")


def _mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    rc: int = _libc.mount(
        src.encode() if src is not None else None, dst.encode(),
        fstype.encode() if fstype is not None else None, flags,
        data.encode() if data is not None else None,
    )
    _check(rc, f"mount {src or fstype} on {dst}")


def _prctl(option: int, value: int) -> None:
    rc: int = _libc.prctl(option, value, 0, 0, 0)
    _check(rc, f"prctl {option}")


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


# -- messages ---------------------------------------------------------------------------------------

def send_msg(sock: socket.socket, obj: object, fds: tuple[int, ...] = ()) -> None:
    data = json.dumps(obj).encode()
    if fds:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())])
    else:
        sock.send(data)


def recv_msg(sock: socket.socket) -> tuple[Any | None, list[int]]:
    """One message and its fds; (None, []) at end of stream."""
    fds = array.array("i")
    data, ancdata, _, _ = sock.recvmsg(MAX_MESSAGE, socket.CMSG_LEN(16 * fds.itemsize))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(data.decode()), list(fds)


# -- the sandbox ------------------------------------------------------------------------------------

def _own_namespaces(hostname: str, netns_fd: int | None = None) -> None:
    """New mount, UTS, IPC, network and cgroup namespaces for a process already in its own pid
    namespace and its own cgroups (so the cgroup namespace is rooted at them); every mount private,
    the hostname set, `lo` up. With `netns_fd`, the network namespace is that one (prepared by the
    server with its interface, address and routes) instead of a new, empty one."""
    flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP
    if netns_fd is not None:
        _check(_libc.setns(netns_fd, CLONE_NEWNET), "setns")
        os.close(netns_fd)
    else:
        flags |= CLONE_NEWNET
    _check(_libc.unshare(flags), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    socket.sethostname(hostname)
    _lo_up()


def _lo_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _listen(host: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(128)
    return s


def _make_target(root: str, target: str, is_dir: bool) -> str:
    path = root + target
    if is_dir:
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
    return path


def _bind_ro(src: str, path: str) -> None:
    _mount(src, path, None, MS_BIND)
    _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


_setattr_works = True  # until the kernel says ENOSYS (before 5.12) or refuses otherwise


def _readonly_tree(root: str, binds: list[str]) -> None:
    """Make `root` and every mount under it read-only, nosuid, nodev.

    One mount_setattr(AT_RECURSIVE) call instead of a remount per bind: mounts take a kernel-wide
    lock, and a burst of sandboxes being set up at once queues on it (scale-out). Kernels without
    the call get the remount per bind (the root tmpfs is remounted read-only by I, as always)."""
    global _setattr_works
    if _setattr_works:
        attr = _MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, 0)
        rc = _libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, root.encode(), AT_RECURSIVE, ctypes.byref(attr),
                           ctypes.sizeof(attr))
        if rc == 0:
            return
        _setattr_works = False
    for path in binds:
        _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _build_root(req: dict[str, Any]) -> str:
    root: str = req["root"]
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,nr_inodes=4096,mode=755")
    for d in ("proc", "tmp", "dev", "dev/shm", "dev/pts", "etc", "var", "opt", "var/task"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    for name, content in sorted(req["etc_files"].items()):
        with open(os.path.join(root, "etc", name), "w") as f:
            f.write(content)
    for target, link in req["symlinks"]:
        if not os.path.lexists(root + link):
            os.symlink(target, root + link)
    devices = [_make_target(root, dev, False) for dev in req["devices"]]
    binds = []
    for src, dst in req["ro_binds"]:
        path = _make_target(root, dst, os.path.isdir(src))
        _mount(src, path, None, MS_BIND)
        binds.append(path)
    overlay = req.get("overlay")
    if overlay:
        path = _make_target(root, overlay["target"], True)
        lower = ":".join(overlay["lower"])
        _mount("overlay", path, "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, "lowerdir=" + lower)
    _readonly_tree(root, binds)
    # Mounted after the tree went read-only: devices must stay usable, /tmp and /dev/shm writable.
    if len(req["devices"]) != len(devices):
        raise ValueError("devices and their mount points differ in number")
    # No zip(strict=): this runs under Python 3.8 and 3.9 too (the lengths are checked above).
    for dev, path in zip(req["devices"], devices):  # noqa: B905
        _mount(dev, path, None, MS_BIND)
    _mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(req['tmp_mb'])}m,mode=1777")
    _mount("tmpfs", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(req['shm_mb'])}m,mode=1777")
    return root


def _sandbox(zygote_sock: socket.socket, req: dict[str, Any], ctl: socket.socket, out_fd: int,
             template_fd: int | None, netns_fd: int | None = None) -> NoReturn:
    """I: the zygote's child, born in new mount/uts/ipc/net/pid namespaces (pid 1 there); sets the
    sandbox up as root, forks the runtime, then stays as its init. Never returns."""
    try:
        zygote_sock.close()
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        os.setsid()
        step = "cgroup"
        trace = req["trace"] = [["clone", time.monotonic()]]
        try:
            for path in req["cgroups"]:
                with open(path, "w") as f:
                    f.write("0")  # the writer itself
            step = "namespaces"
            _own_namespaces(req["hostname"], netns_fd)
            trace.append(["namespaces", time.monotonic()])
            step = "listen"
            listeners = [_listen(host, port) for host, port in req["listen"]]
            step = "root"
            root = _build_root(req)
            trace.append(["root", time.monotonic()])
            _oom_score_adj("-1000")  # the OOM killer picks the runtime, not init
            step = "init"
            host_pid = int(os.readlink("/proc/self"))  # the host's procfs still names us by our host pid
            _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            os.chdir(root)
            _check(_libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
            _check(_libc.umount2(b".", MNT_DETACH), "detach the old root")
            os.chdir("/")
            _mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        except (OSError, SetupError) as exc:
            send_msg(ctl, {"error": f"{step}: {exc}"})
            os._exit(1)
        trace.append(["pivot", time.monotonic()])
        runtime = os.fork()
        if runtime == 0:
            ctl.close()
            for s in listeners:
                s.close()
            _runtime(req, out_fd, template_fd)
        os.close(out_fd)
        if template_fd is not None:
            os.close(template_fd)
        _report_started(ctl, host_pid, trace, listeners, runtime)
        try:
            os.setgroups([])
            os.setresgid(req["gid"], req["gid"], req["gid"])
            os.setresuid(req["uid"], req["uid"], req["uid"])
            _prctl(PR_SET_DUMPABLE, 0)  # the runtime runs as the same uid: it must not ptrace init
            _prctl(PR_SET_NO_NEW_PRIVS, 1)
        except (OSError, SetupError):
            os.kill(runtime, signal.SIGKILL)
        _supervise(ctl, runtime)
    except BaseException:
        traceback.print_exc()
    os._exit(1)


def _report_started(ctl: socket.socket, pid: int, trace: list[list[Any]], listeners: list[socket.socket],
                    runtime: int) -> None:
    """Init, once the runtime is forked: hand the listeners to the server, then forward signals."""
    try:
        trace.append(["runtime forked", time.monotonic()])
        send_msg(ctl, {"pid": pid, "trace": trace}, tuple(s.fileno() for s in listeners))
    except OSError:
        os._exit(1)
    for s in listeners:
        s.close()
    _forward_signals(runtime)


def _forward_signals(runtime: int) -> None:
    def forward(signum: int, _frame: object) -> None:
        if signum == signal.SIGTERM:
            _terminated.append(signum)
        try:
            os.kill(runtime, signum)
        except OSError:
            pass

    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, forward)


def _supervise(ctl: socket.socket, runtime: int, extensions: int = 0) -> NoReturn:
    """Init's life after setup: reap every orphan, report the runtime's exit status, then exit.
    `extensions` (a SnapStart clone's extensions launcher): after a SIGTERM (SHUTDOWN) the runtime's
    exit is reported once it is gone too, so that the extensions keep their SHUTDOWN time, as the
    launcher gives them when it starts the runtime itself."""
    status = 0
    runtime_done = False
    while True:
        try:
            pid, raw = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == runtime:
            status = _exit_code(raw)
            runtime_done = True
            if not (extensions and _terminated):
                break
        elif pid == extensions:
            extensions = 0
            if runtime_done:
                break
    try:
        send_msg(ctl, {"exit": status})
    except OSError:
        pass
    os._exit(0)


def _oom_score_adj(value: str) -> None:
    # Best effort: lowering the score needs CAP_SYS_RESOURCE, which containers often drop.
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(value)
    except OSError:
        pass


def _close_fds_from(low: int) -> None:
    if _libc.syscall(SYS_CLOSE_RANGE, low, 0xFFFFFFFF, 0) == 0:
        return
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= low:
            try:
                os.close(fd)
            except OSError:
                pass


def _runtime(req: dict[str, Any], out_fd: int, template_fd: int | None) -> NoReturn:
    """R: becomes the runtime; never returns."""
    try:
        os.setsid()
        _oom_score_adj("0")
        for sig in (*FORWARDED_SIGNALS, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        nofile = int(req["nofile"])
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        null = os.open("/dev/null", os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        if template_fd is not None:  # a SnapStart template keeps its socket to the server as fd 3
            if template_fd != TEMPLATE_FD:
                os.dup2(template_fd, TEMPLATE_FD)
            _close_fds_from(TEMPLATE_FD + 1)
        else:
            _close_fds_from(3)
        os.setgroups([])
        os.setresgid(req["gid"], req["gid"], req["gid"])
        os.setresuid(req["uid"], req["uid"], req["uid"])
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        os.chdir(req["workdir"])
    except BaseException as exc:
        os.write(2, (f"hearth sandbox: runtime setup failed: {exc}\n").encode())
        os._exit(126)
    env: dict[str, str] = req["env"]
    argv: list[str] = req["argv"]
    if req.get("python_fork") and _bootstrap is not None:
        if template_fd is not None:
            _bootstrap._snapshot = lambda: _template(req)
        _run_bootstrap(env, argv)
    if template_fd is not None and req.get("snapshot_module"):
        # An exec'd template (AWS_LAMBDA_EXEC_WRAPPER): the bootstrap the wrapper ends in loads this
        # module and waits on the socket itself (see the SnapStart section). It learns how from
        # _HEARTH_SNAPSHOT, which it removes before the function's code runs.
        os.set_inheritable(TEMPLATE_FD, True)
        env = {**env, SNAPSHOT_VARIABLE: json.dumps({
            "module": req["snapshot_module"], "uid": req["uid"], "gid": req["gid"], "env": env})}
    _exec(argv, env)


def _exec(argv: list[str], env: dict[str, str]) -> NoReturn:
    # An exec'd program starts with the signal dispositions Python changed back to the defaults.
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    path = argv[0]
    try:
        if "/" not in path:
            for d in env.get("PATH", "/usr/bin:/bin").split(":"):
                if d and os.access(os.path.join(d, path), os.X_OK):
                    path = os.path.join(d, path)
                    break
        os.execve(path, argv, env)
    except OSError as exc:
        os.write(2, (f"hearth sandbox: cannot execute {argv[0]}: {exc.strerror}\n").encode())
        os._exit(127 if exc.errno == errno.ENOENT else 126)


def _std_streams(unbuffered: bool) -> None:
    def stream(fd: int, mode: str, errors: str) -> io.TextIOWrapper:
        if mode == "r":
            return io.TextIOWrapper(open(fd, "rb", closefd=False), encoding="utf-8", errors=errors)
        raw = open(fd, "wb", buffering=0 if unbuffered else -1, closefd=False)  # noqa: SIM115
        return io.TextIOWrapper(raw, encoding="utf-8", errors=errors, write_through=unbuffered)

    sys.stdin = stream(0, "r", "strict")
    sys.stdout = stream(1, "w", "strict")
    sys.stderr = stream(2, "w", "backslashreplace")
    # The interpreter's originals point at the zygote's descriptors; the runtime's are these.
    setattr(sys, "__stdin__", sys.stdin)  # noqa: B010 (the names are Final in typeshed)
    setattr(sys, "__stdout__", sys.stdout)  # noqa: B010
    setattr(sys, "__stderr__", sys.stderr)  # noqa: B010


def _run_bootstrap(env: dict[str, str], argv: list[str]) -> NoReturn:
    """The runtime as if started by `python -I bootstrap.py`, minus the interpreter start."""
    os.environ.clear()
    os.environ.update(env)
    sys.argv = argv[-1:]
    sys.path[:] = _base_sys_path
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    _std_streams(bool(env.get("PYTHONUNBUFFERED")))
    code = 0
    try:
        result = _bootstrap.main()
        code = result if isinstance(result, int) else 0
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            sys.stderr.write(f"{exc.code}\n")
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(code & 0xFF)


# -- SnapStart: templates and their clones ----------------------------------------------------------
#
# A template is an ordinary sandbox whose runtime ran INIT (and the before-snapshot hooks) and then,
# instead of asking for an invocation, calls `_template`: it waits on TEMPLATE_FD for clone requests.
# Each request clones the template (a fork); the clone becomes a new environment with the INIT'd heap
# shared copy-on-write. The template runs as the sandbox user with no capabilities, so a clone isolates
# itself with a user namespace of its own (uid and gid mapped to themselves, nothing else):
#
#   template ─clone(2) into new user and pid namespaces→ I' (pid 1 of the clone: joins its cgroups
#            through the fds the server opened, maps its uid and gid, makes new mount, UTS, IPC,
#            network and cgroup namespaces; lo, listeners, a fresh /tmp and /proc; then reaps,
#            forwards signals, reports)
#              ─fork→ R' (drops every capability; returns into the runtime)
#
# Messages on the template socket: template → server {"ready": true} once; server → template a clone
# request {"hostname", "env", "tmp_mb", "shm_mb", "listen"} with fds
# [ctl, output, cgroup.procs...]. On `ctl` the clone answers as a sandbox does ({"pid": 0} + listeners,
# {"error"}, {"exit"}); the server finds the clone's host pids in its cgroup.
# Everything inherited from the template stays mapped read-only or copy-on-write; what is private to
# a clone: its pids, network (the Runtime API and AWS proxy listeners), hostname, /tmp and /dev/shm
# (/tmp starts as a copy of the template's), cgroup, stdout, log stream and environment variables.
# Sockets the template's INIT opened are replaced by /dev/null in each clone (a connection cannot be
# shared by several environments; clients reconnect, as after an AWS restore).
#
# A runtime exec'd through AWS_LAMBDA_EXEC_WRAPPER is no fork of ours: there the template socket stays
# open (fd 3) across the exec, the bootstrap the wrapper ends in imports this file (mounted read-only
# inside the sandbox) and calls `_template` itself, with what _HEARTH_SNAPSHOT tells it. Everything
# above then holds as for a forked template.

def _write_file(path: str, content: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, content.encode())
    finally:
        os.close(fd)


def _drop_capabilities() -> None:
    """No capability left in any set, and none that an exec could bring back."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            if ctypes.get_errno() == errno.EINVAL:  # past the kernel's last capability
                break
            raise SetupError(f"drop capability {cap}: {os.strerror(ctypes.get_errno())}")
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = ctypes.create_string_buffer(struct.pack("Ii", LINUX_CAPABILITY_VERSION_3, 0))
    data = ctypes.create_string_buffer(24)  # two sets of effective, permitted, inheritable: all zero
    _check(_libc.syscall(SYS_CAPSET, header, data), "capset")


def _copy_tree(src_fd: int, dst: str) -> None:
    """Copy what the template left in /tmp into a clone's own /tmp (best effort: what cannot be read
    is skipped, a template's /tmp is written by the function's own INIT)."""
    for entry in os.scandir(src_fd):
        path = os.path.join(dst, entry.name)
        try:
            if entry.is_symlink():
                os.symlink(os.readlink(entry.name, dir_fd=src_fd), path)
            elif entry.is_dir():
                os.mkdir(path, entry.stat().st_mode & 0o7777)
                sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=src_fd)
                try:
                    _copy_tree(sub, path)
                finally:
                    os.close(sub)
            elif entry.is_file():
                src = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=src_fd)
                try:
                    dst_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, entry.stat().st_mode & 0o7777)
                    try:
                        while True:
                            chunk = os.read(src, 1 << 20)
                            if not chunk:
                                break
                            os.write(dst_fd, chunk)
                    finally:
                        os.close(dst_fd)
                finally:
                    os.close(src)
        except OSError:
            continue


def _private_tmp(tmp_mb: int, shm_mb: int) -> None:
    old = os.open("/tmp", os.O_RDONLY | os.O_DIRECTORY)
    try:
        _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(tmp_mb)}m,mode=1777")
        _copy_tree(old, "/tmp")
    finally:
        os.close(old)
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(shm_mb)}m,mode=1777")


def _detach_sockets() -> None:
    null = os.open("/dev/null", os.O_RDWR)
    try:
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd <= 2 or fd == null:
                continue
            try:
                if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                    os.dup2(null, fd, inheritable=False)
            except OSError:
                continue
    finally:
        os.close(null)


def _template(base: dict[str, Any]) -> dict[str, str]:
    """The template's wait for clone requests. Returns only in a clone, with the clone's environment
    variables; the template itself exits when the server closes the socket."""
    sock = socket.socket(fileno=TEMPLATE_FD)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    user_sigchld = signal.signal(signal.SIGCHLD, _reap)
    # Clones share the INIT'd heap: keep the collector from writing to (and so copying) all of it.
    gc.collect()
    gc.freeze()
    try:
        send_msg(sock, {"ready": True})
    except OSError:
        os._exit(1)
    while True:
        try:
            req, fds = recv_msg(sock)
        except OSError:
            os._exit(0)
        if req is None:
            os._exit(0)
        if len(fds) < 2:
            for fd in fds:
                os.close(fd)
            continue
        try:
            # User and pid namespaces here (the child must be pid 1 of its own, with the privilege to
            # make the rest); the costly ones are made by the child, so bursts do not queue on us.
            pid = _fork_into_namespaces(CLONE_NEWUSER | CLONE_NEWPID)
        except OSError as exc:
            pid = -1
            try:
                send_msg(socket.socket(fileno=os.dup(fds[0])), {"error": f"clone: {exc}"})
            except OSError:
                pass
        if pid == 0:
            sock.close()
            # No handler of the function's may run in the clone's setup or init processes: defaults
            # until the runtime process, which gets the function's handlers back.
            handlers = {signal.SIGCHLD: user_sigchld}
            for sig in FORWARDED_SIGNALS:
                handlers[sig] = signal.getsignal(sig)
            for sig in handlers:
                signal.signal(sig, signal.SIG_DFL)
            return _clone(base, req, fds, {s: h for s, h in handlers.items() if h is not None})
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
        _reap()


def _fork_into_namespaces(flags: int) -> int:
    """fork(), with the child in new namespaces at once: one clone(2) instead of a fork and a setup
    process that unshares and forks again (a fork of a large template costs a millisecond or two).
    The interpreter's own fork bookkeeping runs around the raw call, as os.fork() does it."""
    _pyapi.PyOS_BeforeFork()
    pid = _pylibc.syscall(SYS_CLONE, flags | signal.SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        _pyapi.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    _pyapi.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, os.strerror(err))
    return int(pid)


def _clone(base: dict[str, Any], req: dict[str, Any], fds: list[int], handlers: dict[int, Any]
           ) -> dict[str, str]:
    """I': pid 1 of the clone, born in its own user, mount, UTS, IPC, network and pid namespaces;
    returns only in R', the clone's runtime."""
    ctl = socket.socket(fileno=fds[0])
    out_fd = fds[1]
    trace = [["clone", time.monotonic()]]
    step = "cgroup"
    try:
        for fd in fds[2:]:
            os.write(fd, b"0")  # "0": the writer itself; the fds were opened by the server (root)
            os.close(fd)
        step = "user namespace"
        _prctl(PR_SET_DUMPABLE, 1)  # our own /proc/self/*_map files must be ours to write
        _write_file("/proc/self/setgroups", "deny")
        _write_file("/proc/self/uid_map", f"{int(base['uid'])} {int(base['uid'])} 1\n")
        _write_file("/proc/self/gid_map", f"{int(base['gid'])} {int(base['gid'])} 1\n")
        _prctl(PR_SET_DUMPABLE, 0)
        step = "namespaces"
        _own_namespaces(req["hostname"])
        trace.append(["namespaces", time.monotonic()])
        step = "listen"
        listeners = [_listen(host, port) for host, port in req["listen"]]
        step = "tmp"
        _private_tmp(int(req["tmp_mb"]), int(req["shm_mb"]))
        step = "proc"
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        trace.append(["mounts", time.monotonic()])
    except (OSError, SetupError) as exc:
        try:
            send_msg(ctl, {"error": f"{step}: {exc}"})
        finally:
            os._exit(1)
    return _clone_init(req, ctl, out_fd, listeners, trace, handlers)


def _clone_init(req: dict[str, Any], ctl: socket.socket, out_fd: int, listeners: list[socket.socket],
                trace: list[list[Any]], handlers: dict[int, Any]) -> dict[str, str]:
    """I' after setup: forks the runtime, reports, then reaps and forwards signals; returns only in R'."""
    # The extensions first (functions with extensions only): they are what the snapshot would have
    # held running beside the runtime.
    extensions = _start_extensions(req, out_fd, ctl, listeners) if req.get("extensions") else 0
    runtime = os.fork()
    if runtime == 0:
        ctl.close()
        for s in listeners:
            s.close()
        return _clone_runtime(req, out_fd, handlers)
    os.close(out_fd)
    _report_started(ctl, 0, trace, listeners, runtime)
    try:
        _drop_capabilities()
    except (OSError, SetupError):
        os.kill(runtime, signal.SIGKILL)
    _supervise(ctl, runtime, extensions)


def _start_extensions(req: dict[str, Any], out_fd: int, ctl: socket.socket, listeners: list[socket.socket]
                      ) -> int:
    """I': start the clone's extensions launcher in restore mode (``req["extensions"]``, its argv) with
    the clone's environment and output, as an unprivileged process; its pid (0: it could not fork; the
    Extensions API then never hears from it and the restore times out as INIT would)."""
    try:
        pid = os.fork()
    except OSError as exc:
        os.write(2, (f"hearth sandbox: extensions launcher: {exc}\n").encode())
        return 0
    if pid != 0:
        return pid
    try:
        ctl.close()
        for s in listeners:
            s.close()
        os.setsid()
        for sig in (*FORWARDED_SIGNALS, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        null = os.open("/dev/null", os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        _close_fds_from(3)
        _drop_capabilities()
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        os.chdir("/var/task")
    except BaseException as exc:
        os.write(2, (f"hearth sandbox: extensions launcher setup failed: {exc}\n").encode())
        os._exit(126)
    _exec(list(req["extensions"]), dict(req["env"]))


def _clone_runtime(req: dict[str, Any], out_fd: int, handlers: dict[int, Any]) -> dict[str, str]:
    """R': the clone's runtime, back in the function's own code once this returns."""
    try:
        os.setsid()
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        _detach_sockets()
        _drop_capabilities()
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
    except BaseException as exc:
        os.write(2, (f"hearth sandbox: clone setup failed: {exc}\n").encode())
        os._exit(126)
    for sig, handler in handlers.items():  # the function's own handlers, as INIT left them
        try:
            signal.signal(sig, handler)
        except (OSError, TypeError, ValueError):
            pass
    env: dict[str, str] = req["env"]
    return env


# -- the zygote loop --------------------------------------------------------------------------------

def _reap(_signum: int = 0, _frame: object = None) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _preload(path: str) -> str | None:
    global _bootstrap
    try:
        spec = importlib.util.spec_from_file_location("_hearth_runtime_bootstrap", path)
        if spec is None or spec.loader is None:
            return f"cannot load {path}"
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "main", None)):
            return f"{path} has no main()"
        _bootstrap = module
    except BaseException as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def serve(sock: socket.socket) -> None:
    signal.signal(signal.SIGCHLD, _reap)
    while True:
        try:
            req, fds = recv_msg(sock)
        except ConnectionError:
            return
        if req is None:
            return
        # A prepared network namespace (see hearth.sandbox.network) comes last, when "netns" says so.
        netns_fd = fds.pop() if req.get("netns") and fds else None
        if len(fds) not in (2, 3):
            for fd in fds + ([netns_fd] if netns_fd is not None else []):
                os.close(fd)
            continue
        ctl = socket.socket(fileno=fds[0])
        template_fd = fds[2] if len(fds) == 3 else None
        try:
            # Only the pid namespace here (the child must be its pid 1): the costly ones (network, mount)
            # are made by the child, so that a burst of sandboxes does not queue on this loop.
            pid = _fork_into_namespaces(CLONE_NEWPID)
        except OSError as exc:
            send_msg(ctl, {"error": f"clone: {exc}"})
            pid = -1
        if pid == 0:
            _sandbox(sock, req, ctl, fds[1], template_fd, netns_fd)
        ctl.close()
        for fd in fds[1:] + ([netns_fd] if netns_fd is not None else []):
            os.close(fd)
        _reap()


def main() -> None:
    fd, server_pid = int(sys.argv[1]), int(sys.argv[2])
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server_pid:  # the server died before we could ask to die with it
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    preload_error = _preload(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
    # The path a runtime would see: ours, minus nothing (we are started with -I like the runtime).
    _base_sys_path[:] = list(sys.path)
    # Scale-out: every sandbox is three forks of this interpreter. Objects that exist now are moved
    # out of the collector's reach, so that a collection in a child does not write to (and so copy)
    # every page of the pre-imported heap it shares with us.
    gc.collect()
    gc.freeze()
    send_msg(sock, {"ready": True, "preload_error": preload_error, "pid": os.getpid()})
    serve(sock)


if __name__ == "__main__":
    main()
