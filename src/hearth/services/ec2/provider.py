"""The EC2 networking API (boto3's `ec2` client, ec2 protocol): VPCs, subnets, security groups and
their rules, tags, and the network interfaces Lambda creates.

It owns the business rules of that subset — identifiers, CIDR checks, the default VPC every account
and region has (172.31.0.0/16, a /20 default subnet per availability zone, a `default` security
group), filters, rule duplicates — and AWS's error codes and texts. It never writes SQL
(`store.Ec2Store` does) and never touches the host's network: it tells `on_groups_changed` (the
sandbox networks) when a security group's egress rules changed.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.ec2.domain import (
    AZ_SUFFIXES,
    ENI,
    GROUP,
    SUBNET,
    VPC,
    ensure_default,
    new_group,
    new_id,
)
from hearth.services.ec2.store import Ec2Store, Resource

_TAG_TYPES = {VPC: "vpc", SUBNET: "subnet", GROUP: "security-group", ENI: "network-interface"}


def _err(code: str, message: str, status: int = 400) -> AwsError:
    return AwsError(code, message, status)


def _tags_out(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _spec_tags(params: dict[str, Any], resource_type: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for spec in params.get("TagSpecifications") or []:
        if spec.get("ResourceType") in (None, resource_type):
            for t in spec.get("Tags") or []:
                tags[t["Key"]] = t.get("Value", "")
    return tags


def _cidr(text: str, param: str = "cidrBlock") -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        raise _err("InvalidParameterValue",
                   f"Value ({text}) for parameter {param} is invalid. This is not a valid CIDR block.") from None


def normalize_permission(p: dict[str, Any]) -> dict[str, Any]:
    """One IpPermission as stored and answered: protocol names lower-case, ports only where they apply."""
    proto = str(p.get("IpProtocol", "-1")).lower()
    proto = {"6": "tcp", "17": "udp", "1": "icmp", "all": "-1"}.get(proto, proto)
    out: dict[str, Any] = {"IpProtocol": proto}
    if proto != "-1":
        if p.get("FromPort") is not None:
            out["FromPort"] = int(p["FromPort"])
        if p.get("ToPort") is not None:
            out["ToPort"] = int(p["ToPort"])
    out["IpRanges"] = [{k: v for k, v in r.items() if k in ("CidrIp", "Description")} for r in p.get("IpRanges") or []]
    out["Ipv6Ranges"] = [{k: v for k, v in r.items() if k in ("CidrIpv6", "Description")}
                         for r in p.get("Ipv6Ranges") or []]
    out["PrefixListIds"] = list(p.get("PrefixListIds") or [])
    out["UserIdGroupPairs"] = [{k: v for k, v in g.items() if k in ("GroupId", "UserId", "Description", "VpcId")}
                               for g in p.get("UserIdGroupPairs") or []]
    return out


def _atoms(p: dict[str, Any]) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """A permission split into one (key, permission) per peer: rules are added and removed per peer."""
    base: dict[str, Any] = {k: p[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in p}
    key = (p["IpProtocol"], p.get("FromPort"), p.get("ToPort"))
    empty: dict[str, Any] = {"IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}
    out: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for r in p["IpRanges"]:
        out.append(((*key, "cidr", r["CidrIp"]), {**base, **empty, "IpRanges": [r]}))
    for r in p["Ipv6Ranges"]:
        out.append(((*key, "cidr6", r["CidrIpv6"]), {**base, **empty, "Ipv6Ranges": [r]}))
    for g in p["UserIdGroupPairs"]:
        out.append(((*key, "group", g.get("GroupId")), {**base, **empty, "UserIdGroupPairs": [g]}))
    for pl in p["PrefixListIds"]:
        out.append(((*key, "pl", pl.get("PrefixListId")), {**base, **empty, "PrefixListIds": [pl]}))
    return out


def _merge(atoms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Atoms with the same protocol and ports answered as one permission, as EC2 does."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for a in atoms:
        key = (a["IpProtocol"], a.get("FromPort"), a.get("ToPort"))
        m = merged.setdefault(key, {**{k: a[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in a},
                                    "IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []})
        for f in ("IpRanges", "Ipv6Ranges", "PrefixListIds", "UserIdGroupPairs"):
            m[f] += a.get(f, [])
    return list(merged.values())


def _rule_text(p: dict[str, Any]) -> str:
    peer = (p["IpRanges"] or [{}])[0].get("CidrIp") or (p["UserIdGroupPairs"] or [{}])[0].get("GroupId") or ""
    proto = p["IpProtocol"].upper() if p["IpProtocol"] != "-1" else "ALL"
    ports = "" if p["IpProtocol"] == "-1" else f", from port: {p.get('FromPort')}, to port: {p.get('ToPort')}"
    return f'peer: {peer}, {proto}{ports}, ALLOW'


class Ec2Provider:
    def __init__(self, store: Ec2Store, *, on_groups_changed: Callable[[str, str, list[str]], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._on_groups_changed = on_groups_changed or (lambda account, region, ids: None)
        self._clock = clock

    # -- rendering ------------------------------------------------------------------------------------

    def _vpc(self, account: str, region: str, r: Resource) -> dict[str, Any]:
        return {
            "CidrBlock": r.attrs["CidrBlock"], "DhcpOptionsId": "dopt-default", "State": "available",
            "VpcId": r.id, "OwnerId": account, "InstanceTenancy": r.attrs.get("InstanceTenancy", "default"),
            "CidrBlockAssociationSet": [{"AssociationId": f"vpc-cidr-assoc-{r.id[4:]}",
                                         "CidrBlock": r.attrs["CidrBlock"], "CidrBlockState": {"State": "associated"}}],
            "IsDefault": bool(r.attrs.get("IsDefault")), "Tags": _tags_out(r.tags),
        }

    def _subnet(self, account: str, region: str, r: Resource) -> dict[str, Any]:
        net = ipaddress.IPv4Network(r.attrs["CidrBlock"])
        az = r.attrs["AvailabilityZone"]
        return {
            "AvailabilityZone": az, "AvailabilityZoneId": f"use1-az{AZ_SUFFIXES.index(az[-1]) + 1}"
            if az[-1] in AZ_SUFFIXES else f"{region}-az1",
            "AvailableIpAddressCount": max(0, net.num_addresses - 5), "CidrBlock": str(net),
            "DefaultForAz": bool(r.attrs.get("DefaultForAz")),
            "MapPublicIpOnLaunch": bool(r.attrs.get("MapPublicIpOnLaunch")),
            "State": "available", "SubnetId": r.id, "VpcId": r.vpc_id, "OwnerId": account,
            "AssignIpv6AddressOnCreation": False, "Ipv6CidrBlockAssociationSet": [],
            "SubnetArn": f"arn:aws:ec2:{region}:{account}:subnet/{r.id}", "Tags": _tags_out(r.tags),
            "MapCustomerOwnedIpOnLaunch": False, "EnableDns64": False, "Ipv6Native": False,
        }

    def _group(self, account: str, region: str, r: Resource) -> dict[str, Any]:
        return {
            "Description": r.attrs["Description"], "GroupName": r.attrs["GroupName"], "GroupId": r.id,
            "OwnerId": account, "VpcId": r.vpc_id,
            "IpPermissions": _merge([a for p in r.attrs["Ingress"] for _, a in _atoms(p)]),
            "IpPermissionsEgress": _merge([a for p in r.attrs["Egress"] for _, a in _atoms(p)]),
            "SecurityGroupArn": f"arn:aws:ec2:{region}:{account}:security-group/{r.id}",
            "Tags": _tags_out(r.tags),
        }

    def _eni(self, account: str, region: str, r: Resource) -> dict[str, Any]:
        groups = [self._store.get(account, region, g) for g in r.attrs.get("Groups", [])]
        return {
            "AvailabilityZone": r.attrs.get("AvailabilityZone", f"{region}a"),
            "Description": r.attrs.get("Description", ""),
            "Groups": [{"GroupId": g.id, "GroupName": g.attrs["GroupName"]} for g in groups if g is not None],
            "InterfaceType": "lambda", "Ipv6Addresses": [], "MacAddress": r.attrs.get("MacAddress", ""),
            "NetworkInterfaceId": r.id, "OwnerId": account, "PrivateIpAddress": r.attrs.get("PrivateIpAddress"),
            "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": r.attrs.get("PrivateIpAddress")}],
            "RequesterId": r.attrs.get("RequesterId", "AROAHEARTHLAMBDA"), "RequesterManaged": True,
            "SourceDestCheck": True, "Status": "in-use", "SubnetId": r.attrs["SubnetId"], "VpcId": r.vpc_id,
            "TagSet": _tags_out(r.tags),
        }

    # -- filters --------------------------------------------------------------------------------------

    @staticmethod
    def _filtered(items: list[dict[str, Any]], filters: list[dict[str, Any]] | None,
                  fields: dict[str, Callable[[dict[str, Any]], Iterable[str]]], tags_key: str = "Tags"
                  ) -> list[dict[str, Any]]:
        out = []
        for item in items:
            tags = {t["Key"]: t["Value"] for t in item.get(tags_key) or []}
            keep = True
            for f in filters or []:
                name, wanted = f.get("Name", ""), set(f.get("Values") or [])
                if name.startswith("tag:"):
                    have: Iterable[str] = [tags[name[4:]]] if name[4:] in tags else []
                elif name == "tag-key":
                    have = tags.keys()
                elif name == "tag-value":
                    have = tags.values()
                elif name in fields:
                    have = fields[name](item)
                else:
                    raise _err("InvalidParameterValue", f"The filter '{name}' is invalid")
                if not wanted & {str(v).lower() if isinstance(v, bool) else str(v) for v in have}:
                    keep = False
                    break
            if keep:
                out.append(item)
        return out

    def _missing(self, ids: list[str], found: list[dict[str, Any]], key: str, code: str, what: str) -> None:
        known = {f[key] for f in found}
        gone = [i for i in ids if i not in known]
        if gone:
            raise _err(code, f"The {what} '{gone[0]}' does not exist" if len(gone) == 1
                       else f"The {what}s '{', '.join(gone)}' do not exist")

    # -- VPCs -----------------------------------------------------------------------------------------

    def create_vpc(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct, region = ctx.account_id, ctx.region
        ensure_default(self._store, acct, region)
        cidr = params.get("CidrBlock")
        if not cidr:
            raise _err("MissingParameter", "The request must contain the parameter CidrBlock")
        net = _cidr(cidr)
        if not 16 <= net.prefixlen <= 28:
            raise _err("InvalidVpc.Range", f"The CIDR '{cidr}' is invalid.")
        vpc_id = new_id(VPC)
        now = self._clock()
        self._store.put(acct, region, Resource(vpc_id, VPC, vpc_id, {
            "CidrBlock": str(net), "IsDefault": False, "InstanceTenancy": params.get("InstanceTenancy") or "default",
        }, _spec_tags(params, "vpc")), now)
        new_group(self._store, acct, region, vpc_id, "default", "default VPC security group", {}, now)
        created = self._store.get(acct, region, vpc_id)
        assert created is not None
        vpc = self._vpc(acct, region, created)
        vpc["State"] = "pending"
        return {"Vpc": vpc}

    def describe_vpcs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct, region = ctx.account_id, ctx.region
        ensure_default(self._store, acct, region)
        items = [self._vpc(acct, region, r) for r in self._store.of_kind(acct, region, VPC)]
        ids = params.get("VpcIds") or []
        if ids:
            items = [i for i in items if i["VpcId"] in ids]
            self._missing(ids, items, "VpcId", "InvalidVpcID.NotFound", "vpc ID")
        items = self._filtered(items, params.get("Filters"), {
            "vpc-id": lambda i: [i["VpcId"]], "cidr": lambda i: [i["CidrBlock"]],
            "cidr-block-association.cidr-block": lambda i: [i["CidrBlock"]],
            "is-default": lambda i: ["true" if i["IsDefault"] else "false"], "state": lambda i: [i["State"]],
            "owner-id": lambda i: [i["OwnerId"]], "dhcp-options-id": lambda i: [i["DhcpOptionsId"]]})
        return {"Vpcs": items}

    def delete_vpc(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct, region = ctx.account_id, ctx.region
        vpc_id = params["VpcId"]
        vpc = self._store.get(acct, region, vpc_id)
        if vpc is None or vpc.kind != VPC:
            raise _err("InvalidVpcID.NotFound", f"The vpc ID '{vpc_id}' does not exist")
        groups = self._store.of_kind(acct, region, GROUP, vpc_id)
        if self._store.of_kind(acct, region, SUBNET, vpc_id) or any(g.attrs["GroupName"] != "default" for g in groups):
            raise _err("DependencyViolation", f"The vpc '{vpc_id}' has dependencies and cannot be deleted.")
        for g in groups:
            self._store.delete(acct, region, g.id)
        self._store.delete(acct, region, vpc_id)
        return {}

    # -- subnets --------------------------------------------------------------------------------------

    def create_subnet(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct, region = ctx.account_id, ctx.region
        ensure_default(self._store, acct, region)
        vpc_id = params["VpcId"]
        vpc = self._store.get(acct, region, vpc_id)
        if vpc is None or vpc.kind != VPC:
            raise _err("InvalidVpcID.NotFound", f"The vpc ID '{vpc_id}' does not exist")
        cidr = params.get("CidrBlock")
        if not cidr:
            raise _err("MissingParameter", "Either 'cidrBlock' or 'ipv4IpamPoolId' should be provided.")
        net = _cidr(cidr)
        vpc_net = ipaddress.IPv4Network(vpc.attrs["CidrBlock"])
        if not net.subnet_of(vpc_net) or not 16 <= net.prefixlen <= 28:
            raise _err("InvalidSubnet.Range", f"The CIDR '{cidr}' is invalid.")
        for other in self._store.of_kind(acct, region, SUBNET, vpc_id):
            if ipaddress.IPv4Network(other.attrs["CidrBlock"]).overlaps(net):
                raise _err("InvalidSubnet.Conflict", f"The CIDR '{cidr}' conflicts with another subnet")
        az = params.get("AvailabilityZone") or f"{region}a"
        if not az.startswith(region):
            raise _err("InvalidParameterValue", f"Value ({az}) for parameter availabilityZone is invalid. "
                       f"Subnets can currently only be created in the following availability zones: "
                       f"{', '.join(region + s for s in AZ_SUFFIXES)}.")
        sid = new_id(SUBNET)
        self._store.put(acct, region, Resource(sid, SUBNET, vpc_id, {
            "CidrBlock": str(net), "AvailabilityZone": az, "DefaultForAz": False, "MapPublicIpOnLaunch": False,
        }, _spec_tags(params, "subnet")), self._clock())
        created = self._store.get(acct, region, sid)
        assert created is not None
        return {"Subnet": self._subnet(acct, region, created)}

    def describe_subnets(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct, region = ctx.account_id, ctx.region
        ensure_default(self._store, acct, region)
        items = [self._subnet(acct, region, r) for r in self._store.of_kind(acct, region, SUBNET)]
        ids = params.get("SubnetIds") or []
        if ids:
            items = [i for i in items if i["SubnetId"] in ids]
            self._missing(ids, items, "SubnetId", "InvalidSubnetID.NotFound", "subnet ID")
        items = self._filtered(items, params.get("Filters"), {
            "subnet-id": lambda i: [i["SubnetId"]], "vpc-id": lambda i: [i["VpcId"]],
            "cidr-block": lambda i: [i["CidrBlock"]], "cidr": lambda i: [i["CidrBlock"]],
            "availability-zone": lambda i: [i["AvailabilityZone"]], "state": lambda i: [i["State"]],
            "default-for-az": lambda i: ["true" if i["DefaultForAz"] else "false"],
            "owner-id": lambda i: [i["OwnerId"]]})
        return {"Subnets": items}

    def delete_subnet(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct, region = ctx.account_id, ctx.region
        sid = params["SubnetId"]
        sub = self._store.get(acct, region, sid)
        if sub is None or sub.kind != SUBNET:
            raise _err("InvalidSubnetID.NotFound", f"The subnet ID '{sid}' does not exist")
        if any(e.attrs.get("SubnetId") == sid for e in self._store.of_kind(acct, region, ENI)):
            raise _err("DependencyViolation", f"The subnet '{sid}' has dependencies and cannot be deleted.")
        self._store.delete(acct, region, sid)
        return {}

    # -- security groups ------------------------------------------------------------------------------

    def create_security_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct, region = ctx.account_id, ctx.region
        ensure_default(self._store, acct, region)
        name, description = params["GroupName"], params["Description"]
        vpc_id = params.get("VpcId")
        if not vpc_id:
            vpc_id = next(r.id for r in self._store.of_kind(acct, region, VPC) if r.attrs.get("IsDefault"))
        vpc = self._store.get(acct, region, vpc_id)
        if vpc is None or vpc.kind != VPC:
            raise _err("InvalidVpcID.NotFound", f"The vpc ID '{vpc_id}' does not exist")
        if name.lower().startswith("sg-"):
            raise _err("InvalidParameterValue", "Group names may not be in the format sg-*.")
        if any(g.attrs["GroupName"] == name for g in self._store.of_kind(acct, region, GROUP, vpc_id)):
            raise _err("InvalidGroup.Duplicate", f"The security group '{name}' already exists for VPC '{vpc_id}'")
        gid = new_group(self._store, acct, region, vpc_id, name, description, _spec_tags(params, "security-group"),
                              self._clock())
        out: dict[str, Any] = {"GroupId": gid, "SecurityGroupArn": f"arn:aws:ec2:{region}:{acct}:security-group/{gid}"}
        tags = _spec_tags(params, "security-group")
        if tags:
            out["Tags"] = _tags_out(tags)
        return out

    def _find_group(self, acct: str, region: str, params: dict[str, Any]) -> Resource:
        gid, name = params.get("GroupId"), params.get("GroupName")
        if gid:
            g = self._store.get(acct, region, gid)
            if g is None or g.kind != GROUP:
                raise _err("InvalidGroup.NotFound", f"The security group '{gid}' does not exist")
            return g
        if name:
            for g in self._store.of_kind(acct, region, GROUP):
                if g.attrs["GroupName"] == name:
                    return g
            raise _err("InvalidGroup.NotFound",
                       f"The security group '{name}' does not exist in default VPC")
        raise _err("MissingParameter", "The request must contain the parameter groupName or groupId")

    def describe_security_groups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct, region = ctx.account_id, ctx.region
        ensure_default(self._store, acct, region)
        items = [self._group(acct, region, r) for r in self._store.of_kind(acct, region, GROUP)]
        ids = params.get("GroupIds") or []
        if ids:
            items = [i for i in items if i["GroupId"] in ids]
            self._missing(ids, items, "GroupId", "InvalidGroup.NotFound", "security group")
        names = params.get("GroupNames") or []
        if names:
            items = [i for i in items if i["GroupName"] in names]
        items = self._filtered(items, params.get("Filters"), {
            "group-id": lambda i: [i["GroupId"]], "group-name": lambda i: [i["GroupName"]],
            "vpc-id": lambda i: [i["VpcId"]], "description": lambda i: [i["Description"]],
            "owner-id": lambda i: [i["OwnerId"]]})
        return {"SecurityGroups": items}

    def delete_security_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct, region = ctx.account_id, ctx.region
        g = self._find_group(acct, region, params)
        if g.attrs["GroupName"] == "default":
            raise _err("CannotDelete", f'the specified group: "{g.id}" name: "default" cannot be deleted by a user')
        if any(g.id in e.attrs.get("Groups", []) for e in self._store.of_kind(acct, region, ENI)):
            raise _err("DependencyViolation", "resource " + g.id + " has a dependent object")
        self._store.delete(acct, region, g.id)
        return {"Return": True, "GroupId": g.id}

    def _permissions(self, acct: str, region: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        perms = list(params.get("IpPermissions") or [])
        if not perms and params.get("IpProtocol"):  # the older flat form
            p: dict[str, Any] = {"IpProtocol": params["IpProtocol"], "FromPort": params.get("FromPort"),
                                 "ToPort": params.get("ToPort")}
            if params.get("CidrIp"):
                p["IpRanges"] = [{"CidrIp": params["CidrIp"]}]
            if params.get("SourceSecurityGroupName"):
                src = self._find_group(acct, region, {"GroupName": params["SourceSecurityGroupName"]})
                p["UserIdGroupPairs"] = [{"GroupId": src.id}]
            perms = [p]
        out = []
        for raw in perms:
            p = normalize_permission(raw)
            if p["IpProtocol"] not in ("-1", "tcp", "udp", "icmp", "icmpv6") and not p["IpProtocol"].isdigit():
                raise _err("InvalidParameterValue",
                           f"Invalid value '{raw.get('IpProtocol')}' for IP protocol. Unknown protocol.")
            if p["IpProtocol"] in ("tcp", "udp") and ("FromPort" not in p or "ToPort" not in p):
                raise _err("InvalidParameterValue", "Invalid value 'null' for fromPort. It must be specified.")
            for r in p["IpRanges"]:
                _cidr(r["CidrIp"], "cidrIp")
            for pair in p["UserIdGroupPairs"]:
                ref = self._store.get(acct, region, pair.get("GroupId") or "")
                if ref is None or ref.kind != GROUP:
                    raise _err("InvalidGroup.NotFound", f"The security group '{pair.get('GroupId')}' does not exist")
                pair.setdefault("UserId", acct)
            out.append(p)
        return out

    def _change_rules(self, ctx: RequestContext, params: dict[str, Any], direction: str, add: bool
                      ) -> dict[str, Any]:
        acct, region = ctx.account_id, ctx.region
        g = self._find_group(acct, region, params)
        existing = {k: a for p in g.attrs[direction] for k, a in _atoms(p)}
        changed: list[dict[str, Any]] = []
        for p in self._permissions(acct, region, params):
            for key, atom in _atoms(p):
                if add:
                    if key in existing:
                        raise _err("InvalidPermission.Duplicate",
                                   f'the specified rule "{_rule_text(atom)}" already exists')
                    existing[key] = atom
                else:
                    if key not in existing:
                        raise _err("InvalidPermission.NotFound",
                                   "The specified rule does not exist in this security group.")
                    del existing[key]
                changed.append(atom)
        g.attrs[direction] = list(existing.values())
        g.tags = {}
        self._store.put(acct, region, g, self._clock())
        if direction == "Egress":
            self._on_groups_changed(acct, region, [g.id])
        out: dict[str, Any] = {"Return": True}
        if add:
            out["SecurityGroupRules"] = [self._rule_out(acct, g, a, direction == "Egress") for a in changed]
        return out

    @staticmethod
    def _rule_out(acct: str, g: Resource, a: dict[str, Any], egress: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"SecurityGroupRuleId": f"sgr-{secrets.token_hex(9)[:17]}", "GroupId": g.id,
                               "GroupOwnerId": acct, "IsEgress": egress, "IpProtocol": a["IpProtocol"],
                               "FromPort": a.get("FromPort", -1), "ToPort": a.get("ToPort", -1)}
        if a["IpRanges"]:
            out["CidrIpv4"] = a["IpRanges"][0]["CidrIp"]
        if a["UserIdGroupPairs"]:
            out["ReferencedGroupInfo"] = {"GroupId": a["UserIdGroupPairs"][0]["GroupId"], "UserId": acct}
        return out

    def authorize_security_group_ingress(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._change_rules(ctx, params, "Ingress", add=True)

    def authorize_security_group_egress(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._change_rules(ctx, params, "Egress", add=True)

    def revoke_security_group_ingress(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._change_rules(ctx, params, "Ingress", add=False)

    def revoke_security_group_egress(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._change_rules(ctx, params, "Egress", add=False)

    # -- tags -----------------------------------------------------------------------------------------

    def create_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct, region = ctx.account_id, ctx.region
        ids = params.get("Resources") or []
        for rid in ids:
            if self._store.get(acct, region, rid) is None:
                prefix = rid.split("-", 1)[0]
                what = {"vpc": ("InvalidVpcID.NotFound", "vpc ID"), "subnet": ("InvalidSubnetID.NotFound", "subnet ID"),
                        "sg": ("InvalidGroup.NotFound", "security group")}.get(prefix, ("InvalidID", "ID"))
                raise _err(what[0], f"The {what[1]} '{rid}' does not exist")
        self._store.set_tags(acct, region, ids, {t["Key"]: t.get("Value", "") for t in params.get("Tags") or []})
        return {}

    def delete_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct, region = ctx.account_id, ctx.region
        self._store.delete_tags(acct, region, params.get("Resources") or [],
                                {t["Key"]: t.get("Value") for t in params.get("Tags") or []})
        return {}

    def describe_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct, region = ctx.account_id, ctx.region
        items = [{"Key": k, "ResourceId": rid, "ResourceType": _TAG_TYPES.get(kind, kind), "Value": v}
                 for rid, kind, k, v in self._store.all_tags(acct, region)]
        items = self._filtered(items, params.get("Filters"), {
            "key": lambda i: [i["Key"]], "value": lambda i: [i["Value"]], "resource-id": lambda i: [i["ResourceId"]],
            "resource-type": lambda i: [i["ResourceType"]]}, tags_key="-")
        return {"Tags": items}

    # -- network interfaces (Lambda's) ---------------------------------------------------------------

    def describe_network_interfaces(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        acct, region = ctx.account_id, ctx.region
        items = [self._eni(acct, region, r) for r in self._store.of_kind(acct, region, ENI)]
        ids = params.get("NetworkInterfaceIds") or []
        if ids:
            items = [i for i in items if i["NetworkInterfaceId"] in ids]
            self._missing(ids, items, "NetworkInterfaceId", "InvalidNetworkInterfaceID.NotFound",
                          "network interface ID")
        items = self._filtered(items, params.get("Filters"), {
            "network-interface-id": lambda i: [i["NetworkInterfaceId"]], "subnet-id": lambda i: [i["SubnetId"]],
            "vpc-id": lambda i: [i["VpcId"]], "interface-type": lambda i: [i["InterfaceType"]],
            "description": lambda i: [i["Description"]], "status": lambda i: [i["Status"]],
            "group-id": lambda i: [g["GroupId"] for g in i["Groups"]],
            "requester-managed": lambda i: ["true"]}, tags_key="TagSet")
        return {"NetworkInterfaces": items}
