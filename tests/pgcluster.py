"""A throwaway PostgreSQL cluster for the tests: initdb into a temporary directory, `postgres` on a free
loopback port, one fresh database per data directory (per Hearth server or unit test), stopped and
removed when the test process ends.

`HEARTH_TEST_DATABASE=postgresql` runs the suite on it (tests/conftest.py, the integration harness);
tests/unit/store/test_postgres.py and tests/integration/test_postgres.py use it always, and skip when
the machine has no PostgreSQL server binaries (`./run setup` installs them where it may).

As root, the cluster runs as the unprivileged `nobody` (PostgreSQL refuses to run as root). Only for
tests: fsync is off (a test cluster never outlives its process).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg

SUPERUSER = "hearth"


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL server's binaries (Debian's layout), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    return Path(on_path).parent if on_path else None


def available() -> bool:
    return bin_dir() is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self, hosts: tuple[str, ...] = ("127.0.0.1",)) -> None:
        self.hosts = hosts  # where it listens: loopback, and for namespaced nodes a bridge's address
        binaries = bin_dir()
        if binaries is None:
            raise RuntimeError("no PostgreSQL server binaries (apt-get install postgresql)")
        self.root = Path(tempfile.mkdtemp(prefix="hearth-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._counter = 0
        self._lock = threading.Lock()
        user: str | None = None
        if os.geteuid() == 0:
            user = "nobody"
            entry = pwd.getpwnam(user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)
        subprocess.run([str(binaries / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                        "-E", "UTF8", "--no-sync", "--locale=C"],
                       check=True, capture_output=True, user=user, cwd=self.root)
        with (self.data / "pg_hba.conf").open("a") as hba:  # nodes on a test bridge: its /24, trusted
            for host in hosts:
                if host != "127.0.0.1":
                    hba.write(f"host all all {host}/24 trust\n")
        self._start(binaries, user)

    def _start(self, binaries: Path, user: str | None) -> None:
        log_path = self.root / "postgres.log"
        with log_path.open("ab") as log:
            if user is not None:
                entry = pwd.getpwnam(user)
                os.chown(log_path, entry.pw_uid, entry.pw_gid)
            self.proc = subprocess.Popen(
                [str(binaries / "postgres"), "-D", str(self.data), "-p", str(self.port), "-h", ",".join(self.hosts),
                 "-k", str(self.root), "-c", "fsync=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=400", "-c", "shared_buffers=32MB"],
                stdout=log, stderr=subprocess.STDOUT, user=user, cwd=self.root, start_new_session=True,
                preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the test PostgreSQL did not start:\n"
                                       + log_path.read_text(errors="replace")) from None
                time.sleep(0.1)

    def url(self, database: str, host: str = "127.0.0.1") -> str:
        return f"postgresql://{SUPERUSER}@{host}:{self.port}/{database}"

    def new_database(self, hint: str = "t") -> str:
        """A fresh, empty database; its URL."""
        with self._lock:
            self._counter += 1
            name = f"{''.join(c for c in hint.lower() if c.isalnum())[:20] or 't'}_{os.getpid()}_{self._counter}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def pause(self) -> None:
        """Stop the server (an outage), keeping its data: `resume` starts it again on the same port."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)

    def resume(self) -> None:
        binaries = bin_dir()
        assert binaries is not None
        self._start(binaries, "nobody" if os.geteuid() == 0 else None)


def _die_with_parent() -> None:
    """A killed test process (no atexit) leaves no PostgreSQL behind: SIGINT (fast shutdown) when it dies."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGINT)


_cluster: Cluster | None = None
_cluster_lock = threading.Lock()


def cluster() -> Cluster:
    """The test process's one cluster, started at first use and stopped when the process exits."""
    global _cluster
    with _cluster_lock:
        if _cluster is None:
            _cluster = Cluster()
            atexit.register(_cluster.stop)
        return _cluster


def enabled() -> bool:
    """Whether this test run puts Hearth on PostgreSQL (HEARTH_TEST_DATABASE=postgresql)."""
    return os.environ.get("HEARTH_TEST_DATABASE", "").lower() in ("postgresql", "postgres", "pg")


_databases: dict[Path, str] = {}


def database_for(data_dir: Path) -> str:
    """The database of a data directory on the test cluster: made at first use, the same one after (a
    server restarted on its data directory finds its state)."""
    key = data_dir.resolve()
    with _cluster_lock:
        url = _databases.get(key)
    if url is None:
        url = cluster().new_database(key.parent.name)
        with _cluster_lock:
            url = _databases.setdefault(key, url)
    return url
