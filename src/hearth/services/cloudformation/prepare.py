"""Preparing a CloudFormation template: everything CloudFormation checks before it creates a resource.

It owns the transforms (SAM through aws-sam-translator, the language extensions), the structure check,
parameters (types, constraints, SSM parameter types, NoEcho), conditions, references between resources
and the dependency graph with its cycles, and the capabilities a template needs, with CloudFormation's
ValidationError texts. It never creates a resource and never stores anything (`engine.py` runs what
this prepares).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hearth.services.cloudformation import intrinsics, template
from hearth.services.cloudformation.intrinsics import Scope
from hearth.services.cloudformation.template import ParameterError, Template, TemplateError

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
IAM_TYPES = ("AWS::IAM::",)
_IAM_NAME_PROPERTY = {"AWS::IAM::Role": "RoleName", "AWS::IAM::User": "UserName", "AWS::IAM::Group": "GroupName",
                      "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
                      "AWS::IAM::InstanceProfile": "InstanceProfileName"}

ParameterLookup = Callable[[str, str, str], str | None]  # (account, region, name) -> SSM value


@dataclass
class Prepared:
    """A template ready to run: transformed, checked, with its parameters and conditions resolved."""

    original: str
    template: Template
    parameters: dict[str, Any]               # name -> resolved value (lists for list types)
    parameter_records: list[dict[str, Any]]  # as DescribeStacks shows them
    conditions: dict[str, bool]
    active: list[str]                        # logical ids whose Condition holds
    dependencies: dict[str, set[str]]
    capabilities_needed: list[str] = field(default_factory=list)


class _ManagedPolicies:
    """SAM's managed-policy map: the names and ARNs bundled with aws-sam-translator."""

    def load(self) -> dict[str, str]:
        from samtranslator.internal.managed_policies import get_bundled_managed_policy_map

        return dict(get_bundled_managed_policy_map("aws") or {})


def _sam_transform(body: Template, parameters: dict[str, Any], pseudo: dict[str, Any]) -> Template:
    """The SAM transform by aws-sam-translator, with the stack's region (it would ask boto3's config)."""
    import copy

    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template

    # The library warns of "unpublished metrics" on every transform: its metrics go nowhere here, by design.
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
    fragment = copy.deepcopy(body)
    values = {**parameters, **{k: v for k, v in pseudo.items() if k != "AWS::NotificationARNs"}}
    to_py27_compatible_template(fragment, values)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=pseudo["AWS::Region"]))
    policies = _ManagedPolicies().load()
    try:
        result: Template = undo_mark_unicode_str_in_template(translator.translate(
            fragment, parameter_values=values, get_managed_policy_map=lambda: policies))
    except InvalidDocumentException as exc:
        causes = "; ".join(str(getattr(c, "message", c)) for c in exc.causes)
        raise TemplateError(f"Transform AWS::Serverless-2016-10-31 failed with: {exc.message} {causes}".strip()) \
            from None
    return result


# `List<String>` works in AWS though its documentation does not list it.
_PARAMETER_TYPES = re.compile(r"^(String|Number|List<Number>|List<String>|CommaDelimitedList|AWS::[A-Za-z0-9:]+|"
                              r"List<AWS::[A-Za-z0-9:]+>|AWS::SSM::Parameter::Value<.+>)$")


INCLUDE = "AWS::Include"


@dataclass(frozen=True)
class IncludeFailed:
    """A snippet that could not be fetched or read: why, in AWS's words."""

    reason: str


def include_locations(body: str, given: dict[str, str], previous: dict[str, str], *, account: str, region: str,
                      stack_name: str, stack_id: str, lookup: ParameterLookup,
                      use_previous: frozenset[str] = frozenset()) -> list[str]:
    """The S3 locations of the template's `Fn::Transform: {Name: AWS::Include}` snippets, evaluated with the
    stack's parameters (the caller fetches them for `prepare`); none when the template cannot be read yet."""
    try:
        raw = template.parse(body)
        values = _parameter_values(raw.get("Parameters") or {}, given, previous, use_previous, account, region,
                                   lookup)
    except TemplateError:
        return []  # prepare reports it
    scope = Scope(parameters={k: v["value"] for k, v in values.items()},
                  pseudo=pseudo_parameters(account, region, stack_name, stack_id))
    found: list[str] = []
    _walk_includes(raw, lambda location: found.append(_location(location, scope)))
    return found


