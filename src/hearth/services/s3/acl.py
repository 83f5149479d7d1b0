"""Access control lists of buckets and objects: Put/Get{Bucket,Object}Acl, canned ACLs, x-amz-grant-*
headers and AccessControlPolicy documents, validated as AWS validates them.

It owns turning each of the three request forms into one list of grants and storing it (the bucket's
config item "acl", the object version's meta "Grants"). It never enforces the grants: access is
decided by the bucket's owner and policy (`core.S3Core._bucket`), as for a bucket whose ownership is
"BucketOwnerEnforced", AWS's default.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.s3 import errors
from hearth.services.s3.core import S3Core
from hearth.services.s3.rules import owner_of
from hearth.services.s3.store import NULL_VERSION

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = (ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY)
PERMISSIONS = ("FULL_CONTROL", "WRITE", "WRITE_ACP", "READ", "READ_ACP")

# The grant headers (botocore's member names) and the permission each grants.
GRANT_MEMBERS = {"GrantFullControl": ("x-amz-grant-full-control", "FULL_CONTROL"),
                 "GrantRead": ("x-amz-grant-read", "READ"),
                 "GrantReadACP": ("x-amz-grant-read-acp", "READ_ACP"),
                 "GrantWrite": ("x-amz-grant-write", "WRITE"),
                 "GrantWriteACP": ("x-amz-grant-write-acp", "WRITE_ACP")}

# Canned ACLs beyond the owner's FULL_CONTROL (which every one of them starts with).
CANNED: dict[str, list[tuple[str, str]]] = {
    "private": [], "public-read": [(ALL_USERS, "READ")],
    "public-read-write": [(ALL_USERS, "READ"), (ALL_USERS, "WRITE")],
    "authenticated-read": [(AUTHENTICATED_USERS, "READ")],
    "log-delivery-write": [(LOG_DELIVERY, "WRITE"), (LOG_DELIVERY, "READ_ACP")],
    "aws-exec-read": [], "bucket-owner-read": [], "bucket-owner-full-control": [],
}

_MALFORMED_ACL = ("MalformedACLError", "The XML you provided was not well-formed or did not validate against our "
                                       "published schema")
_GRANTEE = re.compile(r'^\s*(\w+)\s*=\s*"?([^"]*)"?\s*$')


def _valid_id(value: str) -> bool:
    """A canonical user id: AWS's 64 hex digits, or the account id this server names owners by."""
    return bool(re.fullmatch(r"[0-9a-f]{64}|[0-9]{12}", value))


