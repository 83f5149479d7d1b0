"""Functions reach the outside world (issue 19): egress through Hearth's bridge, DNS, byte accounting.

The "internet" is a network namespace of this test (tests/netns_hosts.py) reached through the host's
routing table; nothing else is ever contacted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import ROLE, HearthServer, create_function, invoke_json, make_zip, wait_active
from tests.netns_hosts import Hosts, OutsideHost, unavailable_reason

CALLER = r'''
import os, socket, time

def fetch(host, port):
    t0 = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return {"ok": True, "body": data.split(b"\r\n\r\n", 1)[-1].decode(),
                "init": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}
    except OSError as exc:
        return {"ok": False, "error": type(exc).__name__, "init": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}

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
                       extra_env={"HEARTH_NETWORK": "egress", "HEARTH_NETWORK_CONN_LIMIT": "16"})
    srv.start()
    try:
        _skip_without_networking(srv)
        yield srv
    finally:
        srv.stop()


HOLDER = r'''
import socket

def handler(event, context):
    held, refused = [], []
    for _ in range(event["count"]):
        s = socket.socket()
        s.settimeout(5)
        try:
            s.connect((event["host"], event["port"]))
            held.append(s)
        except OSError as exc:
            refused.append(type(exc).__name__)
            s.close()
    for s in held:
        s.close()
    return {"held": len(held), "refused": refused}
'''


def _skip_without_networking(srv: HearthServer) -> None:
    health = srv.health()
    if health.get("isolation") != "namespace":
        pytest.skip(f"sandboxes have no namespaces here ({health.get('isolation_warning')})")
    if not health.get("network"):
        pytest.skip(f"sandbox networking could not be set up: {srv.log()[-400:]}")


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


def test_restored_environment_reaches_the_internet(net_server: HearthServer, internet: OutsideHost) -> None:
    lam = net_server.client("lambda")
    create_function(lam, "egress-restored", {"app.py": CALLER}, runtime="python3.12", Timeout=15,
                    SnapStart={"ApplyOn": "PublishedVersions"})
    lam.publish_version(FunctionName="egress-restored")
    deadline = time.monotonic() + 60
    while (cfg := lam.get_function_configuration(FunctionName="egress-restored", Qualifier="1"))["State"] == "Pending":
        assert time.monotonic() < deadline, "the snapshot was not taken"
        time.sleep(0.05)
    assert cfg["State"] == "Active", cfg.get("StateReason")
    _, out = invoke_json(lam, "egress-restored", {"host": internet.address, "port": 80}, Qualifier="1")
    assert out["init"] == "snap-start"  # the environment really was restored from the snapshot
    assert out["ok"], out
    assert out["body"] == "inet:80 from 10.251.1.1"


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
    lam = net_server.client("lambda")
    url = lam.create_function_url_config(FunctionName="egress-dns", AuthType="NONE")["FunctionUrl"]
    url_host = url.split("//", 1)[1].split(":", 1)[0].split("/", 1)[0]
    assert url_host.endswith(".lambda-url.us-east-1.localhost")
    _, out = invoke_json(lam, "egress-dns", {"resolve": ["sandbox.localdomain", "localhost", url_host]})
    # Hearth's own names are on the sandbox's loopback, where the AWS API proxy listens.
    assert out["resolved"] == {"sandbox.localdomain": "127.0.0.1", "localhost": "127.0.0.1", url_host: "127.0.0.1"}
    host_servers = [line.split()[1] for line in Path("/etc/resolv.conf").read_text().splitlines()
                    if line.startswith("nameserver") and not line.split()[1].startswith("127.")]
    for server in host_servers:
        assert f"nameserver {server}" in out["resolv"]


# -- VPC ---------------------------------------------------------------------------------------------

VPC_CIDR, SUBNET_CIDR, DB_ADDRESS = "10.252.0.0/16", "10.252.1.0/24", "10.252.1.10"


@pytest.fixture(scope="module")
def vpc_bridge(hosts: Hosts) -> str:
    bridge = hosts.bridge(1, SUBNET_CIDR)
    hosts.bridged_host("db", bridge, 1, DB_ADDRESS, 24, (5432, 80))
    return bridge


@pytest.fixture(scope="module")
def vpc_server(tmp_path_factory: pytest.TempPathFactory, hosts: Hosts, vpc_bridge: str,
               internet: OutsideHost) -> Iterator[HearthServer]:
    srv = HearthServer(tmp_path_factory.mktemp("hearth-vpc") / "data",
                       extra_env={"HEARTH_NETWORK": "egress", "HEARTH_VPC_NETWORKS": f"{SUBNET_CIDR}={vpc_bridge}"})
    srv.start()
    try:
        _skip_without_networking(srv)
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def vpc(vpc_server: HearthServer) -> dict[str, str]:
    ec2 = vpc_server.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=SUBNET_CIDR)["Subnet"]["SubnetId"]
    everything = ec2.create_security_group(GroupName="all-out", Description="all egress", VpcId=vpc_id)["GroupId"]
    db_only = ec2.create_security_group(GroupName="db-only", Description="postgres only", VpcId=vpc_id)["GroupId"]
    ec2.authorize_security_group_egress(GroupId=db_only, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": SUBNET_CIDR}]}])
    ec2.revoke_security_group_egress(GroupId=db_only, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return {"vpc": vpc_id, "subnet": subnet, "all": everything, "db_only": db_only}


def _vpc_caller(server: HearthServer, name: str, subnet: str, group: str) -> dict[str, object]:
    lam = server.client("lambda")
    lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE, Timeout=15,
                        Code={"ZipFile": make_zip({"app.py": CALLER})},
                        VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [group]})
    cfg = wait_active(lam, name)
    assert cfg["State"] == "Active", (cfg.get("StateReasonCode"), cfg.get("StateReason"))
    return cfg


def test_vpc_function_reaches_its_subnet_and_not_the_internet(vpc_server: HearthServer, vpc: dict[str, str],
                                                               internet: OutsideHost) -> None:
    cfg = _vpc_caller(vpc_server, "vpc-all", vpc["subnet"], vpc["all"])
    assert cfg["VpcConfig"] == {"SubnetIds": [vpc["subnet"]], "SecurityGroupIds": [vpc["all"]],
                                "VpcId": vpc["vpc"], "Ipv6AllowedForDualStack": False}
    lam = vpc_server.client("lambda")
    _, db = invoke_json(lam, "vpc-all", {"host": DB_ADDRESS, "port": 5432})
    assert db["ok"], db
    assert db["body"].startswith("db:5432 from 10.252.1.")  # the function's own subnet address, no translation
    _, outside = invoke_json(lam, "vpc-all", {"host": internet.address, "port": 80})
    assert not outside["ok"] and outside["error"] != "TimeoutError", outside
    enis = vpc_server.client("ec2").describe_network_interfaces(
        Filters=[{"Name": "subnet-id", "Values": [vpc["subnet"]]}])["NetworkInterfaces"]
    assert [e["InterfaceType"] for e in enis] == ["lambda"]
    assert enis[0]["Description"].startswith("AWS Lambda VPC ENI-vpc-all-")
    assert enis[0]["Groups"][0]["GroupId"] == vpc["all"] and enis[0]["Status"] == "in-use"


def test_security_group_egress_rule_is_enforced(vpc_server: HearthServer, vpc: dict[str, str]) -> None:
    _vpc_caller(vpc_server, "vpc-db-only", vpc["subnet"], vpc["db_only"])
    lam = vpc_server.client("lambda")
    _, allowed = invoke_json(lam, "vpc-db-only", {"host": DB_ADDRESS, "port": 5432})
    assert allowed["ok"], allowed
    _, blocked = invoke_json(lam, "vpc-db-only", {"host": DB_ADDRESS, "port": 80})
    assert not blocked["ok"] and blocked["error"] == "ConnectionRefusedError", blocked
    # Rules follow changes at once, for running environments too.
    ec2 = vpc_server.client("ec2")
    rule = [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": f"{DB_ADDRESS}/32"}]}]
    ec2.authorize_security_group_egress(GroupId=vpc["db_only"], IpPermissions=rule)
    try:
        _, now_allowed = invoke_json(lam, "vpc-db-only", {"host": DB_ADDRESS, "port": 80})
        assert now_allowed["ok"], now_allowed
    finally:
        ec2.revoke_security_group_egress(GroupId=vpc["db_only"], IpPermissions=rule)


def test_vpc_config_naming_unknown_resources_is_refused(vpc_server: HearthServer, vpc: dict[str, str]) -> None:
    lam = vpc_server.client("lambda")
    code = {"ZipFile": make_zip({"app.py": CALLER})}
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as missing_subnet:
        lam.create_function(FunctionName="vpc-bad", Runtime="python3.11", Handler="app.handler", Role=ROLE, Code=code,
                            VpcConfig={"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": [vpc["all"]]})
    assert missing_subnet.value.response["Error"]["Message"] == (
        "Error occurred while DescribeSubnets. EC2 Error Code: InvalidSubnetID.NotFound. "
        "EC2 Error Message: The subnet ID 'subnet-0123456789abcdef0' does not exist")
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as missing_group:
        lam.create_function(FunctionName="vpc-bad", Runtime="python3.11", Handler="app.handler", Role=ROLE, Code=code,
                            VpcConfig={"SubnetIds": [vpc["subnet"]], "SecurityGroupIds": ["sg-0123456789abcdef0"]})
    assert missing_group.value.response["Error"]["Message"] == (
        "Error occurred while DescribeSecurityGroups. EC2 Error Code: InvalidGroup.NotFound. "
        "EC2 Error Message: The security group 'sg-0123456789abcdef0' does not exist")


def test_connection_tracking_limit_per_environment(net_server: HearthServer, internet: OutsideHost) -> None:
    # The server runs with HEARTH_NETWORK_CONN_LIMIT=16: an environment holding 16 connections is refused
    # a 17th at once, without taking anything from other environments.
    create_function(net_server.client("lambda"), "egress-holder", {"app.py": HOLDER}, Timeout=30)
    _, out = invoke_json(net_server.client("lambda"), "egress-holder",
                         {"host": internet.address, "port": 80, "count": 24})
    assert out["held"] == 16, out
    assert set(out["refused"]) <= {"OSError", "ConnectionRefusedError"} and len(out["refused"]) == 8, out
    _caller(net_server, "egress-after-holder")
    _, other = invoke_json(net_server.client("lambda"), "egress-after-holder", {"host": internet.address, "port": 80})
    assert other["ok"], other


def test_function_outside_the_vpc_cannot_reach_its_hosts(vpc_server: HearthServer, vpc: dict[str, str],
                                                         internet: OutsideHost) -> None:
    _caller(vpc_server, "outside-vpc")
    lam = vpc_server.client("lambda")
    _, db = invoke_json(lam, "outside-vpc", {"host": DB_ADDRESS, "port": 5432})
    assert not db["ok"] and db["error"] != "TimeoutError", db
    _, outside = invoke_json(lam, "outside-vpc", {"host": internet.address, "port": 80})
    assert outside["ok"], outside
