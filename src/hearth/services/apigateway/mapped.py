"""REST API request and response mapping around non-proxy integrations (AWS, HTTP, MOCK), request
validation, and gateway responses.

It owns: the `$context` a template sees; choosing a request template by Content-Type under the
integration's passthroughBehavior (WHEN_NO_MATCH / WHEN_NO_TEMPLATES / NEVER → 415); selecting an
integration response (a Lambda error's errorMessage, an HTTP status, or a MOCK's statusCode matched
against selectionPattern as a whole-string regex; the response without a pattern is the default);
`responseParameters` (static `'value'`, `integration.response.header.X`, `integration.response.body`
/ `.body.<path>`); request validators (required parameters → 400 `Missing required request
parameters: [...]`, body against the method's JSON-schema draft 4 model → 400 `Invalid request
body`); and gateway responses (a customized status, headers and template for API Gateway's own
errors, with `$context.error.message`/`messageString`/`responseType`). It never invokes anything.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from typing import Any
from urllib.parse import quote_plus

import jsonschema
import referencing
from referencing.jsonschema import DRAFT4

from hearth.services.apigateway import proxy, vtl
from hearth.urls.event import aws_time
from hearth.urls.response import HttpAnswer

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]

_DEFAULT_4XX = {"UNAUTHORIZED", "ACCESS_DENIED", "MISSING_AUTHENTICATION_TOKEN", "INVALID_API_KEY",
                "QUOTA_EXCEEDED", "THROTTLED", "BAD_REQUEST_PARAMETERS", "BAD_REQUEST_BODY",
                "UNSUPPORTED_MEDIA_TYPE", "RESOURCE_NOT_FOUND", "REQUEST_TOO_LARGE", "INVALID_SIGNATURE",
                "EXPIRED_TOKEN", "WAF_FILTERED"}
_MESSAGES = {401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests", 504: "Endpoint request timed out"}


class Unsupported(Exception):
    """No request template applies and the passthrough behaviour refuses the body (415)."""


def substitute(uri: str, req: proxy.ApiRequest) -> str:
    for name, value in req.path_parameters.items():
        uri = uri.replace("{" + name + "+}", value).replace("{" + name + "}", value)
    return re.sub(r"\$\{stageVariables\.([\w.:-]+)\}", lambda m: req.stage_variables.get(m.group(1), ""), uri)


def params(req: proxy.ApiRequest) -> dict[str, dict[str, str]]:
    return {
        "path": dict(req.path_parameters),
        "querystring": {k: v[-1] for k, v in proxy.query_lists(req.raw_query).items()},
        "header": {k: v for k, v in req.headers},
    }


def context(req: proxy.ApiRequest, resource_path: str, resource_id: str, deployment_id: str,
            authorizer: dict[str, Any] | None, identity_extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "accountId": req.account, "apiId": req.api_id, "authorizer": authorizer or {},
        "deploymentId": deployment_id, "domainName": req.domain_name, "domainPrefix": req.api_id,
        "extendedRequestId": req.request_id, "httpMethod": req.method,
        "identity": proxy.identity(req, identity_extra), "path": req.stage_path, "protocol": "HTTP/1.1",
        "requestId": req.request_id, "requestTime": aws_time(req.epoch_ms), "requestTimeEpoch": req.epoch_ms,
        "resourceId": resource_id, "resourcePath": resource_path, "stage": req.stage,
        "isCanaryRequest": vtl.boolean(req.is_canary),
        # What templates may set: the request template overrides what the integration receives, either
        # template the method response's status and headers (applied after response mapping).
        "requestOverride": {"header": {}, "path": {}, "querystring": {}},
        "responseOverride": {"header": {}},
    }


class ConversionFailed(Exception):
    """CONVERT_TO_BINARY met a text body that is not base64 (AWS answers 500)."""


def converted_body(integ: dict[str, Any], req: proxy.ApiRequest, binary_media_types: list[str]) -> bytes:
    """The request body after the integration's content handling, as AWS converts it: a body whose type
    is one of the API's binary media types stays bytes (base64 text with CONVERT_TO_TEXT); any other body
    is text — invalid UTF-8 replaced by U+FFFD — or, with CONVERT_TO_BINARY, its base64 decoding."""
    handling = integ.get("contentHandling")
    if req.body and proxy.is_binary(req, binary_media_types):
        return base64.b64encode(req.body) if handling == "CONVERT_TO_TEXT" else req.body
    if handling == "CONVERT_TO_BINARY":
        try:
            return base64.b64decode(req.body, validate=True)
        except (binascii.Error, ValueError):
            raise ConversionFailed() from None
    return req.body.decode("utf-8", "replace").encode()


def request_payload(integ: dict[str, Any], req: proxy.ApiRequest, ctx: dict[str, Any],
                    binary_media_types: list[str] | None = None) -> bytes:
    templates: dict[str, str] = integ.get("requestTemplates") or {}
    ctype = (req.header("content-type") or "application/json").split(";", 1)[0].strip().lower()
    template = templates.get(ctype)
    passthrough = integ.get("passthroughBehavior", "WHEN_NO_MATCH")
    if template is None:
        if passthrough == "NEVER" or (passthrough == "WHEN_NO_TEMPLATES" and templates):
            raise Unsupported()
        return converted_body(integ, req, binary_media_types or [])
    if req.body and proxy.is_binary(req, binary_media_types or []) \
            and integ.get("contentHandling") != "CONVERT_TO_BINARY":
        text = base64.b64encode(req.body).decode()  # a template sees a binary body as base64 text
    else:
        try:  # AWS refuses to pass bytes that are not text to a template (500)
            text = converted_body(integ, req, binary_media_types or []).decode("utf-8")
        except UnicodeDecodeError:
            raise ConversionFailed() from None
    return vtl.render(template, body=text, params=params(req), context=ctx,
                      stage_variables=req.stage_variables).encode()


def mock_status(payload: bytes) -> str:
    try:
        doc = json.loads(payload) if payload.strip() else {}
    except ValueError:
        return "500"
    status = doc.get("statusCode", 200) if isinstance(doc, dict) else 200
    return str(status)


def error_message(payload: bytes) -> str:
    try:
        doc = json.loads(payload)
    except ValueError:
        return ""
    return str(doc.get("errorMessage", "")) if isinstance(doc, dict) else ""


def select_response(integ: dict[str, Any], selector: str, is_error: bool, *,
                    lambda_call: bool) -> dict[str, Any] | None:
    """The integration response for a backend outcome: patterns match a Lambda error's message or
    another backend's status; a Lambda success takes only the default response."""
    responses: dict[str, dict[str, Any]] = integ.get("integrationResponses") or {}
    default = None
    for r in responses.values():
        pattern = r.get("selectionPattern") or ""
        if not pattern:
            default = r
            continue
        if (is_error or not lambda_call) and re.fullmatch(pattern, selector, re.DOTALL):
            return r
    if is_error and lambda_call and default is not None:
        return None  # an unmatched Lambda error is an integration failure, not the default response
    return default


