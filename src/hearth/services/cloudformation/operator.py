"""Who CloudFormation acts as while it runs a stack operation.

It owns one decision: the principal whose permissions create, update and delete a stack's resources.
As on AWS, that is the stack's service role when the stack has one (`RoleARN`: a session of the role,
which must trust `cloudformation.amazonaws.com`), and otherwise the principal who asked for the
operation, with that principal's own permissions: a user allowed only `cloudformation:*` cannot make an
IAM role or a function through a template. An account's root acts as itself (never judged). It never
issues credentials (CloudFormation's calls are in-process; no key leaves this module) and never reads
IAM's storage: the role is read through IAM's own API.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from hearth.aws.authz import evaluate as ev
from hearth.aws.context import Principal, RequestContext, Session
from hearth.aws.errors import AwsError

CallFn = Callable[..., Awaitable[dict[str, Any]]]

SERVICE = "cloudformation.amazonaws.com"
SESSION_NAME = "AWSCloudFormation"
# A stack operation's session of its service role: long enough for any operation (CloudFormation's own
# limit for a stack operation's role session is its timeout; the default has none).
SESSION_SECONDS = 24 * 3600


def cannot_assume(role_arn: str) -> AwsError:
    return AwsError("ValidationError", f"Role {role_arn} is invalid or cannot be assumed", 400)


async def operator_for(call: CallFn, ctx: RequestContext, role_arn: str | None) -> Principal | None:
    """The principal a stack operation asked for by `ctx` acts as (None: the account's root)."""
    if role_arn:
        return await _role_session(call, ctx, role_arn)
    return None if ctx.principal.is_root else ctx.principal


async def _role_session(call: CallFn, ctx: RequestContext, role_arn: str) -> Principal:
    parts = role_arn.split(":")
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/") or parts[4] != ctx.account_id:
        raise cannot_assume(role_arn)
    try:
        role = (await call("iam", "GetRole", {"RoleName": parts[5].rsplit("/", 1)[-1]}, account_id=ctx.account_id,
                           region=ctx.region, caller="cloudformation"))["Role"]
    except AwsError:
        raise cannot_assume(role_arn) from None
    trust = role.get("AssumeRolePolicyDocument")  # URL-encoded JSON, as IAM's wire shape has it
    try:
        document = json.loads(unquote(trust)) if isinstance(trust, str) else trust
    except ValueError:
        document = None
    request = ev.Request("sts:AssumeRole", role_arn, ev.Caller(SERVICE, ctx.account_id, service=SERVICE))
    if role.get("Arn") != role_arn or not isinstance(document, dict) or \
            not ev.evaluate(request, ev.PolicySet(resource=ev.Policy("trust", document, "Trust Policy"))).allowed:
        raise cannot_assume(role_arn)
    now = time.time()
    session = Session(role_arn, role["RoleId"], SESSION_NAME, None, (), (), now, now + SESSION_SECONDS)
    return Principal("cloudformation", ctx.account_id, kind="assumed-role",
                     arn=f"arn:aws:sts::{ctx.account_id}:assumed-role/{role['RoleName']}/{SESSION_NAME}",
                     user_id=f"{role['RoleId']}:{SESSION_NAME}", session=session)
