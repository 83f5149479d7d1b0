"""SNS subscription filter policies: validating a policy and matching a message against it.

It owns AWS's filter policy language: exact strings and numbers, `prefix`, `suffix`,
`equals-ignore-case`, `anything-but` (a value, a list, or a prefix/suffix/equals-ignore-case
pattern), `numeric` ranges, `exists`, `cidr`, and `$or`, applied either to the message attributes
(`FilterPolicyScope` MessageAttributes, flat) or to the JSON message body (`MessageBody`, nested).
It never knows about topics or subscriptions.

Semantics (AWS's): the keys of one object must all match (AND); the conditions listed for one key are
alternatives (OR); `$or` lists alternative sub-policies. A key that is absent matches only
`{"exists": false}`; `anything-but` needs the key to be present. An array value (a `String.Array`
attribute, a JSON array in the body) matches when any of its elements does.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

_OPERATORS = {"prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists", "cidr"}
_NUMERIC_OPS = {"=", "<", "<=", ">", ">="}
_MISSING = object()


class FilterPolicyError(Exception):
    """The policy is not valid; str(exc) is the reason AWS gives after "FilterPolicy: "."""


def json_failure(exc: json.JSONDecodeError) -> str:
    """SNS's text for a policy that is not JSON: its parser's (Jackson's) words where Python's parser
    failed for the same reason (a field name without its double quotes), else the short form."""
    if exc.msg.startswith("Expecting property name") and exc.pos < len(exc.doc):
        char = exc.doc[exc.pos]
        return (f"failed to parse JSON. Unexpected character ('{char}' (code {ord(char)})): was expecting "
                f"double-quote to start field name\n at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_"
                f"LOCATION` disabled); line: {exc.lineno}, column: {exc.colno}]")
    return "failed to parse JSON."


def parse(text: str, scope: str = "MessageAttributes") -> dict[str, Any]:
    """Parse and validate a policy; raises FilterPolicyError."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FilterPolicyError(json_failure(exc)) from None
    if not isinstance(doc, dict):
        raise FilterPolicyError("Filter policy must be a JSON object")
    _check_object(doc, nested_allowed=scope == "MessageBody", depth=0)
    return doc


def _check_object(doc: dict[str, Any], *, nested_allowed: bool, depth: int) -> None:
    if depth > 5:
        raise FilterPolicyError("Filter policy is too deeply nested")
    if not doc:
        raise FilterPolicyError("Empty filter policy")
    for key, value in doc.items():
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, dict) for v in value):
                raise FilterPolicyError("$or must be an array of at least two filter policies")
            for alternative in value:
                _check_object(alternative, nested_allowed=nested_allowed, depth=depth + 1)
        elif isinstance(value, dict):
            if not nested_allowed:
                raise FilterPolicyError(f"\"{key}\" must be an object or an array (Filter policy scope "
                                        "MessageAttributes does not support nested filter policy)")
            _check_object(value, nested_allowed=True, depth=depth + 1)
        elif isinstance(value, list):
            if not value:
                raise FilterPolicyError(f"Empty arrays are not allowed for \"{key}\"")
            for condition in value:
                _check_condition(key, condition)
        else:
            raise FilterPolicyError(f"\"{key}\" must be an object or an array")


def _check_condition(key: str, condition: Any) -> None:
    if condition is None or isinstance(condition, (str, int, float, bool)):
        return
    if not isinstance(condition, dict) or len(condition) != 1:
        raise FilterPolicyError(f"Match value must be String, number, true, false, or null for \"{key}\"")
    (op, arg), = condition.items()
    if op not in _OPERATORS:
        raise FilterPolicyError(f"Unrecognized match type {op}")
    if op in ("prefix", "suffix", "equals-ignore-case") and not isinstance(arg, str):
        raise FilterPolicyError(f"{op} match pattern must be a string")
    if op == "exists" and not isinstance(arg, bool):
        raise FilterPolicyError("exists match pattern must be either true or false.")
    if op == "cidr":
        try:
            ipaddress.ip_network(str(arg), strict=False)
        except ValueError:
            raise FilterPolicyError("Malformed CIDR, one '/' required") from None
    if op == "numeric":
        _check_numeric(arg)
    if op == "anything-but":
        if isinstance(arg, dict):
            if len(arg) != 1 or next(iter(arg)) not in ("prefix", "suffix", "equals-ignore-case"):
                raise FilterPolicyError("Unsupported anything-but pattern")
        elif isinstance(arg, list):
            if not arg or not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in arg):
                raise FilterPolicyError("Inside anything but list, start|null|boolean is not supported.")
        elif not isinstance(arg, (str, int, float)) or isinstance(arg, bool):
            raise FilterPolicyError("Value of anything-but must be an array or single string/number value.")