def integration_headers(integ: dict[str, Any], req: proxy.ApiRequest, ctx: dict[str, Any] | None = None) -> Headers:
    out: Headers = []
    for target, source in (integ.get("requestParameters") or {}).items():
        if not target.startswith("integration.request.header."):
            continue
        name = target[len("integration.request.header."):]
        value = _source_value(source, req, b"", [])
        if value is not None:
            out.append((name, value))
    overrides = ((ctx or {}).get("requestOverride") or {}).get("header") or {}
    for name, value in overrides.items():  # `$context.requestOverride.header.X` set by the request template
        out = [(k, v) for k, v in out if k.lower() != str(name).lower()] + [(str(name), str(value))]
    if not any(k.lower() == "content-type" for k, _ in out):
        out.append(("Content-Type", req.header("content-type") or "application/json"))
    return out


def integration_query(integ: dict[str, Any], req: proxy.ApiRequest) -> list[tuple[str, str]]:
    """The `integration.request.querystring.*` parameters the integration maps (absent sources left out)."""
    out: list[tuple[str, str]] = []
    for target, source in (integ.get("requestParameters") or {}).items():
        if target.startswith("integration.request.querystring."):
            value = _source_value(source, req, b"", [])
            if value is not None:
                out.append((target[len("integration.request.querystring."):], value))
    return out


