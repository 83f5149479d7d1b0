"""Policy documents as IAM validates them before storing one: MalformedPolicyDocument with IAM's reasons.

It owns the grammar checks (JSON, Version, Statement, Effect, Action/NotAction vendor prefixes,
Resource/NotResource ARN shapes, Principal forms, unique Sids, condition blocks) for the two kinds of
document IAM stores: permissions policies (no Principal allowed) and trust policies (a Principal
required, no Resource). It never evaluates a policy (`hearth.aws.authz.evaluate` does).
"""

from __future__ import annotations

import json
import re
from typing import Any

from hearth.aws.errors import AwsError

VERSIONS = ("2012-10-17", "2008-10-17")
_TOP_LEVEL = {"Version", "Id", "Statement"}
_STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal",
                   "NotPrincipal", "Condition"}
_VENDOR = re.compile(r"^[a-zA-Z0-9-]+$")
_ACCOUNT = re.compile(r"^\d{12}$")
_SERVICE = re.compile(r"^[a-z0-9.-]+\.(amazonaws\.com(\.cn)?|aws\.internal)$")
_AWS_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::(\d{12}|aws):.+$")


def malformed(reason: str) -> AwsError:
    return AwsError("MalformedPolicyDocument", reason, 400)


def parse(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError:
        raise malformed("This policy contains invalid Json") from None
    if not isinstance(doc, dict):
        raise malformed("This policy contains invalid Json")
    return doc


def validate_permissions(text: str) -> dict[str, Any]:
    """A permissions (identity or session) policy: statements name actions and resources, no principal."""
    doc = _common(text)
    for statement in _statements(doc):
        if "Principal" in statement or "NotPrincipal" in statement:
            raise malformed("Policy document should not specify a principal.")
        if "Resource" not in statement and "NotResource" not in statement:
            raise malformed("Policy statement must contain resources.")
        for key in ("Resource", "NotResource"):
            for resource in _list(statement.get(key)):
                _check_resource(resource)
    return doc


def validate_trust(text: str) -> dict[str, Any]:
    """A role's trust policy: statements name principals and sts actions, never resources."""
    # IAM takes a trust policy's Effect in any letter case ("ALLOW" in CloudFormation templates that
    # deploy on AWS); permissions policies must spell it "Allow" or "Deny".
    doc = _common(text, any_case_effect=True)
    for statement in _statements(doc):
        if "Resource" in statement or "NotResource" in statement:
            raise malformed("Has prohibited field Resource.")
        if "Principal" not in statement and "NotPrincipal" not in statement:
            raise malformed("Syntax errors in policy.")
        for key in ("Principal", "NotPrincipal"):
            if key in statement:
                _check_principal(statement[key])
    return doc


def _common(text: str, *, any_case_effect: bool = False) -> dict[str, Any]:
    doc = parse(text)
    if set(doc) - _TOP_LEVEL or "Statement" not in doc:
        raise malformed("Syntax errors in policy.")
    if "Version" in doc and doc["Version"] not in VERSIONS:
        raise malformed("The policy failed legacy parsing")
    statements = _statements(doc)
    sids = [s["Sid"] for s in statements if "Sid" in s]
    for statement in statements:
        if set(statement) - _STATEMENT_KEYS:
            raise malformed("Syntax errors in policy.")
        effect = statement.get("Effect")
        if any_case_effect and isinstance(effect, str):
            effect = effect.capitalize()
        if effect not in ("Allow", "Deny"):
            raise malformed("Syntax errors in policy.")
        if "Action" in statement and "NotAction" in statement:
            raise malformed("Syntax errors in policy.")
        if "Resource" in statement and "NotResource" in statement:
            raise malformed("Syntax errors in policy.")
        if "Sid" in statement and not isinstance(statement["Sid"], str):
            raise malformed("Syntax errors in policy.")
        if "Condition" in statement and not _valid_condition(statement["Condition"]):
            raise malformed("Syntax errors in policy.")
    if len(sids) != len(set(sids)):
        raise malformed("Statement IDs (SID) in a single policy must be unique.")
    for statement in statements:
        if "Action" not in statement and "NotAction" not in statement:
            raise malformed("Policy statement must contain actions.")
        for action in _list(statement.get("Action", statement.get("NotAction"))):
            _check_action(action)
    return doc


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    raw = doc.get("Statement")
    items = raw if isinstance(raw, list) else [raw]
    if not items or not all(isinstance(s, dict) for s in items):
        raise malformed("Syntax errors in policy.")
    return [s for s in items if isinstance(s, dict)]


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _check_action(action: Any) -> None:
    if not isinstance(action, str):
        raise malformed("Syntax errors in policy.")
    if action == "*":
        return
    if ":" not in action:
        raise malformed("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")
    vendor, _, rest = action.partition(":")
    if ":" in rest:
        raise malformed("Actions/Condition can contain only one colon.")
    if not _VENDOR.match(vendor):
        raise malformed(f"Vendor {vendor} is not valid")


def _check_resource(resource: Any) -> None:
    if not isinstance(resource, str):
        raise malformed("Syntax errors in policy.")
    if resource == "*" or resource.startswith("${"):
        return
    if not resource.startswith("arn:"):
        raise malformed(f'Resource {resource} must be in ARN format or "*".')
    parts = resource.split(":", 5)
    if len(parts) < 6:
        raise malformed(f'Resource {resource} must be in ARN format or "*".')
    if parts[1] not in ("aws", "aws-cn", "aws-us-gov", "*") and "$" not in parts[1]:
        raise malformed(f'Partition "{parts[1]}" is not valid for resource "{resource}".')
    if not parts[2]:
        raise malformed("Resource vendor must be fully qualified and cannot contain regexes.")


def _check_principal(principal: Any) -> None:
    if principal == "*":
        return
    if not isinstance(principal, dict) or not principal:
        raise malformed("Syntax errors in policy.")
    for kind, values in principal.items():
        for value in _list(values):
            if not isinstance(value, str):
                raise malformed("Syntax errors in policy.")
            if kind == "AWS":
                ok = value == "*" or bool(_ACCOUNT.match(value) or _AWS_PRINCIPAL.match(value))
            elif kind == "Service":
                ok = bool(_SERVICE.match(value))
            else:
                ok = kind in ("Federated", "CanonicalUser") and bool(value)
            if not ok:
                raise malformed(f'Invalid principal in policy: "{kind}":"{value}"')


def _valid_condition(condition: Any) -> bool:
    if not isinstance(condition, dict):
        return False
    return all(isinstance(block, dict) for block in condition.values())