def _walk_includes(value: Any, visit: Callable[[Any], None]) -> None:
    if isinstance(value, dict):
        transform = value.get("Fn::Transform")
        if isinstance(transform, dict) and transform.get("Name") == INCLUDE:
            visit((transform.get("Parameters") or {}).get("Location"))
        for v in value.values():
            _walk_includes(v, visit)
    elif isinstance(value, list):
        for v in value:
            _walk_includes(v, visit)


def _location(location: Any, scope: Scope) -> str:
    try:
        return str(intrinsics.evaluate(location, scope))
    except (intrinsics.NotReady, TemplateError):
        raise TemplateError("Transform AWS::Include failed with: the Location must be an S3 URI") from None


def _apply_includes(value: Any, snippets: dict[str, Any], scope: Scope) -> Any:
    """`value` with each AWS::Include replaced by its snippet: merged into the map that holds it (a resource,
    a property set) or standing for the value it is (a property)."""
    if isinstance(value, dict):
        transform = value.get("Fn::Transform")
        out = {k: _apply_includes(v, snippets, scope) for k, v in value.items() if k != "Fn::Transform"}
        if isinstance(transform, dict) and transform.get("Name") == INCLUDE:
            location = _location((transform.get("Parameters") or {}).get("Location"), scope)
            found = snippets.get(location, IncludeFailed(f"{location} could not be read."))
            if isinstance(found, IncludeFailed):
                raise TemplateError(f"Transform AWS::Include failed with: {found.reason}")
            snippet = _apply_includes(found, snippets, scope)
            if not out:
                return snippet
            if isinstance(snippet, dict):
                return {**out, **snippet}
            raise TemplateError("Transform AWS::Include failed with: the snippet must be a map here")
        if transform is not None:
            out["Fn::Transform"] = transform
        return out
    if isinstance(value, list):
        return [_apply_includes(v, snippets, scope) for v in value]
    return value