def _source_value(source: Any, req: proxy.ApiRequest, body: bytes, headers: Headers) -> str | None:
    if not isinstance(source, str):
        return None
    if len(source) >= 2 and source.startswith("'") and source.endswith("'"):
        return source[1:-1]
    if source.startswith("method.request.header."):
        return req.header(source[len("method.request.header."):])
    if source.startswith("method.request.querystring."):
        found = proxy.query_lists(req.raw_query).get(source[len("method.request.querystring."):])
        return found[-1] if found else None
    if source.startswith("method.request.path."):
        return req.path_parameters.get(source[len("method.request.path."):])
    if source.startswith("stageVariables."):
        return req.stage_variables.get(source[len("stageVariables."):])
    if source.startswith("integration.response.header."):
        name = source[len("integration.response.header."):].lower()
        return next((v for k, v in headers if k.lower() == name), None)
    if source == "integration.response.body":
        return body.decode("utf-8", "replace")
    if source.startswith("integration.response.body."):
        try:
            value = vtl.json_path(json.loads(body), "$." + source[len("integration.response.body."):])
        except (ValueError, vtl.TemplateError):
            return None
        return value if isinstance(value, str) else json.dumps(value)
    return None


def converted_answer(chosen: dict[str, Any], body: bytes, backend_headers: Headers, req: proxy.ApiRequest,
                     binary_media_types: list[str]) -> bytes:
    """The backend's answer after content handling, as AWS converts it: the integration response's
    contentHandling decides; without one, a text answer (its Content-Type not a binary media type) to a
    client accepting a binary type is base64-decoded, and a binary answer to one accepting text is
    base64-encoded. ConversionFailed when a body to decode is not base64."""
    ctype = next((v for k, v in backend_headers if k.lower() == "content-type"), "")
    binary = bool(binary_media_types) and proxy.matches_media(ctype, binary_media_types)
    accept = (req.header("accept") or "").split(",")[0].split(";")[0].strip()
    wants_binary = bool(accept) and bool(binary_media_types) and proxy.matches_media(accept, binary_media_types)
    handling = chosen.get("contentHandling")
    if handling == "CONVERT_TO_BINARY" or (handling is None and wants_binary):
        if binary:
            return body
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ConversionFailed() from None
    if binary:
        return base64.b64encode(body)
    return body.decode("utf-8", "replace").encode()  # text: invalid UTF-8 becomes U+FFFD


def response(chosen: dict[str, Any], body: bytes, backend_headers: Headers, req: proxy.ApiRequest,
             ctx: dict[str, Any]) -> HttpAnswer:
    headers: Headers = []
    for target, source in (chosen.get("responseParameters") or {}).items():
        if target.startswith("method.response.header."):
            value = _source_value(source, req, body, backend_headers)
            if value is not None:
                headers.append((target[len("method.response.header."):], value))
    templates: dict[str, str] = chosen.get("responseTemplates") or {}
    accept = (req.header("accept") or "application/json").split(",")[0].split(";")[0].strip().lower()
    template = templates.get(accept) or templates.get("application/json") or next(iter(templates.values()), None)
    out = body
    if template:
        try:  # AWS fails (500) rather than give a template bytes that are not text
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise vtl.TemplateError("the integration's answer is not UTF-8 text") from None
        out = vtl.render(template, body=text, params=params(req), context=ctx,
                         stage_variables=req.stage_variables).encode()
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return override(HttpAnswer(int(chosen["statusCode"]), headers, out), ctx)


