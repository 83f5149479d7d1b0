"""Synchronous invocations across nodes: the wire between the node that received an invocation and the
node that runs it.

    client  Forwarder.forward(address, request)   -> InvokeOutcome, or None when the node was not reached
    server  ForwardedInvokes(scope, receive, send)  POST /_hearth/cluster/invoke on the running node

It owns the exchange's format and its failure rules. A request carries the resolved version (function
ARN and version), the payload as the body and the rest in one JSON header, over kept-alive HTTP/1.1
connections (h11); nodes prove membership with the cluster's token (`Membership.forward_token`, kept
in the shared database). The running node answers `200` at once, before it runs anything (its
*acceptance*, with an empty `A` frame so that the head leaves at once), then frames, each a type byte
and a 4-byte length before its data: `S` (a stream
began; its content type), `D` (streamed bytes), `E` (the stream's end and error), `P` (a buffered
payload), `T` (throttled there: the reason), `R` (refused before running: the reason) and last `O`
(the outcome, JSON).

Failure rules, which keep "at most what AWS allows": an invocation the node never accepted (no
connection, a reset or close before the `200`, a refusal) ran nowhere, so the caller runs it itself
(`None`) — a node restarting or draining costs no request. A node lost after it accepted (killed, cut
off) may have run part of it: the caller gets what AWS answers when an environment dies
mid-invocation, `Runtime.ExitError`, never a hang (the read waits at most the function's timeout plus
an INIT allowance).

It never chooses the node (hearth.cluster.placement does) and never admits or runs anything itself
(the receiving node's invoker does, under its own concurrency limits).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import socket
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Protocol
from urllib.parse import urlsplit

import h11

from hearth.functions.model import FunctionVersion
from hearth.invoke.errors import Throttled, ThrottleReason
from hearth.invoke.request import InvokeOutcome, InvokeRequest
from hearth.runtime_api.channel import ResponseStream

log = logging.getLogger(__name__)

ROUTE = "/_hearth/cluster/invoke"
TOKEN_HEADER = "x-hearth-cluster-token"
REQUEST_HEADER = "x-hearth-invoke"
FRAMES = "application/x-hearth-frames"
INIT_ALLOWANCE_S = 15.0  # beyond the function's timeout: a cold start's INIT (10 s) and the hop
CONNECT_TIMEOUT_S = 2.0
IDLE_REUSE_S = 4.0  # a kept-alive connection idle longer is not reused (uvicorn closes them after 5 s)
MAX_IDLE_PER_NODE = 32
_FRAME = struct.Struct(">cI")


class Resolver(Protocol):
    def resolve(self, account: str, region: str, name: str, qualifier: str | None) -> FunctionVersion: ...


class LocalInvoker(Protocol):
    async def invoke(self, request: InvokeRequest) -> InvokeOutcome: ...


def lost_environment(request_id: str, version: str) -> InvokeOutcome:
    """What the caller gets when the node running its invocation was lost mid-way: AWS's answer for an
    environment whose runtime died without a response."""
    body = json.dumps({"errorType": "Runtime.ExitError",
                       "errorMessage": f"RequestId: {request_id} Error: Runtime exited without providing a reason"})
    return InvokeOutcome(request_id, body.encode(), "Unhandled", "Runtime.ExitError", version, None, 0.0, False)


def _outcome_json(outcome: InvokeOutcome) -> dict[str, Any]:
    return {"request_id": outcome.request_id, "function_error": outcome.function_error,
            "error_type": outcome.error_type, "executed_version": outcome.executed_version,
            "log_tail": outcome.log_tail, "duration_ms": outcome.duration_ms, "cold": outcome.cold}


def _outcome_from(doc: dict[str, Any], payload: bytes) -> InvokeOutcome:
    return InvokeOutcome(str(doc["request_id"]), payload, doc.get("function_error"), doc.get("error_type"),
                         str(doc["executed_version"]), doc.get("log_tail"), float(doc.get("duration_ms") or 0.0),
                         bool(doc.get("cold")))


def _frame(kind: bytes, data: bytes) -> bytes:
    return _FRAME.pack(kind, len(data)) + data


async def _frames(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[bytes, bytes]]:
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= _FRAME.size:
            kind, size = _FRAME.unpack_from(buffer)
            if len(buffer) < _FRAME.size + size:
                break
            data = bytes(buffer[_FRAME.size:_FRAME.size + size])
            del buffer[:_FRAME.size + size]
            yield kind, data
    if buffer:
        raise NodeLost("the forwarded answer ended inside a frame")


class NodeLost(Exception):
    """The connection to the running node ended before its whole answer arrived."""


class _Connection:
    """One kept-alive HTTP/1.1 connection to a node, spoken through h11 (sans-IO)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.http = h11.Connection(h11.CLIENT)
        self.idle_since = time.monotonic()

    def usable(self) -> bool:
        return (not self.writer.is_closing() and not self.reader.at_eof()
                and time.monotonic() - self.idle_since < IDLE_REUSE_S)

    async def send(self, host: str, target: str, headers: dict[str, str], body: bytes) -> None:
        fields = [("host", host), ("content-length", str(len(body))), *headers.items()]
        data = self.http.send(h11.Request(method="POST", target=target, headers=fields))
        data += self.http.send(h11.Data(data=body)) or b""
        data += self.http.send(h11.EndOfMessage()) or b""
        self.writer.write(data)
        await self.writer.drain()

    async def event(self, timeout: float) -> Any:
        while True:
            event = self.http.next_event()
            if event is not h11.NEED_DATA:
                return event
            chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not chunk:
                raise NodeLost("the node closed the connection")
            self.http.receive_data(chunk)

    def close(self) -> None:
        self.writer.close()


