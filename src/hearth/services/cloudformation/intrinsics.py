"""CloudFormation's intrinsic functions, condition functions and the references between resources.

It owns what `Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`, `Fn::Select`, `Fn::Split`, `Fn::If`, `Fn::Equals`,
`Fn::And`/`Or`/`Not`, `Fn::FindInMap`, `Fn::GetAZs`, `Fn::Base64`, `Fn::Cidr`, `Fn::ImportValue`, and the
language extensions `Fn::Length` and `Fn::ToJsonString` evaluate to, with CloudFormation's "Template error"
texts, and which resources a piece of template refers to (the dependency graph's edges). It never
creates a resource and never reads storage: values of resources, parameters and exports come from
the `Scope` it is given.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hearth.services.cloudformation.template import TemplateError


class _NoValue:
    """`Ref: AWS::NoValue`: the property it stands in is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()
PSEUDO = ("AWS::AccountId", "AWS::Region", "AWS::StackName", "AWS::StackId", "AWS::Partition", "AWS::URLSuffix",
          "AWS::NotificationARNs", "AWS::NoValue")
_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


class NotReady(Exception):
    """A resource referred to has no physical id or attribute yet (the graph orders this away)."""


@dataclass
class Scope:
    """What evaluation may read: parameters, pseudo parameters, conditions, mappings, resources, exports."""

    parameters: Mapping[str, Any]
    pseudo: Mapping[str, Any]
    mappings: Mapping[str, Any] = field(default_factory=dict)
    condition_definitions: Mapping[str, Any] = field(default_factory=dict)
    ref: Callable[[str], Any] = lambda name: (_ for _ in ()).throw(NotReady(name))
    get_att: Callable[[str, str], Any] = lambda name, attr: (_ for _ in ()).throw(NotReady(name))
    export: Callable[[str], Any | None] = lambda name: None
    resource_names: frozenset[str] = frozenset()
    _conditions: dict[str, bool] = field(default_factory=dict)

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self.condition_definitions:
                raise TemplateError(f"Template error: unresolved condition dependency {name} in Fn::If")
            self._conditions[name] = True  # a cycle reads True rather than recursing forever
            self._conditions[name] = bool(evaluate(self.condition_definitions[name], self))
        return self._conditions[name]


def _one_key(value: Any) -> tuple[str, Any] | None:
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        if key == "Ref" or key == "Condition" or key.startswith("Fn::"):
            return key, value[key]
    return None


def evaluate(value: Any, scope: Scope) -> Any:
    """`value` with every intrinsic function replaced by its result (NO_VALUE drops a member)."""
    fn = _one_key(value)
    if fn is not None:
        return _call(fn[0], fn[1], scope)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            result = evaluate(v, scope)
            if result is not NO_VALUE:
                out[k] = result
        return out
    if isinstance(value, list):
        return [r for r in (evaluate(v, scope) for v in value) if r is not NO_VALUE]
    return value


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _call(name: str, arg: Any, scope: Scope) -> Any:
    if name == "Ref":
        return _ref(arg, scope)
    if name == "Condition":
        return scope.condition(str(arg))
    handler = _FUNCTIONS.get(name)
    if handler is None:
        raise TemplateError(f"Template format error: Unrecognized intrinsic function {name}")
    return handler(arg, scope)


def _ref(name: Any, scope: Scope) -> Any:
    if not isinstance(name, str):
        raise TemplateError("Template format error: Every Ref object must have a single String value.")
    if name == "AWS::NoValue":
        return NO_VALUE
    if name in scope.pseudo:
        return scope.pseudo[name]
    if name in scope.parameters:
        # A parameter whose value is the text `AWS::NoValue` stands for no value, as in AWS (a
        # `Default: AWS::NoValue` makes an optional property).
        value = scope.parameters[name]
        return NO_VALUE if value == "AWS::NoValue" else value
    return scope.ref(name)


def _get_att(arg: Any, scope: Scope) -> Any:
    if isinstance(arg, str):
        arg = arg.split(".", 1)
    if not isinstance(arg, list) or len(arg) != 2 or not arg[0] or not arg[1]:
        raise TemplateError("Template error: every Fn::GetAtt object requires two non-empty parameters, the "
                            "resource name and the resource attribute")
    attribute = evaluate(arg[1], scope)
    return scope.get_att(str(arg[0]), str(attribute))


