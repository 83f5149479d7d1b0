"""CORS for function URLs, from the URL's Cors configuration.

It owns the answer to a preflight (OPTIONS with Origin and Access-Control-Request-Method, answered by
Hearth without running the function, as AWS does when the URL has a Cors configuration) and the CORS
headers added to every response to an allowed origin (they replace any the function set). It never
refuses a non-preflight request: enforcing CORS is the browser's job.
"""

from __future__ import annotations

from typing import Any

Headers = list[tuple[str, str]]


def _allowed(values: list[str] | None, value: str, *, fold: bool) -> bool:
    if not values:
        return False
    if "*" in values:
        return True
    if fold:
        return value.lower() in {v.lower() for v in values}
    return value in values


def origin_allowed(cors: dict[str, Any], origin: str) -> bool:
    return _allowed(cors.get("AllowOrigins"), origin.rstrip("/"), fold=True) or _allowed(
        cors.get("AllowOrigins"), origin, fold=True)


def _allow_origin(cors: dict[str, Any], origin: str) -> str:
    # A wildcard is echoed as "*" unless credentials are allowed (browsers refuse "*" with credentials).
    if "*" in (cors.get("AllowOrigins") or []) and not cors.get("AllowCredentials"):
        return "*"
    return origin


def is_preflight(method: str, headers: dict[str, str]) -> bool:
    return method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


def preflight_headers(cors: dict[str, Any], headers: dict[str, str]) -> Headers:
    """The headers of the 200 answer to a preflight; none when the origin or method is not allowed."""
    origin = headers.get("origin", "")
    method = headers.get("access-control-request-method", "").strip().upper()
    if not origin_allowed(cors, origin) or not _allowed(cors.get("AllowMethods"), method, fold=True):
        return [("vary", "Origin")]
    out: Headers = [("access-control-allow-origin", _allow_origin(cors, origin))]
    methods = cors.get("AllowMethods") or []
    out.append(("access-control-allow-methods", method if "*" in methods else ",".join(m.upper() for m in methods)))
    allow_headers = cors.get("AllowHeaders") or []
    if allow_headers:
        requested = headers.get("access-control-request-headers", "")
        value = requested if "*" in allow_headers and requested else ",".join(allow_headers)
        out.append(("access-control-allow-headers", value))
    if cors.get("AllowCredentials"):
        out.append(("access-control-allow-credentials", "true"))
    if cors.get("ExposeHeaders"):
        out.append(("access-control-expose-headers", ",".join(cors["ExposeHeaders"])))
    if cors.get("MaxAge") is not None:
        out.append(("access-control-max-age", str(cors["MaxAge"])))
    out.append(("vary", "Origin"))
    return out


def apply(cors: dict[str, Any] | None, request_headers: dict[str, str], response_headers: Headers) -> Headers:
    """The response's headers with the configuration's CORS headers in place of the function's own."""
    if cors is None:
        return response_headers
    origin = request_headers.get("origin")
    out = [(k, v) for k, v in response_headers if not k.lower().startswith("access-control-")]
    if origin is None or not origin_allowed(cors, origin):
        return out
    out.append(("access-control-allow-origin", _allow_origin(cors, origin)))
    if cors.get("AllowCredentials"):
        out.append(("access-control-allow-credentials", "true"))
    if cors.get("ExposeHeaders"):
        out.append(("access-control-expose-headers", ",".join(cors["ExposeHeaders"])))
    out.append(("vary", "Origin"))
    return out
