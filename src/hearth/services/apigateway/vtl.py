"""API Gateway mapping templates: Velocity (VTL) rendered with `$input`, `$util`, `$context` and
`$stageVariables`, as API Gateway defines them.

It owns those variables' behaviour — `$input.body`, `$input.json(path)` (JSON text of a JSONPath
result), `$input.path(path)` (the value itself), `$input.params()` / `$input.params(name)` (path,
then query string, then header), `$util.escapeJavaScript`, `parseJson`, `urlEncode`, `urlDecode`,
`base64Encode`, `base64Decode` — and the small JSONPath subset templates use (`$`, `$.a.b`,
`$['a']`, `$.a[0]`, `$.a[*].b`). The Velocity engine is airspeed. A template that cannot be parsed
or run raises `TemplateError` (the front answers AWS's 500 and logs why); it never runs anything
but the template.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote, unquote

import airspeed

_TOKEN = re.compile(r"\.([A-Za-z_$][\w$-]*)|\['([^']*)'\]|\[\"([^\"]*)\"\]|\[(\d+)\]|\[\*\]|\.\*")


# Java collection methods templates use that airspeed does not define for Python lists and dicts.
_EXTRA: dict[type, dict[str, Any]] = {
    list: {"isEmpty": lambda self: _JavaBool(not self)},
    dict: {"size": lambda self: len(self), "containsKey": lambda self, key: _JavaBool(key in self),
           "entrySet": lambda self: [{"key": k, "value": v} for k, v in self.items()],
           "keySet": lambda self: list(self.keys()), "values": lambda self: list(self.values()),
           # Java's Map.put: used as `$map.put(k, v)` and by the `#set` rewriting below; renders nothing.
           "put": lambda self, key, value: self.__setitem__(key, value)},
}
_EXTRA[str] = {
    # Java's String.replaceAll(regex, replacement): the replacement taken literally (no group references).
    "replaceAll": lambda self, pattern, replacement: re.sub(pattern, lambda _m: str(replacement), self),
}
for _kind, _methods in _EXTRA.items():
    for _name, _fn in _methods.items():
        airspeed.__additional_methods__.setdefault(_kind, {})[_name] = _fn


def _quiet_parse(self: Any, _parse: Any = airspeed.FormalReference.parse) -> None:
    _parse(self)
    self.silent = True


# In a Velocity string literal a backslash is an ordinary character ("\'" is two characters); airspeed's
# double-quoted literal refuses backslashes before anything but its own escapes.
airspeed.InterpolatedStringLiteral.STRING = re.compile(r'"((?:\\.|[^"\\])*)"', re.S)

# API Gateway renders a reference whose value is null (an undefined variable, a missing JSON path, a
# method returning null) as an empty string, where plain Velocity prints the reference's own text: every
# reference is quiet (`$!x`). airspeed serves only API Gateway's templates in Hearth.
airspeed.FormalReference.parse = _quiet_parse

_SET_START = re.compile(r"#set\(\s*\$(\{?)([A-Za-z_][\w]*)")
_NAME_SEGMENT = re.compile(r"\.([A-Za-z_][\w-]*)")


def _closing(text: str, pos: int, close: str) -> int:
    """Index of the `close` that ends the bracketed text starting at `pos`, skipping quotes and nesting."""
    depth, quote = 0, ""
    opening = {")": "(", "]": "["}[close]
    while pos < len(text):
        ch = text[pos]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == opening:
            depth += 1
        elif ch == close:
            if depth == 0:
                return pos
            depth -= 1
        pos += 1
    return -1


def _rewrite_sets(template: str) -> str:
    """Velocity assignments airspeed cannot parse, as the `put` calls they mean: a bracketed key
    (`#set($map[$key] = v)`, `#set($context["requestOverride"].querystring.x = v)`) or a name with a
    hyphen (`#set($context.requestOverride.header.X-Amz-Target = v)`, as API Gateway allows)."""
    out: list[str] = []
    pos = 0
    while True:
        m = _SET_START.search(template, pos)
        if m is None:
            out.append(template[pos:])
            return "".join(out)
        end = _closing(template, m.end(), ")")
        if end < 0:
            out.append(template[pos:])
            return "".join(out)
        inner = template[m.end():end]
        if m.group(1):  # `#set(${a.b} = ...)`: left to airspeed
            out.append(template[pos:end + 1])
            pos = end + 1
            continue
        keys: list[str] = []
        cur = 0
        plain = True
        while cur < len(inner):
            nm = _NAME_SEGMENT.match(inner, cur)
            if nm is not None:
                plain = plain and "-" not in nm.group(1)
                keys.append(json.dumps(nm.group(1)))
                cur = nm.end()
            elif inner[cur] == "[":
                close = _closing(inner, cur + 1, "]")
                if close < 0:
                    break
                keys.append(inner[cur + 1:close].strip())
                plain = False
                cur = close + 1
            else:
                break
        rest = inner[cur:].lstrip()
        if plain or not keys or not rest.startswith("="):
            out.append(template[pos:end + 1])
            pos = end + 1
            continue
        chain = "".join(f".get({k})" for k in keys[:-1])
        out.append(template[pos:m.start()])
        out.append(f"$!{{{m.group(2)}{chain}.put({keys[-1]}, {rest[1:].strip()})}}")
        pos = end + 1
        # A `#set` alone on its line takes its line break with it (Velocity's and airspeed's rule).
        newline = re.compile(r"[ \t]*\n").match(template, pos)
        if newline is not None and not template[template.rfind("\n", 0, m.start()) + 1:m.start()].strip():
            pos = newline.end()


class TemplateError(Exception):
    """The template could not be parsed or rendered."""


def json_path(doc: Any, path: str) -> Any:
    path = (path or "$").strip()
    if not path.startswith("$"):
        raise TemplateError(f"invalid JSONPath {path!r}")
    rest = path[1:]
    values: list[Any] = [doc]
    many = False
    pos = 0
    while pos < len(rest):
        m = _TOKEN.match(rest, pos)
        if m is None:
            raise TemplateError(f"invalid JSONPath {path!r}")
        pos = m.end()
        key = m.group(1) or m.group(2) or m.group(3)
        nxt: list[Any] = []
        for v in values:
            if key is not None:
                if isinstance(v, dict) and key in v:
                    nxt.append(v[key])
            elif m.group(4) is not None:
                i = int(m.group(4))
                if isinstance(v, list) and -len(v) <= i < len(v):
                    nxt.append(v[i])
            else:
                many = True
                nxt.extend(v.values() if isinstance(v, dict) else v if isinstance(v, list) else [])
        values = nxt
    if many:
        return values
    return values[0] if values else None


class _JavaBool(int):
    """A JSON boolean inside a template: truthy as Python's, rendered as Java's `true` / `false`."""

    def __str__(self) -> str:
        return "true" if self else "false"

    __repr__ = __str__


def boolean(value: bool) -> Any:
    """A boolean for a template's variables: rendered `true` / `false` as in Java."""
    return _JavaBool(value)


