"""Which resource (REST) or route (HTTP API) a request path selects, with its path parameters.

It owns AWS's precedence: a literal path part beats a `{param}`, which beats a greedy `{proxy+}`; the
greedy variable takes the rest of the path (one segment at least); an HTTP API route with a method beats
`ANY` on the same path, and `$default` catches what nothing else does. Compiled routers are cached per
deployment (REST) or per API revision (HTTP). It never reads requests or documents' other parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote


@dataclass
class _Node:
    resource_id: str | None = None
    literal: dict[str, _Node] | None = None
    param: tuple[str, _Node] | None = None
    greedy: tuple[str, _Node] | None = None


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s != ""]


def compile_resources(resources: dict[str, dict[str, Any]]) -> _Node:
    root_id = next(rid for rid, r in resources.items() if not r.get("parentId"))
    nodes: dict[str, _Node] = {rid: _Node(resource_id=rid) for rid in resources}
    for rid, r in resources.items():
        parent = r.get("parentId")
        if not parent or parent not in nodes:
            continue
        part: str = r["pathPart"]
        pnode = nodes[parent]
        if part.startswith("{") and part.endswith("+}"):
            pnode.greedy = (part[1:-2], nodes[rid])
        elif part.startswith("{") and part.endswith("}"):
            pnode.param = (part[1:-1], nodes[rid])
        else:
            if pnode.literal is None:
                pnode.literal = {}
            pnode.literal[part] = nodes[rid]
    return nodes[root_id]


def match_resource(root: _Node, path: str, accepts: Any = None) -> tuple[str, dict[str, str]] | None:
    """(resource id, path parameters) of the most specific resource for `path`, or None.
    `accepts(resource_id)` may refuse a resource (no method for the request) so a less specific one
    is tried."""
    segs = _segments(path)

    def walk(node: _Node, i: int) -> tuple[str, dict[str, str]] | None:
        if i == len(segs):
            if node.resource_id is not None and (accepts is None or accepts(node.resource_id)):
                return node.resource_id, {}
            return None
        seg = segs[i]
        if node.literal is not None and seg in node.literal:
            found = walk(node.literal[seg], i + 1)
            if found is not None:
                return found
        if node.param is not None:
            found = walk(node.param[1], i + 1)
            if found is not None:
                return found[0], {node.param[0]: unquote(seg), **found[1]}
        if node.greedy is not None:
            rid = node.greedy[1].resource_id
            if rid is not None and (accepts is None or accepts(rid)):
                return rid, {node.greedy[0]: unquote("/".join(segs[i:]))}
        return None

    return walk(root, 0)


@dataclass(frozen=True)
class Route:
    route_id: str
    route_key: str
    method: str  # "ANY" or a method; "" for $default
    parts: tuple[str, ...]

    def specificity(self) -> tuple[int, int, int]:
        literal = sum(1 for p in self.parts if not p.startswith("{"))
        greedy = 1 if self.parts and self.parts[-1].endswith("+}") else 0
        return (literal, -greedy, 0 if self.method == "ANY" else 1)


def compile_routes(routes: list[dict[str, Any]]) -> list[Route]:
    out: list[Route] = []
    for r in routes:
        key: str = r["RouteKey"]
        if key == "$default":
            out.append(Route(r["RouteId"], key, "", ()))
            continue
        method, _, path = key.partition(" ")
        out.append(Route(r["RouteId"], key, method.upper(), tuple(_segments(path))))
    out.sort(key=lambda r: r.specificity(), reverse=True)
    return out


def match_route(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    segs = _segments(path)
    default: Route | None = None
    for route in routes:
        if route.route_key == "$default":
            default = route
            continue
        if route.method not in ("ANY", method.upper()):
            continue
        params = _match_parts(route.parts, segs)
        if params is not None:
            return route, params
    if default is not None:
        return default, {}
    return None


def _match_parts(parts: tuple[str, ...], segs: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for i, part in enumerate(parts):
        if part.startswith("{") and part.endswith("+}"):
            if i >= len(segs):
                return None
            params[part[1:-2]] = unquote("/".join(segs[i:]))
            return params
        if i >= len(segs):
            return None
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = unquote(segs[i])
        elif part != segs[i]:
            return None
    return params if len(parts) == len(segs) else None
