"""Model validation of parsed parameters, with the texts AWS's service framework produces.

It owns the ValidationException message ("1 validation error detected: Value 'x' at 'functionName'
failed to satisfy constraint: Member must have length less than or equal to 140"; several joined by
"; "). It never applies business rules (providers do) and never mutates the parameters.

AWS's framework is written in Java, so its texts carry Java's formatting: member paths in
lowerCamelCase, lists as `[a, b]`, maps as `{k=v}`, doubles as `1.0`, `null` unquoted.
"""

from __future__ import annotations

import math
import re
import warnings
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from hearth.aws.errors import ValidationError

# Java regex classes Python's `re` lacks, as the contents of a character class (Unicode ranges are
# approximations of Java's categories, close enough for the identifiers AWS constrains with them).
_JAVA_CLASSES = {
    "Alnum": "a-zA-Z0-9", "Alpha": "a-zA-Z", "Digit": "0-9", "Upper": "A-Z", "Lower": "a-z",
    "Punct": r"!-/:-@\[-`{-~", "Space": r" \t\n\x0b\f\r", "XDigit": "0-9a-fA-F", "ASCII": r"\x00-\x7f",
    "Print": r"\x20-\x7e", "Graph": r"\x21-\x7e", "Cntrl": r"\x00-\x1f\x7f",
    "L": "a-zA-Z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u1fff\u2c00-\ud7ff\uf900-\ufdff",
    "IsAlphabetic": "a-zA-Z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u1fff\u2c00-\ud7ff",
    "N": "0-9\u00b2\u00b3\u00b9\u00bc-\u00be\u0660-\u0669\u06f0-\u06f9\u0966-\u096f\uff10-\uff19",
    "Z": " \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000",
    "M": "\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u0610-\u061a\u064b-\u065f",
    "S": "$+<->^`|~\u00a2-\u00a9\u00ac\u00ae-\u00b1\u00b4\u00d7\u00f7\u2100-\u214f\u2190-\u23ff",
    "P": r"!-#%-*,-/:;?@\[-\]_{}\u00a1\u00a7\u00ab\u00b6\u00b7\u00bb\u00bf\u2010-\u2027\u2030-\u205e",
}
_JAVA_CLASS_RX = re.compile(r"\\p\{(?:Is)?(\w+)\}|(\\.)|(\[)|(\])", re.DOTALL)


def _translate_java(pattern: str) -> str:
    r"""Rewrite `\p{..}` classes as explicit ranges, bracketed only outside a character class."""
    depth = 0
    out: list[str] = []
    pos = 0
    for m in _JAVA_CLASS_RX.finditer(pattern):
        out.append(pattern[pos:m.start()])
        pos = m.end()
        if m.group(2) is not None:
            out.append(m.group(0))
        elif m.group(1) is not None:
            ranges = _JAVA_CLASSES.get(m.group(1))
            if ranges is None:
                out.append(m.group(0))  # unknown: left as is, the compile fails and it is not enforced
            else:
                out.append(ranges if depth else f"[{ranges}]")
        elif m.group(3) is not None:
            depth += 1
            out.append("[")
        else:
            depth = max(depth - 1, 0)
            out.append("]")
    out.append(pattern[pos:])
    return "".join(out)