def _java(value: Any) -> Any:
    if isinstance(value, bool):
        return _JavaBool(value)
    if isinstance(value, list):
        return [_java(v) for v in value]
    if isinstance(value, dict):
        return {k: _java(v) for k, v in value.items()}
    return value


class _Input:
    def __init__(self, body: str, params: dict[str, dict[str, str]]) -> None:
        self.body = body
        self._params = params
        self._parsed: Any = ...

    def _doc(self) -> Any:
        if self._parsed is ...:
            try:
                self._parsed = json.loads(self.body) if self.body.strip() else {}
            except ValueError:
                self._parsed = self.body
        return self._parsed

    def json(self, path: str = "$") -> str:
        return json.dumps(json_path(self._doc(), path))

    def path(self, path: str = "$") -> Any:
        return _java(json_path(self._doc(), path))

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return self._params
        for where in ("path", "querystring", "header"):
            found = self._params.get(where, {})
            if where == "header":
                lowered = {k.lower(): v for k, v in found.items()}
                if name.lower() in lowered:
                    return lowered[name.lower()]
            elif name in found:
                return found[name]
        return ""


class _Util:
    @staticmethod
    def escapeJavaScript(text: Any) -> str:
        if text is None:  # a null argument (an undefined variable) escapes to nothing
            return ""
        return json.dumps(str(text))[1:-1].replace("'", "\\'")

    @staticmethod
    def parseJson(text: str) -> Any:
        try:
            return _java(json.loads(text))
        except ValueError as exc:
            raise TemplateError(f"$util.parseJson: {exc}") from None

    @staticmethod
    def urlEncode(text: str) -> str:
        return quote(str(text), safe="")

    @staticmethod
    def urlDecode(text: str) -> str:
        return unquote(str(text))

    @staticmethod
    def base64Encode(text: str) -> str:
        return base64.b64encode(str(text).encode()).decode()

    @staticmethod
    def base64Decode(text: str) -> str:
        return base64.b64decode(str(text)).decode("utf-8", "replace")


def render(template: str, *, body: str, params: dict[str, dict[str, str]], context: dict[str, Any],
           stage_variables: dict[str, str]) -> str:
    try:
        compiled = airspeed.Template(_rewrite_sets(template))
        return str(compiled.merge({
            "input": _Input(body, params), "util": _Util(), "context": context,
            "stageVariables": stage_variables,
        }))
    except TemplateError:
        raise
    except Exception as exc:  # airspeed raises several kinds (syntax, execution, Python errors from calls)
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None