def _sub(arg: Any, scope: Scope) -> str:
    if isinstance(arg, str):
        text, variables = arg, {}
    elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and isinstance(arg[1], dict):
        text, variables = arg[0], {k: evaluate(v, scope) for k, v in arg[1].items()}
    else:
        raise TemplateError("Template error: One or more Fn::Sub intrinsic functions don't specify expected "
                            "arguments. Specify a string as first argument, and an optional second argument to "
                            "specify a mapping of values to replace in the string")

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner.startswith("!"):
            return "${" + inner[1:] + "}"
        inner = inner.strip()
        if inner in variables:
            return _string(variables[inner])
        if "." in inner and inner.split(".", 1)[0] not in scope.parameters and inner not in PSEUDO:
            resource, attribute = inner.split(".", 1)
            return _string(scope.get_att(resource, attribute))
        return _string(_ref(inner, scope))

    return _SUB_VAR.sub(replace, text)


def _join(arg: Any, scope: Scope) -> str:
    if not isinstance(arg, list) or len(arg) != 2:
        raise TemplateError("Template error: every Fn::Join object requires two parameters, (1) a string delimiter "
                            "and (2) a list of strings to be joined or a function that returns a list of strings "
                            "(such as Fn::GetAZs) to be joined.")
    items = evaluate(arg[1], scope)
    if not isinstance(items, list):
        raise TemplateError("Template error: every Fn::Join object requires two parameters, (1) a string delimiter "
                            "and (2) a list of strings to be joined or a function that returns a list of strings "
                            "(such as Fn::GetAZs) to be joined.")
    return _string(evaluate(arg[0], scope)).join(_string(i) for i in items)


def _select(arg: Any, scope: Scope) -> Any:
    text = "Template error: Fn::Select requires a list argument with two elements: an integer index and a list"
    if not isinstance(arg, list) or len(arg) != 2:
        raise TemplateError(text)
    index, items = evaluate(arg[0], scope), evaluate(arg[1], scope)
    try:
        position = int(index)
    except (TypeError, ValueError):
        raise TemplateError(text) from None
    if not isinstance(items, list):
        raise TemplateError(text)
    if not 0 <= position < len(items):
        raise TemplateError("Template error: Fn::Select cannot select nonexistent value at index "
                            f"{position}")
    return items[position]


def _split(arg: Any, scope: Scope) -> list[str]:
    if not isinstance(arg, list) or len(arg) != 2 or not isinstance(arg[0], str):
        raise TemplateError("Template error: every Fn::Split object requires two parameters, (1) a string delimiter "
                            "and (2) a string to be split or a function that returns a string to be split.")
    return _string(evaluate(arg[1], scope)).split(arg[0])


def _if(arg: Any, scope: Scope) -> Any:
    if not isinstance(arg, list) or len(arg) != 3 or not isinstance(arg[0], str):
        raise TemplateError("Template error: every Fn::If object requires three parameters, the condition, the "
                            "value if true and the value if false")
    return evaluate(arg[1] if scope.condition(arg[0]) else arg[2], scope)


def _equals(arg: Any, scope: Scope) -> bool:
    if not isinstance(arg, list) or len(arg) != 2:
        raise TemplateError("Template error: every Fn::Equals object requires a list of 2 string parameters.")
    left, right = (evaluate(a, scope) for a in arg)
    return _string(left) == _string(right) if not isinstance(left, list) else left == right


def _and(arg: Any, scope: Scope) -> bool:
    if not isinstance(arg, list) or not 2 <= len(arg) <= 10:
        raise TemplateError("Template error: every Fn::And object requires a list of at least 2 and at most 10 "
                            "boolean parameters.")
    return all(_truth(a, scope) for a in arg)


def _or(arg: Any, scope: Scope) -> bool:
    if not isinstance(arg, list) or not 2 <= len(arg) <= 10:
        raise TemplateError("Template error: every Fn::Or object requires a list of at least 2 and at most 10 "
                            "boolean parameters.")
    return any(_truth(a, scope) for a in arg)


def _not(arg: Any, scope: Scope) -> bool:
    if not isinstance(arg, list) or len(arg) != 1:
        raise TemplateError("Template error: every Fn::Not object requires a list of 1 boolean parameter.")
    return not _truth(arg[0], scope)


def _truth(value: Any, scope: Scope) -> bool:
    result = evaluate(value, scope)
    if isinstance(result, str):
        return result.lower() == "true"
    return bool(result)


def _find_in_map(arg: Any, scope: Scope) -> Any:
    if not isinstance(arg, list) or len(arg) not in (3, 4):
        raise TemplateError("Template error: every Fn::FindInMap object requires three parameters, the map name, "
                            "map key and the attribute for return value")
    default = None
    if len(arg) == 4 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
        default = evaluate(arg[3]["DefaultValue"], scope)
    name, key, attribute = (_string(evaluate(a, scope)) for a in arg[:3])
    try:
        return scope.mappings[name][key][attribute]
    except (KeyError, TypeError):
        if default is not None:
            return default
        raise TemplateError(f"Template error: Unable to get mapping for {name}::{key}::{attribute}") from None


