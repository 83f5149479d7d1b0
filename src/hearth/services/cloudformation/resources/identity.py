"""CloudFormation resource types of IAM identities: users, groups, access keys, group membership,
instance profiles, service-linked roles and server certificates, written against IAM's API (roles and policies are in
`storage.py`)."""

from __future__ import annotations

from typing import Any

from hearth.services.cloudformation.resources.base import (
    Handler,
    Outcome,
    ResourceRequest,
    as_json,
    ignore_missing,
    tags_list,
)


async def _sync_policies(r: ResourceRequest, kind: str, name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    """The inline `Policies` and `ManagedPolicyArns` of a user or group (`kind`: "User" or "Group") made
    what the template says, from what it said before (`old`)."""
    key = f"{kind}Name"
    new_inline = {x["PolicyName"]: x["PolicyDocument"] for x in new.get("Policies") or []}
    old_inline = {x["PolicyName"]: x["PolicyDocument"] for x in old.get("Policies") or []}
    for policy in old_inline.keys() - new_inline.keys():
        await ignore_missing(r.client("iam", f"Delete{kind}Policy", {key: name, "PolicyName": policy}))
    for policy, document in new_inline.items():
        if old_inline.get(policy) != document:
            await r.client("iam", f"Put{kind}Policy", {key: name, "PolicyName": policy,
                                                       "PolicyDocument": as_json(document)})
    new_managed, old_managed = set(new.get("ManagedPolicyArns") or []), set(old.get("ManagedPolicyArns") or [])
    for arn in old_managed - new_managed:
        await ignore_missing(r.client("iam", f"Detach{kind}Policy", {key: name, "PolicyArn": arn}))
    for arn in sorted(new_managed - old_managed):
        await r.client("iam", f"Attach{kind}Policy", {key: name, "PolicyArn": arn})


class User(Handler):
    type = "AWS::IAM::User"
    attributes = ("Arn",)
    replace_on = frozenset({"UserName"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        name = r.name("UserName", 64)
        user = (await r.client("iam", "CreateUser", {
            "UserName": name, "Path": p.get("Path"), "PermissionsBoundary": p.get("PermissionsBoundary"),
            "Tags": tags_list(p.get("Tags")) or None}))["User"]
        r.created = name
        await self._apply(r, name, {})
        return Outcome(name, {"Arn": user["Arn"]})

    async def _apply(self, r: ResourceRequest, name: str, old: dict[str, Any]) -> None:
        p = r.properties
        await _sync_policies(r, "User", name, p, old)
        groups, had = list(p.get("Groups") or []), set(old.get("Groups") or [])
        for group in had - set(groups):
            await ignore_missing(r.client("iam", "RemoveUserFromGroup", {"GroupName": group, "UserName": name}))
        for group in groups:  # in the template's order: IAM lists a user's groups in the order joined
            if group not in had:
                await r.client("iam", "AddUserToGroup", {"GroupName": group, "UserName": name})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        name = str(r.physical_id)
        p = r.properties
        if p.get("Path") != old.get("Path"):
            await r.client("iam", "UpdateUser", {"UserName": name, "NewPath": p.get("Path") or "/"})
        boundary = p.get("PermissionsBoundary")
        if boundary != old.get("PermissionsBoundary"):
            if boundary:
                await r.client("iam", "PutUserPermissionsBoundary", {"UserName": name, "PermissionsBoundary": boundary})
            else:
                await ignore_missing(r.client("iam", "DeleteUserPermissionsBoundary", {"UserName": name}))
        await self._apply(r, name, old)
        user = (await r.client("iam", "GetUser", {"UserName": name}))["User"]
        return Outcome(name, {"Arn": user["Arn"]})

    async def delete(self, r: ResourceRequest) -> None:
        name = str(r.physical_id)
        p = r.properties
        for group in p.get("Groups") or []:
            await ignore_missing(r.client("iam", "RemoveUserFromGroup", {"GroupName": group, "UserName": name}))
        await _sync_policies(r, "User", name, {}, p)
        await ignore_missing(r.client("iam", "DeleteUser", {"UserName": name}))


class Group(Handler):
    type = "AWS::IAM::Group"
    attributes = ("Arn",)
    replace_on = frozenset({"GroupName"})

    async def create(self, r: ResourceRequest) -> Outcome:
        name = r.name("GroupName", 128)
        group = (await r.client("iam", "CreateGroup", {"GroupName": name, "Path": r.properties.get("Path")}))["Group"]
        r.created = name
        await _sync_policies(r, "Group", name, r.properties, {})
        return Outcome(name, {"Arn": group["Arn"]})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        name = str(r.physical_id)
        await _sync_policies(r, "Group", name, r.properties, old)
        group = (await r.client("iam", "GetGroup", {"GroupName": name}))["Group"]
        return Outcome(name, {"Arn": group["Arn"]})

    async def delete(self, r: ResourceRequest) -> None:
        name = str(r.physical_id)
        await _sync_policies(r, "Group", name, {}, r.properties)
        await ignore_missing(r.client("iam", "DeleteGroup", {"GroupName": name}))


class AccessKey(Handler):
    """`AWS::IAM::AccessKey`: Ref is the key id, `SecretAccessKey` its secret; a new `Serial` rotates it."""

    type = "AWS::IAM::AccessKey"
    attributes = ("SecretAccessKey",)
    replace_on = frozenset({"UserName", "Serial"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        key = (await r.client("iam", "CreateAccessKey", {"UserName": p["UserName"]}))["AccessKey"]
        r.created = key["AccessKeyId"]
        if (p.get("Status") or "Active") != "Active":
            await r.client("iam", "UpdateAccessKey", {"UserName": p["UserName"], "AccessKeyId": key["AccessKeyId"],
                                                      "Status": p["Status"]})
        return Outcome(key["AccessKeyId"], {"SecretAccessKey": key["SecretAccessKey"]})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        p = r.properties
        await r.client("iam", "UpdateAccessKey", {"UserName": p["UserName"], "AccessKeyId": str(r.physical_id),
                                                  "Status": p.get("Status") or "Active"})
        return Outcome(str(r.physical_id), dict(r.attributes))

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("iam", "DeleteAccessKey", {"UserName": r.properties["UserName"],
                                                                 "AccessKeyId": str(r.physical_id)}))


class UserToGroupAddition(Handler):
    type = "AWS::IAM::UserToGroupAddition"
    replace_on = frozenset({"GroupName"})

    async def create(self, r: ResourceRequest) -> Outcome:
        await self._members(r, r.properties, {})
        physical = f"{r.stack_name[:20]}-{r.logical_id[:20]}-{r.stack_id.rsplit('-', 1)[-1][:12]}"
        return Outcome(physical)

    async def _members(self, r: ResourceRequest, new: dict[str, Any], old: dict[str, Any]) -> None:
        group = new.get("GroupName") or old.get("GroupName")
        wanted, had = set(new.get("Users") or []), set(old.get("Users") or [])
        for user in had - wanted:
            await ignore_missing(r.client("iam", "RemoveUserFromGroup", {"GroupName": group, "UserName": user}))
        for user in sorted(wanted - had):
            await r.client("iam", "AddUserToGroup", {"GroupName": group, "UserName": user})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        await self._members(r, r.properties, old)
        return Outcome(str(r.physical_id))

    async def delete(self, r: ResourceRequest) -> None:
        await self._members(r, {"GroupName": r.properties.get("GroupName")}, r.properties)


class InstanceProfile(Handler):
    type = "AWS::IAM::InstanceProfile"
    attributes = ("Arn",)
    replace_on = frozenset({"InstanceProfileName", "Path"})

    async def create(self, r: ResourceRequest) -> Outcome:
        name = r.name("InstanceProfileName", 128)
        profile = (await r.client("iam", "CreateInstanceProfile", {
            "InstanceProfileName": name, "Path": r.properties.get("Path")}))["InstanceProfile"]
        r.created = name
        await self._roles(r, name, r.properties.get("Roles") or [], [])
        return Outcome(name, {"Arn": profile["Arn"]})

    async def _roles(self, r: ResourceRequest, name: str, new: list[str], old: list[str]) -> None:
        for role in set(old) - set(new):
            await ignore_missing(r.client("iam", "RemoveRoleFromInstanceProfile", {"InstanceProfileName": name,
                                                                                   "RoleName": role}))
        for role in sorted(set(new) - set(old)):
            await r.client("iam", "AddRoleToInstanceProfile", {"InstanceProfileName": name, "RoleName": role})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        name = str(r.physical_id)
        await self._roles(r, name, r.properties.get("Roles") or [], old.get("Roles") or [])
        return Outcome(name, dict(r.attributes))

    async def delete(self, r: ResourceRequest) -> None:
        name = str(r.physical_id)
        await self._roles(r, name, [], r.properties.get("Roles") or [])
        await ignore_missing(r.client("iam", "DeleteInstanceProfile", {"InstanceProfileName": name}))


class ServiceLinkedRole(Handler):
    type = "AWS::IAM::ServiceLinkedRole"
    replace_on = frozenset({"AWSServiceName", "CustomSuffix"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        role = (await r.client("iam", "CreateServiceLinkedRole", {
            "AWSServiceName": p["AWSServiceName"], "CustomSuffix": p.get("CustomSuffix"),
            "Description": p.get("Description")}))["Role"]
        r.created = role["RoleName"]
        return Outcome(role["RoleName"])

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        if r.properties.get("Description") != old.get("Description"):
            await r.client("iam", "UpdateRoleDescription", {"RoleName": str(r.physical_id),
                                                            "Description": r.properties.get("Description") or ""})
        return Outcome(str(r.physical_id))

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("iam", "DeleteServiceLinkedRole", {"RoleName": str(r.physical_id)}))


class ServerCertificate(Handler):
    type = "AWS::IAM::ServerCertificate"
    attributes = ("Arn",)
    replace_on = frozenset({"ServerCertificateName", "CertificateBody", "CertificateChain", "PrivateKey"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        name = r.name("ServerCertificateName", 128)
        meta = (await r.client("iam", "UploadServerCertificate", {
            "ServerCertificateName": name, "Path": p.get("Path"), "CertificateBody": p.get("CertificateBody"),
            "PrivateKey": p.get("PrivateKey"), "CertificateChain": p.get("CertificateChain"),
            "Tags": tags_list(p.get("Tags")) or None}))["ServerCertificateMetadata"]
        r.created = name
        return Outcome(name, {"Arn": meta["Arn"]})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        name = str(r.physical_id)
        if r.properties.get("Path") != old.get("Path"):
            await r.client("iam", "UpdateServerCertificate", {"ServerCertificateName": name,
                                                              "NewPath": r.properties.get("Path") or "/"})
        meta = (await r.client("iam", "GetServerCertificate", {"ServerCertificateName": name}))["ServerCertificate"]
        return Outcome(name, {"Arn": meta["ServerCertificateMetadata"]["Arn"]})

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("iam", "DeleteServerCertificate", {"ServerCertificateName": str(r.physical_id)}))


HANDLERS: tuple[type[Handler], ...] = (User, Group, AccessKey, UserToGroupAddition, InstanceProfile, ServiceLinkedRole,
                                       ServerCertificate)
