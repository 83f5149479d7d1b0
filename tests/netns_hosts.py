"""Stand-in hosts for the networking tests: each a network namespace joined to the host by a veth pair
on private addresses (10.251.0.0/16, which nothing else on the test machine uses), running a small TCP
server that answers one HTTP-ish line per connection ("<host name>:<port> from <peer address>").

No test ever sends traffic beyond these hosts. Everything made here (namespaces, interfaces, server
processes, bridges) is removed by `close()`; names carry the test process's pid so that two runs
never collide.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field

SERVER = r'''
import socket, sys, threading
def serve(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    while True:
        c, peer = s.accept()
        try:
            c.settimeout(5)
            c.recv(4096)
            body = f"{sys.argv[1]}:{port} from {peer[0]}".encode()
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        except OSError:
            pass
        finally:
            c.close()
for p in sys.argv[2:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
'''


def unavailable_reason() -> str | None:
    """Why these tests cannot run here (None: they can)."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "network namespaces need Linux and root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"the `{tool}` command is missing (./run setup installs it)"
    probe = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"this kernel has no usable nf_tables: {probe.stderr.strip()}"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class OutsideHost:
    name: str  # the namespace's name
    address: str
    proc: subprocess.Popen[bytes]


@dataclass
class Hosts:
    """Outside hosts and bridges made for one test module."""

    tag: str = field(default_factory=lambda: f"{os.getpid() % 100000:x}")
    hosts: list[OutsideHost] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    def routed_host(self, label: str, index: int, ports: tuple[int, ...]) -> OutsideHost:
        """A host reached through the host's routing table (the test "internet"): a /30 of its own."""
        ns = f"hearth-t{self.tag}-{label}"
        link = f"ht{self.tag}r{index}"
        host_addr, peer_addr = f"10.251.{index}.1", f"10.251.{index}.2"
        self._namespace(ns)
        _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.links.append(link)
        _ip("addr", "add", f"{host_addr}/30", "dev", link)
        _ip("link", "set", link, "up")
        _ip("-n", ns, "addr", "add", f"{peer_addr}/30", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        return self._serve(ns, label, peer_addr, ports)

    def bridge(self, index: int, cidr_prefix: str) -> str:
        """A host bridge standing for a VPC subnet's network (no address of the host on it)."""
        br = f"ht{self.tag}b{index}"
        _ip("link", "add", br, "type", "bridge")
        self.links.append(br)
        _ip("link", "set", br, "up")
        return br

    def bridged_host(self, label: str, bridge: str, index: int, address: str, prefix: int,
                     ports: tuple[int, ...]) -> OutsideHost:
        """A host on `bridge` (the VPC subnet's "database")."""
        ns = f"hearth-t{self.tag}-{label}"
        link = f"ht{self.tag}d{index}"
        self._namespace(ns)
        _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.links.append(link)
        _ip("link", "set", link, "master", bridge, "up")
        _ip("-n", ns, "addr", "add", f"{address}/{prefix}", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        return self._serve(ns, label, address, ports)

    def _namespace(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def _serve(self, ns: str, label: str, address: str, ports: tuple[int, ...]) -> OutsideHost:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, label,
                                 *map(str, ports)], stdout=subprocess.PIPE, start_new_session=True)
        assert proc.stdout is not None
        host = OutsideHost(ns, address, proc)
        self.hosts.append(host)
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the test host {label} did not start")
        return host

    def close(self) -> None:
        for host in self.hosts:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(host.proc.pid, signal.SIGKILL)
            host.proc.wait()
            if host.proc.stdout is not None:
                host.proc.stdout.close()
        for link in reversed(self.links):
            subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
