"""CloudFormation templates: reading JSON and YAML bodies and checking their structure.

It owns the template's syntax (YAML short forms such as `!Ref` and `!GetAtt A.B`, which CloudFormation
reads as their `Fn::` long forms) and the structural rules CloudFormation checks before anything is
created, with CloudFormation's ValidationError texts. It never evaluates an intrinsic function
(`intrinsics.py`) and never creates a resource (`engine.py`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from hearth.aws.errors import AwsError

Template = dict[str, Any]

SECTIONS = ("AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Rules", "Mappings", "Conditions",
            "Transform", "Resources", "Outputs", "Hooks")
_LOGICAL_ID = re.compile(r"^[A-Za-z0-9]+$")


class TemplateError(AwsError):
    """A template CloudFormation refuses before creating anything (400 ValidationError)."""

    def __init__(self, message: str) -> None:
        super().__init__("ValidationError", message, 400)


class ParameterError(TemplateError):
    """Parameter values that do not fit the template (missing, unknown): CreateChangeSet refuses them at
    once, as AWS does, instead of failing the change set."""


def _fn(name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if name == "Fn::GetAtt" and isinstance(value, str):
            resource, _, attribute = value.partition(".")
            value = [resource, attribute]
        return {name: value}
    return construct


class _Loader(yaml.SafeLoader):  # type: ignore[misc]
    """YAML as CloudFormation reads it: short-form tags, and dates left as strings."""


# CloudFormation keeps `2010-09-09` a string; PyYAML would make it a date.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _short in ("Ref", "Condition"):
    _Loader.add_constructor(f"!{_short}", _fn(_short))
for _short in ("Base64", "Cidr", "FindInMap", "GetAtt", "GetAZs", "ImportValue", "Join", "Select", "Split", "Sub",
               "Transform", "And", "Equals", "If", "Not", "Or", "ToJsonString", "Length", "ForEach"):
    _Loader.add_constructor(f"!{_short}", _fn(f"Fn::{_short}"))


def parse(body: str) -> Template:
    """A template body (JSON or YAML) as a dict; CloudFormation's texts for what it cannot read."""
    text = body.strip()
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TemplateError(f"Template format error: JSON not well-formed. (line {exc.lineno}, column "
                                f"{exc.colno})") from None
    else:
        try:
            # The body as sent: stripping would unindent only its first line of a document indented as a whole.
            loaded = yaml.load(body, Loader=_Loader)
        except yaml.YAMLError:
            raise TemplateError("Template format error: YAML not well-formed.") from None
    if not isinstance(loaded, dict):
        raise TemplateError("Template format error: unsupported structure.")
    return loaded


def parse_snippet(body: str) -> Any:
    """An AWS::Include snippet: YAML or JSON like a template, but any value (a map, a list, a scalar)."""
    try:
        return json.loads(body) if body.strip().startswith(("{", "[")) else yaml.load(body, Loader=_Loader)
    except (ValueError, yaml.YAMLError):
        raise TemplateError("Template format error: snippet not well-formed.") from None


def check_structure(template: Template) -> None:
    """The checks CloudFormation makes on a (transformed) template before anything is created."""
    for key in template:
        if key not in SECTIONS:
            raise TemplateError(f"Template format error: Invalid template property or properties [{key}]")
    resources = template.get("Resources")
    if not isinstance(resources, dict) or not resources:
        if resources is not None and not isinstance(resources, dict):
            raise TemplateError("Template format error: Any Resources member must be an object.")
        raise TemplateError("Template format error: At least one Resources member must be defined.")
    for name, resource in resources.items():
        if not _LOGICAL_ID.match(str(name)):
            raise TemplateError(f"Template format error: Resource name {name} is non alphanumeric.")
        if not isinstance(resource, dict):
            raise TemplateError("Template format error: Any Resources member must be an object.")
        if "Type" not in resource:
            raise TemplateError(f"Template format error: [/Resources/{name}] Every Resources object must contain "
                                "a Type member.")
    for name in template.get("Parameters") or {}:
        if not _LOGICAL_ID.match(str(name)):
            raise TemplateError(f"Template format error: Parameter name {name} is non alphanumeric.")
    mappings = template.get("Mappings") or {}
    for name, mapping in mappings.items():
        if not isinstance(mapping, dict):
            raise TemplateError(f"Template format error: Every Mappings member {name} must be a map")
        for top in mapping.values():
            if not isinstance(top, dict):
                raise TemplateError(f"Template format error: Every Mappings member {name} must be a map")
            for value in top.values():
                if not isinstance(value, (str, int, float, list)):
                    raise TemplateError("Template format error: Every Mappings attribute must be a String or a List.")
    for name, output in (template.get("Outputs") or {}).items():
        if not isinstance(output, dict) or "Value" not in output:
            raise TemplateError("Template format error: Every Outputs member must contain a Value object")
        if output["Value"] is None:
            raise TemplateError(f"[/Outputs/{name}/Value] 'null' values are not allowed in templates")


def transforms(template: Template) -> list[str]:
    """The template's macros, in order (a string or a list of strings)."""
    value = template.get("Transform")
    if value is None:
        return []
    names = value if isinstance(value, list) else [value]
    out = []
    for name in names:
        if isinstance(name, dict):
            name = name.get("Name")
        if not isinstance(name, str):
            raise TemplateError("Key Name of transform definition must be a string.")
        out.append(name)
    return out


def dump(template: Template) -> str:
    return json.dumps(template, indent=2, sort_keys=False, default=str)
