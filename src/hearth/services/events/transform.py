"""What a rule target receives: the event itself, a constant `Input`, an `InputPath` selection, or an
`InputTransformer` (InputPathsMap + InputTemplate) rendering.

It owns EventBridge's JSONPath subset (`$`, `.name`, `['name']`, `[n]`) and the placeholder rules of
input templates. It never delivers anything and never evaluates template text as code.

Placeholder rules (as AWS documents them): `<name>` refers to an InputPathsMap key or a predefined
variable (`aws.events.rule-arn`, `aws.events.rule-name`, `aws.events.event.ingestion-time`,
`aws.events.event`, `aws.events.event.json`). Inside a JSON string literal of the template the value
is inserted as text (strings without their quotes, JSON-escaped); outside string literals it is
inserted as JSON (strings quoted), and inside a string literal an object or array is written without
its quotes (`{a:b}`). A path that selects nothing inserts `""` (or nothing inside a string literal).
A template that is not a JSON object or array is plain text, and string values go into it without
quotes. In a JSON template, an object or array inside a string literal would make invalid JSON: AWS
then delivers nothing to that target (recorded), and `render_template` raises TemplateError. PutTargets
refuses a template naming a placeholder that is neither an InputPathsMap key nor predefined
(`placeholders`); other `<words>` are left as they are.

`<aws.events.event>` is the event without its `detail`, its `detail-type` spelled `detailType` (recorded
by AWS); `<aws.events.event.json>` is the whole event.
"""

from __future__ import annotations

import json
import re
from typing import Any

_MISSING = object()
_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\['([^']*)'\]|\[\"([^\"]*)\"\]|\[(\d+)\]")
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


PREDEFINED = ("aws.events.rule-arn", "aws.events.rule-name", "aws.events.event.ingestion-time", "aws.events.event",
              "aws.events.event.json")


class PathError(ValueError):
    pass


class TemplateError(ValueError):
    """The rendered input would not be valid JSON: the target gets nothing."""


def placeholders(template: str) -> list[str]:
    """The `<name>` placeholders of an input template, in order."""
    return _PLACEHOLDER.findall(template)


def select(doc: Any, path: str) -> Any:
    """The value at a JSONPath such as `$.detail.items[0]['a b']`; the sentinel `MISSING` when nothing is
    there. Raise PathError for a path outside the supported subset."""
    if not path.startswith("$"):
        raise PathError(path)
    pos = 1
    value = doc
    while pos < len(path):
        m = _PATH_TOKEN.match(path, pos)
        if m is None:
            raise PathError(path)
        pos = m.end()
        if value is _MISSING:
            continue
        name = m.group(1) or m.group(2) or m.group(3)
        if m.group(4) is not None:
            index = int(m.group(4))
            value = value[index] if isinstance(value, list) and index < len(value) else _MISSING
        elif isinstance(value, dict) and name is not None:
            value = value.get(name, _MISSING)
        else:
            value = _MISSING
    return value


MISSING = _MISSING


def valid_path(path: str) -> bool:
    try:
        select({}, path)
    except PathError:
        return False
    return True


def render_template(template: str, values: dict[str, Any]) -> str:
    """Substitute `<name>` placeholders in `template` (see the module docstring for the rules)."""
    # A template that is not a JSON object or array is plain text: values go in as text.
    json_mode = template.lstrip().startswith(("{", "["))
    out: list[str] = []
    in_string = False
    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "\\" and in_string:
            out.append(template[i:i + 2])
            i += 2
            continue
        if ch == '"':
            in_string = not in_string
            out.append(ch)
            i += 1
            continue
        if ch == "<":
            m = _PLACEHOLDER.match(template, i)
            if m and m.group(1) in values:
                value = values[m.group(1)]
                if json_mode and in_string and isinstance(value, (dict, list)):
                    raise TemplateError(f"<{m.group(1)}> is an object or array inside a string")
                out.append(_inserted(value, in_string, json_mode))
                i = m.end()
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _unquoted(value: Any) -> str:
    """An object or array as AWS writes it into text: JSON's shape without its quotes
    (`{acc_id:0a787ecb,sf_id:baz}`, `[ACTIVE,INACTIVE]`; recorded by AWS)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_unquoted(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_unquoted(v) for v in value) + "]"
    return value if isinstance(value, str) else json.dumps(value)


def _inserted(value: Any, in_string: bool, json_mode: bool) -> str:
    if not in_string and not json_mode and isinstance(value, str):
        return value
    if in_string:
        if value is _MISSING or value is None:
            return "" if value is _MISSING else "null"
        text = value if isinstance(value, str) else _unquoted(value)
        return json.dumps(text, ensure_ascii=False)[1:-1]
    if value is _MISSING:
        return '""'  # a path that selects nothing is an empty string (recorded by AWS)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def target_input(target: dict[str, Any], event: dict[str, Any], rule_name: str, rule_arn: str,
                 ingestion_time: str) -> str:
    """The text a target receives for `event`."""
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        selected = select(event, str(target["InputPath"]))
        return "null" if selected is _MISSING else json.dumps(selected, separators=(",", ":"), ensure_ascii=False)
    transformer = target.get("InputTransformer")
    if transformer:
        values: dict[str, Any] = {
            "aws.events.rule-arn": rule_arn,
            "aws.events.rule-name": rule_name,
            "aws.events.event.ingestion-time": ingestion_time,
            "aws.events.event": _event_variable(event),
            "aws.events.event.json": event,
        }
        for name, path in (transformer.get("InputPathsMap") or {}).items():
            values[name] = select(event, path)
        return render_template(str(transformer["InputTemplate"]), values)
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def _event_variable(event: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in event.items() if k not in ("detail", "detail-type")}
    if "detail-type" in event:
        out["detailType"] = event["detail-type"]
    return out