def _check_numeric(arg: Any) -> None:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise FilterPolicyError("Value of numeric must be an array.")
    for i in range(0, len(arg), 2):
        op, number = arg[i], arg[i + 1]
        if op not in _NUMERIC_OPS or (len(arg) == 4 and op == "="):
            raise FilterPolicyError(f"Unrecognized numeric range operator: {op}")
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            raise FilterPolicyError("Value of < must be numeric")


# -- matching -------------------------------------------------------------------------------------

def matches(policy: dict[str, Any], scope: str, attributes: dict[str, dict[str, Any]], body: str) -> bool:
    """Whether a message (attributes in SQS/SNS shape, body text) passes the policy."""
    if scope == "MessageBody":
        try:
            doc = json.loads(body)
        except ValueError:
            return False
        return isinstance(doc, dict) and _match_object(policy, doc)
    values: dict[str, Any] = {}
    for name, attr in attributes.items():
        value = _attribute_value(attr)
        if value is not _MISSING:
            values[name] = value
    return _match_object(policy, values)


def _attribute_value(attr: dict[str, Any]) -> Any:
    data_type = str(attr.get("DataType", ""))
    text = attr.get("StringValue")
    if text is None:
        return _MISSING  # binary attributes are not matched by filter policies
    if data_type.startswith("String.Array"):
        try:
            items = json.loads(text)
        except ValueError:
            return text
        return items if isinstance(items, list) else text
    if data_type.startswith("Number"):
        try:
            return float(text)
        except ValueError:
            return text
    return str(text)


def _match_object(policy: dict[str, Any], doc: dict[str, Any]) -> bool:
    for key, expected in policy.items():
        if key == "$or":
            if not any(_match_object(alternative, doc) for alternative in expected):
                return False
            continue
        value = doc.get(key, _MISSING)
        if isinstance(expected, dict):
            if isinstance(value, list):
                if not any(isinstance(v, dict) and _match_object(expected, v) for v in value):
                    return False
            elif not isinstance(value, dict) or not _match_object(expected, value):
                return False
            continue
        if not _match_key(expected, value):
            return False
    return True


def _match_key(conditions: list[Any], value: Any) -> bool:
    if value is _MISSING or (isinstance(value, list) and not value):
        return any(isinstance(c, dict) and c.get("exists") is False for c in conditions)
    candidates = value if isinstance(value, list) else [value]
    return any(_match_condition(c, v) for c in conditions for v in candidates)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _match_condition(condition: Any, value: Any) -> bool:
    if not isinstance(condition, dict):
        if _is_number(condition):
            return _is_number(value) and float(value) == float(condition)
        if isinstance(condition, bool) or condition is None:
            return value is condition
        return isinstance(value, str) and value == condition
    (op, arg), = condition.items()
    if op == "exists":
        return bool(arg)
    if op == "prefix":
        return isinstance(value, str) and value.startswith(arg)
    if op == "suffix":
        return isinstance(value, str) and value.endswith(arg)
    if op == "equals-ignore-case":
        return isinstance(value, str) and value.casefold() == str(arg).casefold()
    if op == "numeric":
        return _is_number(value) and _numeric(arg, float(value))
    if op == "cidr":
        try:
            return isinstance(value, str) and ipaddress.ip_address(value) in ipaddress.ip_network(arg, strict=False)
        except ValueError:
            return False
    if op == "anything-but":
        if isinstance(arg, dict):
            (inner, pattern), = arg.items()
            return not (isinstance(value, str) and _match_condition({inner: pattern}, value))
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_match_condition(e, value) for e in excluded)
    return False


def _numeric(spec: list[Any], value: float) -> bool:
    for i in range(0, len(spec), 2):
        op, number = spec[i], float(spec[i + 1])
        ok = {"=": value == number, "<": value < number, "<=": value <= number,
              ">": value > number, ">=": value >= number}[op]
        if not ok:
            return False
    return True