# AWS prints enum value sets in its own (server-side model) order, which botocore's models do not
# keep. Where a real AWS answer showed the order (shared/reference/aws-recorded), it is listed here;
# any other enum prints in botocore's order.
_AWS_ENUM_ORDER: dict[frozenset[str], tuple[str, ...]] = {
    frozenset(order): order for order in (
        ("Terminate", "Allow"),
        ("RESPONSE_STREAM", "BUFFERED"),
        ("LATEST", "AT_TIMESTAMP", "TRIM_HORIZON"),
        ("x86_64", "arm64"),
        ("PublishedVersions", "None"),
        ("w3c", "raw", "json", "plain", "parquet"),  # CloudWatch Logs' delivery outputFormat
        ("HEAD", "POST", "PATCH", "DELETE", "PUT", "GET", "OPTIONS"),  # EventBridge API destinations' HttpMethod
        # API Gateway (recorded in LocalStack's AWS-validated snapshots)
        ("HTTP", "MOCK", "AWS_PROXY", "HTTP_PROXY", "AWS"),
        ("PRIVATE", "EDGE", "REGIONAL"),
        ("ipv4", "dualstack"),
        ("add", "remove", "move", "test", "replace", "copy"),
        ("RESPONSE_BODY", "RESPONSE", "METHOD", "MODEL", "AUTHORIZER", "RESPONSE_HEADER", "RESOURCE",
         "PATH_PARAMETER", "REQUEST_BODY", "QUERY_PARAMETER", "API", "REQUEST_HEADER"),
        ("REQUEST_TOO_LARGE", "RESOURCE_NOT_FOUND", "AUTHORIZER_CONFIGURATION_ERROR", "MISSING_AUTHENTICATION_TOKEN",
         "BAD_REQUEST_BODY", "INVALID_SIGNATURE", "INVALID_API_KEY", "BAD_REQUEST_PARAMETERS", "AUTHORIZER_FAILURE",
         "UNAUTHORIZED", "INTEGRATION_TIMEOUT", "ACCESS_DENIED", "DEFAULT_4XX", "DEFAULT_5XX", "WAF_FILTERED",
         "QUOTA_EXCEEDED", "THROTTLED", "API_CONFIGURATION_ERROR", "UNSUPPORTED_MEDIA_TYPE", "INTEGRATION_FAILURE",
         "EXPIRED_TOKEN"),
    )
}

# botocore patterns AWS does not enforce (recorded by LocalStack's AWS-validated tests): CloudWatch Logs
# accepts a metric namespace with a colon ("A.B-c_d/1#2:metricNamespace") although its model says `[^:*$]*`.
_UNENFORCED_PATTERNS = frozenset({"[^:*$]*"})

# Patterns AWS lists before a length failure of the same value, where it otherwise lists the length first
# (recorded: EventBridge's connection names, `[\.\-_A-Za-z0-9]+`).
_PATTERN_BEFORE_LENGTH = frozenset({r"[\.\-_A-Za-z0-9]+"})


