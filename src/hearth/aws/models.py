"""botocore service models, loaded lazily and compiled once per service into what a request needs.

It owns: which protocol a service speaks, its operations by name (json X-Amz-Target, query Action)
and, for rest protocols, a route table from `http.method` + `http.requestUri` to the operation. It
never parses a request body and never mutates a botocore model (they are shared and cached).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import unquote

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel

_LABEL = re.compile(r"\{([^}]+)\}")
ROUTE_CACHE_SIZE = 4096
_loader_lock = threading.Lock()
_loader: Loader | None = None


@dataclass(frozen=True)
class Route:
    method: str
    operation: OperationModel
    regex: re.Pattern[str]
    labels: tuple[tuple[str, str, bool], ...]  # (regex group, label name, greedy)
    query_literals: tuple[tuple[str, str | None], ...]  # `?versions` / `?List=ALL`
    # Higher sorts first: literal characters, then required query literals, then non-greedy.
    specificity: tuple[int, int, int]

    def match(self, path: str, query: dict[str, list[str]]) -> dict[str, str] | None:
        labels = self.path_labels(path)
        return labels if labels is not None and self.query_matches(query) else None

    def path_labels(self, path: str) -> dict[str, str] | None:
        """The labels of `path` when this route's path pattern matches it (query not considered)."""
        m = self.regex.fullmatch(path)
        if m is None:
            return None
        return {label: unquote(m.group(group)) for group, label, _ in self.labels}

    def query_matches(self, query: dict[str, list[str]]) -> bool:
        for name, value in self.query_literals:
            values = query.get(name)
            if values is None or (value is not None and value not in values):
                return False
        return True


def _compile_route(method: str, operation: OperationModel) -> Route:
    uri: str = operation.http["requestUri"]
    path, _, query = uri.partition("?")
    query_literals: list[tuple[str, str | None]] = []
    for part in query.split("&") if query else []:
        name, eq, value = part.partition("=")
        query_literals.append((name, value if eq else None))
    labels: list[tuple[str, str, bool]] = []
    pattern: list[str] = []
    literal_chars = 0
    greedy = False
    pos = 0
    for i, m in enumerate(_LABEL.finditer(path)):
        literal = path[pos:m.start()]
        literal_chars += len(literal)
        pattern.append(re.escape(literal))
        name = m.group(1)
        group = f"g{i}"
        if name.endswith("+"):
            greedy = True
            labels.append((group, name[:-1], True))
            pattern.append(f"(?P<{group}>.+)")
        else:
            labels.append((group, name, False))
            pattern.append(f"(?P<{group}>[^/]+)")
        pos = m.end()
    tail = path[pos:].rstrip("/")
    literal_chars += len(tail)
    pattern.append(re.escape(tail))
    # A trailing slash is optional: botocore sends `/2015-03-31/functions/`, curl users may not.
    regex = re.compile("".join(pattern) + "/?")
    return Route(method, operation, regex, tuple(labels), tuple(query_literals),
                 (literal_chars, len(query_literals), 0 if greedy else 1))


@dataclass
class ServiceApi:
    """One service's model, with lookups precomputed for the per-request path."""

    name: str
    model: ServiceModel
    protocol: str
    target_prefix: str | None
    json_version: str
    query_compatible: bool
    operations: dict[str, OperationModel] = field(default_factory=dict)
    routes: dict[str, list[Route]] = field(default_factory=dict)
    # For awsQueryCompatible services: query error code -> error shape name.
    query_error_shapes: dict[str, str] = field(default_factory=dict)
    _route_cache: dict[tuple[str, str], tuple[tuple[Route, dict[str, str]], ...]] = field(
        default_factory=dict, repr=False)

    def operation(self, name: str) -> OperationModel | None:
        return self.operations.get(name)

    def match(self, method: str, path: str, query: dict[str, list[str]],
              ) -> tuple[OperationModel, dict[str, str]] | None:
        for route, labels in self._path_matches(method.upper(), path):
            if route.query_matches(query):
                return route.operation, dict(labels)  # the cached dict stays unshared
        return None

    def _path_matches(self, method: str, path: str) -> tuple[tuple[Route, dict[str, str]], ...]:
        """The routes whose path pattern matches, with their labels, most specific first. Cached per
        (method, path): a warm invoke names the same path on every call, and trying every route's
        regex (a dozen for Lambda's POSTs) costs more than the rest of routing. Bounded: the cache is
        dropped whole when full (paths carry resource names, so the set is open-ended)."""
        key = (method, path)
        found = self._route_cache.get(key)
        if found is None:
            found = tuple((route, labels) for route in self.routes.get(method, ())
                          if (labels := route.path_labels(path)) is not None)
            if len(self._route_cache) >= ROUTE_CACHE_SIZE:
                self._route_cache.clear()
            self._route_cache[key] = found
        return found

    def has_path(self, path: str) -> bool:
        """Whether any method's route matches `path` (to tell 404 from 405-like mismatches)."""
        return any(r.regex.fullmatch(path) for routes in self.routes.values() for r in routes)


def _get_loader() -> Loader:
    global _loader
    with _loader_lock:
        if _loader is None:
            _loader = Loader()
        return _loader


def load_model_data(name: str) -> dict[str, Any]:
    """botocore's raw service-2 data for a service (shared and cached by botocore: never mutate it)."""
    data: dict[str, Any] = _get_loader().load_service_model(name, "service-2")
    return data


@cache
def service_api(name: str) -> ServiceApi | None:
    """The compiled model of a service by its botocore name (== signing name for Hearth's services)."""
    try:
        data = load_model_data(name)
    except Exception:  # botocore raises several kinds of "unknown service"
        return None
    model = ServiceModel(data, service_name=name)
    meta = model.metadata
    protocol = model.protocol
    protocols = meta.get("protocols") or []
    if protocol not in ("rest-json", "json", "query", "rest-xml") and protocols:
        protocol = protocols[0]
    api = ServiceApi(
        name=name,
        model=model,
        protocol=protocol,
        target_prefix=meta.get("targetPrefix"),
        json_version=str(meta.get("jsonVersion", "1.0")),
        query_compatible="awsQueryCompatible" in meta,
    )
    for op_name in model.operation_names:
        op = model.operation_model(op_name)
        api.operations[op_name] = op
        if protocol in ("rest-json", "rest-xml"):
            method = op.http.get("method", "POST").upper()
            api.routes.setdefault(method, []).append(_compile_route(method, op))
    for routes in api.routes.values():
        routes.sort(key=lambda r: r.specificity, reverse=True)
    if api.query_compatible:
        for shape_name in data.get("shapes", {}):
            shape = data["shapes"][shape_name]
            err = shape.get("error") if shape.get("exception") else None
            if err and "code" in err:
                api.query_error_shapes[err["code"]] = shape_name
    return api
