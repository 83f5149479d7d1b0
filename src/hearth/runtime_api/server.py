"""The Runtime API's HTTP side for one execution environment (API version 2018-06-01).

It owns the HTTP/1.1 connections a runtime opens to its Runtime API listener: parsing requests
(Content-Length and chunked bodies, `Expect: 100-continue`, keep-alive), routing them to the
`EnvironmentChannel`, and writing the answers. It never decides anything about invocations (the
channel does) and never trusts what a runtime sends: request heads and bodies are bounded, and a
connection that breaks the protocol is answered 400 and closed.

Why a hand-written protocol instead of h11: warm invoke latency is a headline number and every warm
invoke crosses this server twice (`/next`, then `/response`). An `asyncio.Protocol` that slices one
receive buffer costs a few microseconds per request; a general parser costs several times that.

Streamed responses: a `POST …/response` with `Lambda-Runtime-Function-Response-Mode: streaming` is handed
to the channel when its head arrives, and each body chunk as it arrives (Content-Length or chunked); an
error comes last, as the trailers `Lambda-Runtime-Function-Error-Type` and `Lambda-Runtime-Function-Error-Body`
(base64). The 202 is sent when the body ends. A consumer that falls behind pauses reading.

Routes (everything else is 404; a known path with the wrong method is 405)::

    GET  /2018-06-01/runtime/invocation/next
    POST /2018-06-01/runtime/invocation/{id}/response
    POST /2018-06-01/runtime/invocation/{id}/error
    POST /2018-06-01/runtime/init/error

Every other path (the Extensions API 2020-01-01, the Telemetry API 2022-07-01, the Logs API 2020-08-15)
goes to the environment's `ExtraRoutes`, built on first use by the factory the server was given: an
environment nothing registers in never builds one. Such a route may answer later (a future: the
extension's `event/next`), and the connection is parked until it does; connections and parsing are shared.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any, Protocol, cast

from hearth.runtime_api.channel import (
    ACCEPTED_BODY,
    MAX_RESPONSE_BYTES,
    TOO_LARGE_BODY,
    EnvironmentChannel,
    Invocation,
    Rejected,
    RuntimeExited,
)

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024  # request line + headers
MAX_BODY_BYTES = MAX_RESPONSE_BYTES + 1  # kept in memory; the rest of a bigger body is read and dropped
MAX_CONNECTIONS = 64  # a runtime needs one or two; a function opening thousands gets refused

_PREFIX = b"/2018-06-01/runtime/"
_NEXT = b"invocation/next"
_INIT_ERROR = b"init/error"
_INVOCATION = b"invocation/"

# (status, extra header lines each ending in CRLF, body): what an extra route answers.
ExtraAnswer = tuple[int, bytes, bytes]


class ExtraRoutes(Protocol):
    """The routes beside the Runtime API (see ext_routes.py)."""

    def handle(self, method: bytes, path: bytes, headers: dict[bytes, bytes],
               body: bytes) -> ExtraAnswer | asyncio.Future[ExtraAnswer]: ...


_REASONS = {200: b"OK", 202: b"Accepted", 400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found",
            405: b"Method Not Allowed", 409: b"Conflict", 413: b"Request Entity Too Large",
            500: b"Internal Server Error"}
_NOT_FOUND = b'{"errorMessage":"Not Found","errorType":"NotFound"}'
_NOT_ALLOWED = b'{"errorMessage":"Method Not Allowed","errorType":"MethodNotAllowed"}'
_BAD_REQUEST = b'{"errorMessage":"Bad Request","errorType":"BadRequest"}'
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_TRUNCATED = b'{"errorMessage":"The runtime closed the connection before the response ended",' \
    b'"errorType":"Runtime.TruncatedResponse"}'
_ERROR_TYPE_HEADER = b"lambda-runtime-function-error-type"
_ERROR_BODY_HEADER = b"lambda-runtime-function-error-body"
_RESPONSE_MODE_HEADER = b"lambda-runtime-function-response-mode"
_RESPONSE = b"/response"


def _response(status: int, body: bytes, *, close: bool = False) -> bytes:
    head = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n" % (
        status, _REASONS.get(status, b"Unknown"), len(body), b"Connection: close\r\n" if close else b"")
    return head + body


def _next_head(inv: Invocation) -> bytes:
    parts = [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: ",
        inv.request_id.encode(),
        b"\r\nLambda-Runtime-Deadline-Ms: ",
        str(inv.deadline_ms).encode(),
        b"\r\nLambda-Runtime-Invoked-Function-Arn: ",
        inv.invoked_function_arn.encode(),
        b"\r\nLambda-Runtime-Trace-Id: ",
        inv.trace_id.encode(),
    ]
    # Header values must not carry CR/LF: they come from callers, so strip them rather than trust them.
    if inv.client_context is not None:
        parts += [b"\r\nLambda-Runtime-Client-Context: ", _header_value(inv.client_context)]
    if inv.cognito_identity is not None:
        parts += [b"\r\nLambda-Runtime-Cognito-Identity: ", _header_value(inv.cognito_identity)]
    parts.append(b"\r\nContent-Length: %d\r\n\r\n" % len(inv.payload))
    return b"".join(parts)


def _header_value(value: str) -> bytes:
    return value.replace("\r", "").replace("\n", "").encode()


class _Request:
    __slots__ = ("body", "chunk_left", "chunked", "close", "headers", "method", "overflow", "remaining",
                 "stream_id", "stream_status", "target", "trailers")

    def __init__(self, method: bytes, target: bytes, headers: dict[bytes, bytes], close: bool) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.close = close
        self.body = bytearray()
        self.overflow = False  # the body was larger than MAX_BODY_BYTES
        self.chunked = False
        self.remaining = 0  # Content-Length bytes still to read
        self.chunk_left = -1  # bytes left in the current chunk; -1: expecting a chunk-size line
        self.stream_id: str | None = None  # a streamed response being passed on (accepted by the channel)
        self.stream_status = 0  # the channel's answer to a streamed response's head
        self.trailers: dict[bytes, bytes] = {}


class _Connection(asyncio.Protocol):
    """One runtime connection. Requests are handled strictly in order; `/next` parks the connection."""

    def __init__(self, server: RuntimeApiServer) -> None:
        self._server = server
        self._channel = server.channel
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._req: _Request | None = None
        self._parked: asyncio.Future[Invocation] | None = None  # a /next waiting for an invocation
        self._parked_extra: asyncio.Future[ExtraAnswer] | None = None  # an extension's event/next
        self._closing = False

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same interface.
        self._transport = cast(asyncio.Transport, transport)
        if len(self._server.connections) >= MAX_CONNECTIONS:
            self._transport.abort()
            return
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        self._closing = True
        req, self._req = self._req, None
        if req is not None and req.stream_id is not None:
            # The runtime hung up in the middle of a streamed response: what arrived is all there is.
            self._channel.end_stream(req.stream_id, "Runtime.TruncatedResponse", _TRUNCATED)
        parked, self._parked = self._parked, None
        if parked is not None:
            self._channel.abandon_next(parked)
        extra, self._parked_extra = self._parked_extra, None
        if extra is not None and not extra.done():
            extra.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._buf += data
        if self._parked is None and self._parked_extra is None:
            self._process()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    # -- parsing ---------------------------------------------------------------------------------

    def _process(self) -> None:
        while not self._closing and self._parked is None and self._parked_extra is None:
            req = self._req
            if req is None:
                req = self._parse_head()
                if req is None:
                    return
                self._req = req
            if not self._read_body(req):
                return
            self._req = None
            self._dispatch(req)

    def _parse_head(self) -> _Request | None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD_BYTES:
                self._fail(_BAD_REQUEST, 400)
            return None
        head = bytes(buf[:end])
        del buf[:end + 4]
        lines = head.split(b"\r\n")
        try:
            method, target, version = lines[0].split(b" ")
        except ValueError:
            self._fail(_BAD_REQUEST, 400)
            return None
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                self._fail(_BAD_REQUEST, 400)
                return None
            headers[name.strip().lower()] = value.strip()
        connection = headers.get(b"connection", b"").lower()
        close = connection == b"close" or (version == b"HTTP/1.0" and connection != b"keep-alive")
        req = _Request(method, target, headers, close)
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            req.chunked = True
        else:
            try:
                req.remaining = int(headers.get(b"content-length", b"0"))
            except ValueError:
                req.remaining = -1
            if req.remaining < 0:
                self._fail(_BAD_REQUEST, 400)
                return None
        if headers.get(_RESPONSE_MODE_HEADER, b"").lower() == b"streaming" and method == b"POST":
            self._begin_stream(req)
        if headers.get(b"expect", b"").lower() == b"100-continue" and self._transport is not None:
            # curl waits up to a second for this before sending a large body.
            self._transport.write(_CONTINUE)
        return req

    def _begin_stream(self, req: _Request) -> None:
        target = req.target
        if not target.startswith(_PREFIX):
            return
        path = target[len(_PREFIX):].split(b"?", 1)[0]
        if not (path.startswith(_INVOCATION) and path.endswith(_RESPONSE)):
            return
        request_id = path[len(_INVOCATION):-len(_RESPONSE)]
        if not request_id or b"/" in request_id:
            return
        rid = request_id.decode("utf-8", "replace")
        content_type = req.headers.get(b"content-type", b"").decode("latin-1")
        req.stream_status = self._channel.begin_stream(rid, content_type)
        if req.stream_status == 202:
            req.stream_id = rid
            sink = self._channel.stream_sink(rid)
            if sink is not None:
                sink.on_pressure = self._pressure

    def _pressure(self, paused: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        with contextlib.suppress(RuntimeError):
            if paused:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _take(self, req: _Request, n: int) -> None:
        """Move n buffered bytes into the body, dropping what is past the limit."""
        if req.stream_id is not None:
            if n:
                self._channel.stream_data(req.stream_id, bytes(self._buf[:n]))
                del self._buf[:n]
            return
        room = MAX_BODY_BYTES - len(req.body)
        if room > 0:
            req.body += self._buf[:min(n, room)]
        if n > room:
            req.overflow = True
        del self._buf[:n]

    def _read_body(self, req: _Request) -> bool:
        """Consume body bytes from the buffer; True when the whole body was read."""
        if not req.chunked:
            if req.remaining:
                n = min(req.remaining, len(self._buf))
                self._take(req, n)
                req.remaining -= n
            return req.remaining == 0
        buf = self._buf
        while True:
            if req.chunk_left == -1:  # chunk-size line
                eol = buf.find(b"\r\n")
                if eol < 0:
                    if len(buf) > 1024:
                        self._fail(_BAD_REQUEST, 400)
                    return False
                size_text = bytes(buf[:eol]).split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    self._fail(_BAD_REQUEST, 400)
                    return False
                del buf[:eol + 2]
                if size == 0:
                    req.chunk_left = -2
                else:
                    req.chunk_left = size
            elif req.chunk_left == -2:  # trailer section, ends with an empty line
                eol = buf.find(b"\r\n")
                if eol < 0:
                    if len(buf) > MAX_HEAD_BYTES:
                        self._fail(_BAD_REQUEST, 400)
                    return False
                line = bytes(buf[:eol])
                del buf[:eol + 2]
                if eol == 0:
                    return True
                name, sep, value = line.partition(b":")
                if sep and len(req.trailers) < 16:
                    req.trailers[name.strip().lower()] = value.strip()
            elif req.chunk_left == 0:  # CRLF after a chunk's data
                if len(buf) < 2:
                    return False
                if buf[:2] != b"\r\n":
                    self._fail(_BAD_REQUEST, 400)
                    return False
                del buf[:2]
                req.chunk_left = -1
            else:
                n = min(req.chunk_left, len(buf))
                if n == 0:
                    return False
                self._take(req, n)
                req.chunk_left -= n

    # -- routing ---------------------------------------------------------------------------------

    def _dispatch(self, req: _Request) -> None:
        if req.stream_id is not None:
            trailer_type = req.trailers.get(_ERROR_TYPE_HEADER)
            trailer_body: bytes | None = None
            if trailer_type is not None:
                try:
                    trailer_body = base64.b64decode(req.trailers.get(_ERROR_BODY_HEADER, b""), validate=False)
                except (binascii.Error, ValueError):
                    trailer_body = None
            self._channel.end_stream(req.stream_id,
                                     trailer_type.decode("utf-8", "replace") if trailer_type is not None else None,
                                     trailer_body)
            self._answer(202, req.close)
            return
        if req.stream_status:  # a streamed response the channel refused at its head
            self._answer(req.stream_status, req.close)
            return
        target = req.target
        if not target.startswith(_PREFIX):
            self._extra(req)
            return
        path = target[len(_PREFIX):].split(b"?", 1)[0]
        if path == _NEXT:
            if req.method != b"GET":
                self._send(405, _NOT_ALLOWED, req.close)
                return
            self._next(req)
            return
        if path == _INIT_ERROR:
            if req.method != b"POST":
                self._send(405, _NOT_ALLOWED, req.close)
            elif req.overflow:
                self._send(413, TOO_LARGE_BODY, req.close)
            else:
                error_type = req.headers.get(_ERROR_TYPE_HEADER, b"").decode("utf-8", "replace")
                self._answer(self._channel.post_init_error(error_type, bytes(req.body)), req.close)
            return
        if path.startswith(_INVOCATION):
            request_id, _, action = path[len(_INVOCATION):].partition(b"/")
            if request_id and action in (b"response", b"error"):
                if req.method != b"POST":
                    self._send(405, _NOT_ALLOWED, req.close)
                    return
                rid = request_id.decode("utf-8", "replace")
                if action == b"response":
                    status = self._channel.post_response(rid, bytes(req.body))
                else:
                    error_type = req.headers.get(_ERROR_TYPE_HEADER, b"").decode("utf-8", "replace")
                    status = self._channel.post_error(rid, error_type, bytes(req.body))
                self._answer(status, req.close)
                return
        self._send(404, _NOT_FOUND, req.close)

    def _extra(self, req: _Request) -> None:
        routes = self._server.extra_routes()
        if routes is None:
            self._send(404, _NOT_FOUND, req.close)
            return
        if req.overflow:
            self._send(413, TOO_LARGE_BODY, req.close)
            return
        answer = routes.handle(req.method, req.target, req.headers, bytes(req.body))
        if isinstance(answer, tuple):
            self._send_extra(answer, req.close)
            return
        self._parked_extra = answer
        close = req.close
        answer.add_done_callback(lambda f: self._extra_done(f, close))

    def _extra_done(self, fut: asyncio.Future[ExtraAnswer], close: bool) -> None:
        if self._parked_extra is not fut:
            return
        self._parked_extra = None
        if fut.cancelled() or self._transport is None or self._transport.is_closing():
            if self._transport is not None:
                self._closing = True
                self._transport.close()
            return
        self._send_extra(fut.result(), close)
        if self._buf and not self._closing:
            self._process()

    def _send_extra(self, answer: ExtraAnswer, close: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        status, headers, body = answer
        transport.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n%s\r\n" % (
            status, _REASONS.get(status, b"Unknown"), headers, len(body), b"Connection: close\r\n" if close else b"")
            + body)
        if close:
            self._closing = True
            transport.close()

    def _answer(self, status: int, close: bool) -> None:
        self._send(status, ACCEPTED_BODY if status == 202 else self._channel.last_rejection, close)

    def _next(self, req: _Request) -> None:
        try:
            fut = self._channel.next_future()
        except Rejected as exc:
            self._send(exc.status, exc.body, req.close)
            return
        self._parked = fut
        close = req.close
        if fut.done():
            self._deliver(fut, close)
        else:
            fut.add_done_callback(lambda f: self._deliver(f, close))

    def _deliver(self, fut: asyncio.Future[Invocation], close: bool) -> None:
        if self._parked is not fut:
            return  # the connection went away and the channel already took the invocation back
        transport = self._transport
        if transport is None or transport.is_closing():
            self._parked = None
            self._channel.abandon_next(fut)
            return
        self._parked = None
        if fut.cancelled():
            transport.close()
            return
        exc = fut.exception()
        if isinstance(exc, Rejected):
            self._send(exc.status, exc.body, close)
        elif exc is not None:
            if not isinstance(exc, RuntimeExited):
                log.warning("runtime api: /next failed: %r", exc)
            transport.close()
            self._closing = True
            return
        else:
            inv = fut.result()
            head = _next_head(inv)
            if len(inv.payload) < 65536:
                transport.write(head + inv.payload)
            else:  # avoid copying a big payload just to prepend a head
                transport.write(head)
                transport.write(inv.payload)
            if close:
                self._closing = True
                transport.close()
                return
        if self._buf and not self._closing:
            self._process()

    def _send(self, status: int, body: bytes, close: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        transport.write(_response(status, body, close=close))
        if close:
            self._closing = True
            transport.close()

    def _fail(self, body: bytes, status: int) -> None:
        self._send(status, body, True)

    def abort(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.abort()


class RuntimeApiServer:
    """Serves one environment's Runtime API on a listening socket until `close()`."""

    def __init__(self, channel: EnvironmentChannel,
                 extra_routes: Callable[[], ExtraRoutes | None] | None = None) -> None:
        self.channel = channel
        self._extra_factory = extra_routes
        self._extra: ExtraRoutes | None = None
        self.connections: set[_Connection] = set()
        self._server: asyncio.AbstractServer | None = None
        self._closed = asyncio.Event()

    def extra_routes(self) -> ExtraRoutes | None:
        """The Extensions/Telemetry routes, built on the first request that needs them."""
        if self._extra is None and self._extra_factory is not None:
            self._extra = self._extra_factory()
        return self._extra

    async def serve(self, listener: socket.socket) -> None:
        """Accept connections on `listener` (already bound and listening) until `close()`."""
        if self._closed.is_set():
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), sock=listener, backlog=64)
        try:
            await self._closed.wait()
        finally:
            await self._shutdown()

    async def close(self) -> None:
        """Stop accepting, drop every connection. Idempotent."""
        self._closed.set()
        await self._shutdown()

    async def _shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self.connections):
            conn.abort()
        self.connections.clear()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    def statistics(self) -> dict[str, Any]:
        return {"connections": len(self.connections), "channel": self.channel.statistics()}
