"""AWS's policy evaluation logic: one evaluator for every policy Hearth enforces.

It owns the decision "is this request allowed?" given the request (action, resource, principal,
condition keys) and the policies that apply (identity-based, resource-based, permissions boundary,
session policies). It never loads policies, never raises AWS errors and never logs: callers gather
the policies (`authz.authorizer`) and decide what a denial looks like.

The order is AWS's documented flow ("Policy evaluation logic", IAM User Guide):

1. An explicit Deny in any applicable policy wins.
2. Same account: a resource-based policy that allows the principal's ARN (user, role session) grants
   on its own; one that names the account (or a role ARN for a role session) needs the identity side.
3. The identity side: some identity-based policy must allow, and, when present, the permissions
   boundary and every session policy must allow too.
4. Cross-account: both the identity side (in the caller's account) and the resource-based policy
   (in the resource's account) must allow.

Statements match on Action/NotAction (case-insensitive, `*` and `?` wildcards), Resource/NotResource
(case-sensitive wildcards, policy variables such as `${aws:username}`), Principal/NotPrincipal (for
resource and trust policies) and Condition (the operators below, `...IfExists`, `ForAllValues:` /
`ForAnyValue:`). Condition key names are case-insensitive; the request's keys are given lower-cased.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

ALLOWED = "allowed"
EXPLICIT_DENY = "explicitDeny"
IMPLICIT_DENY = "implicitDeny"

# Which kind of policy failed to allow: AWS names it in its AccessDenied message.
NO_IDENTITY = "identity-based"
NO_BOUNDARY = "permissions boundary"
NO_SESSION = "session"
NO_RESOURCE = "resource-based"


@dataclass(frozen=True)
class Policy:
    """A parsed policy document with an id for reports (`SourcePolicyId`)."""

    policy_id: str
    document: Mapping[str, Any]
    kind: str = "IAM Policy"

    @staticmethod
    def parse(policy_id: str, text: str | Mapping[str, Any], kind: str = "IAM Policy") -> Policy:
        doc = json.loads(text) if isinstance(text, str) else text
        return Policy(policy_id, doc, kind)

    def statements(self) -> list[Mapping[str, Any]]:
        raw = self.document.get("Statement", [])
        items = raw if isinstance(raw, list) else [raw]
        return [s for s in items if isinstance(s, Mapping)]


@dataclass(frozen=True)
class Caller:
    """Who makes the request, as resource and trust policies see it."""

    arn: str  # arn:aws:iam::123:user/x, arn:aws:sts::123:assumed-role/R/s, arn:aws:iam::123:root
    account: str
    role_arn: str | None = None  # for a role session: the role's ARN (a role ARN principal covers it)
    service: str | None = None  # an AWS service principal (lambda.amazonaws.com)


@dataclass(frozen=True)
class Request:
    action: str  # "sqs:SendMessage"
    resource: str  # an ARN or "*"
    caller: Caller
    context: Mapping[str, Sequence[str]] = field(default_factory=dict)  # lower-cased condition keys
    resource_account: str | None = None  # None: the caller's own account


@dataclass(frozen=True)
class PolicySet:
    identity: Sequence[Policy] = ()
    resource: Policy | None = None
    boundary: Policy | None = None  # None: no permissions boundary
    session: Sequence[Policy] = ()  # empty: no session policy


@dataclass(frozen=True)
class Matched:
    policy_id: str
    kind: str
    sid: str | None


@dataclass(frozen=True)
class Decision:
    decision: str  # ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY
    missing: str | None = None  # for an implicit deny: which kind of policy did not allow
    denied_by: str | None = None  # for an explicit deny: which kind of policy denied
    matched: tuple[Matched, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOWED


# -- the flow --------------------------------------------------------------------------------------

def evaluate(request: Request, policies: PolicySet) -> Decision:
    """AWS's decision for `request` under `policies`."""
    cross_account = request.resource_account not in (None, request.caller.account)
    deny_sources: list[tuple[str, Sequence[Policy]]] = [
        (NO_IDENTITY, policies.identity),
        (NO_RESOURCE, [policies.resource] if policies.resource else []),
        (NO_BOUNDARY, [policies.boundary] if policies.boundary else []),
        (NO_SESSION, policies.session),
    ]
    for kind, group in deny_sources:
        found = _matching(group, "Deny", request, principal=kind == NO_RESOURCE)
        if found:
            return Decision(EXPLICIT_DENY, denied_by=kind, matched=tuple(found))

    resource_allows: list[Matched] = []
    direct = False  # the resource policy named the caller itself, not its account
    if policies.resource is not None:
        for statement in policies.resource.statements():
            if effect_of(statement) == "Allow" and statement_matches(statement, request, principal=True):
                resource_allows.append(_matched(policies.resource, statement))
                direct = direct or _names_caller_directly(statement, request.caller)

    identity_allows = _matching(policies.identity, "Allow", request)
    if not cross_account and resource_allows and direct:
        # A resource policy naming a user or a role session grants on its own (boundaries and session
        # policies do not limit it); naming a role ARN, the session's own limits still apply.
        if request.caller.role_arn is None or request.caller.arn in _principal_values(resource_allows, policies):
            return Decision(ALLOWED, matched=tuple(resource_allows))
        return _identity_limits(request, policies, resource_allows + identity_allows, through_resource=True)

    if not identity_allows:
        return Decision(IMPLICIT_DENY, missing=NO_IDENTITY)
    limited = _identity_limits(request, policies, identity_allows, through_resource=False)
    if not limited.allowed:
        return limited
    if cross_account and not resource_allows:
        return Decision(IMPLICIT_DENY, missing=NO_RESOURCE)
    return Decision(ALLOWED, matched=limited.matched + tuple(resource_allows))


