"""The ASGI handler that serves function URLs.

Per request it: finds the URL (Host `<url-id>.lambda-url.<region>.localhost[:port]`, or the path form
`/_hearth/url/<url-id>/<path>`), reads the body (6 MB limit, 413 over it), answers a CORS preflight
itself, checks AWS_IAM auth (SigV4 for service "lambda" by a key of the function's account, or of an
account a resource policy allows), builds the 2.0 event, invokes, and maps the result to HTTP — in
BUFFERED mode after the function finished, in RESPONSE_STREAM mode byte by byte as the runtime writes.

Errors look like AWS's function URLs: 403 `{"Message":"Forbidden. …"}` (x-amzn-ErrorType
AccessDeniedException), 413, 429 when throttled, 502
`Internal Server Error` for a function error, `{"Message":"Internal Server Error"}` for an answer that
is not an HTTP response.
It never renders AWS API errors (the gateway does) and never stores configurations.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qs

from hearth.asgi import BodyTooLarge, host_or_path_target, read_body
from hearth.aws.keys import KeyStore
from hearth.aws.sigv4 import AuthFailure, SignedRequest, SigV4Verifier
from hearth.config import Settings
from hearth.events import lineage
from hearth.functions.errors import FunctionsError
from hearth.functions.model import FunctionVersion
from hearth.invoke.errors import InvokeError, Throttled
from hearth.invoke.invoker import Invoker
from hearth.invoke.request import InvokeOutcome, InvokeRequest
from hearth.runtime_api.channel import ResponseStream
from hearth.services.lambda_.urls import UrlConfig, UrlConfigStore
from hearth.urls import cors
from hearth.urls.event import IamCaller, UrlRequest, build_event
from hearth.urls.response import (
    HTTP_INTEGRATION_TYPE,
    BadResponse,
    HttpAnswer,
    map_result,
    metadata_headers,
    split_prelude,
)

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[str, str]]

BODY_LIMIT = 6 * 1024 * 1024  # 6,291,456 bytes, AWS's request limit for a function URL
PATH_PREFIX = "/_hearth/url/"
_HOST_RX = re.compile(r"^([a-z0-9]{32})\.lambda-url\.([a-z0-9-]+)\.localhost\.?(?::\d+)?$")

# AWS's 403 for a URL call its auth or policy refuses (AWS-validated test): these words, and the error
# type in a header.
FORBIDDEN = (b'{"Message":"Forbidden. For troubleshooting Function URL authorization issues, see: '
             b'https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"}')
INTERNAL = b'{"Message":"Internal Server Error"}'
# A function that raised: AWS answers these words alone, not the JSON document (AWS-validated test).
FUNCTION_FAILED = b"Internal Server Error"
NOT_FOUND = b'{"Message":"Not Found"}'
# A URL id nobody has: AWS answers 403 with a null message and the error type in a header (AWS-validated).
UNKNOWN_URL = b'{"Message":null}'
TOO_LARGE = b'{"Message":"Request Entity Too Large"}'
HEADERS_TOO_LARGE = b'{"Message":"Request Header Fields Too Large"}'
# Decision (AWS documents no figure for function URLs): request headers are capped like API Gateway's
# HTTP APIs, 10,240 bytes in all; over it the answer is 431 before anything is invoked.
HEADER_LIMIT = 10_240
THROTTLED = b'{"Message":"Rate Exceeded."}'
UNAVAILABLE = b'{"Message":"Service Unavailable"}'


class FunctionAccess(Protocol):
    def resolve(self, account: str, region: str, name_or_arn: str, qualifier: str | None) -> FunctionVersion: ...

    def authorize(self, caller_account: str | None, target: FunctionVersion | str, action: str, *,
                  context: Mapping[str, str] | None = None) -> None:
        """Raise unless the caller (None: anonymous) may perform `action` on `target` (its resource policy)."""
        ...


def match(scope: Scope) -> tuple[str, str | None, str] | None:
    """(url-id, region or None, raw path for the event) when the request is a URL invocation."""
    return host_or_path_target(scope, _HOST_RX, PATH_PREFIX)




class UrlFront:
    def __init__(self, settings: Settings, keys: KeyStore, urls: UrlConfigStore, functions: FunctionAccess,
                 invoker: Invoker, *, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._urls = urls
        self._functions = functions
        self._invoker = invoker
        self._verifier = SigV4Verifier(keys, settings.auth, settings.account_id, clock)
        self._clock = clock
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send, target: tuple[str, str | None, str]) -> None:
        url_id, region, path = target
        request_id = str(uuid.uuid4())
        base = [("x-amzn-requestid", request_id)]
        cfg = self._urls.lookup(url_id)
        if cfg is None or (region is not None and region != cfg.region):
            await _answer(send, HttpAnswer(403, [("content-type", "application/json"),
                                                 ("x-amzn-errortype", "AccessDeniedException"), *base], UNKNOWN_URL))
            return
        headers = _header_list(scope)
        if sum(len(name) + len(value) for name, value in headers) > HEADER_LIMIT:
            await _answer(send, HttpAnswer(431, [("content-type", "application/json"), *base], HEADERS_TOO_LARGE))
            return
        folded = _fold(headers)
        try:
            body = await read_body(receive, folded, BODY_LIMIT)
        except BodyTooLarge:
            await _answer(send, HttpAnswer(413, [("content-type", "application/json"), *base], TOO_LARGE))
            return
        method: str = scope["method"]
        if cfg.cors is not None and cors.is_preflight(method, folded):
            await _answer(send, HttpAnswer(200, [*cors.preflight_headers(cfg.cors, folded), *base], b""))
            return
        answer = await self._serve(scope, cfg, method, path, headers, folded, body, request_id)
        if isinstance(answer, HttpAnswer):
            answer = HttpAnswer(answer.status, [*cors.apply(cfg.cors, folded, answer.headers), *base], answer.body)
            await _answer(send, answer)
            return
        await self._stream_out(send, cfg, folded, base, *answer)

    async def _serve(self, scope: Scope, cfg: UrlConfig, method: str, path: str, headers: Headers,
                     folded: dict[str, str], body: bytes, request_id: str,
                     ) -> HttpAnswer | tuple[ResponseStream, asyncio.Task[InvokeOutcome]]:
        """The answer, or (for RESPONSE_STREAM with a streaming runtime) the stream to pass on."""
        caller: IamCaller | None = None
        if cfg.auth_type == "AWS_IAM":
            caller = self._authenticate(scope, folded, body)
            if caller is None or not self._authorized(caller, cfg):
                return _forbidden()
        elif not self._public(cfg):
            # As AWS: AuthType NONE still needs a policy statement letting everyone ("*") call
            # lambda:InvokeFunctionUrl with lambda:FunctionUrlAuthType NONE (AddPermission).
            return _forbidden()
        try:
            fv = self._functions.resolve(cfg.account, cfg.region, cfg.function_name, cfg.qualifier or None)
        except FunctionsError:
            return _json(404, NOT_FOUND)
        if fv.state != "Active":
            return _json(503, UNAVAILABLE)
        client = scope.get("client")
        req = UrlRequest(method, path, scope.get("query_string", b"").decode("latin-1"), headers, body,
                         client[0] if client else "127.0.0.1")
        epoch_ms = int(self._clock() * 1000)
        domain = f"{cfg.url_id}.lambda-url.{cfg.region}.localhost"
        event = build_event(req, url_id=cfg.url_id, domain_name=domain, request_id=request_id, epoch_ms=epoch_ms,
                            caller=caller)
        sink = ResponseStream()
        task = asyncio.create_task(self._invoker.invoke(InvokeRequest(
            fv, json.dumps(event).encode(), request_id=request_id, stream=sink,
            # A caller's X-Amzn-Trace-Id is continued (its loop lineage too), as for Invoke.
            trace_id=lineage.next_hop(folded.get("x-amzn-trace-id"), fv.function_arn,
                                      active=fv.tracing_mode == "Active"))))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if not await sink.started_or_done(task):
            return _outcome_answer(task)
        if cfg.invoke_mode == "RESPONSE_STREAM":
            return sink, task
        return await _collect(sink, task)

    async def _stream_out(self, send: Send, cfg: UrlConfig, folded: dict[str, str], base: Headers,
                          sink: ResponseStream, task: asyncio.Task[InvokeOutcome]) -> None:
        chunks = sink.chunks()
        head_sent = False
        status, headers = 200, [("content-type", sink.content_type or "application/octet-stream")]
        prelude = sink.content_type == HTTP_INTEGRATION_TYPE
        buffer = b""
        try:
            async for chunk in chunks:
                if prelude:
                    buffer += chunk
                    split = split_prelude(buffer)
                    if split is None:
                        continue
                    meta, chunk = split
                    status, headers = metadata_headers(meta)
                    prelude = False
                if not head_sent:
                    await _start(send, status, [*cors.apply(cfg.cors, folded, headers), *base])
                    head_sent = True
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except BadResponse:
            log.info("function URL %s: %s", cfg.url_id, "bad streamed response metadata")
            async for _ in chunks:  # let the runtime finish; its bytes have nowhere to go
                pass
        await asyncio.gather(task, return_exceptions=True)
        if not head_sent:
            if sink.error_type is not None or prelude:
                await _answer(send, HttpAnswer(502, [("content-type", "application/json"), *base], INTERNAL))
            else:
                await _answer(send, HttpAnswer(status, [*cors.apply(cfg.cors, folded, headers), *base], b""))
            return
        # An error after the first byte cannot change the status any more: the body just ends.
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _authenticate(self, scope: Scope, folded: dict[str, str], body: bytes) -> IamCaller | None:
        raw = scope.get("raw_path")
        raw_path = raw.decode("latin-1").partition("?")[0] if raw else scope.get("path", "/")
        query_string = scope.get("query_string", b"").decode("latin-1")
        first = {k: v[0] for k, v in parse_qs(query_string, keep_blank_values=True).items()}
        try:
            principal, cred = self._verifier.verify(
                SignedRequest(scope["method"], raw_path, query_string, folded, body), first)
        except AuthFailure:
            return None
        if cred.service != "lambda":
            return None
        return IamCaller(principal.access_key_id, principal.account_id)

    def _public(self, cfg: UrlConfig) -> bool:
        try:
            self._functions.authorize(None, cfg.function_arn, "lambda:InvokeFunctionUrl",
                                      context={"lambda:FunctionUrlAuthType": "NONE"})
        except FunctionsError:
            return False
        return True

    def _authorized(self, caller: IamCaller, cfg: UrlConfig) -> bool:
        if caller.account_id == cfg.account:
            return True
        try:  # the URL's own ARN (alias-qualified or not) names the policy that applies
            self._functions.authorize(caller.account_id, cfg.function_arn, "lambda:InvokeFunctionUrl",
                                      context={"lambda:FunctionUrlAuthType": "AWS_IAM"})
        except FunctionsError:
            return False
        return True

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _outcome_answer(task: asyncio.Task[InvokeOutcome]) -> HttpAnswer:
    exc = task.exception()
    if isinstance(exc, Throttled):
        return _json(429, THROTTLED)
    if isinstance(exc, (InvokeError, FunctionsError)):
        return _json(502, INTERNAL)
    if exc is not None:
        log.error("function URL invocation failed", exc_info=exc)
        return _json(502, INTERNAL)
    outcome = task.result()
    if outcome.function_error:
        return _json(502, FUNCTION_FAILED)
    try:
        return map_result(outcome.payload)
    except BadResponse:
        return _json(502, INTERNAL)


async def _collect(sink: ResponseStream, task: asyncio.Task[InvokeOutcome]) -> HttpAnswer:
    """A streamed response to a BUFFERED URL: gathered, then answered as one."""
    parts: list[bytes] = []
    size = 0
    async for chunk in sink.chunks():
        size += len(chunk)
        if size <= BODY_LIMIT:
            parts.append(chunk)
    await asyncio.gather(task, return_exceptions=True)
    if sink.error_type is not None or size > BODY_LIMIT:
        return _json(502, INTERNAL)
    data = b"".join(parts)
    try:
        if sink.content_type == HTTP_INTEGRATION_TYPE:
            split = split_prelude(data)
            if split is None:
                return _json(502, INTERNAL)
            status, headers = metadata_headers(split[0])
            return HttpAnswer(status, headers, split[1])
        return HttpAnswer(200, [("content-type", sink.content_type or "application/octet-stream")], data)
    except BadResponse:
        return _json(502, INTERNAL)


def _forbidden() -> HttpAnswer:
    return HttpAnswer(403, [("content-type", "application/json"), ("x-amzn-errortype", "AccessDeniedException")],
                      FORBIDDEN)


def _json(status: int, body: bytes) -> HttpAnswer:
    return HttpAnswer(status, [("content-type", "application/json")], body)


def _header_list(scope: Scope) -> Headers:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())]


def _fold(headers: Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in headers:
        key = k.lower()
        out[key] = f"{out[key]},{v}" if key in out else v
    return out



async def _start(send: Send, status: int, headers: Headers) -> None:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers
           if k.lower() not in ("content-length", "transfer-encoding", "connection")]
    await send({"type": "http.response.start", "status": status, "headers": raw})


async def _answer(send: Send, answer: HttpAnswer) -> None:
    headers = [(k, v) for k, v in answer.headers if k.lower() not in ("content-length", "transfer-encoding")]
    headers.append(("content-length", str(len(answer.body))))
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers
           if k.lower() != "connection"]
    await send({"type": "http.response.start", "status": answer.status, "headers": raw})
    await send({"type": "http.response.body", "body": answer.body})