def override(answer: HttpAnswer, ctx: dict[str, Any]) -> HttpAnswer:
    """The answer with what a template set in `$context.responseOverride` (status, headers)."""
    wanted = ctx.get("responseOverride") or {}
    status = answer.status
    try:
        status = int(str(wanted["status"])) if wanted.get("status") not in (None, "") else status
    except ValueError:
        pass
    headers = list(answer.headers)
    for name, value in (wanted.get("header") or {}).items():
        headers = [(k, v) for k, v in headers if k.lower() != str(name).lower()] + [(str(name), str(value))]
    return HttpAnswer(status, headers, answer.body)


def validate(snap: dict[str, Any], method: dict[str, Any], req: proxy.ApiRequest) -> tuple[HttpAnswer, str] | None:
    vid = method.get("requestValidatorId")
    validator = (snap.get("requestValidators") or {}).get(vid) if vid else None
    if validator is None:
        return None
    if validator.get("validateRequestParameters"):
        missing: list[str] = []
        queries = proxy.query_lists(req.raw_query)
        for where in ("header", "path", "querystring"):
            for name, required in (method.get("requestParameters") or {}).items():
                prefix = f"method.request.{where}."
                if not required or not name.startswith(prefix):
                    continue
                key = name[len(prefix):]
                present = req.header(key) is not None if where == "header" else (
                    key in req.path_parameters if where == "path" else key in queries)
                if not present:
                    missing.append(key)
        if missing:
            body = json.dumps({"message": f"Missing required request parameters: [{', '.join(missing)}]"})
            return HttpAnswer(400, [("Content-Type", "application/json")], body.encode()), "BAD_REQUEST_PARAMETERS"
    if validator.get("validateRequestBody"):
        models: dict[str, str] = method.get("requestModels") or {}
        ctype = (req.header("content-type") or "application/json").split(";", 1)[0].strip().lower()
        name = models.get(ctype) or models.get("$default")
        model = (snap.get("models") or {}).get(name) if name else None
        if model is not None and model.get("schema"):
            try:
                schema = json.loads(model["schema"])
                doc = json.loads(req.body or b"null")
                jsonschema.Draft4Validator(schema, registry=_models_registry(snap, req.api_id)).validate(doc)
            except (ValueError, jsonschema.ValidationError):
                return (HttpAnswer(400, [("Content-Type", "application/json")], b'{"message": "Invalid request body"}'),
                        "BAD_REQUEST_BODY")
            except jsonschema.SchemaError as exc:
                log.info("API %s: model %s is not a valid schema: %s", req.api_id, name, exc)
    return None


def _models_registry(snap: dict[str, Any], api_id: str) -> referencing.Registry[Any]:
    """The API's models where a model's `$ref` finds them: `https://apigateway.amazonaws.com/restapis/
    <api-id>/models/<name>` (AWS's URL for a model; its host is never contacted)."""
    resources = []
    for name, other in (snap.get("models") or {}).items():
        try:
            contents = json.loads(other.get("schema") or "{}")
        except ValueError:
            continue
        resources.append((f"https://apigateway.amazonaws.com/restapis/{api_id}/models/{name}",
                          referencing.Resource.from_contents(contents, default_specification=DRAFT4)))
    return referencing.Registry().with_resources(resources)


