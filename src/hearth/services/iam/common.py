"""What IAM's two providers share: AWS's error texts, quotas, paging, entity shapes and lookups.

It owns the base class `IamOperations` (the store, the rendering of users, roles, groups, policies and
instance profiles as IAM answers them, and the lookups that raise NoSuchEntity with IAM's words). It
never implements an operation itself: `provider.IamProvider` (identities) and
`policies.IamPolicyProvider` (policies) do.

Policy documents travel URL-encoded inside IAM's XML answers, as AWS sends them (botocore decodes).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.iam import managed
from hearth.services.iam.store import GROUP, INSTANCE_PROFILE, POLICY, ROLE, USER, IamStore
from hearth.store.engine import Connection

# IAM's default quotas (IAM User Guide, "IAM and AWS STS quotas").
ACCESS_KEYS_PER_USER = 2
MANAGED_POLICIES_PER_ENTITY = 10  # PoliciesPerRole / PoliciesPerUser / PoliciesPerGroup defaults
POLICY_VERSIONS = 5
MANAGED_POLICY_SIZE = 6144
INLINE_SIZE = {ROLE: 10240, USER: 2048, GROUP: 5120}

KIND_TITLE = {USER: "user", ROLE: "role", GROUP: "group"}


def no_such_entity(message: str) -> AwsError:
    return AwsError("NoSuchEntity", message, 404)


def already_exists(message: str) -> AwsError:
    return AwsError("EntityAlreadyExists", message, 409)


def delete_conflict(message: str) -> AwsError:
    return AwsError("DeleteConflict", message, 409)


def limit_exceeded(message: str) -> AwsError:
    return AwsError("LimitExceeded", message, 409)


def clock_now() -> float:
    return time.time()


def as_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def url_encoded(doc: str) -> str:
    return quote(doc, safe="")


def paged(items: list[Any], params: dict[str, Any], key: str) -> dict[str, Any]:
    start = int(params["Marker"]) if str(params.get("Marker") or "").isdigit() else 0
    size = int(params.get("MaxItems") or 100)
    page = items[start:start + size]
    out: dict[str, Any] = {key: page, "IsTruncated": start + size < len(items)}
    if out["IsTruncated"]:
        out["Marker"] = str(start + size)
    return out


def tags_param(params: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": t["Key"], "Value": t.get("Value", "")} for t in params.get("Tags") or []]


def merged_tags(current: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    merged = {t["Key"]: t["Value"] for t in current}
    merged.update({t["Key"]: t["Value"] for t in new})
    if len(merged) > 50:
        raise limit_exceeded("The number of tags has reached the maximum limit.")
    return [{"Key": k, "Value": v} for k, v in merged.items()]


def path_param(params: dict[str, Any]) -> str:
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

class IamOperations:
    def __init__(self, store: IamStore) -> None:
        self._store = store

    # -- shapes -----------------------------------------------------------------------------------

    @staticmethod
    def _arn(account: str, kind: str, path: str, name: str) -> str:
        return f"arn:aws:iam::{account}:{kind}{path}{name}"

    def _user_out(self, u: dict[str, Any], *, tags: bool = True) -> dict[str, Any]:
        out = {k: u[k] for k in ("Path", "UserName", "UserId", "Arn")}
        out["CreateDate"] = as_datetime(u["created"])
        if u.get("boundary"):
            out["PermissionsBoundary"] = {"PermissionsBoundaryType": "Policy",
                                          "PermissionsBoundaryArn": u["boundary"]}
        if tags and u.get("Tags"):
            out["Tags"] = u["Tags"]
        return out

    def _role_out(self, r: dict[str, Any], *, full: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {k: r[k] for k in ("Path", "RoleName", "RoleId", "Arn")}
        out["CreateDate"] = as_datetime(r["created"])
        out["AssumeRolePolicyDocument"] = url_encoded(r["trust"])
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
                "CreateDate": as_datetime(g["created"])}

    def _policy_out(self, account: str, p: dict[str, Any]) -> dict[str, Any]:
        attachments = self._attachment_count(account, p["Arn"])
        out = {"PolicyName": p["PolicyName"], "PolicyId": p["PolicyId"], "Arn": p["Arn"], "Path": p["Path"],
               "DefaultVersionId": p["DefaultVersionId"], "AttachmentCount": attachments,
               "PermissionsBoundaryUsageCount": 0, "IsAttachable": True, "CreateDate": as_datetime(p["created"]),
               "UpdateDate": as_datetime(p["updated"])}
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
               "InstanceProfileId": p["InstanceProfileId"], "Arn": p["Arn"], "CreateDate": as_datetime(p["created"]),
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
            raise no_such_entity(f"The {KIND_TITLE[kind]} with name {name} cannot be found.")
        return found

    @staticmethod
    def _key_user(ctx: RequestContext, params: dict[str, Any]) -> str:
        """The named user, or the calling user when none is named (access keys, service credentials)."""
        name = params.get("UserName")
        if name:
            return str(name)
        if ctx.principal.kind == "user":
            return ctx.principal.arn.rsplit("/", 1)[1]
        raise AwsError("ValidationError", "Must specify userName when calling with non-User credentials", 400)

    def _get(self, account: str, kind: str, name: str) -> dict[str, Any]:
        with self._store.tx() as conn:
            return self._need(conn, account, kind, name)


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


    def _local_policy(self, ctx: RequestContext, arn: str) -> dict[str, Any]:
        owner, _ = parse_policy_arn(arn)
        if owner == "aws":
            raise AwsError("UnmodifiableEntity", "Cannot modify policies outside your own account.", 400)
        found = self._need_policy(ctx.account_id, arn)
        assert isinstance(found, dict)
        return found


    # -- tags -------------------------------------------------------------------------------------

    def _tag(self, ctx: RequestContext, kind: str, name: str, tags: list[dict[str, str]]) -> dict[str, Any]:
        with self._store.tx() as conn:
            entity = self._need(conn, ctx.account_id, kind, name)
            entity["Tags"] = merged_tags(entity.get("Tags") or [], tags)
            IamStore.write(conn, ctx.account_id, kind, name, entity)
        return {}

    def _untag(self, ctx: RequestContext, kind: str, name: str, keys: list[str]) -> dict[str, Any]:
        with self._store.tx() as conn:
            entity = self._need(conn, ctx.account_id, kind, name)
            entity["Tags"] = [t for t in entity.get("Tags") or [] if t["Key"] not in keys]
            IamStore.write(conn, ctx.account_id, kind, name, entity)
        return {}
