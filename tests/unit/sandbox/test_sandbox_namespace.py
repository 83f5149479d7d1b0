"""The namespace backend isolates for real: uid, filesystem, network, pids, memory, freezer, cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from pathlib import Path

import pytest
from tests.unit.sandbox.sandbox_support import PY_EXE, PY_PREFIX, make_spec, py, read_all, run, sh

from hearth.sandbox.namespace import NamespaceBackend
from hearth.sandbox.types import PythonForkSpec


async def test_exit_status_and_one_output_pipe(ns_backend: NamespaceBackend, code_dir: Path) -> None:
    status, out, _ = await run(ns_backend, sh(code_dir, "echo to-stdout; echo to-stderr >&2; exit 5"))
    assert status == 5
    assert "to-stdout" in out and "to-stderr" in out


async def test_signal_death_is_negative(ns_backend: NamespaceBackend, code_dir: Path) -> None:
    status, _, _ = await run(ns_backend, sh(code_dir, "kill -SEGV $$"))
    assert status == -signal.SIGSEGV


async def test_identity_hostname_environment(ns_backend: NamespaceBackend, code_dir: Path) -> None:
    script = "id -u; id -g; hostname; echo $MARK; echo $AWS_LAMBDA_RUNTIME_API; pwd; ls /proc | grep -c '^[0-9]'"
    status, out, _ = await run(ns_backend, sh(code_dir, script))
    assert status == 0, out
    uid, gid, hostname, mark, api, cwd, nprocs = out.split()
    assert uid == "993" and gid == "990"
    assert hostname != socket.gethostname()
    assert mark == "m-1"
    assert api == "127.0.0.1:9001"
    assert cwd == "/var/task"
    assert int(nprocs) <= 4  # init, the shell, grep, ls: the host's processes are not visible


async def test_filesystem_view(ns_backend: NamespaceBackend, code_dir: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    script = f"""
cat /var/task/hello.txt
test -e /root/.bashrc && echo SEES-ROOT-HOME
ls /root 2>/dev/null | grep -v .pyenv && echo SEES-ROOT
test -e {data_dir} && echo SEES-DATA-DIR
test -e /etc/shadow && echo SEES-SHADOW
touch /var/task/new 2>/dev/null && echo TASK-WRITABLE
touch /usr/new 2>/dev/null && echo USR-WRITABLE
touch /new 2>/dev/null && echo ROOT-WRITABLE
echo hi > /tmp/x && cat /tmp/x
stat -c %a /tmp
grep -c . /etc/passwd
"""
    status, out, _ = await run(ns_backend, sh(code_dir, script))
    assert status == 0, out
    assert "hello from the code dir" in out
    assert "SEES" not in out
    assert "WRITABLE" not in out
    lines = out.split()
    assert "hi" in lines and "1777" in lines
    assert lines[-1] == "2"  # root and the sandbox user only


async def test_tmp_is_size_limited(ns_backend: NamespaceBackend, code_dir: Path) -> None:
    script = "dd if=/dev/zero of=/tmp/big bs=1M count=20 2>&1; du -m /tmp/big"
    _, out, _ = await run(ns_backend, sh(code_dir, script, tmp_mb=4, memory_mb=256))
    assert "No space left" in out
    assert int(out.split()[-2]) <= 4


async def test_memory_limit_kills_and_reports_oom(ns_backend: NamespaceBackend, code_dir: Path) -> None:
    script = "blocks = []\nwhile True:\n    blocks.append(bytearray(8 << 20))\n"
    status, _, sandbox = await run(ns_backend, py(code_dir, script, memory_mb=64))
    assert status == -signal.SIGKILL
    stats = sandbox.stats()
    assert stats.oom_killed
    assert stats.memory_peak_bytes >= 32 << 20


async def test_memory_peak_of_a_quiet_run(ns_backend: NamespaceBackend, code_dir: Path) -> None:
    status, _, sandbox = await run(ns_backend, py(code_dir, "x = bytearray(20 << 20)", memory_mb=128))
    assert status == 0
    stats = sandbox.stats()
    assert not stats.oom_killed
    assert stats.memory_peak_bytes >= 20 << 20


async def test_fork_bomb_is_contained_and_killed(ns_backend: NamespaceBackend, code_dir: Path) -> None:
    script = """