def gateway_response(snap: dict[str, Any], rtype: str, answer: HttpAnswer, req: proxy.ApiRequest) -> HttpAnswer:
    """API Gateway's own error `answer`, customized by the API's gateway response for its type."""
    custom = snap.get("gatewayResponses") or {}
    found = custom.get(rtype) or custom.get("DEFAULT_4XX" if rtype in _DEFAULT_4XX or answer.status < 500
                                            else "DEFAULT_5XX")
    if found is None:
        return answer
    try:
        message = json.loads(answer.body).get("message") or json.loads(answer.body).get("Message")
    except (ValueError, AttributeError):
        message = None
    message = message or _MESSAGES.get(answer.status, "Internal server error")
    status = int(found.get("statusCode") or answer.status)
    headers = [(k, v) for k, v in answer.headers]
    for target, source in (found.get("responseParameters") or {}).items():
        if target.startswith("gatewayresponse.header.") and isinstance(source, str):
            name = target[len("gatewayresponse.header."):]
            value = source[1:-1] if source.startswith("'") and source.endswith("'") else \
                _source_value(source, req, b"", [])
            if value is not None:
                headers = [(k, v) for k, v in headers if k.lower() != name.lower()] + [(name, value)]
    body = answer.body
    templates: dict[str, str] = found.get("responseTemplates") or {}
    template = templates.get("application/json") or next(iter(templates.values()), None)
    if template:
        ctx = {"error": {"message": message, "messageString": json.dumps(message), "responseType": rtype},
               "requestId": req.request_id, "stage": req.stage, "apiId": req.api_id}
        try:
            body = vtl.render(template, body="", params=params(req), context=ctx,
                              stage_variables=req.stage_variables).encode()
        except vtl.TemplateError as exc:
            log.info("API %s: gateway response template failed: %s", req.api_id, exc)
    return HttpAnswer(status, headers, body)


def _http_api_value(source: str, req: proxy.ApiRequest) -> str:
    """An HTTP API parameter-mapping value: `$request.header.x`, `$request.querystring.x`,
    `$request.path.x`, `$request.path`, `$context.x`, `$stageVariables.x`, or static text (in which
    those may also appear, `${...}` braced or bare)."""

    def one(expr: str) -> str:
        if expr.startswith("request.header."):
            return req.header(expr[len("request.header."):]) or ""
        if expr.startswith("request.querystring."):
            return ",".join(proxy.query_lists(req.raw_query).get(expr[len("request.querystring."):], []))
        if expr == "request.path":
            return req.path
        if expr.startswith("request.path."):
            return req.path_parameters.get(expr[len("request.path."):], "")
        if expr.startswith("stageVariables."):
            return req.stage_variables.get(expr[len("stageVariables."):], "")
        if expr.startswith("context."):
            return {"requestId": req.request_id, "stage": req.stage, "apiId": req.api_id,
                    "httpMethod": req.method, "domainName": req.domain_name}.get(expr[len("context."):], "")
        return "$" + expr

    return re.sub(r"\$\{([\w.-]+)\}|\$((?:request|context|stageVariables)[\w.-]*)",
                  lambda m: one(m.group(1) or m.group(2)), source)


def http_api_request_mapping(mapping: dict[str, str] | None, req: proxy.ApiRequest, url: str,
                             headers: Headers) -> tuple[str, Headers]:
    """HTTP API parameter mapping on an HTTP_PROXY request: `append:` / `overwrite:` / `remove:` of
    `header.<name>` and `querystring.<name>`, and `overwrite:path`."""
    if not mapping:
        return url, headers
    base, _, query = url.partition("?")
    queries = [tuple(p.split("=", 1)) if "=" in p else (p, "") for p in query.split("&") if p]
    out = list(headers)
    for key, source in mapping.items():
        action, _, target = key.partition(":")
        value = _http_api_value(str(source), req)
        kind, _, name = target.partition(".")
        if kind == "header":
            if action in ("overwrite", "remove"):
                out = [(k, v) for k, v in out if k.lower() != name.lower()]
            if action in ("overwrite", "append"):
                out.append((name, value))
        elif kind == "querystring":
            if action in ("overwrite", "remove"):
                queries = [q for q in queries if q[0] != name]
            if action in ("overwrite", "append"):
                queries.append((name, quote_plus(value)))
        elif target == "path" and action == "overwrite":
            scheme, _, rest = base.partition("://")
            host = rest.split("/", 1)[0]
            base = f"{scheme}://{host}/{value.lstrip('/')}"
    query = "&".join(f"{k}={v}" for k, v in queries)
    return (f"{base}?{query}" if query else base), out
