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
    """The policy is not valid; str(exc) is the reason AWS gives after "FilterPolicy: " (or, when `bare`,
    the whole reason: AWS words the scope rule without that prefix)."""

    def __init__(self, message: str, *, bare: bool = False) -> None:
        super().__init__(message)
        self.bare = bare


# AWS's limits on a policy: the sum over its `$or` alternatives of the product of each key's number of
# values, and the keys one alternative may name.
MAX_COMBINATIONS = 150
MAX_KEYS = 5


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
    """Parse and validate a policy; raises FilterPolicyError. The checks run in the order AWS's parser
    meets them (field by field, a match expression's first key before its second), so that the first
    error is AWS's."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FilterPolicyError(json_failure(exc)) from None
    if not isinstance(doc, dict):
        raise FilterPolicyError("Filter policy must be a JSON object")
    _check_object(doc, depth=0)
    if scope != "MessageBody" and _nested(doc):
        raise FilterPolicyError("Filter policy scope MessageAttributes does not support nested filter policy",
                                bare=True)
    alternatives = _alternatives(doc, "")
    if sum(_product(a.values()) for a in alternatives) > MAX_COMBINATIONS:
        raise FilterPolicyError("Filter policy is too complex")
    if any(len({path.split(".")[0] for path in a}) > MAX_KEYS for a in alternatives):  # parent keys only
        raise FilterPolicyError(f"Filter policy can not have more than {MAX_KEYS} keys")
    return doc


def _nested(doc: dict[str, Any]) -> bool:
    for key, value in doc.items():
        if key == "$or":
            if any(_nested(v) for v in value):
                return True
        elif isinstance(value, dict):
            return True
    return False


def _product(counts: Any) -> int:
    out = 1
    for n in counts:
        out *= n
    return out


def _alternatives(doc: dict[str, Any], prefix: str) -> list[dict[str, int]]:
    """The policy as the conjunctions it stands for (`$or` expanded): each a map of key path to its weight
    in AWS's complexity, its number of values times its depth (a key two levels down with 3 values: 6)."""
    combos: list[dict[str, int]] = [{}]
    for key, value in doc.items():
        if key == "$or":
            options = [alt for v in value for alt in _alternatives(v, prefix)]
        elif isinstance(value, dict):
            options = _alternatives(value, f"{prefix}{key}.")
        else:
            options = [{f"{prefix}{key}": len(value) * (prefix.count(".") + 1)}]
        combos = [{**c, **o} for c in combos for o in options]
    return combos


def _check_object(doc: dict[str, Any], *, depth: int) -> None:
    if depth > 5:
        raise FilterPolicyError("Filter policy is too deeply nested")
    if not doc:
        raise FilterPolicyError("Empty filter policy")
    for key, value in doc.items():
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, dict) for v in value):
                raise FilterPolicyError("$or must be an array of at least two filter policies")
            for alternative in value:
                _check_object(alternative, depth=depth + 1)
        elif isinstance(value, dict):
            _check_object(value, depth=depth + 1)
        elif isinstance(value, list):
            if not value:
                raise FilterPolicyError("Empty arrays are not allowed")
            for condition in value:
                _check_condition(condition)
        else:
            raise FilterPolicyError(f"\"{key}\" must be an object or an array")


def _check_condition(condition: Any) -> None:
    if condition is None or isinstance(condition, (str, int, float, bool)):
        return
    if not isinstance(condition, dict):
        raise FilterPolicyError("Match value must be String, number, true, false, or null")
    if not condition:
        raise FilterPolicyError("Empty objects are not allowed")
    (op, arg), *more = condition.items()
    if op not in _OPERATORS:
        raise FilterPolicyError(f"Unrecognized match type {op}")
    if op in ("prefix", "suffix", "equals-ignore-case") and not isinstance(arg, str):
        raise FilterPolicyError(f"{op} match pattern must be a string")
    if op == "exists" and not isinstance(arg, bool):
        raise FilterPolicyError("exists match pattern must be either true or false.")
    if op == "cidr":
        _check_cidr(arg)
    if op == "numeric":
        _check_numeric(arg)
    if op == "anything-but":
        if isinstance(arg, dict):
            inner, pattern = next(iter(arg.items()), ("", None))
            if inner not in ("prefix", "equals-ignore-case"):
                raise FilterPolicyError(f"Unsupported anything-but pattern: {inner}")
            if not isinstance(pattern, str):
                raise FilterPolicyError(f"{inner} match pattern must be a string")
        elif isinstance(arg, list):
            if not arg or not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in arg):
                raise FilterPolicyError("Inside anything but list, start|null|boolean is not supported.")
        elif not isinstance(arg, (str, int, float)) or isinstance(arg, bool):
            raise FilterPolicyError("Value of anything-but must be an array or single string/number value.")
    if more:
        raise FilterPolicyError("Only one key allowed in match expression")


