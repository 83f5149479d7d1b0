"""The `execute-api` front door: serves REST and HTTP API requests.

Per request it: finds the API (Host `<api-id>.execute-api.localhost[:port]` or
`<api-id>.execute-api.<region>.amazonaws.com`, or the path form `/_hearth/api/<api-id>/<path>`), the
stage (REST: the first path segment; HTTP: a named stage's segment, else the `$default` stage), the
resource or route, then runs what AWS runs in order — CORS preflight (HTTP APIs), API key and usage
plan (REST), authorizer, integration — and maps the result to HTTP with AWS's error bodies:
REST `{"message":"Missing Authentication Token"}` 403 for an unknown route, 502 `Internal server
error` for a malformed proxy answer, 504 at the integration timeout; HTTP APIs `{"message":"Not Found"}`
404, 500 `Internal Server Error`.

It never changes API definitions (the providers do) and never renders AWS API errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from hearth.asgi import BodyTooLarge, host_or_path_target, read_body
from hearth.aws.sigv4 import AuthFailure, SignedRequest, SigV4Verifier
from hearth.events import lineage
from hearth.functions.errors import FunctionsError
from hearth.functions.model import FunctionVersion
from hearth.invoke.errors import InvokeError, Throttled
from hearth.invoke.invoker import Invoker
from hearth.invoke.request import InvokeOutcome, InvokeRequest
from hearth.services.apigateway import awsservice, mapped, proxy, routing, vtl
from hearth.services.apigateway.authorizers import AuthDecision, Authorizers
from hearth.services.apigateway.httpfwd import forward
from hearth.services.apigateway.limits import UsageLimits
from hearth.services.apigateway.observe import AccessLogs, ApiMetrics, LogSink, access_line
from hearth.services.apigateway.rest import resource_path, snapshot
from hearth.services.apigateway.store import ApiStore, Doc
from hearth.services.apigateway.websocket import Connections, WebSocketFront
from hearth.urls import cors
from hearth.urls.response import BadResponse, HttpAnswer

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[str, str]]

BODY_LIMIT = 10 * 1024 * 1024  # API Gateway's payload limit (10 MB)
PATH_PREFIX = "/_hearth/api/"
_HOST_RX = re.compile(
    r"^([a-z0-9]{10})\.execute-api\.(?:localhost|([a-z0-9-]+)\.amazonaws\.com)\.?(?::\d+)?$")
_LAMBDA_ARN_RX = re.compile(r"(arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[^/]+?)(?:/invocations)?$")
_AWS_PREFIX = "/_aws/execute-api/"
_USER_REQUEST_RX = re.compile(r"^/restapis/([A-Za-z0-9]+)/([^/]+)/_user_request_/?(.*)$")
_STAGE_VAR_RX = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_.:-]+)\}")

MISSING_TOKEN = b'{"message":"Missing Authentication Token"}'
FORBIDDEN = b'{"message":"Forbidden"}'
NOT_FOUND = b'{"message":"Not Found"}'
REST_INTERNAL = b'{"message": "Internal server error"}'
HTTP_INTERNAL = b'{"message":"Internal Server Error"}'
TIMED_OUT = b'{"message": "Endpoint request timed out"}'
UNAVAILABLE = b'{"message":"Service Unavailable"}'
TOO_LARGE = b'{"message":"Request Entity Too Large"}'


class FunctionAccess(Protocol):
    def resolve(self, account: str, region: str, name_or_arn: str, qualifier: str | None) -> FunctionVersion: ...
    def allows_service(self, arn: str, service_principal: str, source_arn: str | None, *,
                       source_account: str | None = None, action: str = ...) -> bool: ...


def match(scope: Scope) -> tuple[str, str | None, str] | None:
    """(api-id, region or None, raw path after the api) when the request is for an API."""
    found = host_or_path_target(scope, _HOST_RX, PATH_PREFIX)
    if found is None:
        # The path forms LocalStack's clients use: `/restapis/<api-id>/<stage>/_user_request_/<path>`
        # (no control-plane operation has a `_user_request_` segment) and `/_aws/execute-api/<api-id>/…`.
        raw = scope.get("raw_path")
        path = raw.decode("latin-1").partition("?")[0] if raw else scope.get("path", "/")
        m = _USER_REQUEST_RX.match(path)
        if m is not None:
            return m.group(1), None, f"/{m.group(2)}/{m.group(3)}"
        if path.startswith(_AWS_PREFIX):
            target, _, rest = path[len(_AWS_PREFIX):].partition("/")
            return target, None, "/" + rest
    return found


def lambda_arn(uri: str, stage_vars: dict[str, str]) -> str | None:
    """The function ARN an integration or authorizer URI names (stage variables substituted)."""
    uri = _STAGE_VAR_RX.sub(lambda m: stage_vars.get(m.group(1), ""), uri)
    if uri.startswith("arn:") and ":lambda:path/" in uri:
        uri = uri.split("/functions/", 1)[-1]
    m = _LAMBDA_ARN_RX.search(uri)
    return m.group(1) if m else None


def _json(status: int, body: bytes, extra: Headers | None = None) -> HttpAnswer:
    return HttpAnswer(status, [("Content-Type", "application/json"), *(extra or [])], body)


class ApiFront:
    def __init__(self, store: ApiStore, functions: FunctionAccess, invoker: Invoker, verifier: SigV4Verifier,
                 logs: LogSink | None = None, connections: Connections | None = None, *,
                 credentials: Callable[[str], tuple[str, str]] | None = None, endpoint_url: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._verifier = verifier
        self._functions = functions
        self._invoker = invoker
        self._clock = clock
        self._credentials = credentials  # an account's key, for AWS service integrations
        self._endpoint_url = endpoint_url
        self._tasks: set[asyncio.Task[Any]] = set()
        # Compiled routing per (api, stage), with the deployment or revision it was compiled from: one
        # entry per stage, replaced when the stage serves something new.
        self._rest_routers: dict[tuple[str, str], tuple[str, Any]] = {}
        self._http_routers: dict[tuple[str, str], tuple[str, list[routing.Route]]] = {}
        self._authorizers = Authorizers(self._call_function, self._may_invoke_authorizer, clock)
        self._limits = UsageLimits(clock)
        self._metrics = ApiMetrics()
        self._access = AccessLogs(logs)
        self._ws = WebSocketFront(connections or Connections(), self._ws_invoke, self._ws_authorize, clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, target: tuple[str, str | None, str]) -> None:
        api_id, region, path = target
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        doc = self._store.get(api_id)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())]
        folded: dict[str, str] = {}
        for k, v in headers:
            folded[k.lower()] = f"{folded[k.lower()]},{v}" if k.lower() in folded else v
        base: Headers = [("x-amzn-RequestId", request_id)]
        if doc is None or doc["_kind"] not in ("REST", "HTTP") or (region is not None and region != doc["_region"]):
            await _answer(send, _json(404 if doc is None or doc["_kind"] == "HTTP" else 403,
                                      NOT_FOUND if doc is None else MISSING_TOKEN, base))
            return
        if doc.get("disableExecuteApiEndpoint") or doc.get("DisableExecuteApiEndpoint"):
            await _answer(send, _json(403, FORBIDDEN, base))  # only custom domains would serve it
            return
        try:
            body = await read_body(receive, folded, BODY_LIMIT)
        except BodyTooLarge:
            await _answer(send, _json(413, TOO_LARGE, base))
            return
        client = scope.get("client")
        source_ip = client[0] if client else "127.0.0.1"
        # What AWS's edge adds for the backend (frameworks build URLs and client addresses from them).
        server = scope.get("server")
        present = {k.lower() for k, _ in headers}
        for name, value in (("X-Forwarded-For", source_ip), ("X-Forwarded-Port", str(server[1]) if server else "80"),
                            ("X-Forwarded-Proto", scope.get("scheme") or "http")):
            if name.lower() not in present:
                headers.append((name, value))
        raw = scope.get("raw_path")
        wire_path = raw.decode("latin-1").partition("?")[0] if raw else scope.get("path", "/")
        host = folded.get("host", f"{api_id}.execute-api.localhost")
        req = proxy.ApiRequest(
            method=scope["method"], path=path, raw_query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers, body=body, source_ip=source_ip, api_id=api_id, account=doc["_account"],
            region=doc["_region"], stage="", domain_name=host.split(":")[0],
            request_id=request_id, epoch_ms=int(self._clock() * 1000), stage_path=path, wire_path=wire_path)
        try:
            if doc["_kind"] == "REST":
                answer = await self._rest(doc, req)
                base.append(("x-amz-apigw-id", request_id[:16]))
                if req.trace_id and not any(k.lower() == "x-amzn-trace-id" for k, _ in answer.headers):
                    # A REST API answers a request its integration ran (Lambda, AWS service) with the trace.
                    base.append(("X-Amzn-Trace-Id", req.trace_id))
            else:
                answer = await self._http(doc, req, folded)
        except Exception:
            log.exception("API %s: request failed", api_id)
            answer = _json(500, REST_INTERNAL if doc["_kind"] == "REST" else HTTP_INTERNAL)
        await _answer(send, HttpAnswer(answer.status, [*answer.headers, *base], answer.body))
        try:
            self._observe(doc, req, answer, time.monotonic() - started)
        except Exception:  # reporting never fails a request that was answered
            log.exception("API %s: access log or metrics failed", api_id)

    def _observe(self, doc: Doc, req: proxy.ApiRequest, answer: HttpAnswer, latency_s: float) -> None:
        self._metrics.record(req.api_id, req.stage, answer.status, latency_s, req.integration_s)
        stage = doc.get("stages", {}).get(req.stage) if req.stage else None
        if stage is None:
            return
        settings = stage.get("accessLogSettings") or stage.get("AccessLogSettings") or {}
        destination = settings.get("destinationArn") or settings.get("DestinationArn")
        fmt = settings.get("format") or settings.get("Format")
        if not destination or not fmt:
            return
        integration_ms = int(req.integration_s * 1000) if req.integration_s is not None else None
        line = access_line(fmt, req, answer.status, len(answer.body), int(latency_s * 1000), integration_ms,
                           {"resourcePath": req.resource_path, "routeKey": req.resource_path})
        self._access.write(destination, fmt, line, req)

    # -- WebSocket APIs ---------------------------------------------------------------------------

    async def websocket(self, scope: Scope, receive: Receive, send: Send, target: tuple[str, str | None, str]) -> None:
        api_id, region, path = target
        doc = self._store.get(api_id)
        stage_name = path.strip("/").split("/")[0]
        if doc is None or doc["_kind"] != "WEBSOCKET" or (region is not None and region != doc["_region"]) \
                or stage_name not in doc.get("stages", {}):
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())]
        client = scope.get("client")
        host = next((v for k, v in headers if k.lower() == "host"), f"{api_id}.execute-api.localhost")
        req = proxy.ApiRequest(
            method="GET", path=path, raw_query=scope.get("query_string", b"").decode("latin-1"), headers=headers,
            body=b"", source_ip=client[0] if client else "127.0.0.1", api_id=api_id, account=doc["_account"],
            region=doc["_region"], stage=stage_name, domain_name=host.split(":")[0], request_id=str(uuid.uuid4()),
            epoch_ms=int(self._clock() * 1000), stage_path=path)
        config = self._http_config(doc, doc["stages"][stage_name])
        api = {"ApiId": api_id, "RouteSelectionExpression": doc.get("RouteSelectionExpression"),
               "routes": config.get("routes", {}), "integrations": config.get("integrations", {}),
               "authorizers": config.get("authorizers", {})}
        await self._ws.serve(api, stage_name, req, receive, send)

    async def _ws_authorize(self, api: Doc, route: Doc, req: proxy.ApiRequest,
                            method_arn: str) -> tuple[HttpAnswer | None, dict[str, Any] | None]:
        """A REQUEST authorizer on `$connect`: run as a REST one (its identity sources are
        `route.request.header.X` / `route.request.querystring.X`, its answer an IAM policy)."""
        auth = api["authorizers"].get(route.get("AuthorizerId", ""))
        if auth is None or auth.get("AuthorizerType") != "REQUEST":
            return _json(500, HTTP_INTERNAL), None
        sources = [s.replace("route.request.", "method.request.", 1) for s in auth.get("IdentitySource") or []]
        rest_auth = {"id": auth["AuthorizerId"], "type": "REQUEST", "authorizerUri": auth.get("AuthorizerUri", ""),
                     "identitySource": ",".join(sources),
                     "authorizerResultTtlInSeconds": auth.get("AuthorizerResultTtlInSeconds", 0)}
        decision = await self._authorizers.rest(rest_auth, req, method_arn, "$connect", "")
        return decision.answer, decision.context

    async def _ws_invoke(self, api: Doc, route: Doc, req: proxy.ApiRequest,
                         event: dict[str, Any]) -> InvokeOutcome | HttpAnswer | None:
        integ = api["integrations"].get((route.get("Target") or "").removeprefix("integrations/"))
        if integ is None or integ.get("IntegrationType") != "AWS_PROXY":
            return None
        arn = lambda_arn(integ.get("IntegrationUri", ""), req.stage_variables)
        if arn is None or not self._may_invoke(integ, arn, req, f"{req.stage}/{route['RouteKey']}"):
            return _json(500, HTTP_INTERNAL)
        timeout = int(integ.get("TimeoutInMillis", 29000)) / 1000
        return await self._call_function(arn, req.account, req.region, event, req.request_id, timeout,
                                         http_api=True, req=req)

    # -- REST APIs --------------------------------------------------------------------------------

    async def _rest(self, doc: Doc, req: proxy.ApiRequest) -> HttpAnswer:
        stage_name, _, rest = req.path.lstrip("/").partition("/")
        stage = doc["stages"].get(stage_name)
        canary = (stage or {}).get("canarySettings")
        if stage is not None and canary and random.random() * 100 < float(canary.get("percentTraffic") or 0):
            # This request goes to the canary: its deployment, the stage's variables with its overrides.
            stage = {**stage, "deploymentId": canary["deploymentId"],
                     "variables": {**(stage.get("variables") or {}), **(canary.get("stageVariableOverrides") or {})}}
            req.is_canary = True
        snap = doc["deployments"].get(stage["deploymentId"], {}).get("_snapshot") if stage else None
        if stage is None or snap is None:
            return _json(403, MISSING_TOKEN, [("x-amzn-ErrorType", "MissingAuthenticationTokenException")])
        answer, error = await self._rest_stage(doc, stage, snap, req, "/" + rest)
        if error is not None:
            answer = mapped.gateway_response(snap, error, answer, req)
        return answer

    async def _rest_stage(self, doc: Doc, stage: Doc, snap: Doc, req: proxy.ApiRequest, path: str,
                          test_resource: str | None = None) -> tuple[HttpAnswer, str | None]:
        """The answer, and the gateway response type when it is one of API Gateway's own errors.
        `test_resource` (TestInvokeMethod): that resource's method runs, without authorizers or keys."""
        stage_name, dep_id = stage["stageName"], stage["deploymentId"]
        req.stage = stage_name
        req.path = path
        req.stage_variables = dict(stage.get("variables") or {})
        cached = self._rest_routers.get((doc["id"], stage_name))
        if cached is not None and cached[0] == dep_id:
            router = cached[1]
        else:
            router = routing.compile_resources(snap["resources"])
            self._rest_routers[(doc["id"], stage_name)] = (dep_id, router)
        resources = snap["resources"]

        def has_method(rid: str) -> bool:
            methods = resources[rid].get("resourceMethods") or {}
            return req.method in methods or "ANY" in methods

        if test_resource is not None:
            found = routing.match_resource(router, req.path, lambda rid: rid == test_resource and has_method(rid))
            found = found or ((test_resource, {}) if test_resource in resources and has_method(test_resource)
                              else None)
        else:
            found = routing.match_resource(router, req.path, has_method)
        if found is None:
            return _json(403, MISSING_TOKEN, [("x-amzn-ErrorType", "MissingAuthenticationTokenException")]), \
                "MISSING_AUTHENTICATION_TOKEN"
        rid, params = found
        req.path_parameters = params
        methods = resources[rid].get("resourceMethods") or {}
        method = methods.get(req.method) or methods["ANY"]
        rpath = resource_path(resources, rid)
        req.resource_path = rpath
        # The method ARN names the requested path (an authorizer's policy is about it), not the resource.
        method_arn = (f"arn:aws:execute-api:{req.region}:{req.account}:{req.api_id}/{stage_name}/"
                      f"{req.method}{req.path}")
        authorizer_ctx: dict[str, Any] | None = None
        usage_key: str | None = None
        ident_extra: dict[str, Any] = {}
        auth_type = method.get("authorizationType", "NONE") if test_resource is None else "NONE"
        if auth_type == "CUSTOM":
            auth = snap["authorizers"].get(method.get("authorizerId", ""))
            if auth is None:
                return _json(500, b'{"message": null}'), "AUTHORIZER_CONFIGURATION_ERROR"
            decision = await self._authorizers.rest(auth, req, method_arn, rpath, dep_id)
            if decision.answer is not None:
                kind = {401: "UNAUTHORIZED", 403: "ACCESS_DENIED"}.get(decision.answer.status,
                                                                      "AUTHORIZER_CONFIGURATION_ERROR")
                return decision.answer, kind
            authorizer_ctx = decision.context
            usage_key = decision.usage_key
        elif auth_type == "AWS_IAM":
            if req.header("authorization") is None and "X-Amz-Credential=" not in req.raw_query:
                return _json(403, MISSING_TOKEN, [("x-amzn-ErrorType", "MissingAuthenticationTokenException")]), \
                    "MISSING_AUTHENTICATION_TOKEN"
            caller = self._iam_caller(req)
            if isinstance(caller, HttpAnswer):
                return caller, "INVALID_SIGNATURE" if caller.status == 403 else "ACCESS_DENIED"
            ident_extra = caller
        if method.get("apiKeyRequired") and test_resource is None:
            account_doc = self._store.get(f"acct-{req.account}-{req.region}")
            value = usage_key if snap.get("apiKeySource") == "AUTHORIZER" else req.header("x-api-key")
            verdict = self._limits.check(account_doc, value, req.api_id, stage_name)
            if verdict is not None:
                kind = "INVALID_API_KEY" if verdict[0] == 403 else \
                    "QUOTA_EXCEEDED" if b"Limit" in verdict[1] else "THROTTLED"
                return _json(verdict[0], verdict[1]), kind
            ident_extra = {**ident_extra, "apiKey": value, "apiKeyId": self._limits.key_id(account_doc, value)}
        invalid = mapped.validate(snap, method, req)
        if invalid is not None:
            return invalid
        integ = method.get("methodIntegration")
        if integ is None:
            return _json(500, REST_INTERNAL), "API_CONFIGURATION_ERROR"
        kind = integ.get("type")
        timeout = int(integ.get("timeoutInMillis", 29000)) / 1000
        if kind == "AWS_PROXY":
            if integ.get("httpMethod", "POST") != "POST":  # Lambda is invoked with POST only (AWS: 500)
                return _json(500, REST_INTERNAL), "INTEGRATION_FAILURE"
            arn = lambda_arn(integ.get("uri", ""), req.stage_variables)
            if arn is None or not self._may_invoke(integ, arn, req, f"{stage_name}/{req.method}{rpath}"):
                return _json(500, REST_INTERNAL), "API_CONFIGURATION_ERROR"
            event = proxy.event_v1(req, resource_path=rpath, resource_id=rid, deployment_id=dep_id,
                                   binary_media_types=snap.get("binaryMediaTypes") or [],
                                   authorizer=authorizer_ctx, identity_extra=ident_extra)
            result = await self._call_function(arn, req.account, req.region, event, req.request_id, timeout, req=req)
            if isinstance(result, HttpAnswer):
                return result, "INTEGRATION_TIMEOUT" if result.status == 504 else "INTEGRATION_FAILURE"
            if result.function_error:
                return _json(502, REST_INTERNAL), "DEFAULT_5XX"
            try:
                return proxy.map_v1(result.payload, binary_media_types=snap.get("binaryMediaTypes") or [],
                                    accept=req.header("accept")), None
            except BadResponse:
                return _json(502, REST_INTERNAL), "DEFAULT_5XX"
        if kind == "HTTP_PROXY":
            url = mapped.substitute(integ.get("uri", ""), req)
            if req.raw_query:
                url += ("&" if "?" in url else "?") + req.raw_query
            fwd = [(k, v) for k, v in req.headers if k.lower() not in ("host", "content-length", "connection")]
            verb = integ.get("httpMethod")
            try:
                verb = req.method if verb in (None, "ANY") else verb
                return await self._forward(req, verb, url, fwd, req.body, timeout), None
            except TimeoutError:
                return _json(504, TIMED_OUT), "INTEGRATION_TIMEOUT"
            except OSError:
                return _json(500, REST_INTERNAL), "INTEGRATION_FAILURE"
        if kind in ("AWS", "HTTP", "MOCK"):
            return await self._rest_mapped(integ, snap, req, rpath, rid, dep_id, authorizer_ctx, ident_extra,
                                           timeout)
        return _json(500, REST_INTERNAL), "API_CONFIGURATION_ERROR"

    async def _forward(self, req: proxy.ApiRequest, method: str, url: str, headers: Headers, body: bytes,
                       timeout: float) -> HttpAnswer:
        started = time.monotonic()
        try:
            return await forward(method, url, headers, body, timeout)
        finally:
            req.integration_s = time.monotonic() - started

    def _may_invoke_authorizer(self, auth: Doc, arn: str, req: proxy.ApiRequest, authorizer_id: str) -> bool:
        credentials = auth.get("authorizerCredentials") or auth.get("AuthorizerCredentialsArn")
        return self._may_invoke({"credentials": credentials}, arn, req, f"authorizers/{authorizer_id}")

    def _iam_caller(self, req: proxy.ApiRequest) -> dict[str, Any] | HttpAnswer:
        """The identity fields of a correctly SigV4-signed ("execute-api") request by a key of the API's
        account, or the answer AWS gives. Hearth has no IAM policies: another account's key is refused."""
        folded: dict[str, str] = {}
        for k, v in req.headers:
            folded[k.lower()] = f"{folded[k.lower()]},{v}" if k.lower() in folded else v
        first = {k: v[0] for k, v in proxy.query_lists(req.raw_query).items()}
        try:
            principal, cred = self._verifier.verify(
                SignedRequest(req.method, req.wire_path, req.raw_query, folded, req.body), first)
        except AuthFailure as failure:
            return _json(403, json.dumps({"message": failure.message}).encode(),
                         [("x-amzn-ErrorType", "InvalidSignatureException")])
        if cred.service != "execute-api":
            return _json(403, b'{"message":"Credential should be scoped to correct service: \'execute-api\'. "}',
                         [("x-amzn-ErrorType", "InvalidSignatureException")])
        if principal.account_id != req.account:
            return _json(403, json.dumps({"Message": f"User: arn:aws:iam::{principal.account_id}:root is not "
                                          "authorized to perform: execute-api:Invoke on resource: "
                                          f"arn:aws:execute-api:{req.region}:{req.account}:{req.api_id}/"
                                          f"{req.stage}/{req.method}{req.path}"}).encode(),
                         [("x-amzn-ErrorType", "AccessDeniedException")])
        return {"accessKey": principal.access_key_id, "accountId": principal.account_id,
                "caller": principal.access_key_id, "user": principal.access_key_id,
                "userArn": f"arn:aws:iam::{principal.account_id}:root"}

    async def test_invoke(self, doc: Doc, resource_id: str, method: str, path_with_query: str, body: bytes,
                          headers: list[tuple[str, str]], stage_variables: dict[str, str]) -> dict[str, Any]:
        """TestInvokeMethod: the live (undeployed) method run as a request would run it, minus auth."""
        request_id = str(uuid.uuid4())
        path, _, query = (path_with_query or "/").partition("?")
        req = proxy.ApiRequest(
            method=method.upper(), path=path, raw_query=query, headers=headers, body=body,
            source_ip="test-invoke-source-ip", api_id=doc["id"], account=doc["_account"], region=doc["_region"],
            stage="test-invoke-stage", domain_name="testPrefix.testDomainName", request_id=request_id,
            epoch_ms=int(self._clock() * 1000), stage_path=path, wire_path=path)
        stage = {"stageName": "test-invoke-stage", "deploymentId": f"test-invoke-{request_id}",
                 "variables": stage_variables}
        started = time.monotonic()
        answer, _ = await self._rest_stage(doc, stage, snapshot(doc), req, path, test_resource=resource_id)
        self._rest_routers.pop((doc["id"], "test-invoke-stage"), None)
        latency = int((time.monotonic() - started) * 1000)
        single: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for k, v in answer.headers:
            single[k] = v
            multi.setdefault(k, []).append(v)
        now = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(self._clock()))
        def java_map(items: Any) -> str:  # how AWS's (Java) log prints a map: {a=b, c=d}
            return "{" + ", ".join(f"{k}={v}" for k, v in items) + "}"

        queries = [(k, ",".join(v)) for k, v in proxy.query_lists(query).items()]
        log_text = "\n".join([
            f"Execution log for request {request_id}",
            f"{now} : Starting execution for request: {request_id}",
            f"{now} : HTTP Method: {req.method}, Resource Path: {path}",
            f"{now} : Method request path: {java_map(req.path_parameters.items())}",
            f"{now} : Method request query string: {java_map(queries)}",
            f"{now} : Method request headers: {java_map(headers)}",
            f"{now} : Method request body before transformations: {body.decode('utf-8', 'replace')}",
            f"{now} : Method response body after transformations: {answer.body.decode('utf-8', 'replace')}",
            f"{now} : Method response headers: {java_map(answer.headers)}",
            f"{now} : Successfully completed execution",
            f"{now} : Method completed with status: {answer.status}", ""])
        return {"status": answer.status, "body": answer.body.decode("utf-8", "replace"), "headers": single,
                "multiValueHeaders": multi, "log": log_text, "latency": latency}

    def _may_invoke(self, integ: Doc, arn: str, req: proxy.ApiRequest, resource: str) -> bool:
        """Whether API Gateway may invoke the function: the integration's role, or the function's policy."""
        source_arn = f"arn:aws:execute-api:{req.region}:{req.account}:{req.api_id}/{resource}"
        if integ.get("credentials") or integ.get("CredentialsArn") or self._functions.allows_service(
                arn, "apigateway.amazonaws.com", source_arn, source_account=req.account):
            return True
        log.info("API %s: no permission for apigateway.amazonaws.com to invoke %s", req.api_id, arn)
        return False

    async def _rest_mapped(self, integ: Doc, snap: Doc, req: proxy.ApiRequest, rpath: str, rid: str, dep_id: str,
                           authorizer_ctx: dict[str, Any] | None, ident_extra: dict[str, Any],
                           timeout: float) -> tuple[HttpAnswer, str | None]:
        """AWS (Lambda), HTTP and MOCK integrations: request template, backend call, response selection
        and response template."""
        context = mapped.context(req, rpath, rid, dep_id, authorizer_ctx, ident_extra)
        try:
            payload = mapped.request_payload(integ, req, context, snap.get("binaryMediaTypes") or [])
        except mapped.Unsupported:
            return _json(415, b'{"message": "Unsupported Media Type"}'), "UNSUPPORTED_MEDIA_TYPE"
        except mapped.ConversionFailed:
            log.info("API %s: the request body is not base64 (CONVERT_TO_BINARY)", req.api_id)
            return _json(500, REST_INTERNAL), "INTEGRATION_FAILURE"
        except vtl.TemplateError as exc:
            log.info("API %s: request mapping template failed: %s", req.api_id, exc)
            return _json(500, REST_INTERNAL), "API_CONFIGURATION_ERROR"
        kind = integ["type"]
        backend_headers: Headers = []
        if kind == "MOCK":
            selector, body, is_error = mapped.mock_status(payload), b"", False
        elif kind == "AWS" and lambda_arn(integ.get("uri", ""), req.stage_variables) is None:
            call = None
            if self._credentials is not None:
                # ANY as the integration's method sends the client's own method (S3 proxies use it)
                verb = integ.get("httpMethod") or "POST"
                verb = req.method if verb == "ANY" else verb
                call = awsservice.build(mapped.substitute(integ.get("uri", ""), req), verb,
                                        payload, mapped.integration_headers(integ, req, context), self._endpoint_url,
                                        self._credentials(req.account), mapped.integration_query(integ, req))
            if call is None:
                return _json(500, REST_INTERNAL), "API_CONFIGURATION_ERROR"  # a service Hearth does not serve
            trace = lineage.TraceHeader.parse(req.header("x-amzn-trace-id"))  # continued, or a new one
            req.trace_id = lineage.TraceHeader(root=trace.root or lineage.new_root(),
                                               parent=trace.parent or secrets.token_hex(8),
                                               sampled=trace.sampled or "0", extra=trace.extra).render()
            try:
                got = await self._forward(req, call.method, call.url, call.headers, call.body, timeout)
            except TimeoutError:
                return _json(504, TIMED_OUT), "INTEGRATION_TIMEOUT"
            except OSError:
                return _json(500, REST_INTERNAL), "INTEGRATION_FAILURE"
            selector, body, is_error, backend_headers = str(got.status), got.body, False, got.headers
        elif kind == "AWS":
            arn = lambda_arn(integ.get("uri", ""), req.stage_variables)
            assert arn is not None
            if not self._may_invoke(integ, arn, req, f"{req.stage}/{req.method}{rpath}"):
                return _json(500, REST_INTERNAL), "API_CONFIGURATION_ERROR"
            try:
                event = json.loads(payload) if payload.strip() else {}
            except ValueError:
                event = payload.decode("utf-8", "replace")
            result = await self._call_function(arn, req.account, req.region, event, req.request_id, timeout, req=req)
            if isinstance(result, HttpAnswer):
                return result, "INTEGRATION_TIMEOUT" if result.status == 504 else "INTEGRATION_FAILURE"
            body = result.payload
            is_error = result.function_error is not None
            selector = mapped.error_message(body) if is_error else ""
        else:
            url = mapped.substitute(integ.get("uri", ""), req)
            try:
                verb = integ.get("httpMethod") or req.method
                got = await self._forward(req, req.method if verb == "ANY" else verb, url,
                                          mapped.integration_headers(integ, req, context), payload, timeout)
            except TimeoutError:
                return _json(504, TIMED_OUT), "INTEGRATION_TIMEOUT"
            except OSError:
                return _json(500, REST_INTERNAL), "INTEGRATION_FAILURE"
            selector, body, is_error, backend_headers = str(got.status), got.body, False, got.headers
        lambda_call = kind == "AWS" and lambda_arn(integ.get("uri", ""), req.stage_variables) is not None
        chosen = mapped.select_response(integ, selector, is_error, lambda_call=lambda_call)
        if chosen is None:
            if is_error:
                return _json(502, REST_INTERNAL), "DEFAULT_5XX"
            return _json(500, REST_INTERNAL), "API_CONFIGURATION_ERROR"
        if kind != "MOCK" and not lambda_call:  # HTTP and AWS-service answers carry their own type
            try:
                body = mapped.converted_answer(chosen, body, backend_headers, req, snap.get("binaryMediaTypes") or [])
            except mapped.ConversionFailed:
                log.info("API %s: the integration's answer is not base64 (binary accepted)", req.api_id)
                return _json(500, REST_INTERNAL), "INTEGRATION_FAILURE"
        try:
            return mapped.response(chosen, body, backend_headers, req, context), None
        except vtl.TemplateError as exc:
            log.info("API %s: response mapping template failed: %s", req.api_id, exc)
            return _json(500, REST_INTERNAL), "API_CONFIGURATION_ERROR"

    # -- HTTP APIs --------------------------------------------------------------------------------

    async def _http(self, doc: Doc, req: proxy.ApiRequest, folded: dict[str, str]) -> HttpAnswer:
        first, _, rest = req.path.lstrip("/").partition("/")
        stages: dict[str, Doc] = doc.get("stages", {})
        if first and first != "$default" and first in stages:
            stage_name, path = first, "/" + rest
        elif "$default" in stages:
            stage_name, path = "$default", req.path
        else:
            return _json(404, NOT_FOUND)
        stage = stages[stage_name]
        req.stage, req.path = stage_name, path
        if stage_name == "$default":
            req.stage_path = path
        req.stage_variables = dict(stage.get("StageVariables") or {})
        cfg = doc.get("CorsConfiguration")
        if cfg and cors.is_preflight(req.method, folded):
            return HttpAnswer(204, cors.preflight_headers(cfg, folded), b"")
        answer = await self._http_route(doc, stage, req, folded)
        if cfg:
            answer = HttpAnswer(answer.status, cors.apply(cfg, folded, answer.headers), answer.body)
        return answer

    def _http_config(self, doc: Doc, stage: Doc) -> Doc:
        if stage.get("AutoDeploy") or not stage.get("DeploymentId"):
            return doc
        dep = doc.get("deployments", {}).get(stage["DeploymentId"])
        return dep["_snapshot"] if dep and "_snapshot" in dep else doc

    async def _http_route(self, doc: Doc, stage: Doc, req: proxy.ApiRequest, folded: dict[str, str]) -> HttpAnswer:
        config = self._http_config(doc, stage)
        key, version = (doc["ApiId"], str(stage.get("StageName"))), str(config.get("_revision", 0))
        cached = self._http_routers.get(key)
        if cached is not None and cached[0] == version:
            routes = cached[1]
        else:
            routes = routing.compile_routes(list(config.get("routes", {}).values()))
            self._http_routers[key] = (version, routes)
        found = routing.match_route(routes, req.method, req.path)
        if found is None:
            return _json(404, NOT_FOUND)
        route, params = found
        req.path_parameters = params
        req.resource_path = route.route_key
        route_doc = config["routes"][route.route_id]
        authorizer_ctx: dict[str, Any] | None = None
        auth_type = route_doc.get("AuthorizationType", "NONE")
        if auth_type in ("CUSTOM", "JWT"):
            auth = config.get("authorizers", {}).get(route_doc.get("AuthorizerId", ""))
            if auth is None:
                return _json(500, HTTP_INTERNAL)
            route_arn = (f"arn:aws:execute-api:{req.region}:{req.account}:{req.api_id}/{req.stage}/"
                         f"{req.method}{req.path}")
            decision: AuthDecision = await self._authorizers.http(auth, req, route.route_key, route_arn,
                                                                 route_doc.get("AuthorizationScopes"))
            if decision.answer is not None:
                return decision.answer
            authorizer_ctx = decision.context
        elif auth_type == "AWS_IAM":
            if req.header("authorization") is None and "X-Amz-Credential=" not in req.raw_query:
                return _json(403, FORBIDDEN)
            caller = self._iam_caller(req)
            if isinstance(caller, HttpAnswer):
                return _json(403, FORBIDDEN)
            authorizer_ctx = {"iam": {
                "accessKey": caller["accessKey"], "accountId": caller["accountId"], "callerId": caller["caller"],
                "cognitoIdentity": None, "principalOrgId": None, "userArn": caller["userArn"],
                "userId": caller["accountId"]}}
        target = route_doc.get("Target") or ""
        integ = config.get("integrations", {}).get(target.removeprefix("integrations/"))
        if integ is None:
            return _json(500, HTTP_INTERNAL)
        timeout = int(integ.get("TimeoutInMillis", 30000)) / 1000
        if integ.get("IntegrationType") == "AWS_PROXY":
            arn = lambda_arn(integ.get("IntegrationUri", ""), req.stage_variables)
            if arn is None:
                return _json(500, HTTP_INTERNAL)
            resource = f"/{route.method}/{'/'.join(route.parts)}" if route.parts else (
                "/$default" if not route.method else f"/{route.method}/")
            if not self._may_invoke(integ, arn, req, f"{req.stage}{resource}"):
                return _json(500, HTTP_INTERNAL)
            if integ.get("PayloadFormatVersion") == "1.0":
                rpath = "/" + "/".join(route.parts) if route.parts else "$default"
                event = proxy.event_v1(req, resource_path=rpath, resource_id=route.route_key, deployment_id="",
                                       binary_media_types=[], authorizer=authorizer_ctx, http_api=True)
            else:
                event = proxy.event_v2(req, route_key=route.route_key, authorizer=authorizer_ctx)
            result = await self._call_function(arn, req.account, req.region, event, req.request_id, timeout,
                                               http_api=True, req=req)
            if isinstance(result, HttpAnswer):
                return result
            if result.function_error:
                return _json(500, HTTP_INTERNAL)
            try:
                if integ.get("PayloadFormatVersion") == "1.0":
                    return proxy.map_v1(result.payload, binary_media_types=["*/*"], accept=None)
                return proxy.map_v2(result.payload)
            except BadResponse:
                return _json(500, HTTP_INTERNAL)
        if integ.get("IntegrationType") == "HTTP_PROXY":
            url = integ.get("IntegrationUri", "")
            for name, value in req.path_parameters.items():
                url = url.replace("{" + name + "}", value).replace("{" + name + "+}", value)
            if req.raw_query:
                url += ("&" if "?" in url else "?") + req.raw_query
            fwd = [(k, v) for k, v in req.headers if k.lower() not in ("host", "content-length", "connection")]
            url, fwd = mapped.http_api_request_mapping(integ.get("RequestParameters"), req, url, fwd)
            method = integ.get("IntegrationMethod") or "ANY"
            try:
                return await self._forward(req, req.method if method == "ANY" else method, url, fwd, req.body, timeout)
            except TimeoutError:
                return _json(504, b'{"message":"Gateway Timeout"}')
            except OSError:
                return _json(500, HTTP_INTERNAL)
        return _json(500, HTTP_INTERNAL)

    # -- invoking ---------------------------------------------------------------------------------

    async def _call_function(self, arn: str, account: str, region: str, event: Any, request_id: str,
                             timeout: float, *, http_api: bool = False,
                             req: proxy.ApiRequest | None = None) -> InvokeOutcome | HttpAnswer:
        internal = HTTP_INTERNAL if http_api else REST_INTERNAL
        try:
            fv = self._functions.resolve(account, region, arn, None)
        except FunctionsError:
            return _json(500, internal)
        if fv.state != "Active":
            return _json(500, internal)
        # A client's X-Amzn-Trace-Id is continued into the function, as API Gateway passes it on.
        incoming = next((v for k, v in req.headers if k.lower() == "x-amzn-trace-id"), None) if req else None
        trace_id = lineage.next_hop(incoming, fv.function_arn, active=fv.tracing_mode == "Active")
        if req is not None:
            req.trace_id = trace_id
        task = asyncio.create_task(self._invoker.invoke(InvokeRequest(
            fv, json.dumps(event).encode(), request_id=request_id, trace_id=trace_id)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        started = time.monotonic()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if req is not None:
            req.integration_s = time.monotonic() - started
        if not done:  # the function runs on; its answer has nowhere to go (as on AWS)
            return _json(503, UNAVAILABLE) if http_api else _json(504, TIMED_OUT)
        exc = task.exception()
        if isinstance(exc, Throttled):
            return _json(429, b'{"message":"Too Many Requests"}') if http_api else \
                _json(500, internal)
        if exc is not None:
            if not isinstance(exc, InvokeError):
                log.error("API invocation failed", exc_info=exc)
            return _json(500, internal)
        return task.result()

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _answer(send: Send, answer: HttpAnswer) -> None:
    headers = [(k, v) for k, v in answer.headers if k.lower() not in ("content-length", "transfer-encoding",
                                                                     "connection")]
    headers.append(("content-length", str(len(answer.body))))
    raw = [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers]
    await send({"type": "http.response.start", "status": answer.status, "headers": raw})
    await send({"type": "http.response.body", "body": answer.body})
