"""The EC2 domain's shared rules: identifiers, kinds, and the default VPC every account has.

It owns what the API provider and Lambda's VPC side (`lambda_vpc.py`) both need: resource ids in
AWS's form, the default VPC (172.31.0.0/16 with a /20 default subnet per availability zone and a
`default` security group, made on first use in each account and region) and a new security group's
initial rules. It never renders an answer and never checks a request.
"""

from __future__ import annotations

import secrets
import time

from hearth.services.ec2.store import Ec2Store, Resource

DEFAULT_VPC_CIDR = "172.31.0.0/16"
AZ_SUFFIXES = ("a", "b", "c")
VPC, SUBNET, GROUP, ENI = "vpc", "subnet", "security-group", "network-interface"
_KIND_PREFIX = {VPC: "vpc", SUBNET: "subnet", GROUP: "sg", ENI: "eni"}
ALL_TRAFFIC = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [], "PrefixListIds": [],
               "UserIdGroupPairs": []}


def new_id(kind: str) -> str:
    return f"{_KIND_PREFIX[kind]}-{secrets.token_hex(9)[:17]}"


def ensure_default(store: Ec2Store, account: str, region: str) -> None:
    """Every account has a default VPC in every region, made here on first use."""
    if any(r.attrs.get("IsDefault") for r in store.of_kind(account, region, VPC)):
        return
    vpc_id = new_id(VPC)
    now = time.time()
    store.put(account, region, Resource(vpc_id, VPC, vpc_id, {
        "CidrBlock": DEFAULT_VPC_CIDR, "IsDefault": True, "InstanceTenancy": "default"}, {}), now)
    for i, suffix in enumerate(AZ_SUFFIXES):
        store.put(account, region, Resource(new_id(SUBNET), SUBNET, vpc_id, {
            "CidrBlock": f"172.31.{i * 16}.0/20", "AvailabilityZone": f"{region}{suffix}",
            "DefaultForAz": True, "MapPublicIpOnLaunch": True}, {}), now)
    new_group(store, account, region, vpc_id, "default", "default VPC security group", {}, now)


def new_group(store: Ec2Store, account: str, region: str, vpc_id: str, name: str, description: str,
              tags: dict[str, str], now: float) -> str:
    """A new group: no ingress (the `default` group: from its own members), all egress, as on AWS."""
    gid = new_id(GROUP)
    ingress = [{"IpProtocol": "-1", "IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": [],
                "UserIdGroupPairs": [{"GroupId": gid, "UserId": account}]}] if name == "default" else []
    store.put(account, region, Resource(gid, GROUP, vpc_id, {
        "GroupName": name, "Description": description, "Ingress": ingress, "Egress": [dict(ALL_TRAFFIC)],
    }, tags), now)
    return gid
