"""Resource-based policies of functions and layer versions: building statements as AWS renders them,
and deciding whether a statement lets a caller (another account, or an AWS service) act.

It owns the statement document shape (Sid, Effect, Principal, Action, Resource, Condition), the
principal grammar AWS accepts, and the evaluation rules. It never stores anything and never raises
AWS errors except for malformed principals (the callers decide what "denied" looks like).

Evaluation (what Hearth implements of IAM's policy logic):
- Only Allow statements exist (AddPermission cannot add Deny), so a request is allowed when one
  statement matches; otherwise it is implicitly denied.
- A statement matches when its Action covers the action (exact, `lambda:*` or `*`), its Principal
  covers the caller (`*`, the caller's account id or its `arn:aws:iam::<acct>:root`; a service
  principal only matches that service), and every Condition holds against the request's context keys.
  A condition on a key the request does not carry fails, as in IAM (e.g. `AWS:SourceAccount` is only
  present when a service acts on behalf of a resource; `aws:PrincipalOrgID` is never present because
  Hearth has no AWS Organizations).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from hearth.functions import errors

_ACCOUNT = re.compile(r"\d{12}")
_IAM_ARN = re.compile(r"arn:aws[a-zA-Z-]*:iam::(\d{12}):(root|(?:role|user)/[\w+=,.@/-]+)")
_SERVICE = re.compile(r"[a-z0-9][a-z0-9.-]*\.(?:amazonaws\.com(?:\.cn)?|aws\.internal)")

MSG_BAD_PRINCIPAL = "The provided principal was invalid. Please check the principal and try again."


def render_principal(principal: str) -> str | dict[str, str]:
    """The Principal element AWS stores for an AddPermission `Principal` parameter."""
    if principal == "*":
        return "*"
    if _ACCOUNT.fullmatch(principal):
        return {"AWS": f"arn:aws:iam::{principal}:root"}
    if _IAM_ARN.fullmatch(principal):
        return {"AWS": principal}
    if _SERVICE.fullmatch(principal):
        return {"Service": principal}
    raise errors.invalid_parameter(MSG_BAD_PRINCIPAL)


def function_statement(
    sid: str,
    action: str,
    principal: str,
    resource: str,
    *,
    source_arn: str | None = None,
    source_account: str | None = None,
    principal_org_id: str | None = None,
    function_url_auth_type: str | None = None,
    event_source_token: str | None = None,
) -> dict[str, Any]:
    """One statement of a function policy, keys in AWS's order."""
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": render_principal(principal),
        "Action": action,
        "Resource": resource,
    }
    string_equals: dict[str, str] = {}
    if source_account:
        string_equals["AWS:SourceAccount"] = source_account
    if principal_org_id:
        string_equals["aws:PrincipalOrgID"] = principal_org_id
    if function_url_auth_type:
        string_equals["lambda:FunctionUrlAuthType"] = function_url_auth_type
    if event_source_token:
        string_equals["lambda:EventSourceToken"] = event_source_token
    condition: dict[str, dict[str, str]] = {}
    if string_equals:
        condition["StringEquals"] = string_equals
    if source_arn:
        condition["ArnLike"] = {"AWS:SourceArn": source_arn}
    if condition:
        statement["Condition"] = condition
    return statement


def layer_statement(sid: str, action: str, principal: str, resource: str, org_id: str | None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": "*" if principal == "*" else render_principal(principal),
        "Action": action,
        "Resource": resource,
    }
    if org_id:
        statement["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": org_id}}
    return statement


def document(statements: Iterable[Mapping[str, Any]]) -> str:
    """The policy document as the JSON string GetPolicy returns (compact, AWS's key order)."""
    return json.dumps(
        {"Version": "2012-10-17", "Id": "default", "Statement": list(statements)}, separators=(",", ":")
    )


def statement_json(statement: Mapping[str, Any]) -> str:
    return json.dumps(statement, separators=(",", ":"))


def _action_matches(granted: Any, action: str) -> bool:
    values = granted if isinstance(granted, list) else [granted]
    return any(v in ("*", "lambda:*") or str(v).lower() == action.lower() for v in values)


def _principal_matches_account(principal: Any, account: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    values = principal.get("AWS")
    for value in values if isinstance(values, list) else [values]:
        if value == "*" or value == account or value == f"arn:aws:iam::{account}:root":
            return True
    return False


def _principal_matches_service(principal: Any, service: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    values = principal.get("Service")
    return service in (values if isinstance(values, list) else [values])


def _conditions_hold(condition: Mapping[str, Mapping[str, Any]] | None, context: Mapping[str, str]) -> bool:
    if not condition:
        return True
    lowered = {k.lower(): v for k, v in context.items()}
    for operator, tests in condition.items():
        for key, expected in tests.items():
            actual = lowered.get(key.lower())
            if actual is None:
                return False
            wanted = expected if isinstance(expected, list) else [expected]
            if operator in ("StringEquals", "ArnEquals"):
                ok = actual in wanted
            elif operator in ("ArnLike", "StringLike"):
                ok = any(fnmatch.fnmatchcase(actual, str(w)) for w in wanted)
            else:  # an operator Hearth does not know never grants anything
                ok = False
            if not ok:
                return False
    return True


def allows_account(
    statements: Iterable[Mapping[str, Any]], account: str, action: str, context: Mapping[str, str] | None = None
) -> bool:
    """Whether a statement lets `account` perform `action` (e.g. "lambda:InvokeFunction")."""
    ctx = context or {}
    return any(
        s.get("Effect") == "Allow"
        and _action_matches(s.get("Action"), action)
        and _principal_matches_account(s.get("Principal"), account)
        and _conditions_hold(s.get("Condition"), ctx)
        for s in statements
    )


def allows_service(
    statements: Iterable[Mapping[str, Any]],
    service: str,
    action: str,
    *,
    source_arn: str | None,
    source_account: str | None,
) -> bool:
    """Whether a statement lets service principal `service` (e.g. "sns.amazonaws.com") act on
    behalf of the resource `source_arn` owned by `source_account`."""
    ctx: dict[str, str] = {}
    if source_arn:
        ctx["AWS:SourceArn"] = source_arn
    if source_account:
        ctx["AWS:SourceAccount"] = source_account
    return any(
        s.get("Effect") == "Allow"
        and _action_matches(s.get("Action"), action)
        and _principal_matches_service(s.get("Principal"), service)
        and _conditions_hold(s.get("Condition"), ctx)
        for s in statements
    )
