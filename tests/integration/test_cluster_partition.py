"""Three Hearth nodes, each in its own network namespace with its own address on a private bridge, on one
PostgreSQL reachable over that bridge (issue 18). The node holding the schedules lease is cut off (its
link down): another node takes the lease over with a new fencing token and the schedule goes on firing,
and no scheduled moment is ever fired twice — not while the cut-off node still believes it holds the
lease, not when its link comes back. Invocations received by the cut-off node's peers keep working.

Runs in `./run test-postgresql` as root (namespaces and a bridge); the namespaces, the bridge and the
PostgreSQL are removed afterwards.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests import pgcluster
from tests.integration.harness import HearthServer

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not pgcluster.available(), reason="no PostgreSQL server binaries"),
              pytest.mark.skipif(not pgcluster.enabled(), reason="the PostgreSQL run's (./run test-postgresql)"),
              pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                 reason="network namespaces need root and iproute2")]

# Heartbeat, lease, dead-after (seconds); one schedule minute is two real seconds.
ENV = {"HEARTH_CLUSTER_TIMES": "0.3,1.5,2.5", "HEARTH_TEST_TIME_SCALE": "30", "HEARTH_NETWORK": "none"}


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _free_subnet() -> ipaddress.IPv4Network:
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    for third in range(200, 255):
        net = ipaddress.ip_network(f"10.254.{third}.0/24")
        if f"10.254.{third}." not in used:
            return net
    raise RuntimeError("no free 10.254.x.0/24 for the test bridge")


class Lan:
    """A bridge with the host's address on it and one namespace per node, each on a veth."""

    def __init__(self, nodes: int) -> None:
        tag = uuid.uuid4().hex[:5]
        self.bridge = f"hpt{tag}"
        self.net = _free_subnet()
        hosts = list(self.net.hosts())
        self.gateway = str(hosts[0])
        self.namespaces = [f"hpt{tag}n{i}" for i in range(nodes)]
        self.addresses = [str(hosts[10 + i]) for i in range(nodes)]
        self.host_ends = [f"hpt{tag}h{i}" for i in range(nodes)]
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/{self.net.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for ns, address, host_end in zip(self.namespaces, self.addresses, self.host_ends, strict=True):
            _ip("netns", "add", ns)
            _ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("link", "set", host_end, "master", self.bridge, "up")
            _ip("-n", ns, "addr", "add", f"{address}/{self.net.prefixlen}", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def cut(self, index: int, *, down: bool = True) -> None:
        _ip("link", "set", self.host_ends[index], "down" if down else "up")

    def remove(self) -> None:
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for host_end in self.host_ends:
            subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


def _until(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.2)
    return value


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lan, list[HearthServer]]]:
    lan = Lan(3)
    database: pgcluster.Cluster | None = None
    servers: list[HearthServer] = []
    try:
        database = pgcluster.Cluster(hosts=("127.0.0.1", lan.gateway))
        name = database.new_database("partition").rsplit("/", 1)[-1]
        url = database.url(name, host=lan.gateway)
        base = tmp_path_factory.mktemp("partition")
        for i, (ns, address) in enumerate(zip(lan.namespaces, lan.addresses, strict=True)):
            server = HearthServer(base / f"node{i}", extra_args=("--database", url),
                                  extra_env={"HEARTH_NODE_ID": f"node-{i}", **ENV}, make_role=(i == 0),
                                  host=address, wrap=("ip", "netns", "exec", ns))
            server.start()
            servers.append(server)
        yield lan, servers
    finally:
        for server in servers:
            server.stop(timeout=15)
        if database is not None:
            database.stop()
        lan.remove()


class Ticks:
    """The scheduled moments delivered to the queue (each message's event `time`), duplicates kept."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.moments: list[str] = []

    def read(self, server: HearthServer) -> int:
        sqs = server.client("sqs")
        while messages := sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                self.moments.append(json.loads(message["Body"])["time"])
                sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return len(self.moments)

    def wait_for_more(self, server: HearthServer, more: int, what: str) -> None:
        target = len(self.moments) + more
        _until(lambda: self.read(server) >= target, what)


def _schedules_lease(server: HearthServer) -> dict[str, Any]:
    leases: dict[str, dict[str, Any]] = {x["name"]: x for x in server.health()["cluster"]["leases"]}
    return leases["schedules"]


def _state(server: HearthServer, node: str) -> str:
    return str({n["id"]: n["state"] for n in server.health()["cluster"]["nodes"]}[node])


def test_a_cut_off_schedule_holder_is_replaced_without_a_double_firing(
        cluster: tuple[Lan, list[HearthServer]]) -> None:
    lan, servers = cluster
    first = servers[0]
    sqs, events = first.client("sqs"), first.client("events")
    url = sqs.create_queue(QueueName="partition-ticks")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="partition-tick", ScheduleExpression="rate(1 minute)")
    events.put_targets(Rule="partition-tick", Targets=[{"Id": "q", "Arn": arn}])
    ticks = Ticks(url)
    ticks.wait_for_more(first, 2, "the schedule fires")
    before = _schedules_lease(first)
    holder = int(before["holder"].rsplit("-", 1)[1])
    survivor = servers[(holder + 1) % 3]
    lan.cut(holder)
    try:
        # Another node takes the lease over with a larger fencing token, and the schedule goes on.
        after = _until(lambda: (lease := _schedules_lease(survivor))["holder"] not in (None, before["holder"])
                       and lease, "a takeover")
        assert after["token"] > before["token"]
        ticks.wait_for_more(survivor, 3, "firings after the takeover")
        assert _state(survivor, f"node-{holder}") == "dead"
    finally:
        lan.cut(holder, down=False)
    # Back on the network, the old holder finds its lease gone and fires nothing of its own.
    _until(lambda: _state(survivor, f"node-{holder}") == "alive", "the cut-off node is back", timeout=180)
    ticks.wait_for_more(survivor, 3, "firings after the heal")
    assert _schedules_lease(survivor)["holder"] == after["holder"]
    assert len(ticks.moments) == len(set(ticks.moments)), f"a moment fired twice: {sorted(ticks.moments)}"