def prepare(body: str, given: dict[str, str], previous: dict[str, str], *, account: str, region: str,
            stack_name: str, stack_id: str, lookup: ParameterLookup,
            use_previous: frozenset[str] = frozenset(), snippets: dict[str, Any] | None = None) -> Prepared:
    """Everything CloudFormation checks before it creates a resource, raising TemplateError. `snippets`:
    the AWS::Include snippets by location (see `include_locations`), parsed."""
    raw = template.parse(body)
    names = template.transforms(raw)
    declared = raw.get("Parameters") or {}
    values = _parameter_values(declared, given, previous, use_previous, account, region, lookup)
    processed = raw
    if snippets is not None:
        processed = _apply_includes(raw, snippets, Scope(
            parameters={k: v["value"] for k, v in values.items()},
            pseudo=pseudo_parameters(account, region, stack_name, stack_id)))
    for name in names:
        if name == SAM_TRANSFORM:
            processed = _sam_transform(processed, {k: v["raw"] for k, v in values.items()},
                                       pseudo_parameters(account, region, stack_name, stack_id))
        elif name == LANGUAGE_EXTENSIONS:
            # Fn::ForEach is expanded here; Fn::Length, Fn::ToJsonString and FindInMap defaults are evaluated
            # natively (and shown folded in the processed template, below).
            lists = {k: v["value"] for k, v in values.items()}
            processed = {k: _expand_for_each(v, lists) if k in ("Resources", "Outputs", "Conditions") else v
                         for k, v in processed.items()}
        else:
            raise TemplateError(f"Template format error: Unrecognized transform {name} (Hearth has no macros)")
    processed = dict(processed)
    processed.pop("Transform", None)
    template.check_structure(processed)
    if processed is not raw:  # the transform may add parameters (e.g. SAM's stage names)
        for key in (processed.get("Parameters") or {}).keys() - values.keys():
            values.update(_parameter_values({key: processed["Parameters"][key]}, given, previous, use_previous,
                                            account, region, lookup))
    parameters = {k: v["value"] for k, v in values.items()}
    pseudo = pseudo_parameters(account, region, stack_name, stack_id)
    if LANGUAGE_EXTENSIONS in names:  # the processed template shows what these functions gave, as AWS's does
        processed["Resources"] = _fold_extensions(processed["Resources"], Scope(
            parameters=parameters, pseudo=pseudo, mappings=processed.get("Mappings") or {},
            condition_definitions=processed.get("Conditions") or {}))
    scope = Scope(parameters=parameters, pseudo=pseudo, mappings=processed.get("Mappings") or {},
                  condition_definitions=processed.get("Conditions") or {})
    conditions = {name: scope.condition(name) for name in scope.condition_definitions}
    resources: dict[str, Any] = processed["Resources"]
    for resource in resources.values():
        cond = resource.get("Condition")
        if cond is not None and cond not in conditions:
            raise TemplateError(f"Template format error: Unresolved dependencies [{cond}]. Cannot reference "
                                "resources in the Conditions block of the template")
    active = [k for k, r in resources.items() if r.get("Condition") is None or conditions[r["Condition"]]]
    known = set(resources) | set(parameters) | set(intrinsics.PSEUDO)
    dependencies: dict[str, set[str]] = {}
    all_names = frozenset(resources)
    for logical, resource in resources.items():
        refs = intrinsics.references({"P": resource.get("Properties"), "M": resource.get("Metadata")}, all_names)
        unresolved = sorted(n for n in plain_refs(resource.get("Properties")) if n not in known)
        if unresolved:
            raise TemplateError(f"Template format error: Unresolved resource dependencies [{', '.join(unresolved)}] "
                                "in the Resources block of the template")
        depends = resource.get("DependsOn") or []
        depends = [depends] if isinstance(depends, str) else list(depends)
        for d in depends:
            if d not in resources:
                raise TemplateError(f"Template format error: Unresolved resource dependencies [{d}] in the "
                                    "Resources block of the template")
        dependencies[logical] = {n for n in refs | set(depends) if n in resources and n != logical}
    for output in (processed.get("Outputs") or {}).values():
        unresolved = sorted(n for n in plain_refs(output.get("Value")) if n not in known)
        if unresolved:
            raise TemplateError(f"Unresolved resource dependencies [{', '.join(unresolved)}] in the Outputs block "
                                "of the template")
    _check_cycles({k: v & set(active) for k, v in dependencies.items() if k in active})
    needed = []
    if any(str(resources[k].get("Type", "")).startswith(IAM_TYPES) for k in active):
        # Named: an IAM resource given its own name (an access key's UserName names whose key it is).
        named = any((resources[k].get("Properties") or {}).get(
            _IAM_NAME_PROPERTY.get(str(resources[k].get("Type")), "")) for k in active)
        needed.append("CAPABILITY_NAMED_IAM" if named else "CAPABILITY_IAM")
    if names:
        needed.append("CAPABILITY_AUTO_EXPAND")
    records = [{"ParameterKey": k, "ParameterValue": "****" if v["no_echo"] else v["raw"],
                **({"ResolvedValue": v["resolved"]} if v.get("resolved") is not None else {})}
               for k, v in values.items()]
    return Prepared(original=body, template=processed, parameters=parameters, parameter_records=records,
                    conditions=conditions, active=active, dependencies=dependencies, capabilities_needed=needed)


