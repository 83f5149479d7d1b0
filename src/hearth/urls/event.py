"""The payload format 2.0 event AWS builds for a function URL request.

It owns the event's shape and encodings: lower-cased headers with repeated values comma-joined, the
`cookie` header moved to the `cookies` list, hop-by-hop headers dropped, `host` the URL's domain
with the client's port in `x-forwarded-port`, `http.path` percent-decoded (rawPath as sent), query
parameters decoded with repeats comma-joined, the body base64-encoded unless its content type is
text, and the request context (time in AWS's `27/Nov/2026:01:02:03 +0000` form, always in English
and UTC). It never reads sockets and never decides whether the request may run.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, unquote_plus

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Content types whose bodies AWS passes as text; everything else (including a missing type and
# application/x-www-form-urlencoded) arrives base64-encoded with isBase64Encoded true.
# Headers of one connection, never passed on by AWS's front (`connection: keep-alive` …).
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
                         "upgrade"})
_TEXT_SUBTYPES = frozenset({"json", "xml", "javascript", "ecmascript", "x-javascript", "graphql", "yaml",
                            "x-yaml"})


@dataclass(frozen=True)
class UrlRequest:
    """One HTTP request to a function URL, as read off the wire."""

    method: str
    raw_path: str  # the path after the url-id (path form) or the whole path (host form); starts with "/"
    raw_query: str
    headers: list[tuple[str, str]]  # names as sent; order kept
    body: bytes
    source_ip: str


@dataclass(frozen=True)
class IamCaller:
    access_key_id: str
    account_id: str


def is_text(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, sub = media.partition("/")
    if kind == "text":
        return True
    if kind != "application":
        return False
    return sub in _TEXT_SUBTYPES or sub.endswith("+json") or sub.endswith("+xml")


def aws_time(epoch_ms: int) -> str:
    t = time.gmtime(epoch_ms / 1000)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def query_parameters(raw_query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in raw_query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        k, v = unquote_plus(key), unquote_plus(value)
        params[k] = f"{params[k]},{v}" if k in params else v
    return params


def build_event(
    req: UrlRequest,
    *,
    url_id: str,
    domain_name: str,
    request_id: str,
    epoch_ms: int,
    caller: IamCaller | None,
) -> dict[str, Any]:
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in req.headers:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        if key in _HOP_BY_HOP:
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    headers.setdefault("x-forwarded-proto", "http")
    headers.setdefault("x-forwarded-for", req.source_ip)
    # As AWS's front: `host` is the URL's domain, and the port the client connected to is in
    # x-forwarded-port (a handler rebuilding its own URL combines the two with x-forwarded-proto).
    _, colon, port = headers.get("host", "").rpartition(":")
    default_port = "443" if headers["x-forwarded-proto"] == "https" else "80"
    headers.setdefault("x-forwarded-port", port if colon and port.isdigit() else default_port)
    headers["host"] = domain_name
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": req.raw_path,
        "rawQueryString": req.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    params = query_parameters(req.raw_query)
    if params:
        event["queryStringParameters"] = params
    context: dict[str, Any] = {
        "accountId": caller.account_id if caller is not None else "anonymous",
        "apiId": url_id,
    }
    if caller is not None:
        context["authorizer"] = {"iam": {
            "accessKey": caller.access_key_id,
            "accountId": caller.account_id,
            "callerId": caller.access_key_id,
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": f"arn:aws:iam::{caller.account_id}:root",
            "userId": caller.account_id,
        }}
    context.update({
        "domainName": domain_name,
        "domainPrefix": url_id,
        "http": {
            "method": req.method,
            "path": unquote(req.raw_path),  # decoded, as AWS (rawPath stays as sent)
            "protocol": "HTTP/1.1",
            "sourceIp": req.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": aws_time(epoch_ms),
        "timeEpoch": epoch_ms,
    })
    event["requestContext"] = context
    if req.body:
        text = is_text(headers.get("content-type"))
        if text:
            try:
                event["body"] = req.body.decode("utf-8")
            except UnicodeDecodeError:
                text = False
        if not text:
            event["body"] = base64.b64encode(req.body).decode("ascii")
        event["isBase64Encoded"] = not text
    else:
        event["isBase64Encoded"] = False
    return event