# Likewise AWS prints some patterns as its own server-side model has them, which botocore's newer or
# reformatted models do not (recorded in LocalStack's AWS snapshots): the botocore pattern -> AWS's text.
# The pattern enforced is still botocore's.
_AWS_PATTERN_TEXT: dict[str, str] = {
    # Lambda's TaggableResource (TagResource, UntagResource, ListTags).
    r"arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:(function:"
    r"[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:"
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|(capacity-provider|"
    r"network-connector):[a-zA-Z0-9-_]{1,64})":
    r"arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:(function:"
    r"[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)|code-signing-config:csc-[a-z0-9]{17}|"
    r"event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|"
    r"capacity-provider:[a-zA-Z0-9-_]+)",
    # Lambda's LayerVersionArn (CreateFunction's and UpdateFunctionConfiguration's Layers).
    r"((arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:"
    r"[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+))":
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:"
    r"[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)",
}


def pattern_text(pattern: str) -> str:
    """A pattern as AWS prints it in its validation texts."""
    return _AWS_PATTERN_TEXT.get(pattern, pattern)


def enum_order(values: list[str]) -> list[str]:
    """The order AWS lists an enum's values in its validation texts."""
    known = _AWS_ENUM_ORDER.get(frozenset(values))
    return list(known) if known is not None else values


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    if "\\p{" in pattern:
        pattern = _translate_java(pattern)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Java patterns trip re's "possible nested set" warnings
            return re.compile(pattern, re.DOTALL)
    except re.error:
        return None  # a pattern we cannot translate is not enforced rather than wrongly enforced


def lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def java_repr(value: Any) -> str:
    """A value as Java's toString() prints it inside AWS's messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(java_repr(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{java_repr(k)}={java_repr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (bytes, bytearray)):
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _number_text(shape: Shape, bound: float) -> str:
    if shape.type_name in ("double", "float"):
        return repr(float(bound))
    return str(int(bound)) if float(bound).is_integer() else repr(bound)


def constraint_failures(shape: Shape, value: Any, enums: bool = True) -> list[str]:
    """The constraint texts a single non-null value of `shape` violates, in AWS's order.

    `enums=False` leaves enum membership unchecked (services whose framework does not enforce it)."""
    out: list[str] = []
    meta = shape.metadata
    t = shape.type_name
    if t in ("string", "blob", "list", "map"):
        if isinstance(value, (str, bytes, bytearray, list, dict)):
            n = len(value)
            if "max" in meta and n > meta["max"]:
                out.append(f"Member must have length less than or equal to {int(meta['max'])}")
            if "min" in meta and n < meta["min"]:
                out.append(f"Member must have length greater than or equal to {int(meta['min'])}")
        if t == "string" and isinstance(value, str):
            pattern = meta.get("pattern")
            if pattern is not None and pattern not in _UNENFORCED_PATTERNS:
                rx = _compiled(pattern)
                if rx is not None and rx.fullmatch(value) is None:
                    failure = f"Member must satisfy regular expression pattern: {pattern_text(pattern)}"
                    out.insert(0 if pattern in _PATTERN_BEFORE_LENGTH else len(out), failure)
            enum = shape.enum if enums else None
            if enum and value not in enum:
                out.append("Member must satisfy enum value set: [" + ", ".join(enum_order(list(enum))) + "]")
    elif t in ("integer", "long", "double", "float") and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        if "max" in meta and value > meta["max"]:
            out.append(f"Member must have value less than or equal to {_number_text(shape, meta['max'])}")
        if "min" in meta and value < meta["min"]:
            out.append(f"Member must have value greater than or equal to {_number_text(shape, meta['min'])}")
    return out


def _all_constraints(shape: Shape, enums: bool = True) -> list[str]:
    """Every constraint of an element shape (AWS lists them all when a collection element fails)."""
    meta = shape.metadata
    out: list[str] = []
    if shape.type_name in ("string", "blob", "list", "map"):
        if "max" in meta:
            out.append(f"Member must have length less than or equal to {int(meta['max'])}")
        if "min" in meta:
            out.append(f"Member must have length greater than or equal to {int(meta['min'])}")
        if "pattern" in meta:
            out.append(f"Member must satisfy regular expression pattern: {pattern_text(meta['pattern'])}")
        if enums and shape.type_name == "string" and shape.enum:
            out.append("Member must satisfy enum value set: ["
                       + ", ".join(enum_order(list(shape.enum))) + "]")
    elif shape.type_name in ("integer", "long", "double", "float"):
        if "max" in meta:
            out.append(f"Member must have value less than or equal to {_number_text(shape, meta['max'])}")
        if "min" in meta:
            out.append(f"Member must have value greater than or equal to {_number_text(shape, meta['min'])}")
    out.append("Member must not be null")
    return out


class _Collector:
    def __init__(self, enums: bool = True, judged_by_service: frozenset[str] = frozenset()) -> None:
        self.errors: list[str] = []
        self.enums = enums
        self.judged_by_service = judged_by_service

    def element_fails(self, shape: Shape, value: Any) -> bool:
        return value is None or bool(constraint_failures(shape, value, self.enums))

    def all_constraints(self, shape: Shape) -> list[str]:
        return _all_constraints(shape, self.enums)

    def add(self, value: Any, path: str, constraint: str) -> None:
        shown = "null" if value is None else f"'{java_repr(value)}'"
        self.errors.append(f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}")


# Structures AWS prints as its own Java classes' toString() (`Name(field=value, ...)`, its fields in its
# order, internal ones included) rather than as a map: shape name -> the fields (recorded: PutEvents with
# more than 10 entries lists each `PutEventsRequestEntry(time=null, source=..., ...)`).
_JAVA_TO_STRING: dict[str, tuple[str, ...]] = {
    "PutEventsRequestEntry": ("time", "source", "resources", "detailType", "detail", "eventBusName", "traceHeader",
                              "kmsKeyIdentifier", "internalMetadata"),
}


class _JavaObject:
    """A structure printed as AWS's Java class prints itself (see _JAVA_TO_STRING)."""

    def __init__(self, name: str, fields: list[tuple[str, Any]]) -> None:
        self.name, self.fields = name, fields

    def __str__(self) -> str:
        return f"{self.name}(" + ", ".join(f"{k}={java_repr(v)}" for k, v in self.fields) + ")"


def _as_modelled(shape: Shape, value: Any) -> Any:
    """`value` with its numbers as the model types them: AWS (Java) prints a double 2 as 2.0."""
    if shape.type_name in ("double", "float") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(shape, StructureShape) and isinstance(value, dict) and shape.name in _JAVA_TO_STRING:
        members = shape.members
        return _JavaObject(shape.name, [
            (field, _as_modelled(members[name], value.get(name)) if name in members else None)
            for field, name in ((f, f[:1].upper() + f[1:]) for f in _JAVA_TO_STRING[shape.name])])
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_as_modelled(shape.member, item) for item in value]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {k: _as_modelled(shape.value, v) for k, v in value.items()}
    return value