import os, time
for _ in range(10000):
    try:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
    except OSError:
        print("fork refused", flush=True)
        break
time.sleep(60)
"""
    sandbox = await ns_backend.start(py(code_dir, script, pids_limit=16))
    group = sandbox._cgroup
    fd = sandbox.output_fd
    try:
        out = b""
        os.set_blocking(fd, False)
        for _ in range(1000):
            with contextlib.suppress(BlockingIOError):
                out += os.read(fd, 4096)
            if b"fork refused" in out:
                break
            await asyncio.sleep(0.01)
        assert b"fork refused" in out
        assert 0 < len(group.pids()) <= 16
    finally:
        sandbox.kill()
    assert await asyncio.wait_for(sandbox.wait(), 10) == -signal.SIGKILL
    os.close(fd)
    for _ in range(500):
        if not any(d.exists() for d in group.dirs.values()):
            break
        await asyncio.sleep(0.01)
    assert not any(d.exists() for d in group.dirs.values())


async def test_freeze_stops_progress(ns_backend: NamespaceBackend, code_dir: Path) -> None:
    script = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.01; done"
    sandbox = await ns_backend.start(sh(code_dir, script))
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
        sandbox.freeze()  # does not wait for the kernel to finish freezing
        await asyncio.sleep(0.1)
        drain()
        await asyncio.sleep(0.3)
        assert drain() == b""  # nothing ran while frozen
        sandbox.thaw()
        await asyncio.sleep(0.2)
        assert drain() != b""
    finally:
        sandbox.kill()
        os.close(fd)
    assert await sandbox.wait() == -signal.SIGKILL


async def test_sigterm_reaches_the_runtime(ns_backend: NamespaceBackend, code_dir: Path) -> None:
    sandbox = await ns_backend.start(sh(code_dir, "trap 'echo got-term; exit 9' TERM; while true; do sleep 0.01; done"))
    try:
        await asyncio.sleep(0.2)
        os.kill(sandbox.pid, signal.SIGTERM)  # what Environment.shutdown does
        assert await asyncio.wait_for(sandbox.wait(), 10) == 9
        assert b"got-term" in await read_all(sandbox.output_fd)
    finally:
        sandbox.kill()
        os.close(sandbox.output_fd)


async def test_listeners_live_in_the_sandbox_network(ns_backend: NamespaceBackend, code_dir: Path) -> None:
    host_listener = socket.socket()
    host_listener.bind(("127.0.0.1", 0))
    host_listener.listen()
    host_port = host_listener.getsockname()[1]
    script = f"""
import socket
for port, text in ((9001, b"to-runtime-api"), (4566, b"to-aws-api"), (443, b"to-aws-https")):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(text)
        print(port, s.recv(100).decode(), flush=True)
try:
    socket.create_connection(("127.0.0.1", {host_port}), timeout=1)
    print("REACHED-HOST", flush=True)
except OSError as exc:
    print("host unreachable", type(exc).__name__, flush=True)