def _get_azs(arg: Any, scope: Scope) -> list[str]:
    region = _string(evaluate(arg, scope)) or str(scope.pseudo["AWS::Region"])
    return [f"{region}{zone}" for zone in "abc"]


def _base64(arg: Any, scope: Scope) -> str:
    return base64.b64encode(_string(evaluate(arg, scope)).encode()).decode()


def _cidr(arg: Any, scope: Scope) -> list[str]:
    if not isinstance(arg, list) or len(arg) != 3:
        raise TemplateError("Template error: every Fn::Cidr object requires three parameters: an ip block, a count "
                            "and the number of subnet bits")
    block, count, bits = (evaluate(a, scope) for a in arg)
    network = ipaddress.ip_network(_string(block), strict=False)
    prefix = network.max_prefixlen - int(bits)
    if prefix < network.prefixlen:
        raise TemplateError("Template error: Fn::Cidr cannot create subnets larger than its ip block")
    subnets = network.subnets(new_prefix=prefix)
    out = []
    for _ in range(int(count)):
        try:
            out.append(str(next(subnets)))
        except StopIteration:
            break
    return out


def _import_value(arg: Any, scope: Scope) -> Any:
    name = _string(evaluate(arg, scope))
    value = scope.export(name)
    if value is None:
        raise TemplateError(f"No export named {name} found.")
    return value


def _length(arg: Any, scope: Scope) -> int:
    value = evaluate(arg, scope)
    if not isinstance(value, list):
        raise TemplateError("Template error: Fn::Length must be a list or a function that returns a list")
    return len(value)


def _to_json_string(arg: Any, scope: Scope) -> str:
    return json.dumps(evaluate(arg, scope), separators=(",", ":"))


_FUNCTIONS: dict[str, Callable[[Any, Scope], Any]] = {
    "Fn::GetAtt": _get_att, "Fn::Sub": _sub, "Fn::Join": _join, "Fn::Select": _select, "Fn::Split": _split,
    "Fn::If": _if, "Fn::Equals": _equals, "Fn::And": _and, "Fn::Or": _or, "Fn::Not": _not,
    "Fn::FindInMap": _find_in_map, "Fn::GetAZs": _get_azs, "Fn::Base64": _base64, "Fn::Cidr": _cidr,
    "Fn::ImportValue": _import_value, "Fn::Length": _length, "Fn::ToJsonString": _to_json_string,
}


# -- references ------------------------------------------------------------------------------------------


def references(value: Any, names: frozenset[str] | set[str]) -> set[str]:
    """The logical ids among `names` that `value` refers to (Ref, Fn::GetAtt, Fn::Sub variables)."""
    found: set[str] = set()
    _collect(value, names, found)
    return found


def _collect(value: Any, names: frozenset[str] | set[str], found: set[str]) -> None:
    fn = _one_key(value)
    if fn is not None:
        name, arg = fn
        if name == "Ref" and isinstance(arg, str) and arg in names:
            found.add(arg)
            return
        if name == "Fn::GetAtt":
            target = arg.split(".", 1)[0] if isinstance(arg, str) else (arg[0] if isinstance(arg, list) and arg
                                                                          else None)
            if isinstance(target, str) and target in names:
                found.add(target)
            if isinstance(arg, list) and len(arg) > 1:
                _collect(arg[1], names, found)
            return
        if name == "Fn::Sub":
            text = arg if isinstance(arg, str) else (arg[0] if isinstance(arg, list) and arg else "")
            local = set(arg[1]) if isinstance(arg, list) and len(arg) > 1 and isinstance(arg[1], dict) else set()
            for var in _SUB_VAR.findall(text if isinstance(text, str) else ""):
                if var.startswith("!"):
                    continue
                head = var.strip().split(".", 1)[0]
                if head in names and var.strip() not in local:
                    found.add(head)
            if isinstance(arg, list) and len(arg) > 1:
                _collect(arg[1], names, found)
            return
        _collect(arg, names, found)
        return
    if isinstance(value, dict):
        for v in value.values():
            _collect(v, names, found)
    elif isinstance(value, list):
        for v in value:
            _collect(v, names, found)


def conditions_used(value: Any) -> set[str]:
    """Names of conditions `value` reads (Fn::If's first argument, `Condition:`)."""
    found: set[str] = set()

    def walk(v: Any) -> None:
        fn = _one_key(v)
        if fn is not None:
            if fn[0] == "Fn::If" and isinstance(fn[1], list) and fn[1] and isinstance(fn[1][0], str):
                found.add(fn[1][0])
            if fn[0] == "Condition" and isinstance(fn[1], str):
                found.add(fn[1])
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(value)
    return found
