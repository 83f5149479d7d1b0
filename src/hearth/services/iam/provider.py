"""The IAM provider: one method per IAM operation Hearth serves (query protocol, a global service).

It owns IAM's rules as an account sees them: names unique per account and kind, what must be removed
before an entity can be deleted (DeleteConflict), quotas (LimitExceeded), document validation
(MalformedPolicyDocument, via `documents`), policy versions, and AWS's error texts. Entities are
stored by `IamStore` in one transaction per operation. Policy decisions (SimulatePrincipalPolicy,
SimulateCustomPolicy) are made by the one evaluator in `hearth.aws.authz`. It never sees another
account's entities: every name is looked up in the caller's account.

Policy documents travel URL-encoded inside IAM's XML answers, as AWS sends them (botocore decodes).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from sqlite3 import Connection
from typing import Any
from urllib.parse import quote

from hearth.aws.authz import evaluate as ev
from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.iam import documents, managed
from hearth.services.iam.principals import policies_of_arn
from hearth.services.iam.store import GROUP, INSTANCE_PROFILE, POLICY, ROLE, USER, IamStore, new_id

# IAM's default quotas (IAM User Guide, "IAM and AWS STS quotas").
ACCESS_KEYS_PER_USER = 2
MANAGED_POLICIES_PER_ENTITY = 10  # PoliciesPerRole / PoliciesPerUser / PoliciesPerGroup defaults
POLICY_VERSIONS = 5
MANAGED_POLICY_SIZE = 6144
INLINE_SIZE = {ROLE: 10240, USER: 2048, GROUP: 5120}

_KIND_TITLE = {USER: "user", ROLE: "role", GROUP: "group"}


def no_such_entity(message: str) -> AwsError:
    return AwsError("NoSuchEntity", message, 404)


def already_exists(message: str) -> AwsError:
    return AwsError("EntityAlreadyExists", message, 409)


def delete_conflict(message: str) -> AwsError:
    return AwsError("DeleteConflict", message, 409)


def limit_exceeded(message: str) -> AwsError:
    return AwsError("LimitExceeded", message, 409)


def _now() -> float:
    return time.time()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _encoded(doc: str) -> str:
    return quote(doc, safe="")


def _page(items: list[Any], params: dict[str, Any], key: str) -> dict[str, Any]:
    start = int(params["Marker"]) if str(params.get("Marker") or "").isdigit() else 0
    size = int(params.get("MaxItems") or 100)
    page = items[start:start + size]
    out: dict[str, Any] = {key: page, "IsTruncated": start + size < len(items)}
    if out["IsTruncated"]:
        out["Marker"] = str(start + size)
    return out


def _tags(params: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": t["Key"], "Value": t.get("Value", "")} for t in params.get("Tags") or []]


def _merge_tags(current: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    merged = {t["Key"]: t["Value"] for t in current}
    merged.update({t["Key"]: t["Value"] for t in new})
    if len(merged) > 50:
        raise limit_exceeded("The number of tags has reached the maximum limit.")
    return [{"Key": k, "Value": v} for k, v in merged.items()]


def _path(params: dict[str, Any]) -> str:
    path = params.get("Path") or "/"
    if not (path.startswith("/") and path.endswith("/")):
        raise AwsError("ValidationError", "The specified value for path is invalid. It must begin and end with / "
                       "and contain only alphanumeric characters and/or / characters.", 400)
    return str(path)


def parse_policy_arn(arn: str) -> tuple[str, str]:
    """(account or "aws", policy name) of a policy ARN; ValidationError as IAM words it otherwise."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam" or "/" not in parts[5]:
        raise AwsError("ValidationError", "Invalid ARN:  Could not be parsed!", 400)
    return parts[4], parts[5].rsplit("/", 1)[1]


