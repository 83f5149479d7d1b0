"""The gateway's per-request authorization: every request signed with non-root credentials is judged
by the policy evaluator before its operation runs.

It owns the request's side of the decision: the IAM action (`<service prefix>:<Operation>`), the
resource ARN the operation acts on (`resources.resource_arn`), the global condition keys, and the
AccessDenied error each service answers with AWS's message. Which policies apply to a principal is
asked of a `PolicySource` (IAM's store), so this module never reads IAM's tables.

Resource-based policies: for the services that register a `ResourcePolicyLookup` (queues, topics,
buckets), the resource's owner and policy join the decision here, as AWS evaluates them: an explicit
Deny in it wins for any signed caller but its own account's root; in the same account it may grant on
its own; for another account's resource both sides must allow, and the account's root is judged on
the resource side only (its identity side allows everything). `authorize` returns the owner of
another account's resource it let the caller reach, so that the service serves it (a service that
registers no lookup keeps judging other accounts itself, as Lambda judges its function policies).
A service may instead register an own-account lookup (Lambda): its resource policy then joins the
decision only for callers of the resource's own account (a function policy naming a user of that
account grants that user), and other accounts stay the service's to judge.

Modes: "enforce" answers AccessDenied; "audit" lets the request through and logs the denial with
the statement that would have allowed it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from hearth.aws.authz import evaluate as ev
from hearth.aws.authz.resources import action_name, implied_actions, resource_arn
from hearth.aws.authz.usage import UsageRecorder
from hearth.aws.context import Principal, RequestContext
from hearth.aws.errors import AwsError

log = logging.getLogger(__name__)

# Actions that need no permission (AWS: "No permissions are required to perform this operation";
# a user needs none to get session credentials for itself).
# And actions whose service evaluates the caller's identity policies together with the resource's
# policy itself (AssumeRole: the role's trust policy alone may grant a principal it names).
UNGATED = frozenset({"sts:GetCallerIdentity", "sts:GetSessionToken", "sts:AssumeRole"})

# Principal -> (its identity policies and limits, its tags), or None if the principal is gone.
PolicySource = Callable[[Principal], tuple[ev.PolicySet, Mapping[str, str]] | None]


@dataclass(frozen=True)
class ResourcePolicy:
    """A resource's owning account and its resource-based policy document (None: it has none)."""

    owner: str
    document: str | None


# A resource's ARN -> its owner and policy, or None when no such resource exists (the service then
# answers its own NotFound).
ResourcePolicyLookup = Callable[[str], ResourcePolicy | None]


