"""The packet filter rules Hearth writes: what a security group rule becomes, and that every ruleset
is one this kernel accepts (checked with `nft -c`, which asks the kernel without changing anything)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess

import pytest

from hearth.sandbox import netpolicy
from hearth.sandbox.netpolicy import EgressPolicy, SgRule, VpcAttachment
from hearth.services.ec2.lambda_vpc import parse_mappings

SETS = {"sg-a": "sg_sg_a", "sg-b": "sg_sg_b"}


@pytest.mark.parametrize(("rule", "expected"), [
    (SgRule("tcp", 5432, 5432, ("10.0.1.0/24",)), ["ip daddr 10.0.1.0/24 tcp dport 5432-5432"]),
    (SgRule("6", 0, 65535, ("10.0.0.5/32",)), ["ip daddr 10.0.0.5/32 meta l4proto tcp"]),
    (SgRule("-1", None, None, ("0.0.0.0/0",), ("sg-b",)), ["ip daddr 0.0.0.0/0", "ip daddr @sg_sg_b"]),
    (SgRule("udp", 53, 53, ("10.0.0.0/8", "::/0")), ["ip daddr 10.0.0.0/8 udp dport 53-53"]),  # IPv6 not enforced
    (SgRule("icmp", -1, -1, ("10.1.0.0/16",)), ["ip daddr 10.1.0.0/16 meta l4proto icmp"]),
    (SgRule("tcp", 80, 80, (), ("sg-unknown",)), []),  # a group with no environments: no set, no match
    (SgRule("banana", 1, 1, ("10.0.0.0/8",)), []),
])
def test_security_group_rules_become_matches(rule: SgRule, expected: list[str]) -> None:
    assert netpolicy._match(rule, SETS) == expected


def test_vpc_mappings() -> None:
    assert parse_mappings(["10.1.2.0/24=br-db", "subnet-0abc=br-cache"]) == {
        "10.1.2.0/24": "br-db", "subnet-0abc": "br-cache"}
    assert parse_mappings(["10.1.2.7/24=br0"]) == {"10.1.2.0/24": "br0"}
    with pytest.raises(ValueError, match="SUBNET=BRIDGE"):
        parse_mappings(["br-db"])


def _egress() -> str:
    subnet = ipaddress.IPv4Network("10.180.4.0/22")
    return netpolicy.egress_ruleset(EgressPolicy(
        table="hearth_unit_check", bridge="hunitbr", port_glob="hunite*", subnet=subnet,
        gateway=subnet.network_address + 1,
        ports=tuple((f"hunite{n:x}", subnet.network_address + n) for n in range(2, 6)), conn_limit=64,
        also_forbidden=(ipaddress.IPv4Network("10.252.1.0/24"),)))


def _vpc() -> str:
    return netpolicy.vpc_ruleset(
        "hearth_unit_check_vpc", "hunitv*",
        [VpcAttachment("hunitv1x80", ipaddress.IPv4Address("10.252.1.128"), ("sg-a",), "brdb")],
        {"sg-a": (SgRule("tcp", 5432, 5432, ("10.252.1.0/24",)), SgRule("-1", None, None, (), ("sg-a",)))}, 64)


def test_rulesets_name_what_they_enforce() -> None:
    egress = _egress()
    assert "masquerade" in egress and "169.254.0.0/16" in egress
    assert "set vpc_subnets { type ipv4_addr; flags interval; elements = { 10.252.1.0/24 }; }" in egress
    assert '"hunite2" . 10.180.4.2' in egress and "ct count over 64" in egress
    assert "limit rate over 20000/second" in egress and "limit rate over 20000/second" in _vpc()
    vpc = _vpc()
    assert "ip saddr @sg_sg_a ip daddr 10.252.1.0/24 tcp dport 5432-5432 accept" in vpc
    assert '"hunitv1x80" . "brdb"' in vpc and "add element inet hearth_unit_check_vpc sg_sg_a { 10.252.1.128 }" in vpc


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None, reason="nft -c needs root and nftables")
@pytest.mark.parametrize("ruleset", [_egress, _vpc], ids=["egress", "vpc"])
def test_the_kernel_accepts_the_rulesets(ruleset: object) -> None:
    assert callable(ruleset)
    probe = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no usable nf_tables: {probe.stderr.strip()}")
    check = subprocess.run(["nft", "-c", "-f", "-"], input=ruleset(), capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
