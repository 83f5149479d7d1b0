"""Functions reach the outside world (issue 19): egress through Hearth's bridge, DNS, byte accounting.

The "internet" is a network namespace of this test (tests/netns_hosts.py) reached through the host's
routing table; nothing else is ever contacted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import HearthServer, create_function, invoke_json
from tests.netns_hosts import Hosts, OutsideHost, unavailable_reason

CALLER = r'''
import socket, time

def fetch(host, port):
    t0 = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return {"ok": True, "body": data.split(b"\r\n\r\n", 1)[-1].decode(), "s": time.monotonic() - t0}
    except OSError as exc:
        return {"ok": False, "error": type(exc).__name__, "s": time.monotonic() - t0}

def handler(event, context):
    if "resolve" in event:
        out = {}
        for name in event["resolve"]:
            try:
                out[name] = socket.gethostbyname(name)
            except OSError as exc:
                out[name] = type(exc).__name__
        return {"resolved": out, "resolv": open("/etc/resolv.conf").read()}
    return fetch(event["host"], event["port"])
'''


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    made = Hosts()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def internet(hosts: Hosts) -> OutsideHost:
    return hosts.routed_host("inet", 1, (80, 5432))


@pytest.fixture(scope="module")
def net_server(tmp_path_factory: pytest.TempPathFactory, hosts: Hosts) -> Iterator[HearthServer]:
    srv = HearthServer(tmp_path_factory.mktemp("hearth-net") / "data",
                       extra_env={"HEARTH_NETWORK": "egress", "HEARTH_ISOLATION": "namespace"})
    srv.start()
    try:
        health = srv.health()
        if not health.get("network"):
            pytest.skip(f"sandbox networking is off on this server: {srv.log()[-400:]}")
        yield srv
    finally:
        srv.stop()


def _caller(server: HearthServer, name: str, **kwargs: object) -> None:
    create_function(server.client("lambda"), name, {"app.py": CALLER}, Timeout=15, **kwargs)


def test_function_without_vpc_reaches_the_internet(net_server: HearthServer, internet: OutsideHost) -> None:
    _caller(net_server, "egress-caller")
    _, out = invoke_json(net_server.client("lambda"), "egress-caller", {"host": internet.address, "port": 80})
    assert out["ok"], out
    body = out["body"]
    assert body.startswith("inet:80 from ")
    # Address translation: the internet host sees the host's address on its link, not the sandbox's.
    assert body.endswith(" from 10.251.1.1")


def test_bytes_are_counted_per_function(net_server: HearthServer, internet: OutsideHost) -> None:
    _caller(net_server, "egress-counted")
    _, out = invoke_json(net_server.client("lambda"), "egress-counted", {"host": internet.address, "port": 80})
    assert out["ok"], out
    import urllib.request
    with urllib.request.urlopen(f"{net_server.endpoint}/_hearth/metrics", timeout=10) as resp:
        text = resp.read().decode()
    lines = [line for line in text.splitlines()
             if line.startswith("hearth_function_network_bytes{") and 'function="egress-counted"' in line]
    by_direction = {("sent" if 'direction="sent"' in line else "received"): float(line.rsplit(" ", 1)[1])
                    for line in lines}
    assert by_direction.get("sent", 0) > 0 and by_direction.get("received", 0) > 0, lines


def test_dns_configuration(net_server: HearthServer) -> None:
    _caller(net_server, "egress-dns")
    _, out = invoke_json(net_server.client("lambda"), "egress-dns",
                         {"resolve": ["sandbox.localdomain", "localhost"]})
    assert out["resolved"] == {"sandbox.localdomain": "127.0.0.1", "localhost": "127.0.0.1"}
    host_servers = [line.split()[1] for line in Path("/etc/resolv.conf").read_text().splitlines()
                    if line.startswith("nameserver") and not line.split()[1].startswith("127.")]
    for server in host_servers:
        assert f"nameserver {server}" in out["resolv"]