def plain_refs(value: Any) -> set[str]:
    """Every name a `Ref` (or a GetAtt's resource) in `value` names, resources or not."""
    found: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if len(v) == 1 and "Ref" in v and isinstance(v["Ref"], str):
                found.add(v["Ref"])
                return
            if len(v) == 1 and "Fn::GetAtt" in v:
                arg = v["Fn::GetAtt"]
                target = arg.split(".", 1)[0] if isinstance(arg, str) else (arg[0] if isinstance(arg, list) and arg
                                                                              else None)
                if isinstance(target, str):
                    found.add(target)
                return
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(value)
    return found


def _check_cycles(graph: dict[str, set[str]]) -> None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] if nxt in path else [node, nxt]
                raise TemplateError(f"Circular dependency between resources: [{', '.join(sorted(set(cycle)))}]")
            if state.get(nxt) is None:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if state.get(node) is None:
            visit(node, [node])


def pseudo_parameters(account: str, region: str, stack_name: str, stack_id: str) -> dict[str, Any]:
    return {"AWS::AccountId": account, "AWS::Region": region, "AWS::StackName": stack_name,
            "AWS::StackId": stack_id, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": []}


def _parameter_values(declared: dict[str, Any], given: dict[str, str], previous: dict[str, str],
                      use_previous: frozenset[str], account: str, region: str,
                      lookup: ParameterLookup) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    missing = []
    for name, spec in declared.items():
        if not isinstance(spec, dict) or "Type" not in spec:
            raise TemplateError("Template format error: Every Parameters object must contain a Type member.")
        kind = str(spec["Type"])
        if not _PARAMETER_TYPES.match(kind):
            raise TemplateError(f"Template format error: Unrecognized parameter type: {kind}")
        if name in use_previous and name in previous:
            raw: Any = previous[name]
        elif name in given:
            raw = given[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            missing.append(name)
            continue
        raw = as_text(raw) if not isinstance(raw, list) else ",".join(as_text(x) for x in raw)
        _check_parameter(name, spec, raw)
        value: Any = raw
        resolved = None
        if kind.startswith("AWS::SSM::Parameter::Value<"):
            found = lookup(account, region, raw)
            if found is None:
                raise TemplateError(f"Unable to fetch parameters [{raw}] from parameter store for this account.")
            resolved = found
            value = found.split(",") if "List<" in kind else found
        elif kind in ("CommaDelimitedList", "List<Number>") or kind.startswith("List<"):
            value = [x.strip() for x in raw.split(",")] if raw else []
        out[name] = {"raw": raw, "value": value, "resolved": resolved, "no_echo": _truthy(spec.get("NoEcho"))}
    if missing:
        raise ParameterError(f"Parameters: [{', '.join(missing)}] must have values")
    unknown = [k for k in given if k not in declared]
    if unknown and declared is not None and not any(k.startswith("__") for k in unknown):
        raise ParameterError(f"Parameters: [{', '.join(unknown)}] do not exist in the template")
    return out


_FOLDED = ("Fn::Length", "Fn::ToJsonString")
# Functions AWS's language extensions fold when every argument is a literal (after Fn::ForEach's
# substitution): `!Join ['.', [name, fifo]]` shows as `name.fifo` in the processed template.
_FOLDED_LITERAL = ("Fn::Join", "Fn::Sub", "Fn::Select", "Fn::Split")


def _fold_extensions(value: Any, scope: Scope) -> Any:
    """`value` with each Fn::Length / Fn::ToJsonString that needs no resource replaced by its result, and
    each Fn::Join / Fn::Sub / Fn::Select / Fn::Split of literals only (the others stay, evaluated at deploy
    time when their resources exist)."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in (*_FOLDED, *_FOLDED_LITERAL):
            literal_only = next(iter(value)) in _FOLDED_LITERAL
            try:
                return intrinsics.evaluate(value, Scope(parameters={}, pseudo={}) if literal_only else scope)
            except (intrinsics.NotReady, TemplateError, KeyError):
                return {k: _fold_extensions(v, scope) for k, v in value.items()}
        return {k: _fold_extensions(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [_fold_extensions(v, scope) for v in value]
    return value


def _expand_for_each(section: Any, lists: dict[str, Any]) -> Any:
    """A template section with every `Fn::ForEach::<loop>: [Identifier, Collection, {KeyTemplate: value}]`
    replaced by one entry per item of the collection (a list, or a Ref to a list parameter)."""
    if not isinstance(section, dict):
        return section
    out: dict[str, Any] = {}
    for key, value in section.items():
        if not str(key).startswith("Fn::ForEach::"):
            out[key] = value
            continue
        if not isinstance(value, list) or len(value) != 3 or not isinstance(value[0], str) \
                or not isinstance(value[2], dict):
            raise TemplateError(f"Template format error: {key} must be a list of an identifier, a collection "
                                "and a template fragment")
        identifier, collection, fragment = value
        if isinstance(collection, dict) and set(collection) == {"Ref"}:
            collection = lists.get(str(collection["Ref"]))
        if not isinstance(collection, list):
            raise TemplateError(f"Template format error: the collection of {key} must be a list")
        for item in collection:
            out.update(_expand_for_each(_substitute(fragment, identifier, str(item)), lists))
    return out


def _substitute(value: Any, identifier: str, item: str) -> Any:
    """`value` with the loop's identifier replaced: `Ref`s to it, `${id}` / `&{id}` in keys and Fn::Sub texts."""
    def text(s: str) -> str:
        return s.replace("${" + identifier + "}", item).replace("&{" + identifier + "}", re.sub(r"\W", "", item))

    if isinstance(value, dict):
        if value == {"Ref": identifier}:
            return item
        if len(value) == 1 and "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            if isinstance(sub, str):
                return {"Fn::Sub": text(sub)}
            if isinstance(sub, list) and sub and isinstance(sub[0], str):
                return {"Fn::Sub": [text(sub[0]), *(_substitute(v, identifier, item) for v in sub[1:])]}
        return {text(str(k)): _substitute(v, identifier, item) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, identifier, item) for v in value]
    return value


def _truthy(value: Any) -> bool:
    return str(value).lower() == "true"


def as_text(value: Any) -> str:
    """A parameter's value as the string CloudFormation sees (booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_parameter(name: str, spec: dict[str, Any], raw: str) -> None:
    kind = str(spec["Type"])
    if kind == "Number":
        try:
            float(raw)
        except ValueError:
            raise TemplateError(f"Parameter '{name}' must be a number.") from None
    allowed = spec.get("AllowedValues")
    if allowed is not None:
        items = raw.split(",") if kind.startswith("List<") or kind == "CommaDelimitedList" else [raw]
        if any(item not in [as_text(a) for a in allowed] for item in items):
            raise TemplateError(spec.get("ConstraintDescription") or
                                f"Parameter '{name}' must be one of AllowedValues")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(str(pattern), raw):
        raise TemplateError(spec.get("ConstraintDescription") or
                            f"Parameter '{name}' must match pattern {pattern}")
    if "MinLength" in spec and len(raw) < int(spec["MinLength"]):
        raise TemplateError(spec.get("ConstraintDescription") or
                            f"Parameter '{name}' must contain at least {spec['MinLength']} characters")
    if "MaxLength" in spec and len(raw) > int(spec["MaxLength"]):
        raise TemplateError(spec.get("ConstraintDescription") or
                            f"Parameter '{name}' must contain at most {spec['MaxLength']} characters")
    if kind == "Number" and "MinValue" in spec and float(raw) < float(spec["MinValue"]):
        raise TemplateError(spec.get("ConstraintDescription") or
                            f"Parameter '{name}' must be a number not less than {spec['MinValue']}")
    if kind == "Number" and "MaxValue" in spec and float(raw) > float(spec["MaxValue"]):
        raise TemplateError(spec.get("ConstraintDescription") or
                            f"Parameter '{name}' must be a number not greater than {spec['MaxValue']}")
