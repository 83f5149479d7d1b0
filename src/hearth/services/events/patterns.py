"""EventBridge's event pattern language: compile a pattern (with AWS's error texts) and match events.

It owns the grammar and the matching semantics: exact values (strings, numbers compared as numbers,
booleans, null), `prefix`, `suffix` (both optionally `equals-ignore-case`), `anything-but` (values,
prefix, suffix, equals-ignore-case, wildcard), `numeric` ranges, `exists`, `equals-ignore-case`,
`wildcard`, `cidr`, `$or`, nested objects, and arrays (a field holding an array matches if any
element matches). It never touches storage or delivery, and never evaluates anything from the
pattern as code.

Malformed patterns raise `PatternError(reason)`; the provider renders it as
`InvalidEventPatternException: "Event pattern is not valid. Reason: <reason>"`. AWS appends the JSON
parser's location (`\\n at [Source: ...; line: 1, column: N]`); Hearth leaves that suffix out.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

_MISSING = object()
_NUMERIC_OPS = ("<", "<=", "=", ">", ">=")


class PatternError(Exception):
    """A pattern that EventBridge would refuse; `reason` is AWS's text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Leaf = Callable[[Any], bool]


@dataclass(frozen=True)
class _Matcher:
    """One element of a field's match list. `exists` is None except for `{"exists": ...}`."""

    test: Leaf
    exists: bool | None = None


@dataclass(frozen=True)
class _Field:
    matchers: tuple[_Matcher, ...]


@dataclass(frozen=True)
class _Node:
    """An object in the pattern: fields (leaf lists or nested nodes) and `$or` alternatives."""

    fields: tuple[tuple[str, _Field | _Node], ...]
    alternatives: tuple[tuple[_Node, ...], ...]  # each `$or` is a tuple of nodes


class EventPattern:
    """A compiled pattern. `matches(event)` takes the event as a parsed JSON object."""

    def __init__(self, source: str, root: _Node) -> None:
        self.source = source
        self._root = root

    def matches(self, event: Any) -> bool:
        return _match_node(self._root, event)


def compile_pattern(text: str) -> EventPattern:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PatternError(_json_reason(text, exc)) from None
    if not isinstance(doc, dict):
        raise PatternError("Filter is not an object")
    return EventPattern(text, _compile_node(doc))


def _json_reason(text: str, exc: json.JSONDecodeError) -> str:
    # Jackson's wording for the two commonest mistakes; anything else gets a plain description.
    rest = text[exc.pos:]
    token = re.match(r"[A-Za-z_][\w]*", rest)
    if token:
        return (f"Unrecognized token '{token.group(0)}': was expecting (JSON String, Number, Array, Object or "
                "token 'null', 'true' or 'false')")
    if rest[:1] == "'":
        return "Unexpected character (''' (code 39)): was expecting double-quote to start field name"
    return f"Invalid JSON: {exc.msg}"


# -- compiling ------------------------------------------------------------------------------------

def _compile_node(doc: dict[str, Any]) -> _Node:
    fields: list[tuple[str, _Field | _Node]] = []
    alternatives: list[tuple[_Node, ...]] = []
    for key, value in doc.items():
        if key == "$or" and isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            alternatives.append(tuple(_compile_node(v) for v in value))
        elif isinstance(value, dict):
            fields.append((key, _compile_node(value)))
        elif isinstance(value, list):
            if not value:
                raise PatternError("Empty arrays are not allowed")
            fields.append((key, _Field(tuple(_compile_matcher(item) for item in value))))
        else:
            raise PatternError(f'"{key}" must be an object or an array')
    return _Node(tuple(fields), tuple(alternatives))