"""
    sandbox = await ns_backend.start(py(code_dir, script))
    loop = asyncio.get_running_loop()
    try:
        assert sandbox.aws_api_sock is not None and sandbox.aws_https_sock is not None
        for listener, expected in ((sandbox.runtime_api_sock, b"to-runtime-api"),
                                   (sandbox.aws_api_sock, b"to-aws-api"),
                                   (sandbox.aws_https_sock, b"to-aws-https")):
            listener.setblocking(False)
            conn, _ = await asyncio.wait_for(loop.sock_accept(listener), 10)
            with conn:
                assert await loop.sock_recv(conn, 100) == expected
                await loop.sock_sendall(conn, b"ok")
        out = (await read_all(sandbox.output_fd)).decode()
        assert await sandbox.wait() == 0, out
    finally:
        sandbox.kill()
        os.close(sandbox.output_fd)
        host_listener.close()
    assert "9001 ok" in out and "4566 ok" in out and "443 ok" in out
    assert "host unreachable" in out and "REACHED-HOST" not in out


async def test_python_fork_path_runs_bootstrap_main(ns_backend: NamespaceBackend, code_dir: Path,
                                                    tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    runtime.chmod(0o755)
    bootstrap = runtime / "bootstrap.py"
    bootstrap.write_text(
        "import json, os, sys\n"
        "def main():\n"
        "    print(json.dumps({'uid': os.getuid(), 'mark': os.environ.get('MARK'), 'cwd': os.getcwd(),\n"
        "        'api': os.environ.get('AWS_LAMBDA_RUNTIME_API'), 'fds': sorted(os.listdir('/proc/self/fd')),\n"
        "        'pid': os.getpid(), 'task': os.listdir('/var/task'), 'runtime': os.listdir('/var/runtime')}))\n"
        "    sys.exit(4)\n"
    )
    spec = make_spec(code_dir, [str(PY_EXE), "-I", "/var/runtime/bootstrap.py"], runtime_dir=runtime,
                     python_fork=PythonForkSpec(bootstrap_path=bootstrap, python_executable=PY_EXE))
    status, out, _ = await run(ns_backend, spec)
    assert status == 4, out
    probe = json.loads(out.strip().splitlines()[-1])
    assert probe["uid"] == 993
    assert probe["mark"] == "m-1"
    assert probe["api"] == "127.0.0.1:9001"
    assert probe["cwd"] == "/var/task"
    assert probe["fds"] == ["0", "1", "2", "3"]  # 3 is listdir's own descriptor
    assert probe["pid"] == 2  # pid 1 is the sandbox's init
    assert probe["task"] == ["hello.txt"]
    assert "bootstrap.py" in probe["runtime"]


async def test_layers_merge_at_opt(ns_backend: NamespaceBackend, code_dir: Path, tmp_path: Path) -> None:
    layers = []
    for i in range(2):
        layer = tmp_path / f"layer{i}"
        layer.mkdir()
        layer.chmod(0o755)
        (layer / "shared.txt").write_text(f"layer{i}\n")
        (layer / f"only{i}.txt").write_text("x\n")
        layers.append(layer)
    status, out, _ = await run(ns_backend, sh(code_dir, "cat /opt/shared.txt; ls /opt", opt_dirs=tuple(layers)))
    assert status == 0, out
    assert out.split() == ["layer1", "only0.txt", "only1.txt", "shared.txt"]  # later layers win


async def test_zygote_restarts_after_a_crash(ns_backend: NamespaceBackend, code_dir: Path) -> None:
    status, _, _ = await run(ns_backend, sh(code_dir, "exit 0"))
    assert status == 0
    for zygote in list(ns_backend._zygotes.values()):
        assert zygote.proc is not None
        os.kill(zygote.proc.pid, signal.SIGKILL)
        await asyncio.sleep(0.1)
    status, _, _ = await run(ns_backend, sh(code_dir, "exit 3"))
    assert status == 3


async def test_leftover_groups_are_killed_at_open(ns_backend: NamespaceBackend, code_dir: Path,
                                                  tmp_path: Path) -> None:
    sandbox = await ns_backend.start(sh(code_dir, "sleep 60"))
    group = sandbox._cgroup
    # A second server on the same data dir (as after a crash) kills and removes what it finds.
    again = await NamespaceBackend.open(tmp_path / "data", self_test=False)
    try:
        assert await asyncio.wait_for(sandbox.wait(), 10) == -signal.SIGKILL
        assert not any(d.exists() for d in group.dirs.values())
    finally:
        sandbox.kill()
        os.close(sandbox.output_fd)
        await again.close()


async def test_kill_is_idempotent_and_closes_sockets(ns_backend: NamespaceBackend, code_dir: Path) -> None:
    sandbox = await ns_backend.start(sh(code_dir, "sleep 60"))
    sandbox.kill()
    sandbox.kill()
    assert await asyncio.wait_for(sandbox.wait(), 10) == -signal.SIGKILL
    assert sandbox.runtime_api_sock.fileno() == -1
    os.close(sandbox.output_fd)


async def test_missing_mount_source_fails_cleanly(ns_backend: NamespaceBackend, code_dir: Path) -> None:
    spec = sh(code_dir, "exit 0", extra_ro_mounts=((PY_PREFIX / "does-not-exist", "/x"),))
    with pytest.raises(RuntimeError, match="does not exist"):
        await ns_backend.start(spec)
    assert ns_backend._tree.existing() == []