def _check_cidr(arg: Any) -> None:
    if not isinstance(arg, str):
        raise FilterPolicyError("prefix match pattern must be a string")  # sic: AWS's text for cidr too
    address, slash, bits = arg.partition("/")
    if not slash or "/" in bits:
        raise FilterPolicyError("Malformed CIDR, one '/' required")
    if not bits.isdigit():  # the mask is read before the address (AWS: "bad-/64x" is a mask error)
        raise FilterPolicyError("Malformed CIDR, mask bits must be an integer")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise FilterPolicyError(f"Nonstandard IP address: {address}") from None
    try:
        ipaddress.ip_network(arg, strict=False)
    except ValueError:
        raise FilterPolicyError("Malformed CIDR, mask bits must be an integer") from None


def _numeric_value(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_numeric(arg: Any) -> None:
    """AWS's numeric grammar: `= n`, or a lower bound (`>`/`>=` n) and/or an upper one (`<`/`<=` n)."""
    if not isinstance(arg, list):
        raise FilterPolicyError("Value of numeric must be an array.")
    if not arg:
        raise FilterPolicyError("Invalid member in numeric match: ]")
    op = arg[0]
    if not isinstance(op, str):
        raise FilterPolicyError(f"Invalid member in numeric match: {_token(op)}")
    if op not in _NUMERIC_OPS:
        raise FilterPolicyError(f"Unrecognized numeric range operator: {op}")
    if len(arg) < 2 or not _numeric_value(arg[1]):
        raise FilterPolicyError(f"Value of {'equals' if op == '=' else op} must be numeric")
    if len(arg) == 2:
        return
    if op in ("=", "<", "<="):
        raise FilterPolicyError("Too many elements in numeric expression")
    second = arg[2]
    if not isinstance(second, str):
        raise FilterPolicyError(f"Bad value in numeric range: {_token(second)}")
    if second not in ("<", "<="):
        raise FilterPolicyError(f"Bad numeric range operator: {second}")
    if len(arg) < 4 or not _numeric_value(arg[3]):
        raise FilterPolicyError(f"Value of {second} must be numeric")
    if len(arg) > 4:
        raise FilterPolicyError("Too many terms in numeric range expression")
    if not float(arg[1]) < float(arg[3]):
        raise FilterPolicyError("Bottom must be less than top")


def _token(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


# -- matching -------------------------------------------------------------------------------------

def matches(policy: dict[str, Any], scope: str, attributes: dict[str, dict[str, Any]], body: str) -> bool:
    """Whether a message (attributes in SQS/SNS shape, body text) passes the policy."""
    values: dict[str, list[Any]] = {}
    if scope == "MessageBody":
        try:
            doc = json.loads(body)
        except ValueError:
            return False
        if not isinstance(doc, dict):
            return False
        _flatten(doc, "", values)
    else:
        for name, attr in attributes.items():
            value = _attribute_value(attr)
            if value is not _MISSING:
                values[name] = value if isinstance(value, list) else [value]
    return _match_paths(policy, values, "")


def _flatten(value: Any, path: str, out: dict[str, list[Any]]) -> None:
    """The body as AWS matches it: every leaf under its dotted path (`{"a": {"b": 1}}` and `{"a.b": 1}` are
    the same to a policy), the elements of arrays (of values or of objects) each under the array's path."""
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list):
        for item in value:
            _flatten(item, path, out)
    else:
        out.setdefault(path, []).append(value)


def _match_paths(policy: dict[str, Any], values: dict[str, list[Any]], prefix: str) -> bool:
    for key, expected in policy.items():
        if key == "$or":
            if not any(_match_paths(alternative, values, prefix) for alternative in expected):
                return False
            continue
        path = f"{prefix}{key}"
        if isinstance(expected, dict):
            if not _match_paths(expected, values, path + "."):
                return False
            continue
        if not _match_key(expected, values.get(path, _MISSING)):
            return False
    return True


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