def _identity_limits(request: Request, policies: PolicySet, matched: list[Matched],
                     *, through_resource: bool) -> Decision:
    found = list(matched)
    if policies.boundary is not None and not through_resource:
        in_boundary = _matching([policies.boundary], "Allow", request)
        if not in_boundary:
            return Decision(IMPLICIT_DENY, missing=NO_BOUNDARY)
        found += in_boundary
    if policies.session:
        in_session = _matching(policies.session, "Allow", request)
        if not in_session:
            return Decision(IMPLICIT_DENY, missing=NO_SESSION)
        found += in_session
    return Decision(ALLOWED, matched=tuple(found))


def _principal_values(matched: list[Matched], policies: PolicySet) -> set[str]:
    out: set[str] = set()
    if policies.resource is None:
        return out
    for statement in policies.resource.statements():
        principal = statement.get("Principal")
        if isinstance(principal, Mapping):
            out.update(_as_list(principal.get("AWS")))
    return out


def effect_of(statement: Mapping[str, Any]) -> str:
    """A statement's Effect as "Allow" or "Deny" (IAM accepts trust policies written "ALLOW", "allow", ...);
    anything else is returned as written and matches neither."""
    effect = statement.get("Effect")
    if isinstance(effect, str) and effect.lower() in ("allow", "deny"):
        return effect.capitalize()
    return str(effect)


def _matching(group: Iterable[Policy], effect: str, request: Request, *, principal: bool = False) -> list[Matched]:
    out: list[Matched] = []
    for policy in group:
        for statement in policy.statements():
            if effect_of(statement) == effect and statement_matches(statement, request, principal=principal):
                out.append(_matched(policy, statement))
    return out


def _matched(policy: Policy, statement: Mapping[str, Any]) -> Matched:
    sid = statement.get("Sid")
    return Matched(policy.policy_id, policy.kind, str(sid) if sid is not None else None)


