"""CloudFormation resource types of EC2 networking (VPCs, subnets, security groups and their rules),
written against Hearth's EC2 API."""

from __future__ import annotations

from typing import Any

from hearth.services.cloudformation.resources.base import (
    Handler,
    Outcome,
    ResourceRequest,
    generated_name,
    ignore_missing,
    tags_dict,
    tags_list,
)


def _tag_specs(kind: str, tags: Any) -> list[dict[str, Any]] | None:
    listed = tags_list(tags)
    return [{"ResourceType": kind, "Tags": listed}] if listed else None


async def _retag(r: ResourceRequest, resource_id: str, old: dict[str, Any]) -> None:
    new_tags, old_tags = tags_dict(r.properties.get("Tags")), tags_dict(old.get("Tags"))
    gone = [{"Key": k} for k in old_tags.keys() - new_tags.keys()]
    if gone:
        await r.client("ec2", "DeleteTags", {"Resources": [resource_id], "Tags": gone})
    changed = [{"Key": k, "Value": v} for k, v in new_tags.items() if old_tags.get(k) != v]
    if changed:
        await r.client("ec2", "CreateTags", {"Resources": [resource_id], "Tags": changed})


class Vpc(Handler):
    type = "AWS::EC2::VPC"
    attributes = ("CidrBlock", "CidrBlockAssociations", "DefaultNetworkAcl", "DefaultSecurityGroup", "Ipv6CidrBlocks",
                  "VpcId")
    replace_on = frozenset({"CidrBlock", "InstanceTenancy", "Ipv4IpamPoolId", "Ipv4NetmaskLength"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        vpc = (await r.client("ec2", "CreateVpc", {"CidrBlock": p.get("CidrBlock"),
                                                   "InstanceTenancy": p.get("InstanceTenancy"),
                                                   "TagSpecifications": _tag_specs("vpc", p.get("Tags"))}))["Vpc"]
        r.created = vpc["VpcId"]
        return await self._outcome(r, vpc["VpcId"])

    async def _outcome(self, r: ResourceRequest, vpc_id: str) -> Outcome:
        vpc = (await r.client("ec2", "DescribeVpcs", {"VpcIds": [vpc_id]}))["Vpcs"][0]
        groups = (await r.client("ec2", "DescribeSecurityGroups", {"Filters": [
            {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]}))["SecurityGroups"]
        return Outcome(vpc_id, {
            "CidrBlock": vpc["CidrBlock"], "VpcId": vpc_id, "Ipv6CidrBlocks": [],
            "CidrBlockAssociations": [a["AssociationId"] for a in vpc.get("CidrBlockAssociationSet", [])],
            "DefaultSecurityGroup": groups[0]["GroupId"] if groups else "",
            "DefaultNetworkAcl": f"acl-{vpc_id[4:]}"})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        await _retag(r, str(r.physical_id), old)
        return await self._outcome(r, str(r.physical_id))

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("ec2", "DeleteVpc", {"VpcId": str(r.physical_id)}))


class Subnet(Handler):
    type = "AWS::EC2::Subnet"
    attributes = ("AvailabilityZone", "AvailabilityZoneId", "CidrBlock", "Ipv6CidrBlocks", "NetworkAclAssociationId",
                  "OutpostArn", "SubnetId", "VpcId")
    replace_on = frozenset({"VpcId", "CidrBlock", "AvailabilityZone", "AvailabilityZoneId", "Ipv6CidrBlock"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        subnet = (await r.client("ec2", "CreateSubnet", {
            "VpcId": p.get("VpcId"), "CidrBlock": p.get("CidrBlock"), "AvailabilityZone": p.get("AvailabilityZone"),
            "TagSpecifications": _tag_specs("subnet", p.get("Tags"))}))["Subnet"]
        r.created = subnet["SubnetId"]
        return self._outcome(subnet)

    @staticmethod
    def _outcome(subnet: dict[str, Any]) -> Outcome:
        return Outcome(subnet["SubnetId"], {
            "AvailabilityZone": subnet["AvailabilityZone"], "AvailabilityZoneId": subnet.get("AvailabilityZoneId", ""),
            "CidrBlock": subnet["CidrBlock"], "Ipv6CidrBlocks": [], "SubnetId": subnet["SubnetId"],
            "VpcId": subnet["VpcId"], "NetworkAclAssociationId": f"aclassoc-{subnet['SubnetId'][7:]}",
            "OutpostArn": ""})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        await _retag(r, str(r.physical_id), old)
        subnet = (await r.client("ec2", "DescribeSubnets", {"SubnetIds": [str(r.physical_id)]}))["Subnets"][0]
        return self._outcome(subnet)

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("ec2", "DeleteSubnet", {"SubnetId": str(r.physical_id)}))


def _permission(rule: dict[str, Any], peer_key: str) -> dict[str, Any]:
    """A template's rule (CidrIp, Source/DestinationSecurityGroupId …) as an IpPermission."""
    perm: dict[str, Any] = {"IpProtocol": str(rule.get("IpProtocol", "-1"))}
    for key in ("FromPort", "ToPort"):
        if rule.get(key) is not None:
            perm[key] = int(rule[key])
    if rule.get("CidrIp"):
        perm["IpRanges"] = [{"CidrIp": rule["CidrIp"], **({"Description": rule["Description"]}
                                                         if rule.get("Description") else {})}]
    if rule.get("CidrIpv6"):
        perm["Ipv6Ranges"] = [{"CidrIpv6": rule["CidrIpv6"]}]
    if rule.get(peer_key):
        perm["UserIdGroupPairs"] = [{"GroupId": rule[peer_key]}]
    return perm


ALL_EGRESS = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


class SecurityGroup(Handler):
    type = "AWS::EC2::SecurityGroup"
    attributes = ("GroupId", "VpcId")
    replace_on = frozenset({"GroupName", "GroupDescription", "VpcId"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        name = p.get("GroupName") or generated_name(r.stack_name, r.logical_id, 255)
        out = await r.client("ec2", "CreateSecurityGroup", {
            "GroupName": name, "Description": p.get("GroupDescription"), "VpcId": p.get("VpcId"),
            "TagSpecifications": _tag_specs("security-group", p.get("Tags"))})
        gid = out["GroupId"]
        r.created = gid
        await self._rules(r, gid, {}, fresh=True)
        group = (await r.client("ec2", "DescribeSecurityGroups", {"GroupIds": [gid]}))["SecurityGroups"][0]
        return Outcome(gid, {"GroupId": gid, "VpcId": group["VpcId"]}, ref=gid)

    async def _rules(self, r: ResourceRequest, gid: str, old: dict[str, Any], *, fresh: bool) -> None:
        p = r.properties
        for key, peer, op in (("SecurityGroupIngress", "SourceSecurityGroupId", "Ingress"),
                              ("SecurityGroupEgress", "DestinationSecurityGroupId", "Egress")):
            new_rules = [_permission(x, peer) for x in p.get(key) or []]
            old_rules = [_permission(x, peer) for x in old.get(key) or []]
            if op == "Egress":  # a group starts with all egress; a template's egress list replaces it
                if fresh and new_rules:
                    old_rules = [ALL_EGRESS]
                elif not fresh and old_rules and not new_rules:
                    new_rules = [ALL_EGRESS]
                elif not fresh and not old_rules and new_rules:
                    old_rules = [ALL_EGRESS]
            for perm in old_rules:
                if perm not in new_rules:
                    await ignore_missing(r.client("ec2", f"RevokeSecurityGroup{op}", {"GroupId": gid,
                                                                                       "IpPermissions": [perm]}))
            for perm in new_rules:
                if perm not in old_rules:
                    await r.client("ec2", f"AuthorizeSecurityGroup{op}", {"GroupId": gid, "IpPermissions": [perm]})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        gid = str(r.physical_id)
        await self._rules(r, gid, old, fresh=False)
        await _retag(r, gid, old)
        group = (await r.client("ec2", "DescribeSecurityGroups", {"GroupIds": [gid]}))["SecurityGroups"][0]
        return Outcome(gid, {"GroupId": gid, "VpcId": group["VpcId"]}, ref=gid)

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("ec2", "DeleteSecurityGroup", {"GroupId": str(r.physical_id)}))


class _Rule(Handler):
    """One standalone rule of a group (AWS::EC2::SecurityGroupIngress / Egress): every change replaces it."""

    direction: str = ""
    peer: str = ""
    attributes = ("Id",)
    updatable = False

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        out = await r.client("ec2", f"AuthorizeSecurityGroup{self.direction}", {
            "GroupId": p.get("GroupId"), "IpPermissions": [_permission(p, self.peer)]})
        rules = out.get("SecurityGroupRules") or [{}]
        rule_id = rules[0].get("SecurityGroupRuleId") or f"{p.get('GroupId')}-{r.logical_id}"
        r.created = rule_id
        return Outcome(rule_id, {"Id": rule_id})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        raise NotImplementedError  # never called: not updatable

    async def delete(self, r: ResourceRequest) -> None:
        p = r.properties
        await ignore_missing(r.client("ec2", f"RevokeSecurityGroup{self.direction}", {
            "GroupId": p.get("GroupId"), "IpPermissions": [_permission(p, self.peer)]}))


class SecurityGroupIngress(_Rule):
    type = "AWS::EC2::SecurityGroupIngress"
    direction = "Ingress"
    peer = "SourceSecurityGroupId"


class SecurityGroupEgress(_Rule):
    type = "AWS::EC2::SecurityGroupEgress"
    direction = "Egress"
    peer = "DestinationSecurityGroupId"


HANDLERS: tuple[type[Handler], ...] = (Vpc, Subnet, SecurityGroup, SecurityGroupIngress, SecurityGroupEgress)