class Authorizer:
    def __init__(self, policies: PolicySource, *, mode: str = "enforce",
                 clock: Callable[[], float] = time.time, usage: UsageRecorder | None = None,
                 resource_policies: Mapping[str, ResourcePolicyLookup] | None = None,
                 own_account_policies: Mapping[str, ResourcePolicyLookup] | None = None) -> None:
        self._policies = policies
        self._resource_policies = dict(resource_policies or {})  # service -> lookup
        self._own_account_policies = dict(own_account_policies or {})  # service -> lookup, same account only
        self._mode = mode
        self._clock = clock
        self._usage = usage  # what each role and user did, for `hearth policy suggest`

    def authorize(self, ctx: RequestContext, params: Mapping[str, Any], *, secure: bool) -> str | None:
        """Raise the service's AccessDenied unless the request is allowed; return the owning account
        when the caller was let into another account's resource by that resource's policy."""
        principal = ctx.principal
        action = action_name(ctx.service, ctx.operation)
        lookup = self._resource_policies.get(ctx.service)
        if (principal.is_root and lookup is None) or action in UNGATED:
            return None
        resource = resource_arn(ctx.service, ctx.operation, params, ctx.region, ctx.account_id)
        if principal.is_root:
            # The account's root may do anything with its own resources; another account's needs the
            # resource's consent. (Only ARNs naming another account are looked up: the root's requests
            # on its own resources stay free of a lookup. S3's ARNs name no account: S3 judges other
            # accounts' roots itself.)
            if lookup is None or _account_of(resource) in (None, principal.account_id):
                return None
            held = lookup(resource)
            if held is None or held.owner == principal.account_id:
                return None
            self._judge_root(ctx, held, action, resource, secure)
            return held.owner
        held = lookup(resource) if lookup is not None and resource != "*" else None
        own = self._own_account_policies.get(ctx.service)
        if held is None and own is not None and _account_of(resource) == principal.account_id:
            mine = own(resource)
            held = mine if mine is not None and mine.owner == principal.account_id else None
        found = self._policies(principal)
        self._judge(ctx, found, action, resource, {}, secure, held)
        for implied, implied_resource, keys in implied_actions(ctx.service, ctx.operation, params):
            self._judge(ctx, found, implied, implied_resource, keys, secure, None)
        return held.owner if held is not None and held.owner != principal.account_id else None

    def _judge_root(self, ctx: RequestContext, held: ResourcePolicy, action: str, resource: str,
                    secure: bool) -> None:
        """Another account's root: its identity side allows everything, the resource's policy decides."""
        allow_all = ev.Policy("root", {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
        self._judge(ctx, (ev.PolicySet(identity=(allow_all,)), {}), action, resource, {}, secure, held)

    def _judge(self, ctx: RequestContext, found: tuple[ev.PolicySet, Mapping[str, str]] | None, action: str,
               resource: str, keys: Mapping[str, list[str]], secure: bool, held: ResourcePolicy | None) -> None:
        principal = ctx.principal
        if self._usage is not None:
            session = principal.session
            identity = session.role_arn if session is not None and session.role_arn else principal.caller_arn
            self._usage.record(identity, action, resource)
        if found is None:
            decision = ev.Decision(ev.IMPLICIT_DENY, missing=ev.NO_IDENTITY)
        else:
            policies, tags = found
            owner = held.owner if held is not None else None
            context = self._context(ctx, tags, secure, owner or _account_of(resource))
            context.update(keys)
            if held is not None and held.document:
                try:
                    policies = replace(policies, resource=ev.Policy.parse("resource", held.document,
                                                                          "Resource Policy"))
                except ValueError:  # stored unparsable: it grants and denies nothing
                    pass
            decision = ev.evaluate(ev.Request(action, resource, _caller(principal), context, resource_account=owner),
                                   policies)
        if decision.allowed:
            return
        error = access_denied(ctx.service, principal.caller_arn, action, resource, decision)
        if self._mode == "audit":
            log.warning("iam audit: would deny %s: %s; needed: %s", principal.caller_arn, error.message,
                        json.dumps({"Effect": "Allow", "Action": action, "Resource": resource}))
            return
        raise error

    def _context(self, ctx: RequestContext, tags: Mapping[str, str], secure: bool,
                 owner: str | None) -> dict[str, list[str]]:
        p = ctx.principal
        now = self._clock()
        context: dict[str, list[str]] = {
            "aws:principalarn": [p.session.role_arn if p.session and p.session.role_arn else p.caller_arn],
            "aws:principalaccount": [p.account_id],
            "aws:principaltype": [_PRINCIPAL_TYPES.get(p.kind, "User")],
            "aws:userid": [p.user_id],
            "aws:requestedregion": [ctx.region],
            "aws:securetransport": ["true" if secure else "false"],
            "aws:sourceip": [ctx.source_ip],
            "aws:currenttime": [datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")],
            "aws:epochtime": [str(int(now))],
            "aws:principalisawsservice": ["false"],
            "aws:viaawsservice": ["false"],
        }
        if owner:
            context["aws:resourceaccount"] = [owner]
        if p.kind == "user":
            context["aws:username"] = [p.caller_arn.rsplit("/", 1)[-1]]
        merged = dict(tags)
        if p.session is not None:
            context["aws:tokenissuetime"] = [datetime.fromtimestamp(p.session.issued, UTC)
                                             .strftime("%Y-%m-%dT%H:%M:%SZ")]
            merged.update(dict(p.session.tags))  # session tags override the role's tags of the same key
            if p.session.name:
                context["aws:rolesessionname"] = [p.session.name]
        for key, value in merged.items():
            context[f"aws:principaltag/{key.lower()}"] = [value]
        return context


# aws:PrincipalType of each kind of signed caller (the root is never judged).
_PRINCIPAL_TYPES = {"assumed-role": "AssumedRole", "federated-user": "FederatedUser"}


def _caller(principal: Principal) -> ev.Caller:
    role = principal.session.role_arn if principal.session is not None else None
    return ev.Caller(principal.caller_arn, principal.account_id, role)


def _account_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else None


# service -> (code, status, message key, extra headers)
_DENIED: dict[str, tuple[str, int, str, dict[str, str]]] = {
    "lambda": ("AccessDeniedException", 403, "Message", {}),
    "sqs": ("AccessDeniedException", 403, "message", {"x-amzn-query-error": "AccessDenied;Sender"}),
    "sns": ("AuthorizationError", 403, "message", {}),
    "logs": ("AccessDeniedException", 400, "message", {}),
    "events": ("AccessDeniedException", 400, "message", {}),
    "kinesis": ("AccessDeniedException", 400, "message", {}),
    "ecr": ("AccessDeniedException", 400, "message", {}),
}


def denial_message(caller_arn: str, action: str, resource: str, decision: ev.Decision) -> str:
    """AWS's AccessDenied text, naming the kind of policy that denied or failed to allow."""
    base = f"User: {caller_arn} is not authorized to perform: {action} on resource: {resource}"
    if decision.decision == ev.EXPLICIT_DENY:
        return f"{base} with an explicit deny in a{'n' if (decision.denied_by or '')[:1] in 'ai' else ''} " \
               f"{decision.denied_by} policy"
    return f"{base} because no {decision.missing} policy allows the {action} action"


def access_denied(service: str, caller_arn: str, action: str, resource: str, decision: ev.Decision) -> AwsError:
    code, status, key, headers = _DENIED.get(service, ("AccessDenied", 403, "message", {}))
    shown_action = action if service != "sns" else "SNS:" + action.split(":", 1)[1]
    return AwsError(code, denial_message(caller_arn, shown_action, resource, decision), status, message_key=key,
                    headers=headers)
