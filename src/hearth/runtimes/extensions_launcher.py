"""The start of an execution environment whose layers bring external extensions (/opt/extensions/*).

Run inside the sandbox as ``python -I -S extensions_launcher.py [--dir D]... -- <runtime argv...>`` in
place of the runtime (`--dir`: where the extensions are when the sandbox has no /opt of its own), or as
``python -I -S extensions_launcher.py --restore`` beside the runtime of a SnapStart clone (started by
the clone's init; the runtime already runs: it starts and supervises the extensions only and ends when
the last of them has), only for functions that have extensions (the no-extension path never runs it).
It owns the order AWS documents for the INIT phase: every executable in /opt/extensions starts first
(sorted by name, at most MAX_EXTENSIONS), the runtime starts once every one of them has registered with
the Extensions API, then it supervises: it reaps every child, tells Hearth when an extension exits
(`Extension.Crash` during INIT) and exits with the runtime's own status, so the sandbox's backend sees
the runtime's exit exactly as without extensions. SIGTERM is passed on to the runtime; during SHUTDOWN
the extensions keep running after the runtime exits, until they are done or Hearth kills the sandbox.

Hearth's private routes it uses (answered by `hearth.runtime_api.ext_routes`)::

    POST /2020-01-01/hearth/launching  {"extensions": [names]}  before they start (they are external)
    POST /2020-01-01/hearth/launched   {"extensions": [names]}  answered 200 when all registered
    POST /2020-01-01/hearth/exited     {"name": name, "status": int}

Extension output is relayed line by line to stdout with a marker (`MARK name NUL line`) so that Hearth
can tell extension log lines from function log lines (the Telemetry API's `extension` type) and strips
the marker before the line reaches CloudWatch Logs.

It is stdlib-only, runs on Python 3.9+, never imports hearth and never runs as root.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sys
import threading

EXTENSIONS_DIR = "/opt/extensions"
MAX_EXTENSIONS = 10
MARK = b"\x1ehearth-ext:"


def _api() -> tuple[str, int]:
    host, _, port = os.environ.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001").rpartition(":")
    return host, int(port)


def _post(path: str, body: dict, timeout: float | None) -> int:  # type: ignore[type-arg]
    host, port = _api()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def _relay(name: bytes, fd: int) -> None:
    """Copy an extension's output to ours, one marked line at a time (a whole line per write)."""
    partial = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            if partial:
                os.write(1, MARK + name + b"\x00" + partial + b"\n")
            os.close(fd)
            return
        *lines, partial = (partial + data).split(b"\n")
        if lines:
            os.write(1, b"".join(MARK + name + b"\x00" + line + b"\n" for line in lines))
        if len(partial) > 65536:
            os.write(1, MARK + name + b"\x00" + partial + b"\n")
            partial = b""


def _spawn(argv: list[str], out_fd: int) -> int:
    actions = [(os.POSIX_SPAWN_DUP2, out_fd, 1), (os.POSIX_SPAWN_DUP2, out_fd, 2)] if out_fd != 1 else []
    return os.posix_spawn(argv[0], argv, dict(os.environ), file_actions=actions)


def _extensions(dirs: list[str]) -> dict[str, str]:
    """name -> path of every executable extension (a later directory's wins, as a later layer's)."""
    found: dict[str, str] = {}
    for directory in dirs:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                found[name] = path
    return found


def main() -> None:
    args = sys.argv[1:]
    dirs: list[str] = []
    restore = args[:1] == ["--restore"]
    if restore:
        args = args[1:]
    while args and args[0] == "--dir":
        dirs.append(args[1])
        args = args[2:]
    runtime_argv = args[1:] if args[:1] == ["--"] else args
    found = _extensions(dirs or [EXTENSIONS_DIR])
    names = sorted(found)[:MAX_EXTENSIONS]
    pids: dict[int, str] = {}
    relays: list[threading.Thread] = []
    try:
        _post("/2020-01-01/hearth/launching", {"extensions": names}, 5)
    except OSError:
        pass  # Hearth is gone: the sandbox ends soon
    for name in names:
        r, w = os.pipe()
        try:
            pid = _spawn([found[name]], w)
        except OSError as exc:
            os.close(r)
            os.close(w)
            sys.stderr.write(f"[hearth] extension {name} could not start: {exc}\n")
            _post("/2020-01-01/hearth/exited", {"name": name, "status": 127}, 5)
            continue
        os.close(w)
        pids[pid] = name
        relay = threading.Thread(target=_relay, args=(name.encode(), r), daemon=True)
        relay.start()
        relays.append(relay)
    lock = threading.Lock()
    runtime: list[int] = []
    terminating: list[int] = []
    runtime_code: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        terminating.append(signum)
        if runtime:
            try:
                os.kill(runtime[0], signum)
            except OSError:
                pass

    signal.signal(signal.SIGTERM, forward)

    def start_runtime() -> None:
        try:
            status = _post("/2020-01-01/hearth/launched", {"extensions": list(pids.values())}, None)
        except OSError:
            status = 0
        if status != 200 or restore:
            return  # INIT failed (an extension crashed): Hearth ends the sandbox; or no runtime to start
        with lock:
            runtime.append(os.posix_spawn(runtime_argv[0], runtime_argv, dict(os.environ)))

    threading.Thread(target=start_runtime, daemon=True).start()
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            if runtime_code:
                _exit_like(runtime_code[0])
            if restore:
                _exit_after(relays)  # every extension is gone; the runtime is not ours
            # No child left (every extension gone before the runtime started): wait for the runtime.
            threading.Event().wait(0.05)
            continue
        except InterruptedError:
            continue
        code = os.waitstatus_to_exitcode(status)
        with lock:
            if runtime and pid == runtime[0]:
                if not terminating or not pids:
                    _exit_like(code)
                # SHUTDOWN: the extensions keep their time after the runtime is gone (Hearth kills
                # the sandbox at the deadline); the sandbox ends with the last of them.
                runtime_code.append(code)
                continue
        name = pids.pop(pid, None)
        if name is not None:
            try:
                _post("/2020-01-01/hearth/exited", {"name": name, "status": code}, 5)
            except OSError:
                pass
        if runtime_code and not pids:
            _exit_like(runtime_code[0])
        if restore and not pids:
            _exit_after(relays)


def _exit_after(relays: list[threading.Thread]) -> None:
    """Restore mode, once every extension is gone: their last lines relayed, then exit 0."""
    for relay in relays:
        relay.join(1.0)
    os._exit(0)


def _exit_like(code: int) -> None:
    """Exit as the runtime did: the same status, or the same signal."""
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code & 0xFF)


if __name__ == "__main__":
    main()