def _compile_matcher(item: Any) -> _Matcher:
    if isinstance(item, list):
        raise PatternError("Match value must be String, number, true, false, or null")
    if not isinstance(item, dict):
        return _Matcher(_exact(item))
    if len(item) != 1:
        raise PatternError("Only one key allowed in match expression")
    ((kind, arg),) = item.items()
    if kind == "prefix":
        return _Matcher(_affix(arg, "prefix", str.startswith))
    if kind == "suffix":
        return _Matcher(_affix(arg, "suffix", str.endswith))
    if kind == "equals-ignore-case":
        if not isinstance(arg, str):
            raise PatternError("equals-ignore-case match pattern must be a string")
        folded = arg.casefold()
        return _Matcher(lambda v: isinstance(v, str) and v.casefold() == folded)
    if kind == "wildcard":
        return _Matcher(_wildcard(arg))
    if kind == "exists":
        if not isinstance(arg, bool):
            raise PatternError("exists match pattern must be either true or false.")
        return _Matcher(lambda v: True, exists=arg)
    if kind == "numeric":
        return _Matcher(_numeric(arg))
    if kind == "anything-but":
        return _Matcher(_anything_but(arg))
    if kind == "cidr":
        return _Matcher(_cidr(arg))
    raise PatternError(f"Unrecognized match type {kind}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _exact(expected: Any) -> Leaf:
    if _is_number(expected):
        number = float(expected)
        return lambda v: _is_number(v) and float(v) == number
    if isinstance(expected, bool):
        return lambda v: isinstance(v, bool) and v is expected
    if expected is None:
        return lambda v: v is None
    return lambda v: isinstance(v, str) and v == expected


def _affix(arg: Any, kind: str, test: Callable[[str, str], bool]) -> Leaf:
    if isinstance(arg, dict) and len(arg) == 1 and isinstance(arg.get("equals-ignore-case"), str):
        folded = arg["equals-ignore-case"].casefold()
        return lambda v: isinstance(v, str) and test(v.casefold(), folded)
    if not isinstance(arg, str):
        raise PatternError(f"{kind} match pattern must be a string")
    return lambda v: isinstance(v, str) and test(v, arg)


def _wildcard_regex(pattern: Any) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise PatternError("wildcard match pattern must be a string")
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*\\":
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            if i + 1 < len(pattern) and pattern[i + 1] == "*":
                raise PatternError(f"Consecutive wildcard characters at pos {i + 1}")
            parts.append(".*")
        else:
            parts.append(re.escape(ch))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


def _wildcard(arg: Any) -> Leaf:
    regex = _wildcard_regex(arg)
    return lambda v: isinstance(v, str) and regex.fullmatch(v) is not None


def _numeric(arg: Any) -> Leaf:
    if not isinstance(arg, list) or not arg:
        raise PatternError("Value of numeric must be an array.")
    bounds: list[tuple[str, float]] = []
    i = 0
    while i < len(arg):
        op = arg[i]
        if not isinstance(op, str) or op not in _NUMERIC_OPS:
            raise PatternError(f"Unrecognized numeric range operator: {op}")
        if i + 1 >= len(arg) or not _is_number(arg[i + 1]):
            raise PatternError(f"Value of {op} must be numeric")
        if bounds:
            first = bounds[0][0]
            # Only a lower bound followed by an upper bound makes a range; "=" stands alone.
            if first not in (">", ">=") or op not in ("<", "<=") or len(bounds) > 1:
                raise PatternError(f"Bad numeric range operator: {op}")
        elif op == "=" and len(arg) > 2:
            raise PatternError(f"Bad numeric range operator: {arg[2]}")
        bounds.append((op, float(arg[i + 1])))
        i += 2
    checks = tuple(bounds)

    def test(v: Any) -> bool:
        if not _is_number(v):
            return False
        x = float(v)
        for op, limit in checks:
            ok = {"<": x < limit, "<=": x <= limit, "=": x == limit, ">": x > limit, ">=": x >= limit}[op]
            if not ok:
                return False
        return True
    return test


def _anything_but(arg: Any) -> Leaf:
    if isinstance(arg, dict):
        if len(arg) != 1:
            raise PatternError("Value of anything-but must be an array or single string/number value.")
        ((kind, inner),) = arg.items()
        if kind in ("prefix", "suffix"):
            values = inner if isinstance(inner, list) else [inner]
            if isinstance(inner, dict):
                raise PatternError("Value of anything-but must be an array or single string/number value.")
            if not all(isinstance(x, str) for x in values):
                raise PatternError("prefix/suffix match pattern must be a string")
            if any(x == "" for x in values):
                raise PatternError("Null prefix/suffix not allowed")
            fn = str.startswith if kind == "prefix" else str.endswith
            # A value that is not a string (a number, null) is "anything but" a string pattern: AWS matches it.
            return lambda v: not isinstance(v, str) or not any(fn(v, x) for x in values)
        if kind == "equals-ignore-case":
            values = inner if isinstance(inner, list) else [inner]
            if not values or not all(isinstance(x, str) for x in values):
                raise PatternError("Inside anything-but/equals-ignore-case list, number|start|null|boolean is "
                                   "not supported.")
            folded = {x.casefold() for x in values}
            return lambda v: not isinstance(v, str) or v.casefold() not in folded
        if kind == "wildcard":
            values = inner if isinstance(inner, list) else [inner]
            regexes = [_wildcard_regex(x) for x in values]
            return lambda v: not isinstance(v, str) or not any(r.fullmatch(v) for r in regexes)
        if kind == "numeric":
            inside = _numeric(inner)
            return lambda v: _is_number(v) and not inside(v)
        raise PatternError(f"Unsupported anything-but pattern: {kind}")
    values = arg if isinstance(arg, list) else [arg]
    if isinstance(arg, (bool, type(None))):
        raise PatternError("Value of anything-but must be an array or single string/number value.")
    if not values or not all(isinstance(x, str) or _is_number(x) for x in values):
        raise PatternError("Inside anything but list, start|null|boolean is not supported.")
    excluded = [_exact(x) for x in values]
    # A null or boolean value is "anything but" a string/number list (AWS matches it).
    return lambda v: not isinstance(v, (dict, list)) and not any(t(v) for t in excluded)


def _cidr(arg: Any) -> Leaf:
    if not isinstance(arg, str):
        raise PatternError("prefix match pattern must be a string")
    if arg.count("/") != 1:
        raise PatternError("Malformed CIDR, one '/' required")
    address, _, bits = arg.partition("/")
    if not bits.isdigit():
        raise PatternError("Malformed CIDR, mask bits must be an integer")
    try:
        network = ipaddress.ip_network(f"{address}/{bits}", strict=False)
    except ValueError:
        raise PatternError(f"Nonstandard IP address: {address}") from None

    def test(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        try:
            return ipaddress.ip_address(v) in network
        except ValueError:
            return False
    return test


# -- matching -------------------------------------------------------------------------------------

def _objects(value: Any) -> Iterator[dict[str, Any]]:
    """The objects a nested pattern applies to: the value itself or every object in its arrays."""
    if isinstance(value, dict):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item)


def _leaves(value: Any) -> list[Any]:
    """The leaf values of a field: scalars, with arrays (of arrays) flattened; objects are not leaves."""
    if value is _MISSING or isinstance(value, dict):
        return []
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            out.extend(_leaves(item))
        return out
    return [value]


def _match_node(node: _Node, value: Any) -> bool:
    candidates = list(_objects(value))
    if not candidates:
        candidates = [{}]  # a missing or scalar value still matches a pattern of only `exists: false`
    return any(_match_object(node, obj) for obj in candidates)


def _lookup(obj: dict[str, Any], key: str, nested: bool) -> Any:
    """A field of an event object. Dots join names both ways, as in AWS: a pattern's `a.b` finds the
    event's {"a": {"b": …}}, and a nested pattern {"a": {"b": …}} finds the event's "a.b" field."""
    if key in obj:
        return obj[key]
    first, dot, rest = key.partition(".")
    if dot and isinstance(obj.get(first), dict):
        return _lookup(obj[first], rest, nested)
    if nested:
        joined = {k[len(key) + 1:]: v for k, v in obj.items() if k.startswith(f"{key}.")}
        if joined:
            return joined
    return _MISSING


def _match_object(node: _Node, obj: dict[str, Any]) -> bool:
    for key, spec in node.fields:
        value = _lookup(obj, key, isinstance(spec, _Node))
        if isinstance(spec, _Node):
            if not _match_node(spec, {} if value is _MISSING else value):
                return False
        elif not _match_field(spec, value):
            return False
    return all(any(_match_object(alt, obj) for alt in alts) for alts in node.alternatives)


def _match_field(spec: _Field, value: Any) -> bool:
    leaves = _leaves(value)
    present = value is not _MISSING and (bool(leaves) or not isinstance(value, list))
    for m in spec.matchers:
        if m.exists is not None:
            # `exists` is about leaf values: an object in that place is not a leaf, so it does not exist.
            if m.exists == (present and not isinstance(value, dict)):
                return True
        elif any(m.test(v) for v in leaves):
            return True
    return False