def _owner_grant(account_id: str) -> dict[str, Any]:
    return {"Grantee": {**owner_of(account_id), "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}


def _group(uri: str, permission: str) -> dict[str, Any]:
    return {"Grantee": {"Type": "Group", "URI": uri}, "Permission": permission}


def canned_grants(acl: str, account_id: str) -> list[dict[str, Any]]:
    if acl not in CANNED:
        raise AwsError("InvalidArgument", "", 400, fields={"ArgumentName": "x-amz-acl", "ArgumentValue": acl})
    return [_owner_grant(account_id)] + [_group(uri, perm) for uri, perm in CANNED[acl]]


def _header_grants(params: dict[str, Any]) -> list[dict[str, Any]]:
    grants: list[dict[str, Any]] = []
    for member, (header, permission) in GRANT_MEMBERS.items():
        if params.get(member) is None:
            continue
        for item in str(params[member]).split(","):
            found = _GRANTEE.match(item)
            if not found or found.group(1) not in ("id", "uri", "emailAddress"):
                raise errors.invalid_argument("Argument format not recognized", header, item.strip())
            kind, value = found.groups()
            if kind == "uri":
                if value not in GROUPS:
                    raise errors.invalid_argument("Invalid group uri", "uri", value)
                grants.append(_group(value, permission))
            elif kind == "id":
                if not _valid_id(value):
                    raise errors.invalid_argument("Invalid id", "id", value)
                grants.append({"Grantee": {"ID": value, "Type": "CanonicalUser"}, "Permission": permission})
            else:
                grants.append({"Grantee": {"EmailAddress": value, "Type": "AmazonCustomerByEmail"},
                               "Permission": permission})
    return grants


def _policy_grants(policy: dict[str, Any]) -> list[dict[str, Any]]:
    if not policy.get("Owner") or not isinstance(policy.get("Grants"), list):
        raise AwsError(*_MALFORMED_ACL, 400)
    owner_id = str(policy["Owner"].get("ID") or "")
    if not _valid_id(owner_id):
        raise errors.invalid_argument("Invalid id", "CanonicalUser/ID", owner_id)
    grants: list[dict[str, Any]] = []
    for grant in policy["Grants"]:
        grantee = grant.get("Grantee") or {}
        kind, permission = grantee.get("Type"), grant.get("Permission")
        if permission not in PERMISSIONS or kind not in ("CanonicalUser", "Group", "AmazonCustomerByEmail"):
            raise AwsError(*_MALFORMED_ACL, 400)
        if kind == "CanonicalUser":
            if not grantee.get("ID"):
                raise AwsError(*_MALFORMED_ACL, 400)
            if not _valid_id(grantee["ID"]):
                raise errors.invalid_argument("Invalid id", "CanonicalUser/ID", grantee["ID"])
            grants.append({"Grantee": {"ID": grantee["ID"], "Type": kind}, "Permission": permission})
        elif kind == "Group":
            if grantee.get("URI") not in GROUPS:
                raise errors.invalid_argument("Invalid group uri", "Group/URI", str(grantee.get("URI")))
            grants.append(_group(grantee["URI"], permission))
        else:
            grants.append({"Grantee": {"EmailAddress": grantee.get("EmailAddress"), "Type": kind},
                           "Permission": permission})
    return grants


def requested_grants(ctx: RequestContext, params: dict[str, Any], account_id: str) -> list[dict[str, Any]]:
    """The grants a PutBucketAcl/PutObjectAcl asks for, from exactly one of its three forms."""
    has_headers = any(params.get(m) is not None for m in GRANT_MEMBERS)
    if params.get("ACL") is not None:
        if has_headers:
            raise errors.invalid_request("Specifying both Canned ACLs and Header Grants is not allowed")
        if ctx.raw_body.strip():
            raise AwsError("UnexpectedContent", "This request does not support content", 400)
        return canned_grants(str(params["ACL"]), account_id)
    if has_headers:
        return _header_grants(params)
    if params.get("AccessControlPolicy") is not None:
        return _policy_grants(params["AccessControlPolicy"])
    if ctx.raw_body.strip():
        raise AwsError(*_MALFORMED_ACL, 400)
    raise AwsError("MissingSecurityHeader", "Your request was missing a required header", 400,
                   fields={"MissingHeaderName": "x-amz-acl"})


class AclOps(S3Core):

    def get_bucket_acl(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:GetBucketAcl")
        grants = bucket.config.get("acl") or [_owner_grant(bucket.account_id)]
        return {"Owner": owner_of(bucket.account_id), "Grants": grants}

    def put_bucket_acl(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = self._bucket(ctx, params["Bucket"], "s3:PutBucketAcl")
        grants = requested_grants(ctx, params, bucket.account_id)
        return self._set(ctx, params, "acl", grants, "s3:PutBucketAcl")

    def get_object_acl(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket, row = self._object(ctx, params, "s3:GetObjectAcl")
        out: dict[str, Any] = {"Owner": owner_of(bucket.account_id),
                               "Grants": row.meta.get("Grants") or [_owner_grant(bucket.account_id)]}
        return out

    def put_object_acl(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket, row = self._object(ctx, params, "s3:PutObjectAcl", on_marker="MethodNotAllowed")
        grants = requested_grants(ctx, params, bucket.account_id)
        with self._store.db.tx() as db:
            meta = {**row.meta, "Grants": grants}
            db.execute("UPDATE s3_objects SET meta = ? WHERE bucket = ? AND key = ? AND version_id = ?",
                       (json.dumps(meta), bucket.name, row.key, row.version_id))
        return {"VersionId": row.version_id} if row.version_id != NULL_VERSION else {}