class _Response:
    def __init__(self, connection: _Connection, status: int, timeout: float) -> None:
        self._connection = connection
        self.status = status
        self._timeout = timeout
        self.complete = False

    async def chunks(self) -> AsyncIterator[bytes]:
        while not self.complete:
            event = await self._connection.event(self._timeout)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.complete = True
            elif isinstance(event, h11.ConnectionClosed):
                raise NodeLost("the node closed the connection")

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])


class Forwarder:
    """The client side: kept-alive connections to the other nodes, a few per node.

    Why h11 over asyncio streams and not an HTTP client library: the hop is on every forwarded
    invocation's path, and a full async client (httpx) measured about 1.1 ms per request here against
    about 0.05 ms for a plain exchange; h11 keeps HTTP/1.1's framing correct at that cost."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._idle: dict[tuple[str, int], list[_Connection]] = {}

    async def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def _connect(self, host: str, port: int) -> _Connection:
        idle = self._idle.get((host, port), [])
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Connection(reader, writer)

    def _give_back(self, key: tuple[str, int], connection: _Connection, response: _Response) -> None:
        if (response.complete and connection.http.our_state is h11.DONE and connection.http.their_state is h11.DONE
                and len(self._idle.get(key, ())) < MAX_IDLE_PER_NODE):
            connection.http.start_next_cycle()
            connection.idle_since = time.monotonic()
            self._idle.setdefault(key, []).append(connection)
        else:
            connection.close()

    async def forward(self, address: str, request: InvokeRequest) -> InvokeOutcome | None:
        """Run `request` on the node at `address`: its outcome (a streamed one fed into `request.stream`),
        `Throttled` as that node's limits answer, or None when the node did not accept it (nothing ran
        there: the caller runs it itself)."""
        fv = request.version
        request_id = request.request_id or str(uuid.uuid4())
        meta = {"function_arn": fv.function_arn, "version": fv.version, "request_id": request_id,
                "trace_id": request.trace_id, "client_context": request.client_context, "tail": request.tail,
                "invoked_arn": request.invoked_arn, "wait": request.wait_for_capacity,
                "stream": request.stream is not None}
        parts = urlsplit(address)
        key = (parts.hostname or "127.0.0.1", parts.port or 80)
        timeout = fv.timeout_s + INIT_ALLOWANCE_S
        try:
            connection = await self._connect(*key)
        except (TimeoutError, OSError) as exc:
            log.info("cluster: could not reach %s (%r); running %s here", address, exc, request_id)
            return None
        try:
            await connection.send(parts.netloc, ROUTE, {TOKEN_HEADER: self._token, REQUEST_HEADER: json.dumps(meta)},
                                  request.payload)
            head = await connection.event(timeout)
            if not isinstance(head, h11.Response):
                raise NodeLost(f"unexpected {type(head).__name__}")
        except (TimeoutError, OSError, NodeLost, h11.ProtocolError) as exc:
            # Not accepted (a kept-alive connection the node had just closed, a node going away): nothing
            # ran there.
            connection.close()
            log.info("cluster: %s did not take %s (%r); running it here", address, request_id, exc)
            return None
        response = _Response(connection, head.status_code, timeout)
        kept = False
        try:
            if response.status != 200:  # refused before running anything (unknown version, bad token)
                text = (await response.read())[:500].decode(errors="replace")
                log.warning("cluster: %s refused %s (%s: %s); running it here", address, request_id,
                            response.status, text)
                return None
            outcome = await _read_answer(response, request.stream, request_id, address)
            kept = True
            return outcome
        except Throttled:
            kept = True
            raise
        except (TimeoutError, OSError, NodeLost, h11.ProtocolError, ValueError, KeyError) as exc:
            # Accepted, then a reset, a silent node or a broken answer: lost mid-way.
            log.warning("cluster: lost %s while it ran %s: %r", address, request_id, exc)
            lost = lost_environment(request_id, fv.version)
            if request.stream is not None and not request.stream.finished:
                request.stream.finish("Runtime.ExitError", lost.payload)
            return lost
        finally:
            if kept:
                self._give_back(key, connection, response)
            else:
                connection.close()


async def _read_answer(response: _Response, sink: ResponseStream | None, request_id: str,
                       address: str) -> InvokeOutcome | None:
    """The frames after an acceptance, up to the outcome (or a throttle, or a refusal)."""
    payload = b""
    async for kind, data in _frames(response.chunks()):
        if kind == b"O":
            outcome = _outcome_from(json.loads(data), payload)
            await response.read()  # the end of the message, so that the connection can be kept
            return outcome
        if kind == b"A":  # accepted (the head already said so)
            continue
        if kind == b"P":
            payload = data
        elif kind == b"T":
            await response.read()
            doc = json.loads(data)
            raise Throttled(ThrottleReason(doc["reason"]), reserved=doc.get("reserved"))
        elif kind == b"R":
            await response.read()
            log.warning("cluster: %s refused %s (%s); running it here", address, request_id, data.decode())
            return None
        elif sink is None:
            raise NodeLost(f"a {kind!r} frame for an invocation that does not stream")
        elif kind == b"S":
            sink.start(data.decode())
        elif kind == b"D":
            sink.write(data)
        elif kind == b"E":
            doc = json.loads(data)
            body = doc.get("error_body")
            sink.finish(doc.get("error_type"), body.encode() if body is not None else None)
    raise NodeLost(f"the forwarded answer of {request_id} ended without its outcome")


class ForwardedInvokes:
    """The server side: runs an invocation another node forwarded, on this node, and answers it."""

    def __init__(self, token: str, functions: Resolver, invoker: LocalInvoker) -> None:
        self._token = token.encode()
        self._functions = functions
        self._invoker = invoker
        self.accepting = True  # False while the node drains: others run their invocations themselves
        self.received = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        if not hmac.compare_digest(headers.get(TOKEN_HEADER, "").encode(), self._token):
            await _answer(send, 403, b'{"message": "not a member of this cluster"}')
            return
        if not self.accepting:
            await _answer(send, 503, b'{"message": "draining"}')
            return
        try:
            meta = json.loads(headers[REQUEST_HEADER])
            arn: str = meta["function_arn"]
            parts = arn.split(":")  # arn:aws:lambda:REGION:ACCOUNT:function:NAME
            fv = self._functions.resolve(parts[4], parts[3], parts[6], meta["version"])
        except Exception as exc:  # a version deleted meanwhile, a malformed request
            await _answer(send, 404, json.dumps({"message": f"{type(exc).__name__}: {exc}"}).encode())
            return
        payload = bytearray()
        while True:
            message = await receive()
            payload += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.received += 1
        # Accepted: from here on the sender treats a lost connection as a lost environment.
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", FRAMES.encode())]})
        await _more(send, _frame(b"A", b""))  # the server writes the head with the first body bytes: now
        sink = ResponseStream() if meta.get("stream") else None
        request = InvokeRequest(fv, bytes(payload), request_id=meta["request_id"], trace_id=meta.get("trace_id"),
                                client_context=meta.get("client_context"), tail=bool(meta.get("tail")),
                                invoked_arn=meta.get("invoked_arn"), wait_for_capacity=bool(meta.get("wait")),
                                stream=sink, local=True)
        task = asyncio.create_task(self._invoker.invoke(request))
        streams = await sink.started_or_done(task) if sink is not None else False
        if streams:
            assert sink is not None
            await _more(send, _frame(b"S", (sink.content_type or "").encode()))
            async for chunk in sink.chunks():
                await _more(send, _frame(b"D", chunk))
            end = {"error_type": sink.error_type,
                   "error_body": sink.error_body.decode(errors="replace") if sink.error_body is not None else None}
            await _more(send, _frame(b"E", json.dumps(end).encode()))
        try:
            outcome = await task
        except Throttled as exc:
            doc = {"reason": exc.reason.value, "reserved": exc.reserved}
            await send({"type": "http.response.body", "body": _frame(b"T", json.dumps(doc).encode())})
            return
        except Exception as exc:
            if not streams:  # nothing ran (a stopping data plane...): the sender runs it itself
                await send({"type": "http.response.body", "body": _frame(b"R", repr(exc).encode())})
                return
            log.exception("forwarded invocation %s failed", meta["request_id"])
            outcome = lost_environment(meta["request_id"], fv.version)
        body = b"" if streams else _frame(b"P", outcome.payload)
        body += _frame(b"O", json.dumps(_outcome_json(outcome)).encode())
        await send({"type": "http.response.body", "body": body})


async def _more(send: Any, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
