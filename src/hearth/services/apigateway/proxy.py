"""Lambda proxy integration events and response mapping, by AWS's rules for each payload format.

It owns: the payload format 1.0 event (REST `AWS_PROXY`, and HTTP APIs with payloadFormatVersion 1.0:
`multiValueHeaders`, `multiValueQueryStringParameters`, `pathParameters`, `stageVariables`, a
`requestContext` with `resourcePath`, `stage`, `identity`), the 2.0 event (HTTP APIs: `rawPath`,
`rawQueryString`, `cookies`, comma-joined headers, `requestContext.http`), and the mapping of a
function's answer back to HTTP — strict for 1.0 (a malformed answer is AWS's 502), lenient for 2.0 (a
bare object is a 200 JSON body). It never reads sockets and never invokes anything.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, unquote_plus

from hearth.urls.event import aws_time, is_text
from hearth.urls.response import BadResponse, HttpAnswer
from hearth.urls.response import map_result as map_v2_result

Headers = list[tuple[str, str]]


@dataclass
class ApiRequest:
    """One request to an API, as read off the wire, with what routing found."""

    method: str
    path: str  # after the stage segment (REST) or the whole path ($default stage); starts with "/"
    raw_query: str
    headers: Headers  # names as received; order kept
    body: bytes
    source_ip: str
    api_id: str
    account: str
    region: str
    stage: str
    domain_name: str
    request_id: str
    epoch_ms: int
    stage_path: str = ""  # the path as the client sent it, stage segment included
    wire_path: str = ""  # the raw path on the wire (what a SigV4 signature covers), path form included
    path_parameters: dict[str, str] = field(default_factory=dict)
    resource_path: str = ""  # REST: the matched resource's path; HTTP: the route key
    integration_s: float | None = None  # time spent in the integration, once it ran
    stage_variables: dict[str, str] = field(default_factory=dict)
    is_canary: bool = False  # served by the stage's canary deployment
    trace_id: str = ""  # the X-Amzn-Trace-Id the integration's function ran under

    def header(self, name: str) -> str | None:
        lower = name.lower()
        found = [v for k, v in self.headers if k.lower() == lower]
        return ",".join(found) if found else None


def query_lists(raw_query: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in raw_query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        out.setdefault(unquote_plus(key), []).append(unquote_plus(value))
    return out


def _matches_media(content_type: str | None, media_types: list[str]) -> bool:
    if not content_type:
        return False
    types = [t.split(";", 1)[0].strip().lower() for t in content_type.split(",")]
    return any(fnmatch.fnmatch(t, m.lower()) for t in types for m in media_types if t)


def matches_media(content_type: str | None, media_types: list[str]) -> bool:
    """Whether a Content-Type or Accept value names one of the (wildcard) media types."""
    return _matches_media(content_type, media_types)


def is_binary(req: ApiRequest, binary_media_types: list[str]) -> bool:
    return _matches_media(req.header("content-type"), binary_media_types)


def identity(req: ApiRequest, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    ident: dict[str, Any] = {
        "accessKey": None, "accountId": None, "caller": None, "cognitoAuthenticationProvider": None,
        "cognitoAuthenticationType": None, "cognitoIdentityId": None, "cognitoIdentityPoolId": None,
        "principalOrgId": None, "sourceIp": req.source_ip, "user": None,
        "userAgent": req.header("user-agent"), "userArn": None,
    }
    ident.update(extra or {})
    return ident


def event_v1(req: ApiRequest, *, resource_path: str, resource_id: str, deployment_id: str,
             binary_media_types: list[str], authorizer: dict[str, Any] | None,
             identity_extra: dict[str, Any] | None = None, http_api: bool = False) -> dict[str, Any]:
    headers: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in req.headers:
        # A REST API keeps the last value of a repeated header in `headers`; an HTTP API joins them.
        headers[name] = f"{headers[name]},{value}" if http_api and name in headers else value
        multi.setdefault(name, []).append(value)
    queries = query_lists(req.raw_query)
    context: dict[str, Any] = {
        "accountId": req.account, "apiId": req.api_id,
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    if not http_api:
        context["deploymentId"] = deployment_id
    context.update({
        "domainName": req.domain_name, "domainPrefix": req.api_id, "extendedRequestId": req.request_id,
        "httpMethod": req.method, "identity": identity(req, identity_extra),
        "path": req.stage_path, "protocol": "HTTP/1.1", "requestId": req.request_id,
        "requestTime": aws_time(req.epoch_ms), "requestTimeEpoch": req.epoch_ms,
        "resourceId": resource_id, "resourcePath": resource_path, "stage": req.stage,
    })
    if http_api:
        context["routeKey"] = resource_id
    event: dict[str, Any] = {
        "version": "1.0", "resource": resource_path, "path": req.path, "httpMethod": req.method,
        "headers": headers or None, "multiValueHeaders": multi or None,
        "queryStringParameters": {k: (",".join(v) if http_api else v[-1]) for k, v in queries.items()} or None,
        "multiValueQueryStringParameters": queries or None,
        "requestContext": context,
        "pathParameters": dict(req.path_parameters) or None,
        "stageVariables": dict(req.stage_variables) or None,
    }
    if not http_api:
        del event["version"]
    body, b64 = _body(req, binary_media_types, http_api)
    event["body"] = body
    event["isBase64Encoded"] = b64
    return event


def _body(req: ApiRequest, binary_media_types: list[str], text_by_type: bool) -> tuple[str | None, bool]:
    if not req.body:
        return None, False
    if text_by_type:  # HTTP APIs decide by content type, as function URLs do
        if is_text(req.header("content-type")):
            try:
                return req.body.decode("utf-8"), False
            except UnicodeDecodeError:
                pass
        return base64.b64encode(req.body).decode("ascii"), True
    if is_binary(req, binary_media_types):
        return base64.b64encode(req.body).decode("ascii"), True
    return req.body.decode("utf-8", "replace"), False


def event_v2(req: ApiRequest, *, route_key: str, authorizer: dict[str, Any] | None) -> dict[str, Any]:
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in req.headers:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    event: dict[str, Any] = {"version": "2.0", "routeKey": route_key, "rawPath": req.stage_path,
                             "rawQueryString": req.raw_query}
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    queries = query_lists(req.raw_query)
    if queries:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in queries.items()}
    context: dict[str, Any] = {"accountId": req.account, "apiId": req.api_id}
    if authorizer is not None:
        context["authorizer"] = authorizer
    context.update({
        "domainName": req.domain_name, "domainPrefix": req.api_id,
        "http": {"method": req.method, "path": req.stage_path, "protocol": "HTTP/1.1", "sourceIp": req.source_ip,
                 "userAgent": req.header("user-agent") or ""},
        "requestId": req.request_id, "routeKey": route_key, "stage": req.stage,
        "time": aws_time(req.epoch_ms), "timeEpoch": req.epoch_ms,
    })
    event["requestContext"] = context
    if req.path_parameters:
        event["pathParameters"] = dict(req.path_parameters)
    if req.stage_variables:
        event["stageVariables"] = dict(req.stage_variables)
    body, b64 = _body(req, [], True)
    if body is not None:
        event["body"] = body
    event["isBase64Encoded"] = b64
    return event


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_V1_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})


def map_v1(payload: bytes, *, binary_media_types: list[str], accept: str | None) -> HttpAnswer:
    """A payload 1.0 answer as AWS maps it; BadResponse (AWS's 502) when it is not a proxy response."""
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise BadResponse("not JSON") from None
    if not isinstance(value, dict):
        raise BadResponse("not an object")
    if set(value) - _V1_KEYS:  # AWS refuses any other key (`{"statusCode": 200, "wrongValue": 1}` is a 502)
        raise BadResponse("unknown keys")
    status = value.get("statusCode", 200)  # an object without a statusCode (even `{}`) is a 200
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise BadResponse("invalid statusCode")
    headers: Headers = []
    names: dict[str, str] = {}
    multi = value.get("multiValueHeaders")
    if multi is not None:
        if not isinstance(multi, dict):
            raise BadResponse("invalid multiValueHeaders")
        for k, vs in multi.items():
            if not isinstance(vs, list):
                raise BadResponse("invalid multiValueHeaders")
            for v in vs:
                headers.append((names.setdefault(k.lower(), k), _header_value(v)))
    single = value.get("headers")
    if single is not None:
        if not isinstance(single, dict):
            raise BadResponse("invalid headers")
        for k, v in single.items():
            if v is None:
                continue
            if isinstance(v, (dict, list)):
                raise BadResponse("invalid header value")
            headers.append((names.setdefault(k.lower(), k), _header_value(v)))
    body = value.get("body")
    if body is not None and not isinstance(body, str):
        raise BadResponse("body is not a string")
    data = (body or "").encode("utf-8")
    content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
    if value.get("isBase64Encoded") is True and body and (
            _matches_media(accept, binary_media_types) or _matches_media(content_type, binary_media_types)):
        try:
            data = base64.b64decode(body, validate=False)
        except (binascii.Error, ValueError):
            raise BadResponse("body is not base64") from None
    if content_type is None:
        headers.append(("Content-Type", "application/json"))
    return HttpAnswer(status, headers, data)


def map_v2(payload: bytes) -> HttpAnswer:
    """A payload 2.0 answer: the same rules as a function URL's (a bare value is a 200 JSON body)."""
    return map_v2_result(payload)


def decode_path(raw: str) -> str:
    return unquote(raw)