def _check(shape: Shape, value: Any, path: str, out: _Collector) -> None:
    shown = _as_modelled(shape, value)
    for text in constraint_failures(shape, value, out.enums):
        out.add(shown, path, text)
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        _check_structure(shape, value, path, out)
    elif isinstance(shape, ListShape) and isinstance(value, list):
        member = shape.member
        if isinstance(member, (StructureShape, ListShape, MapShape)):
            for i, item in enumerate(value, start=1):
                if item is not None:
                    _check(member, item, f"{path}.{i}.member", out)
        elif any(out.element_fails(member, item) for item in value):
            out.add(shown, path, "Member must satisfy constraint: [" + ", ".join(out.all_constraints(member)) + "]")
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        key_shape, value_shape = shape.key, shape.value
        if any(out.element_fails(key_shape, k) for k in value):
            constraints = out.all_constraints(key_shape)[:-1]
            out.add(shown, path, "Map keys must satisfy constraint: [" + ", ".join(constraints) + "]")
        if isinstance(value_shape, (StructureShape, ListShape, MapShape)):
            for k, item in value.items():
                if item is not None:
                    # A map's structured value is "<key>.member", as a list's ("messageAttributes.attr1.member
                    # .dataType", recorded by AWS for SNS).
                    _check(value_shape, item, f"{path}.{k}.member", out)
        elif any(out.element_fails(value_shape, v) for v in value.values()):
            out.add(shown, path,
                    "Map value must satisfy constraint: [" + ", ".join(out.all_constraints(value_shape)) + "]")


@cache  # shapes belong to cached service models: one plan per structure, for good
def _members(shape: StructureShape) -> tuple[tuple[str, Shape, str, bool], ...]:
    """(name, shape, lowerCamel name, required) per member, in model order: the per-request walk then
    does no property lookups, no name conversion and no set membership for members left out."""
    required = set(shape.required_members)
    return tuple((name, member, lower_camel(name), name in required) for name, member in shape.members.items())


def _check_structure(shape: StructureShape, value: dict[str, Any], path: str, out: _Collector) -> None:
    prefix = f"{path}." if path else ""
    for name, member, camel, required in _members(shape):
        item = value.get(name)
        if item is None:
            if required:
                out.add(None, prefix + camel, "Member must not be null")
            continue
        member_path = prefix + camel
        if member_path in out.judged_by_service:
            continue
        _check(member, item, member_path, out)


def validation_errors(shape: StructureShape | None, params: dict[str, Any], *, enums: bool = True,
                      judged_by_service: frozenset[str] = frozenset()) -> list[str]:
    if shape is None:
        return []
    out = _Collector(enums, judged_by_service)
    _check_structure(shape, params, "", out)
    return out.errors


def validate(shape: StructureShape | None, params: dict[str, Any], *, enums: bool = True,
             judged_by_service: frozenset[str] = frozenset()) -> None:
    """Raise AWS's ValidationException if `params` violate the model's constraints (enum membership
    only if `enums`: see the gateway for which services AWS checks it on). Members whose paths are in
    `judged_by_service` are left to the service, which answers them with its own error."""
    errors = validation_errors(shape, params, enums=enums, judged_by_service=judged_by_service)
    if errors:
        raise ValidationError(format_errors(errors))


def format_errors(errors: list[str]) -> str:
    n = len(errors)
    head = "1 validation error detected: " if n == 1 else f"{n} validation errors detected: "
    return head + "; ".join(errors)