def statement_matches(statement: Mapping[str, Any], request: Request, *, principal: bool = False) -> bool:
    """Whether one statement applies to the request (its Effect aside)."""
    if principal and not _principal_matches(statement, request.caller):
        return False
    if "Action" in statement:
        if not any(action_matches(p, request.action) for p in _as_list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(action_matches(p, request.action) for p in _as_list(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        if not any(_resource_matches(p, request) for p in _as_list(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(_resource_matches(p, request) for p in _as_list(statement["NotResource"])):
            return False
    elif not principal:
        return False  # an identity policy statement always names its resources
    condition = statement.get("Condition")
    return condition is None or conditions_hold(condition, request.context)


# -- Action, Resource, Principal -----------------------------------------------------------------

@lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def action_matches(pattern: Any, action: str) -> bool:
    return isinstance(pattern, str) and wildcard_match(pattern, action, ignore_case=True)


def _resource_matches(pattern: Any, request: Request) -> bool:
    if not isinstance(pattern, str):
        return False
    expanded = substitute_variables(pattern, request.context)
    if expanded is None:
        return False
    if request.resource == "*":
        return expanded == "*"  # an action without resource-level permissions needs Resource "*"
    return _arn_like(expanded, request.resource)


def _arn_like(pattern: str, arn: str) -> bool:
    """ARN matching as IAM does it: each of the first five colon-separated parts on its own (a `*` in
    the service part does not reach into the region), the resource part with the rest."""
    if pattern == "*":
        return True
    p_parts = pattern.split(":", 5)
    a_parts = arn.split(":", 5)
    if len(p_parts) != 6 or len(a_parts) != 6:
        return wildcard_match(pattern, arn)
    return all(wildcard_match(p, a) for p, a in zip(p_parts, a_parts, strict=True))


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def substitute_variables(text: str, context: Mapping[str, Sequence[str]]) -> str | None:
    """`${aws:username}` and friends replaced from the request's keys; None when a variable has no
    value and no default (the element then matches nothing, as in IAM)."""
    if "${" not in text:
        return text
    missing = False

    def replace(match: re.Match[str]) -> str:
        nonlocal missing
        inner = match.group(1)
        if inner in ("*", "?", "$"):
            return "\\" + inner if inner != "$" else "$"
        name, _, default = inner.partition(",")
        values = context.get(name.strip().lower())
        if values and len(values) == 1:
            return values[0]
        default = default.strip()
        if default.startswith("'") and default.endswith("'") and len(default) >= 2:
            return default[1:-1]
        missing = True
        return ""

    out = _VARIABLE.sub(replace, text)
    if missing:
        return None
    # `${*}` and `${?}` are literal characters; the escapes above keep them out of wildcard matching.
    return out.replace("\\*", "*").replace("\\?", "?") if "\\" in out else out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _principal_matches(statement: Mapping[str, Any], caller: Caller) -> bool:
    if "Principal" in statement:
        return principal_covers(statement["Principal"], caller)
    if "NotPrincipal" in statement:
        return not principal_covers(statement["NotPrincipal"], caller)
    return False


def principal_covers(principal: Any, caller: Caller) -> bool:
    """Whether a Principal element names the caller (`*`, its account, its ARN, its role, its service)."""
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    if caller.service is not None:
        return any(s == caller.service for s in _as_list(principal.get("Service")))
    for value in _as_list(principal.get("AWS")):
        if not isinstance(value, str):
            continue
        if value == "*" or value == caller.arn:
            return True
        if value in (caller.account, f"arn:aws:iam::{caller.account}:root"):
            return True
        if caller.role_arn is not None and value == caller.role_arn:
            return True
    return False


def _names_caller_directly(statement: Mapping[str, Any], caller: Caller) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    if caller.service is not None:
        return True
    values = [v for v in _as_list(principal.get("AWS")) if isinstance(v, str)]
    return "*" in values or caller.arn in values or (caller.role_arn is not None and caller.role_arn in values)


# -- conditions ------------------------------------------------------------------------------------

def conditions_hold(condition: Mapping[str, Any], context: Mapping[str, Sequence[str]]) -> bool:
    """Every operator block holds, and in a block every key holds (AND); values of a key are ORed."""
    for operator, block in condition.items():
        if not isinstance(block, Mapping):
            return False
        for key, wanted in block.items():
            if not _condition_holds(str(operator), str(key).lower(), _as_list(wanted), context):
                return False
    return True


def _condition_holds(operator: str, key: str, wanted: list[Any], context: Mapping[str, Sequence[str]]) -> bool:
    set_op = None
    if ":" in operator:
        set_op, _, operator = operator.partition(":")
    if_exists = operator.endswith("IfExists")
    if if_exists:
        operator = operator[: -len("IfExists")]
    present = key in context
    values = list(context.get(key, ()))
    if operator == "Null":
        is_null = not present or not values
        return any(str(w).lower() == ("true" if is_null else "false") for w in wanted)
    test = _OPERATORS.get(operator)
    if test is None:
        return False  # an operator IAM does not know never holds
    match, negated = test
    wanted_text = [_text(w) for w in wanted]
    if set_op == "ForAllValues":
        return all(_one(match, negated, v, wanted_text) for v in values)
    if set_op == "ForAnyValue":
        return any(_one(match, negated, v, wanted_text) for v in values)
    if not present:
        return if_exists or negated
    if negated:
        return not any(match(v, w) for v in values for w in wanted_text)
    return any(match(v, w) for v in values for w in wanted_text)


def _one(match: Callable[[str, str], bool], negated: bool, value: str, wanted: list[str]) -> bool:
    hit = any(match(value, w) for w in wanted)
    return not hit if negated else hit


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def test(value: str, wanted: str) -> bool:
        a, b = _number(value), _number(wanted)
        return a is not None and b is not None and compare(a, b)
    return test


def _date_value(text: str) -> float | None:
    number = _number(text)
    if number is not None:
        return number  # epoch seconds are dates too
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _date(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def test(value: str, wanted: str) -> bool:
        a, b = _date_value(value), _date_value(wanted)
        return a is not None and b is not None and compare(a, b)
    return test


def _ip(value: str, wanted: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(wanted, strict=False)
    except ValueError:
        return False


def _string_like(value: str, wanted: str) -> bool:
    return wildcard_match(wanted, value)


_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda v, w: v == w, False),
    "StringNotEquals": (lambda v, w: v == w, True),
    "StringEqualsIgnoreCase": (lambda v, w: v.lower() == w.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda v, w: v.lower() == w.lower(), True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "NumericEquals": (_numeric(lambda a, b: a == b), False),
    "NumericNotEquals": (_numeric(lambda a, b: a == b), True),
    "NumericLessThan": (_numeric(lambda a, b: a < b), False),
    "NumericLessThanEquals": (_numeric(lambda a, b: a <= b), False),
    "NumericGreaterThan": (_numeric(lambda a, b: a > b), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, b: a >= b), False),
    "DateEquals": (_date(lambda a, b: a == b), False),
    "DateNotEquals": (_date(lambda a, b: a == b), True),
    "DateLessThan": (_date(lambda a, b: a < b), False),
    "DateLessThanEquals": (_date(lambda a, b: a <= b), False),
    "DateGreaterThan": (_date(lambda a, b: a > b), False),
    "DateGreaterThanEquals": (_date(lambda a, b: a >= b), False),
    "Bool": (lambda v, w: v.lower() == w.lower(), False),
    "BinaryEquals": (lambda v, w: v == w, False),
    "IpAddress": (_ip, False),
    "NotIpAddress": (_ip, True),
    # ArnEquals compares like ArnLike (IAM treats both as wildcard matches per ARN part).
    "ArnEquals": (lambda v, w: _arn_like(w, v), False),
    "ArnLike": (lambda v, w: _arn_like(w, v), False),
    "ArnNotEquals": (lambda v, w: _arn_like(w, v), True),
    "ArnNotLike": (lambda v, w: _arn_like(w, v), True),
}
