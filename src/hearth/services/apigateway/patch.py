"""API Gateway's PATCH operations (`op`, `path`, `value`, `from`) applied to a stored document.

It owns the path syntax (`/a/b`, `~1` for "/" and `~0` for "~" inside a segment), AWS's value typing
(patch values are strings on the wire: "true"/"false" become booleans, numeric fields numbers) and the
list form AWS uses for `binaryMediaTypes` (`add /binaryMediaTypes/image~1png`). It never decides which
paths an operation accepts beyond the `allowed` prefixes its caller passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hearth.aws.errors import AwsError

_BOOLEAN = frozenset({"apiKeyRequired", "enabled", "tracingEnabled", "disableExecuteApiEndpoint",
                      "cacheClusterEnabled", "validateRequestBody", "validateRequestParameters", "autoDeploy"})
_INTEGER = frozenset({"timeoutInMillis", "minimumCompressionSize", "authorizerResultTtlInSeconds", "burstLimit",
                      "limit", "offset"})
_FLOAT = frozenset({"rateLimit"})
_LISTS = frozenset({"binaryMediaTypes", "cacheKeyParameters", "authorizationScopes"})


def _segments(path: str) -> list[str]:
    return [s.replace("~1", "/").replace("~0", "~") for s in path.split("/")[1:]]


def _typed(key: str, value: Any) -> Any:
    if isinstance(value, str):
        if key in _BOOLEAN:
            return value.lower() == "true"
        if key in _INTEGER:
            try:
                return int(value)
            except ValueError:
                return value
        if key in _FLOAT:
            try:
                return float(value)
            except ValueError:
                return value
    return value


def apply_patch(doc: dict[str, Any], ops: Sequence[dict[str, Any]], *, allowed: Sequence[str] | None) -> None:
    for op in ops:
        kind = op.get("op")
        path = op.get("path")
        if not path:
            raise AwsError("BadRequestException", "Invalid patch path null", 400)
        if allowed is not None and not any(path == a or path.startswith(a + "/") for a in allowed):
            raise AwsError("BadRequestException", f"Invalid patch path {path}", 400)
        segs = _segments(path)
        if segs and segs[0] in _LISTS:
            items = doc.setdefault(segs[0], [])
            item = "/".join(segs[1:]) if len(segs) > 1 else op.get("value")
            if kind == "replace" and len(segs) > 1 and op.get("value") not in (None, item):
                # `replace /binaryMediaTypes/image~1png` with a value: that item out, the value in (at the end)
                if item in items:
                    items.remove(item)
                item = op.get("value")
            if kind in ("add", "replace") and item is not None and item not in items:
                items.append(item)
            elif kind == "remove" and item in items:
                items.remove(item)
            if not items:
                doc.pop(segs[0], None)
            continue
        parent = doc
        for s in segs[:-1]:
            nxt = parent.get(s)
            if not isinstance(nxt, dict):
                if kind == "remove":
                    break
                nxt = parent[s] = {}
            parent = nxt
        else:
            last = segs[-1]
            if kind == "remove":
                parent.pop(last, None)
            elif kind in ("add", "replace"):
                parent[last] = _typed(last, op.get("value"))
            elif kind == "copy" and op.get("from"):
                src: Any = doc
                for s in _segments(op["from"]):
                    src = src.get(s) if isinstance(src, dict) else None
                parent[last] = src
