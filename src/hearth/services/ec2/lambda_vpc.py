"""Lambda's side of EC2: a function's VpcConfig checked against the account's subnets and security
groups, the network interfaces Lambda creates in them, and the sandbox network a VPC function's
environments get.

It owns: the operator's mapping of subnets to host networks (`--vpc-network SUBNET=BRIDGE`, SUBNET a
subnet id or a CIDR); the key naming one VPC configuration's network (`network_key`); the
translation of security groups' egress rules into the packet filter's terms (`netpolicy.SgRule`);
and the "AWS Lambda VPC ENI" records DescribeNetworkInterfaces shows, one per subnet and set of
security groups, as Lambda's Hyperplane interfaces are shared. It never changes a security group or
a subnet, and never programs the host (it hands `NetworkPool` what to prepare).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hearth.aws.errors import AwsError
from hearth.functions.model import FunctionVersion, vpc_network_key
from hearth.sandbox import netpolicy
from hearth.sandbox.network import NetworkPool, NetworkUnavailable, VpcNetwork
from hearth.services.ec2.domain import ENI, GROUP, SUBNET, ensure_default, new_id
from hearth.services.ec2.store import Ec2Store, Resource

log = logging.getLogger(__name__)


def parse_mappings(items: Sequence[str]) -> dict[str, str]:
    """`SUBNET=BRIDGE` items: subnet id or CIDR -> the host bridge that leads to its hosts."""
    out: dict[str, str] = {}
    for item in items:
        subnet, sep, bridge = item.partition("=")
        if not sep or not subnet.strip() or not bridge.strip():
            raise ValueError(f"--vpc-network {item!r}: expected SUBNET=BRIDGE (a subnet id or CIDR, a host bridge)")
        key = subnet.strip()
        if not key.startswith("subnet-"):
            key = str(ipaddress.IPv4Network(key, strict=False))
        out[key] = bridge.strip()
    return out


def _invalid(message: str) -> AwsError:
    return AwsError("InvalidParameterValueException", message, 400, fields={"Type": "User"})


@dataclass(frozen=True)
class VpcChoice:
    vpc_id: str


class LambdaVpc:
    def __init__(self, store: Ec2Store, mappings: Sequence[str], network: NetworkPool | None) -> None:
        self._store = store
        self._mappings = parse_mappings(mappings)
        self._network = network
        # Subnets named by CIDR are off limits to functions outside any VPC from the start; those named
        # by id, once a function is attached to them (their CIDR is known then).
        if network is not None:
            for key in self._mappings:
                if not key.startswith("subnet-"):
                    try:
                        network.forbid_for_egress(ipaddress.IPv4Network(key))
                    except NetworkUnavailable as exc:
                        log.warning("cannot keep %s from functions outside a VPC: %s", key, exc)
        self._keys: dict[str, tuple[str, str, tuple[str, ...]]] = {}  # network key -> (account, region, groups)

    # -- the control plane ----------------------------------------------------------------------------

    def validate(self, account: str, region: str, subnet_ids: Sequence[str], group_ids: Sequence[str]) -> str:
        """The VPC of a function's VpcConfig, or Lambda's InvalidParameterValueException as AWS words it."""
        ensure_default(self._store, account, region)
        vpcs: set[str] = set()
        for sid in subnet_ids:
            sub = self._store.get(account, region, sid)
            if sub is None or sub.kind != SUBNET:
                raise _invalid("Error occurred while DescribeSubnets. EC2 Error Code: InvalidSubnetID.NotFound. "
                               f"EC2 Error Message: The subnet ID '{sid}' does not exist")
            vpcs.add(sub.vpc_id)
        for gid in group_ids:
            group = self._store.get(account, region, gid)
            if group is None or group.kind != GROUP:
                raise _invalid("Error occurred while DescribeSecurityGroups. EC2 Error Code: InvalidGroup.NotFound. "
                               f"EC2 Error Message: The security group '{gid}' does not exist")
            vpcs.add(group.vpc_id)
        if len(vpcs) > 1:
            raise _invalid("Security Groups are required to be in the same VPC as the subnets.")
        return vpcs.pop() if vpcs else ""

    def prepare_sync(self, account: str, region: str, function: str, subnet_ids: Sequence[str],
                     group_ids: Sequence[str]) -> str | None:
        """Make the function's network ready (Pending): its interface record, and a pool of prepared
        namespaces on the host network its subnet maps to. None, or the reason the function fails."""
        key = vpc_network_key(account, region, subnet_ids, group_ids)
        groups = tuple(sorted(group_ids))
        self._keys[key] = (account, region, groups)
        chosen: tuple[Resource, str] | None = None
        for sid in subnet_ids:
            sub = self._store.get(account, region, sid)
            if sub is None:
                return f"The subnet ID '{sid}' does not exist"
            mapped = self._mappings.get(sid) or self._mappings.get(sub.attrs["CidrBlock"])
            if mapped is not None and chosen is None:
                chosen = (sub, mapped)
        first = self._store.get(account, region, subnet_ids[0]) if subnet_ids else None
        subnet = chosen[0] if chosen is not None else first
        if subnet is None:
            return None
        net = ipaddress.IPv4Network(subnet.attrs["CidrBlock"])
        self._record_eni(account, region, function, subnet, groups,
                         str(net.network_address + max(4, net.num_addresses - 2)))
        if self._network is None:
            return None
        if chosen is None:
            # A subnet no host network was named for: the environments are as a private subnet with
            # nothing in it — no interface at all (see docs/design.md).
            self._network.add_isolated(key)
            return None
        try:
            self._network.add_vpc(key, VpcNetwork(chosen[1], net), groups, self.rules(account, region, groups))
        except NetworkUnavailable as exc:
            return f"Hearth could not attach the function to its subnet's network: {exc}"
        return None

    def _record_eni(self, account: str, region: str, function: str, subnet: Resource, groups: tuple[str, ...],
                    address: str) -> None:
        self._drop_function(account, region, function, keep=(subnet.id, groups))
        for eni in self._store.of_kind(account, region, ENI):
            if eni.attrs.get("SubnetId") == subnet.id and tuple(eni.attrs.get("Groups", [])) == groups:
                if function not in eni.attrs.get("Functions", []):
                    eni.attrs["Functions"] = [*eni.attrs.get("Functions", []), function]
                    eni.tags = {}
                    self._store.put(account, region, eni, time.time())
                return
        eni_id = new_id(ENI)
        mac = "02:" + ":".join(f"{b:02x}" for b in bytes.fromhex(eni_id[-10:]))
        self._store.put(account, region, Resource(eni_id, ENI, subnet.vpc_id, {
            "SubnetId": subnet.id, "Groups": list(groups), "PrivateIpAddress": address,
            "AvailabilityZone": subnet.attrs["AvailabilityZone"], "MacAddress": mac,
            "Description": f"AWS Lambda VPC ENI-{function}-{eni_id[4:12]}", "Functions": [function],
        }, {}), time.time())

    def _drop_function(self, account: str, region: str, function: str,
                       keep: tuple[str, tuple[str, ...]] | None = None) -> None:
        """`function` no longer uses its other interfaces: one no function uses any more is deleted (AWS
        deletes a Lambda interface once no function's configuration needs it)."""
        for eni in self._store.of_kind(account, region, ENI):
            users = list(eni.attrs.get("Functions", []))
            if function not in users or (eni.attrs.get("SubnetId"), tuple(eni.attrs.get("Groups", []))) == keep:
                continue
            users.remove(function)
            if users:
                eni.attrs["Functions"] = users
                eni.tags = {}
                self._store.put(account, region, eni, time.time())
            else:
                self._store.delete(account, region, eni.id)

    def on_function_change(self, event: str, fv: FunctionVersion) -> None:
        """A FunctionService listener: a deleted function, or one whose $LATEST left its VPC, frees its
        interfaces (published versions keep no interface of their own here)."""
        if fv.version != "$LATEST":
            return
        if event == "deleted" or (event == "updated" and not fv.vpc_subnet_ids):
            self._drop_function(fv.account_id, fv.region, fv.name)

    async def prepare(self, fv: FunctionVersion) -> str | None:
        """`VpcNetworks.prepare` for the function service (the host work runs in a thread)."""
        return await asyncio.to_thread(self.prepare_sync, fv.account_id, fv.region, fv.name, fv.vpc_subnet_ids,
                                       fv.vpc_security_group_ids)

    # -- security groups → the packet filter ----------------------------------------------------------

    def rules(self, account: str, region: str, groups: Sequence[str]) -> dict[str, tuple[netpolicy.SgRule, ...]]:
        out: dict[str, tuple[netpolicy.SgRule, ...]] = {}
        for gid in groups:
            g = self._store.get(account, region, gid)
            if g is None:
                out[gid] = ()
                continue
            out[gid] = tuple(_sg_rule(p) for p in g.attrs.get("Egress", []))
        return out

    def groups_changed(self, account: str, region: str, group_ids: list[str]) -> None:
        """A group's egress rules changed: the prepared and running environments follow."""
        if self._network is None:
            return
        try:
            self._network.update_groups(self.rules(account, region, group_ids))
        except NetworkUnavailable as exc:
            log.warning("security group change not applied to sandbox networks: %s", exc)


def _sg_rule(p: dict[str, Any]) -> netpolicy.SgRule:
    return netpolicy.SgRule(
        protocol=str(p.get("IpProtocol", "-1")), from_port=p.get("FromPort"), to_port=p.get("ToPort"),
        cidrs=tuple(r["CidrIp"] for r in p.get("IpRanges", []) if r.get("CidrIp")),
        groups=tuple(g["GroupId"] for g in p.get("UserIdGroupPairs", []) if g.get("GroupId")))