class IamProvider:
    def __init__(self, store: IamStore, *, on_role_deleted: Callable[[str], None] | None = None) -> None:
        self._store = store
        # STS forgets a deleted role's sessions (they must stop working at once).
        self._on_role_deleted = on_role_deleted or (lambda arn: None)

    # -- shapes -----------------------------------------------------------------------------------

    @staticmethod
    def _arn(account: str, kind: str, path: str, name: str) -> str:
        return f"arn:aws:iam::{account}:{kind}{path}{name}"

    def _user_out(self, u: dict[str, Any], *, tags: bool = True) -> dict[str, Any]:
        out = {k: u[k] for k in ("Path", "UserName", "UserId", "Arn")}
        out["CreateDate"] = _dt(u["created"])
        if u.get("boundary"):
            out["PermissionsBoundary"] = {"PermissionsBoundaryType": "Policy",
                                          "PermissionsBoundaryArn": u["boundary"]}
        if tags and u.get("Tags"):
            out["Tags"] = u["Tags"]
        return out

    def _role_out(self, r: dict[str, Any], *, full: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {k: r[k] for k in ("Path", "RoleName", "RoleId", "Arn")}
        out["CreateDate"] = _dt(r["created"])
        out["AssumeRolePolicyDocument"] = _encoded(r["trust"])
        if r.get("Description"):
            out["Description"] = r["Description"]
        if full:
            out["MaxSessionDuration"] = r.get("MaxSessionDuration", 3600)
            out["RoleLastUsed"] = {}
        if r.get("boundary"):
            out["PermissionsBoundary"] = {"PermissionsBoundaryType": "Policy",
                                          "PermissionsBoundaryArn": r["boundary"]}
        if r.get("Tags"):
            out["Tags"] = r["Tags"]
        return out

    def _group_out(self, g: dict[str, Any]) -> dict[str, Any]:
        return {"Path": g["Path"], "GroupName": g["GroupName"], "GroupId": g["GroupId"], "Arn": g["Arn"],
                "CreateDate": _dt(g["created"])}

    def _policy_out(self, conn_or_none: Connection | None, account: str, p: dict[str, Any]) -> dict[str, Any]:
        attachments = self._attachment_count(account, p["Arn"])
        out = {"PolicyName": p["PolicyName"], "PolicyId": p["PolicyId"], "Arn": p["Arn"], "Path": p["Path"],
               "DefaultVersionId": p["DefaultVersionId"], "AttachmentCount": attachments,
               "PermissionsBoundaryUsageCount": 0, "IsAttachable": True, "CreateDate": _dt(p["created"]),
               "UpdateDate": _dt(p["updated"])}
        if p.get("Description"):
            out["Description"] = p["Description"]
        if p.get("Tags"):
            out["Tags"] = p["Tags"]
        return out

    @staticmethod
    def _aws_policy_out(m: managed.ManagedPolicy, attachments: int) -> dict[str, Any]:
        return {"PolicyName": m.name, "PolicyId": "ANPA" + m.name.upper()[:17].ljust(17, "X"), "Arn": m.arn,
                "Path": m.path, "DefaultVersionId": m.default_version, "AttachmentCount": attachments,
                "PermissionsBoundaryUsageCount": 0, "IsAttachable": True, "CreateDate": m.create_date,
                "UpdateDate": m.update_date}

    def _profile_out(self, account: str, p: dict[str, Any]) -> dict[str, Any]:
        roles = [self._role_out(r, full=False) for name in p["roles"]
                 if (r := self._store.get(account, ROLE, name)) is not None]
        out = {"Path": p["Path"], "InstanceProfileName": p["InstanceProfileName"],
               "InstanceProfileId": p["InstanceProfileId"], "Arn": p["Arn"], "CreateDate": _dt(p["created"]),
               "Roles": roles}
        if p.get("Tags"):
            out["Tags"] = p["Tags"]
        return out

    def _attachment_count(self, account: str, arn: str) -> int:
        return sum(arn in e.get("attached", []) for kind in (USER, ROLE, GROUP)
                   for e in self._store.entities(account, kind))

    # -- lookups ----------------------------------------------------------------------------------

    @staticmethod
    def _need(conn: Connection, account: str, kind: str, name: str) -> dict[str, Any]:
        found = IamStore.read(conn, account, kind, name)
        if found is None:
            if kind == INSTANCE_PROFILE:
                raise no_such_entity(f"Instance Profile {name} cannot be found.")
            raise no_such_entity(f"The {_KIND_TITLE[kind]} with name {name} cannot be found.")
        return found

    def _get(self, account: str, kind: str, name: str) -> dict[str, Any]:
        with self._store.tx() as conn:
            return self._need(conn, account, kind, name)

    # -- users ------------------------------------------------------------------------------------

    def create_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, path = params["UserName"], _path(params)
        user = {"UserName": name, "UserId": new_id(USER), "Path": path, "created": _now(),
                "Arn": self._arn(ctx.account_id, "user", path, name), "Tags": _tags(params), "inline": {},
                "attached": [], "groups": [], "boundary": params.get("PermissionsBoundary")}
        with self._store.tx() as conn:
            if not IamStore.insert(conn, ctx.account_id, USER, name, user):
                raise already_exists(f"User with name {name} already exists.")
        return {"User": self._user_out(user)}

    def get_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("UserName")
        if not name:
            principal = ctx.principal
            if principal.kind == "user":
                name = principal.arn.rsplit("/", 1)[1]
            else:
                return {"User": {"UserId": ctx.account_id, "Arn": f"arn:aws:iam::{ctx.account_id}:root",
                                 "CreateDate": _dt(0), "Path": "/", "UserName": ""}}
        return {"User": self._user_out(self._get(ctx.account_id, USER, name))}

    def list_users(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("PathPrefix") or "/"
        users = [self._user_out(u, tags=False) for u in self._store.entities(ctx.account_id, USER)
                 if u["Path"].startswith(prefix)]
        return _page(users, params, "Users")

    def update_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("NewUserName") and params["NewUserName"] != params["UserName"]:
            raise AwsError("InvalidInput", "Renaming users is not supported by Hearth.", 400)
        with self._store.tx() as conn:
            user = self._need(conn, ctx.account_id, USER, params["UserName"])
            if params.get("NewPath"):
                user["Path"] = _path({"Path": params["NewPath"]})
                user["Arn"] = self._arn(ctx.account_id, "user", user["Path"], user["UserName"])
            IamStore.write(conn, ctx.account_id, USER, user["UserName"], user)
        return {}

    def delete_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["UserName"]
        with self._store.tx() as conn:
            user = self._need(conn, ctx.account_id, USER, name)
            if IamStore.count_keys(conn, ctx.account_id, name):
                raise delete_conflict("Cannot delete entity, must delete access keys first.")
            if user["inline"]:
                raise delete_conflict("Cannot delete entity, must delete policies first.")
            if user["attached"]:
                raise delete_conflict("Cannot delete entity, must detach all policies first.")
            if user["groups"]:
                raise delete_conflict("Cannot delete entity, must remove users from group first.")
            IamStore.remove(conn, ctx.account_id, USER, name)
        return {}

    # -- access keys ------------------------------------------------------------------------------

    def _key_user(self, ctx: RequestContext, params: dict[str, Any]) -> str:
        name = params.get("UserName")
        if name:
            return str(name)
        if ctx.principal.kind == "user":
            return ctx.principal.arn.rsplit("/", 1)[1]
        raise AwsError("ValidationError", "Must specify userName when calling with non-User credentials", 400)

    def create_access_key(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._key_user(ctx, params)
        with self._store.tx() as conn:
            self._need(conn, ctx.account_id, USER, name)
            if IamStore.count_keys(conn, ctx.account_id, name) >= ACCESS_KEYS_PER_USER:
                raise limit_exceeded(f"Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}")
            key = IamStore.add_key(conn, ctx.account_id, name)
        return {"AccessKey": {"UserName": name, "AccessKeyId": key.access_key_id, "Status": key.status,
                              "SecretAccessKey": key.secret, "CreateDate": _dt(key.created)}}

    def list_access_keys(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._key_user(ctx, params)
        self._get(ctx.account_id, USER, name)
        keys = [{"UserName": k.user_name, "AccessKeyId": k.access_key_id, "Status": k.status,
                 "CreateDate": _dt(k.created)} for k in self._store.keys_of(ctx.account_id, name)]
        return _page(keys, params, "AccessKeyMetadata")

    def _own_key(self, ctx: RequestContext, params: dict[str, Any]) -> str:
        name = self._key_user(ctx, params)
        key = self._store.key(params["AccessKeyId"])
        if key is None or key.account != ctx.account_id or key.user_name != name:
            raise no_such_entity(f"The Access Key with id {params['AccessKeyId']} cannot be found.")
        return key.access_key_id

    def update_access_key(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key_id = self._own_key(ctx, params)
        with self._store.tx() as conn:
            IamStore.set_key_status(conn, key_id, params["Status"])
        return {}

    def delete_access_key(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key_id = self._own_key(ctx, params)
        with self._store.tx() as conn:
            IamStore.delete_key(conn, key_id)
        return {}

    def get_access_key_last_used(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = self._store.key(params["AccessKeyId"])
        if key is None or key.account != ctx.account_id:
            raise AwsError("AccessDenied", "Access denied", 403)
        return {"UserName": key.user_name,
                "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}}

    # -- groups -----------------------------------------------------------------------------------

    def create_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, path = params["GroupName"], _path(params)
        group = {"GroupName": name, "GroupId": new_id(GROUP), "Path": path, "created": _now(),
                 "Arn": self._arn(ctx.account_id, "group", path, name), "inline": {}, "attached": []}
        with self._store.tx() as conn:
            if not IamStore.insert(conn, ctx.account_id, GROUP, name, group):
                raise already_exists(f"Group with name {name} already exists.")
        return {"Group": self._group_out(group)}

    def get_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = self._get(ctx.account_id, GROUP, params["GroupName"])
        users = [self._user_out(u, tags=False) for u in self._store.entities(ctx.account_id, USER)
                 if group["GroupName"] in u["groups"]]
        out = _page(users, params, "Users")
        out["Group"] = self._group_out(group)
        return out

    def list_groups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("PathPrefix") or "/"
        return _page([self._group_out(g) for g in self._store.entities(ctx.account_id, GROUP)
                      if g["Path"].startswith(prefix)], params, "Groups")

    def list_groups_for_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        user = self._get(ctx.account_id, USER, params["UserName"])
        groups = [self._group_out(g) for name in user["groups"]
                  if (g := self._store.get(ctx.account_id, GROUP, name)) is not None]
        return _page(groups, params, "Groups")

    def add_user_to_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._store.tx() as conn:
            self._need(conn, ctx.account_id, GROUP, params["GroupName"])
            user = self._need(conn, ctx.account_id, USER, params["UserName"])
            if params["GroupName"] not in user["groups"]:
                user["groups"].append(params["GroupName"])
                IamStore.write(conn, ctx.account_id, USER, user["UserName"], user)
        return {}

    def remove_user_from_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._store.tx() as conn:
            self._need(conn, ctx.account_id, GROUP, params["GroupName"])
            user = self._need(conn, ctx.account_id, USER, params["UserName"])
            if params["GroupName"] in user["groups"]:
                user["groups"].remove(params["GroupName"])
                IamStore.write(conn, ctx.account_id, USER, user["UserName"], user)
        return {}

    def delete_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["GroupName"]
        with self._store.tx() as conn:
            group = self._need(conn, ctx.account_id, GROUP, name)
            if any(name in u["groups"] for u in IamStore.all_of(conn, ctx.account_id, USER)):
                raise delete_conflict("Cannot delete entity, must remove users from group first.")
            if group["inline"]:
                raise delete_conflict("Cannot delete entity, must delete policies first.")
            if group["attached"]:
                raise delete_conflict("Cannot delete entity, must detach all policies first.")
            IamStore.remove(conn, ctx.account_id, GROUP, name)
        return {}

    # -- roles ------------------------------------------------------------------------------------

    def create_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, path = params["RoleName"], _path(params)
        trust = params["AssumeRolePolicyDocument"]
        documents.validate_trust(trust)
        if params.get("PermissionsBoundary"):
            self._need_policy(ctx.account_id, params["PermissionsBoundary"])
        role = {"RoleName": name, "RoleId": new_id(ROLE), "Path": path, "created": _now(),
                "Arn": self._arn(ctx.account_id, "role", path, name), "trust": trust,
                "Description": params.get("Description") or "",
                "MaxSessionDuration": params.get("MaxSessionDuration") or 3600, "Tags": _tags(params),
                "inline": {}, "attached": [], "boundary": params.get("PermissionsBoundary")}
        return {"Role": self._insert_role(ctx.account_id, role)}

    def _insert_role(self, account: str, role: dict[str, Any]) -> dict[str, Any]:
        with self._store.tx() as conn:
            if not IamStore.insert(conn, account, ROLE, role["RoleName"], role):
                raise already_exists(f"Role with name {role['RoleName']} already exists.")
        out = self._role_out(role, full=False)
        return out

    def get_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"Role": self._role_out(self._get(ctx.account_id, ROLE, params["RoleName"]))}

    def list_roles(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("PathPrefix") or "/"
        roles = []
        for r in self._store.entities(ctx.account_id, ROLE):
            if r["Path"].startswith(prefix):
                out = self._role_out(r)
                out.pop("RoleLastUsed", None)
                out.pop("Tags", None)
                out.pop("PermissionsBoundary", None)
                roles.append(out)
        return _page(roles, params, "Roles")

    def update_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._store.tx() as conn:
            role = self._need(conn, ctx.account_id, ROLE, params["RoleName"])
            if "Description" in params:
                role["Description"] = params["Description"]
            if params.get("MaxSessionDuration"):
                role["MaxSessionDuration"] = params["MaxSessionDuration"]
            IamStore.write(conn, ctx.account_id, ROLE, role["RoleName"], role)
        return {}

    def update_role_description(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.update_role(ctx, params)
        return {"Role": self._role_out(self._get(ctx.account_id, ROLE, params["RoleName"]))}

    def update_assume_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        documents.validate_trust(params["PolicyDocument"])
        with self._store.tx() as conn:
            role = self._need(conn, ctx.account_id, ROLE, params["RoleName"])
            role["trust"] = params["PolicyDocument"]
            IamStore.write(conn, ctx.account_id, ROLE, role["RoleName"], role)
        return {}

    def delete_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["RoleName"]
        with self._store.tx() as conn:
            role = self._need(conn, ctx.account_id, ROLE, name)
            if any(name in p["roles"] for p in IamStore.all_of(conn, ctx.account_id, INSTANCE_PROFILE)):
                raise delete_conflict("Cannot delete entity, must remove roles from instance profile first.")
            if role["inline"]:
                raise delete_conflict("Cannot delete entity, must delete policies first.")
            if role["attached"]:
                raise delete_conflict("Cannot delete entity, must detach all policies first.")
            IamStore.remove(conn, ctx.account_id, ROLE, name)
        self._on_role_deleted(role["Arn"])
        return {}

    def put_role_permissions_boundary(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set_boundary(ctx, ROLE, params["RoleName"], params["PermissionsBoundary"])

    def delete_role_permissions_boundary(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set_boundary(ctx, ROLE, params["RoleName"], None)

    def put_user_permissions_boundary(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set_boundary(ctx, USER, params["UserName"], params["PermissionsBoundary"])

    def delete_user_permissions_boundary(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set_boundary(ctx, USER, params["UserName"], None)

    def _set_boundary(self, ctx: RequestContext, kind: str, name: str, arn: str | None) -> dict[str, Any]:
        if arn is not None:
            self._need_policy(ctx.account_id, arn)
        with self._store.tx() as conn:
            entity = self._need(conn, ctx.account_id, kind, name)
            entity["boundary"] = arn
            IamStore.write(conn, ctx.account_id, kind, name, entity)
        return {}

    # -- service-linked roles ---------------------------------------------------------------------

    def create_service_linked_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        service = params["AWSServiceName"]
        prefix = service.split(".")[0]
        label = {"ecs": "ECS", "lambda": "Lambda", "autoscaling": "AutoScaling",
                 "elasticloadbalancing": "ElasticLoadBalancing", "batch": "Batch"}.get(
            prefix, prefix[:1].upper() + prefix[1:])
        name = f"AWSServiceRoleFor{label}"
        if params.get("CustomSuffix"):
            name += f"_{params['CustomSuffix']}"
        path = f"/aws-service-role/{service}/"
        trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})
        role: dict[str, Any] = {
                "RoleName": name, "RoleId": new_id(ROLE), "Path": path, "created": _now(),
                "Arn": self._arn(ctx.account_id, "role", path, name), "trust": trust,
                "Description": params.get("Description") or "", "MaxSessionDuration": 3600, "Tags": [],
                "inline": {}, "attached": [], "boundary": None, "service_linked": True}
        with self._store.tx() as conn:
            if not IamStore.insert(conn, ctx.account_id, ROLE, name, role):
                raise AwsError("InvalidInput", f"Service role name {name} has been taken in this account, please "
                               "try a different suffix.", 400)
        return {"Role": self._role_out(role, full=False)}

    def delete_service_linked_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._store.tx() as conn:
            role = self._need(conn, ctx.account_id, ROLE, params["RoleName"])
            IamStore.remove(conn, ctx.account_id, ROLE, role["RoleName"])
        self._on_role_deleted(role["Arn"])
        return {"DeletionTaskId": f"task{role['Path']}{role['RoleName']}/{uuid.uuid4()}"}

    def get_service_linked_role_deletion_status(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"Status": "SUCCEEDED"}

    # -- inline policies --------------------------------------------------------------------------

    def _put_inline(self, ctx: RequestContext, kind: str, name: str, policy_name: str, doc: str) -> dict[str, Any]:
        documents.validate_permissions(doc)
        limit = INLINE_SIZE[kind]
        with self._store.tx() as conn:
            entity = self._need(conn, ctx.account_id, kind, name)
            inline = dict(entity["inline"])
            inline[policy_name] = doc
            size = sum(len("".join(d.split())) for d in inline.values())
            if size > limit:
                raise limit_exceeded(f"Maximum policy size of {limit} bytes exceeded for {_KIND_TITLE[kind]} {name}")
            entity["inline"] = inline
            IamStore.write(conn, ctx.account_id, kind, name, entity)
        return {}

    def _get_inline(self, ctx: RequestContext, kind: str, name: str, policy_name: str) -> str:
        entity = self._get(ctx.account_id, kind, name)
        doc = entity["inline"].get(policy_name)
        if doc is None:
            raise no_such_entity(f"The {_KIND_TITLE[kind]} policy with name {policy_name} cannot be found.")
        return str(doc)

    def _delete_inline(self, ctx: RequestContext, kind: str, name: str, policy_name: str) -> dict[str, Any]:
        with self._store.tx() as conn:
            entity = self._need(conn, ctx.account_id, kind, name)
            if policy_name not in entity["inline"]:
                raise no_such_entity(f"The {_KIND_TITLE[kind]} policy with name {policy_name} cannot be found.")
            del entity["inline"][policy_name]
            IamStore.write(conn, ctx.account_id, kind, name, entity)
        return {}

    def _list_inline(self, ctx: RequestContext, kind: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        return _page(sorted(self._get(ctx.account_id, kind, name)["inline"]), params, "PolicyNames")

    def put_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._put_inline(ctx, ROLE, params["RoleName"], params["PolicyName"], params["PolicyDocument"])

    def get_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._get_inline(ctx, ROLE, params["RoleName"], params["PolicyName"])
        return {"RoleName": params["RoleName"], "PolicyName": params["PolicyName"], "PolicyDocument": _encoded(doc)}

    def delete_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._delete_inline(ctx, ROLE, params["RoleName"], params["PolicyName"])

    def list_role_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_inline(ctx, ROLE, params["RoleName"], params)

    def put_user_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._put_inline(ctx, USER, params["UserName"], params["PolicyName"], params["PolicyDocument"])

    def get_user_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._get_inline(ctx, USER, params["UserName"], params["PolicyName"])
        return {"UserName": params["UserName"], "PolicyName": params["PolicyName"], "PolicyDocument": _encoded(doc)}

    def delete_user_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._delete_inline(ctx, USER, params["UserName"], params["PolicyName"])

    def list_user_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_inline(ctx, USER, params["UserName"], params)

    def put_group_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._put_inline(ctx, GROUP, params["GroupName"], params["PolicyName"], params["PolicyDocument"])

    def get_group_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._get_inline(ctx, GROUP, params["GroupName"], params["PolicyName"])
        return {"GroupName": params["GroupName"], "PolicyName": params["PolicyName"],
                "PolicyDocument": _encoded(doc)}

    def delete_group_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._delete_inline(ctx, GROUP, params["GroupName"], params["PolicyName"])

    def list_group_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_inline(ctx, GROUP, params["GroupName"], params)

    # -- managed policies -------------------------------------------------------------------------

    def _need_policy(self, account: str, arn: str, *,
                     attachable: bool = False) -> dict[str, Any] | managed.ManagedPolicy:
        owner, name = parse_policy_arn(arn)
        if owner == "aws":
            found = managed.get(arn)
            if found is not None:
                return found
        elif owner == account:
            policy = self._store.get(account, POLICY, name)
            if policy is not None and policy["Arn"] == arn:
                return policy
        if attachable:
            raise no_such_entity(f"Policy {arn} does not exist or is not attachable.")
        raise no_such_entity(f"Policy {arn} was not found.")

    def create_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, path, doc = params["PolicyName"], _path(params), params["PolicyDocument"]
        documents.validate_permissions(doc)
        if len("".join(doc.split())) > MANAGED_POLICY_SIZE:
            raise limit_exceeded(f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_SIZE}")
        now = _now()
        policy = {"PolicyName": name, "PolicyId": new_id(POLICY), "Path": path, "created": now, "updated": now,
                  "Arn": self._arn(ctx.account_id, "policy", path, name), "DefaultVersionId": "v1",
                  "Description": params.get("Description") or "", "Tags": _tags(params), "next": 2,
                  "versions": {"v1": {"doc": doc, "created": now}}}
        with self._store.tx() as conn:
            if not IamStore.insert(conn, ctx.account_id, POLICY, name, policy):
                raise already_exists(f"A policy called {name} already exists. Duplicate names are not allowed.")
        return {"Policy": self._policy_out(None, ctx.account_id, policy)}

    def get_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._need_policy(ctx.account_id, params["PolicyArn"])
        if isinstance(found, managed.ManagedPolicy):
            return {"Policy": self._aws_policy_out(found, self._attachment_count(ctx.account_id, found.arn))}
        return {"Policy": self._policy_out(None, ctx.account_id, found)}

    def list_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        scope = params.get("Scope") or "All"
        prefix = params.get("PathPrefix") or "/"
        out: list[dict[str, Any]] = []
        attached: set[str] = {arn for kind in (USER, ROLE, GROUP) for e in self._store.entities(ctx.account_id, kind)
                              for arn in e.get("attached", [])}
        if scope in ("All", "AWS"):
            for m in managed.policies().values():
                if m.path.startswith(prefix) and (not params.get("OnlyAttached") or m.arn in attached):
                    out.append(self._aws_policy_out(m, 1 if m.arn in attached else 0))
        if scope in ("All", "Local"):
            for p in self._store.entities(ctx.account_id, POLICY):
                if p["Path"].startswith(prefix) and (not params.get("OnlyAttached") or p["Arn"] in attached):
                    item = self._policy_out(None, ctx.account_id, p)
                    item.pop("Tags", None)
                    item.pop("Description", None)
                    out.append(item)
        return _page(out, params, "Policies")

    def delete_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["PolicyArn"]
        owner, name = parse_policy_arn(arn)
        if owner == "aws":
            raise AwsError("UnmodifiableEntity", "Cannot delete policies outside your own account.", 400)
        policy = self._need_policy(ctx.account_id, arn)
        assert isinstance(policy, dict)
        if self._attachment_count(ctx.account_id, arn):
            raise delete_conflict("Cannot delete a policy attached to entities.")
        if len(policy["versions"]) > 1:
            raise delete_conflict("This policy has more than one version. Before you delete a policy, you must "
                                  "delete the policy's versions. The default version is deleted with the policy.")
        with self._store.tx() as conn:
            IamStore.remove(conn, ctx.account_id, POLICY, name)
        return {}

    def _local_policy(self, ctx: RequestContext, arn: str) -> dict[str, Any]:
        owner, _ = parse_policy_arn(arn)
        if owner == "aws":
            raise AwsError("UnmodifiableEntity", "Cannot modify policies outside your own account.", 400)
        found = self._need_policy(ctx.account_id, arn)
        assert isinstance(found, dict)
        return found

    def create_policy_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        doc = params["PolicyDocument"]
        documents.validate_permissions(doc)
        policy = self._local_policy(ctx, params["PolicyArn"])
        if len(policy["versions"]) >= POLICY_VERSIONS:
            raise limit_exceeded("A managed policy can have up to 5 versions. Before you create a new version, you "
                                 "must delete an existing version.")
        now = _now()
        version = f"v{policy['next']}"
        policy["next"] += 1
        policy["versions"][version] = {"doc": doc, "created": now}
        policy["updated"] = now
        if params.get("SetAsDefault"):
            policy["DefaultVersionId"] = version
        with self._store.tx() as conn:
            IamStore.write(conn, ctx.account_id, POLICY, policy["PolicyName"], policy)
        return {"PolicyVersion": {"VersionId": version, "IsDefaultVersion": policy["DefaultVersionId"] == version,
                                  "CreateDate": _dt(now)}}

    def get_policy_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn, version = params["PolicyArn"], params["VersionId"]
        found = self._need_policy(ctx.account_id, arn)
        if isinstance(found, managed.ManagedPolicy):
            if version != found.default_version:
                raise no_such_entity(f"Policy {arn} version {version} does not exist or is not attachable.")
            return {"PolicyVersion": {"Document": _encoded(found.document), "VersionId": version,
                                      "IsDefaultVersion": True, "CreateDate": found.update_date}}
        entry = found["versions"].get(version)
        if entry is None:
            raise no_such_entity(f"Policy {arn} version {version} does not exist or is not attachable.")
        return {"PolicyVersion": {"Document": _encoded(entry["doc"]), "VersionId": version,
                                  "IsDefaultVersion": found["DefaultVersionId"] == version,
                                  "CreateDate": _dt(entry["created"])}}

    def list_policy_versions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._need_policy(ctx.account_id, params["PolicyArn"])
        if isinstance(found, managed.ManagedPolicy):
            versions = [{"VersionId": found.default_version, "IsDefaultVersion": True,
                         "CreateDate": found.update_date}]
        else:
            versions = [{"VersionId": v, "IsDefaultVersion": found["DefaultVersionId"] == v,
                         "CreateDate": _dt(e["created"])}
                        for v, e in sorted(found["versions"].items(), key=lambda kv: -int(kv[0][1:]))]
        return _page(versions, params, "Versions")

    def delete_policy_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._local_policy(ctx, params["PolicyArn"])
        version = params["VersionId"]
        if version not in policy["versions"]:
            raise no_such_entity(f"Policy {params['PolicyArn']} version {version} does not exist or is not "
                                 "attachable.")
        if version == policy["DefaultVersionId"]:
            raise delete_conflict("Cannot delete the default version of a policy.")
        del policy["versions"][version]
        with self._store.tx() as conn:
            IamStore.write(conn, ctx.account_id, POLICY, policy["PolicyName"], policy)
        return {}

    def set_default_policy_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._local_policy(ctx, params["PolicyArn"])
        version = params["VersionId"]
        if version not in policy["versions"]:
            raise no_such_entity(f"Policy {params['PolicyArn']} version {version} does not exist or is not "
                                 "attachable.")
        policy["DefaultVersionId"] = version
        with self._store.tx() as conn:
            IamStore.write(conn, ctx.account_id, POLICY, policy["PolicyName"], policy)
        return {}

    # -- attach / detach --------------------------------------------------------------------------

    def _attach(self, ctx: RequestContext, kind: str, name: str, arn: str) -> dict[str, Any]:
        self._need_policy(ctx.account_id, arn, attachable=True)
        with self._store.tx() as conn:
            entity = self._need(conn, ctx.account_id, kind, name)
            if arn not in entity["attached"]:
                if len(entity["attached"]) >= MANAGED_POLICIES_PER_ENTITY:
                    title = {ROLE: "PoliciesPerRole", USER: "PoliciesPerUser", GROUP: "PoliciesPerGroup"}[kind]
                    raise limit_exceeded(f"Cannot exceed quota for {title}: {MANAGED_POLICIES_PER_ENTITY}")
                entity["attached"].append(arn)
                IamStore.write(conn, ctx.account_id, kind, name, entity)
        return {}

    def _detach(self, ctx: RequestContext, kind: str, name: str, arn: str) -> dict[str, Any]:
        parse_policy_arn(arn)
        with self._store.tx() as conn:
            entity = self._need(conn, ctx.account_id, kind, name)
            if arn not in entity["attached"]:
                raise no_such_entity(f"Policy {arn} was not found.")
            entity["attached"].remove(arn)
            IamStore.write(conn, ctx.account_id, kind, name, entity)
        return {}

    def _list_attached(self, ctx: RequestContext, kind: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        entity = self._get(ctx.account_id, kind, name)
        prefix = params.get("PathPrefix") or "/"
        out = []
        for arn in entity["attached"]:
            path = "/" + arn.split(":", 5)[5].split("/", 1)[1].rpartition("/")[0]
            path = path if path.endswith("/") else path + "/"
            if path.startswith(prefix):
                out.append({"PolicyName": arn.rsplit("/", 1)[1], "PolicyArn": arn})
        return _page(out, params, "AttachedPolicies")

    def attach_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._attach(ctx, ROLE, params["RoleName"], params["PolicyArn"])

    def detach_role_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._detach(ctx, ROLE, params["RoleName"], params["PolicyArn"])

    def list_attached_role_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_attached(ctx, ROLE, params["RoleName"], params)

    def attach_user_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._attach(ctx, USER, params["UserName"], params["PolicyArn"])

    def detach_user_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._detach(ctx, USER, params["UserName"], params["PolicyArn"])

    def list_attached_user_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_attached(ctx, USER, params["UserName"], params)

    def attach_group_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._attach(ctx, GROUP, params["GroupName"], params["PolicyArn"])

    def detach_group_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._detach(ctx, GROUP, params["GroupName"], params["PolicyArn"])

    def list_attached_group_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._list_attached(ctx, GROUP, params["GroupName"], params)

    def list_entities_for_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["PolicyArn"]
        self._need_policy(ctx.account_id, arn)
        out: dict[str, Any] = {"PolicyGroups": [], "PolicyUsers": [], "PolicyRoles": [], "IsTruncated": False}
        for g in self._store.entities(ctx.account_id, GROUP):
            if arn in g["attached"]:
                out["PolicyGroups"].append({"GroupName": g["GroupName"], "GroupId": g["GroupId"]})
        for u in self._store.entities(ctx.account_id, USER):
            if arn in u["attached"]:
                out["PolicyUsers"].append({"UserName": u["UserName"], "UserId": u["UserId"]})
        for r in self._store.entities(ctx.account_id, ROLE):
            if arn in r["attached"]:
                out["PolicyRoles"].append({"RoleName": r["RoleName"], "RoleId": r["RoleId"]})
        return out

    # -- instance profiles ------------------------------------------------------------------------

    def create_instance_profile(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, path = params["InstanceProfileName"], _path(params)
        profile = {"InstanceProfileName": name, "InstanceProfileId": new_id(INSTANCE_PROFILE), "Path": path,
                   "created": _now(), "Arn": self._arn(ctx.account_id, "instance-profile", path, name),
                   "roles": [], "Tags": _tags(params)}
        with self._store.tx() as conn:
            if not IamStore.insert(conn, ctx.account_id, INSTANCE_PROFILE, name, profile):
                raise already_exists(f"Instance Profile {name} already exists.")
        return {"InstanceProfile": self._profile_out(ctx.account_id, profile)}

    def get_instance_profile(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        profile = self._get(ctx.account_id, INSTANCE_PROFILE, params["InstanceProfileName"])
        return {"InstanceProfile": self._profile_out(ctx.account_id, profile)}

    def list_instance_profiles(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("PathPrefix") or "/"
        return _page([self._profile_out(ctx.account_id, p)
                      for p in self._store.entities(ctx.account_id, INSTANCE_PROFILE) if p["Path"].startswith(prefix)],
                     params, "InstanceProfiles")

    def list_instance_profiles_for_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["RoleName"]
        self._get(ctx.account_id, ROLE, name)
        return _page([self._profile_out(ctx.account_id, p)
                      for p in self._store.entities(ctx.account_id, INSTANCE_PROFILE) if name in p["roles"]],
                     params, "InstanceProfiles")

    def add_role_to_instance_profile(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._store.tx() as conn:
            profile = self._need(conn, ctx.account_id, INSTANCE_PROFILE, params["InstanceProfileName"])
            self._need(conn, ctx.account_id, ROLE, params["RoleName"])
            if profile["roles"]:
                raise limit_exceeded("Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1")
            profile["roles"].append(params["RoleName"])
            IamStore.write(conn, ctx.account_id, INSTANCE_PROFILE, profile["InstanceProfileName"], profile)
        return {}

    def remove_role_from_instance_profile(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._store.tx() as conn:
            profile = self._need(conn, ctx.account_id, INSTANCE_PROFILE, params["InstanceProfileName"])
            self._need(conn, ctx.account_id, ROLE, params["RoleName"])
            if params["RoleName"] in profile["roles"]:
                profile["roles"].remove(params["RoleName"])
            IamStore.write(conn, ctx.account_id, INSTANCE_PROFILE, profile["InstanceProfileName"], profile)
        return {}

    def delete_instance_profile(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._store.tx() as conn:
            profile = self._need(conn, ctx.account_id, INSTANCE_PROFILE, params["InstanceProfileName"])
            if profile["roles"]:
                raise delete_conflict("Cannot delete entity, must remove roles from instance profile first.")
            IamStore.remove(conn, ctx.account_id, INSTANCE_PROFILE, profile["InstanceProfileName"])
        return {}

    # -- tags -------------------------------------------------------------------------------------

    def _tag(self, ctx: RequestContext, kind: str, name: str, tags: list[dict[str, str]]) -> dict[str, Any]:
        with self._store.tx() as conn:
            entity = self._need(conn, ctx.account_id, kind, name)
            entity["Tags"] = _merge_tags(entity.get("Tags") or [], tags)
            IamStore.write(conn, ctx.account_id, kind, name, entity)
        return {}

    def _untag(self, ctx: RequestContext, kind: str, name: str, keys: list[str]) -> dict[str, Any]:
        with self._store.tx() as conn:
            entity = self._need(conn, ctx.account_id, kind, name)
            entity["Tags"] = [t for t in entity.get("Tags") or [] if t["Key"] not in keys]
            IamStore.write(conn, ctx.account_id, kind, name, entity)
        return {}

    def tag_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._tag(ctx, ROLE, params["RoleName"], _tags(params))

    def untag_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._untag(ctx, ROLE, params["RoleName"], params["TagKeys"])

    def list_role_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return _page(self._get(ctx.account_id, ROLE, params["RoleName"]).get("Tags") or [], params, "Tags")

    def tag_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._tag(ctx, USER, params["UserName"], _tags(params))

    def untag_user(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._untag(ctx, USER, params["UserName"], params["TagKeys"])

    def list_user_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return _page(self._get(ctx.account_id, USER, params["UserName"]).get("Tags") or [], params, "Tags")

    def tag_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._local_policy(ctx, params["PolicyArn"])
        return self._tag(ctx, POLICY, policy["PolicyName"], _tags(params))

    def untag_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        policy = self._local_policy(ctx, params["PolicyArn"])
        return self._untag(ctx, POLICY, policy["PolicyName"], params["TagKeys"])

    def list_policy_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return _page(self._local_policy(ctx, params["PolicyArn"]).get("Tags") or [], params, "Tags")

    def tag_instance_profile(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._tag(ctx, INSTANCE_PROFILE, params["InstanceProfileName"], _tags(params))

    def untag_instance_profile(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._untag(ctx, INSTANCE_PROFILE, params["InstanceProfileName"], params["TagKeys"])

    # -- simulation -------------------------------------------------------------------------------

    def simulate_principal_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        source = params["PolicySourceArn"]
        found = policies_of_arn(self._store, source)
        if found is None:
            raise no_such_entity(f"The entity {source} cannot be found.")
        identity = list(found.identity) + [ev.Policy.parse(f"PolicyInputList.{i + 1}", doc)
                                           for i, doc in enumerate(params.get("PolicyInputList") or [])]
        caller = ev.Caller(params.get("CallerArn") or source, source.split(":")[4])
        policies = ev.PolicySet(identity=identity, boundary=found.boundary, resource=self._resource_policy(params))
        return self._simulate(caller, policies, params)

    def simulate_custom_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        identity = []
        for i, doc in enumerate(params["PolicyInputList"]):
            documents.parse(doc)
            identity.append(ev.Policy.parse(f"PolicyInputList.{i + 1}", doc))
        boundaries = params.get("PermissionsBoundaryPolicyInputList") or []
        boundary = ev.Policy.parse("PermissionsBoundaryPolicyInputList.1", boundaries[0]) if boundaries else None
        caller = ev.Caller(params.get("CallerArn") or f"arn:aws:iam::{ctx.account_id}:root", ctx.account_id)
        policies = ev.PolicySet(identity=identity, boundary=boundary, resource=self._resource_policy(params))
        return self._simulate(caller, policies, params)

    @staticmethod
    def _resource_policy(params: dict[str, Any]) -> ev.Policy | None:
        doc = params.get("ResourcePolicy")
        return ev.Policy.parse("ResourcePolicy", doc, "Resource Policy") if doc else None

    @staticmethod
    def _simulate(caller: ev.Caller, policies: ev.PolicySet, params: dict[str, Any]) -> dict[str, Any]:
        context: dict[str, list[str]] = {"aws:principalarn": [caller.arn], "aws:principalaccount": [caller.account]}
        for entry in params.get("ContextEntries") or []:
            context[entry["ContextKeyName"].lower()] = [str(v) for v in entry.get("ContextKeyValues") or []]
        results = []
        for action in params["ActionNames"]:
            for resource in params.get("ResourceArns") or ["*"]:
                account = resource.split(":")[4] if resource.count(":") >= 5 else None
                owner = params.get("ResourceOwner")
                if owner:
                    account = owner.split(":")[4] if owner.startswith("arn:") else owner
                decision = ev.evaluate(ev.Request(action, resource, caller, context,
                                                  resource_account=account or None), policies)
                statements = [{"SourcePolicyId": m.policy_id, "SourcePolicyType": m.kind} for m in decision.matched]
                results.append({
                    "EvalActionName": action, "EvalResourceName": resource, "EvalDecision": decision.decision,
                    "MatchedStatements": statements, "MissingContextValues": [], "EvalDecisionDetails": {},
                    "OrganizationsDecisionDetail": {"AllowedByOrganizations": True},
                })
        return _page(results, params, "EvaluationResults")
