"""The hand-off between one execution environment and the runtime inside it.

It owns the Runtime API's state for one environment: whether INIT finished or failed, which invocation
the runtime holds, and whether that invocation was answered. The environment (`invoke/environment.py`)
pushes invocations in and waits for their results; the HTTP server (`server.py`) pulls invocations out
for `GET …/invocation/next` and pushes the runtime's answers back.

Everything the runtime sends is untrusted: a request id that is not the one it holds is refused, an
invocation is answered at most once, and a payload over AWS's limit never reaches the caller.
It never times anything out (the environment does, by cancelling `invoke`) and never touches sockets.

Streaming responses (`Lambda-Runtime-Function-Response-Mode: streaming`): `begin_stream` answers the
invocation at once (ANSWERED) and hands the bytes, as they arrive, to the invocation's `ResponseStream`
(when the caller asked for one) or collects them (a buffered caller gets them at the end, up to the
buffered limit). The invocation's result is settled by `end_stream`, with the error the runtime sent as
trailers, so the environment stays busy until the last byte.

Runtime states, and the only transitions the runtime can cause::

    INITIALIZING ──/next──► IDLE ──(invocation delivered)──► INVOKING ──/response|/error──► ANSWERED
          │                   ▲                                                             │
          └──/init/error──► INIT_FAILED                       └───────────/next─────────────┘
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

# AWS's limit for a synchronous response (6 MB plus the 100 bytes AWS allows for the JSON framing).
MAX_RESPONSE_BYTES = 6291556
# The limit of a streamed response (AWS's documented soft limit for response streaming).
MAX_STREAM_BYTES = 20 * 1024 * 1024
STREAM_TOO_LARGE = json.dumps({
    "errorMessage": f"Response payload size exceeded maximum allowed payload size ({MAX_STREAM_BYTES} bytes).",
    "errorType": "Function.ResponseSizeTooLarge",
}, separators=(",", ":")).encode()

RESPONSE_TOO_LARGE = json.dumps({
    "errorMessage": f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
    "errorType": "Function.ResponseSizeTooLarge",
}, separators=(",", ":")).encode()

ACCEPTED_BODY = b'{"status":"OK"}'
INVALID_REQUEST_ID_BODY = b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}'
TOO_LARGE_BODY = json.dumps({
    "errorMessage": f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
    "errorType": "RequestEntityTooLarge",
}, separators=(",", ":")).encode()


class ResponseStream:
    """Where a streamed response goes while the runtime writes it: one producer, one consumer.

    The channel calls `start`, `write` and `finish`; the caller awaits `started()` and iterates the
    chunks. Nothing is dropped: a chunk written is delivered, in order, until `finish`. A producer that
    runs ahead of its consumer is slowed down through `on_pressure` (the Runtime API connection stops
    reading), so a slow client does not make Hearth hold a 20 MB response in memory.
    """

    HIGH_WATER = 1 << 20  # queued bytes above which the producer is paused

    def __init__(self) -> None:
        self.content_type: str | None = None
        self.error_type: str | None = None
        self.error_body: bytes | None = None
        self.finished = False
        self.bytes_written = 0
        self.on_pressure: Any = None  # callable(paused: bool), set by the Runtime API connection
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._queued = 0
        self._paused = False
        self._started: asyncio.Future[str] | None = None

    def _start_fut(self) -> asyncio.Future[str]:
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
        return self._started

    @property
    def is_started(self) -> bool:
        return self._started is not None and self._started.done()

    def start(self, content_type: str) -> None:
        fut = self._start_fut()
        if not fut.done():
            self.content_type = content_type
            fut.set_result(content_type)

    async def started(self) -> str:
        """The content type, once the runtime began streaming."""
        return await asyncio.shield(self._start_fut())

    async def started_or_done(self, invocation: asyncio.Future[Any]) -> bool:
        """Wait until the runtime began streaming into this sink or `invocation` (the task running the
        invocation that writes here) ended without streaming; whether it streams."""
        started = asyncio.ensure_future(self.started())
        try:
            await asyncio.wait({invocation, started}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not started.done():
                started.cancel()
        return self.is_started

    def write(self, data: bytes) -> None:
        if self.finished or not data:
            return
        self.bytes_written += len(data)
        self._queued += len(data)
        self._queue.put_nowait(bytes(data))
        if self._queued > self.HIGH_WATER and not self._paused and self.on_pressure is not None:
            self._paused = True
            self.on_pressure(True)

    def finish(self, error_type: str | None = None, error_body: bytes | None = None) -> None:
        """The end of the stream (idempotent: the first end wins)."""
        if self.finished:
            return
        self.finished = True
        self.error_type = error_type
        self.error_body = error_body
        self._queue.put_nowait(None)
        if self._paused and self.on_pressure is not None:
            self._paused = False
            self.on_pressure(False)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Every chunk until the end; `error_type` tells how it ended."""
        while True:
            item = await self._queue.get()
            if item is None:
                return
            self._queued -= len(item)
            if self._paused and self._queued <= self.HIGH_WATER // 2 and self.on_pressure is not None:
                self._paused = False
                self.on_pressure(False)
            yield item


@dataclass(frozen=True)
class Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int  # epoch milliseconds
    invoked_function_arn: str
    trace_id: str
    client_context: str | None = None  # the client context JSON, already base64-decoded
    cognito_identity: str | None = None
    # Set when the caller can take a streamed response as it is produced (function URLs in
    # RESPONSE_STREAM mode, InvokeWithResponseStream); otherwise a stream is collected.
    sink: ResponseStream | None = field(default=None, compare=False)


@dataclass(frozen=True)
class InvocationResult:
    payload: bytes
    error_type: str | None = None  # None: success; otherwise the function error's type
    streamed: bool = False  # the runtime streamed it (the bytes went to the invocation's sink, if any)
    content_type: str | None = None  # a streamed response's content type


class InitError(Exception):
    """The runtime reported that INIT failed (POST /runtime/init/error)."""

    def __init__(self, error_type: str, payload: bytes) -> None:
        super().__init__(error_type)
        self.error_type = error_type
        self.payload = payload


class RuntimeExited(Exception):
    """The runtime process exited (status, or -signal)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Rejected(Exception):
    """The runtime asked for something its state does not allow; answer it `status` with `body`."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class RuntimeState(enum.Enum):
    INITIALIZING = "Initializing"
    INIT_FAILED = "InitError"
    IDLE = "Ready"  # waiting for (or holding a pending /next for) the next invocation
    INVOKING = "Invoking"
    ANSWERED = "ResponseSent"
    EXITED = "Exited"


def _forbidden(current: RuntimeState, wanted: str) -> bytes:
    return json.dumps({
        "errorMessage": f"State transition from {current.value} to {wanted} failed for runtime. "
                        "Error: State transition is not allowed",
        "errorType": "InvalidStateTransition",
    }, separators=(",", ":")).encode()


def _retrieve(fut: asyncio.Future[Any]) -> None:
    # A future failed on behalf of a waiter that already went away must not warn at garbage collection.
    if not fut.cancelled():
        fut.exception()


def _error_type_of(payload: bytes) -> str | None:
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    value = body.get("errorType") if isinstance(body, dict) else None
    return value if isinstance(value, str) and value else None


@dataclass
class _OpenStream:
    sink: ResponseStream | None
    content_type: str
    size: int = 0
    overflow: bool = False
    buffer: bytearray = field(default_factory=bytearray)


class EnvironmentChannel:
    """One environment's Runtime API state. All methods run on the event loop thread."""

    def __init__(self, env_id: str) -> None:
        self.env_id = env_id
        self.state = RuntimeState.INITIALIZING
        self.exit_status: int | None = None
        self.last_rejection = b""  # the body for the last non-2xx status a post_* method returned
        self._init_fut: asyncio.Future[None] | None = None  # created on first use, on the running loop
        self._waiter: asyncio.Future[Invocation] | None = None  # the runtime's pending /next
        self._queued: Invocation | None = None  # an invocation no /next has taken yet
        self._current: str | None = None  # the request id the runtime holds
        self._results: dict[str, asyncio.Future[InvocationResult]] = {}
        self._sinks: dict[str, ResponseStream | None] = {}  # request id -> the sink of its invocation
        self._streams: dict[str, _OpenStream] = {}  # streams the runtime is writing now

    @property
    def _init(self) -> asyncio.Future[None]:
        if self._init_fut is None:
            self._init_fut = asyncio.get_running_loop().create_future()
            self._init_fut.add_done_callback(_retrieve)
        return self._init_fut

    # -- the environment's side -----------------------------------------------------------------

    async def wait_initialized(self) -> None:
        """Return when the runtime first asks for an invocation. Raises InitError or RuntimeExited."""
        await asyncio.shield(self._init)

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        """Hand `invocation` to the runtime and wait for its answer.

        Cancelling this (a timeout) forgets the invocation: a late answer from the runtime is accepted
        and dropped. The environment kills the runtime in that case anyway.
        """
        if self.exit_status is not None:
            raise RuntimeExited(self.exit_status)
        result: asyncio.Future[InvocationResult] = asyncio.get_running_loop().create_future()
        result.add_done_callback(_retrieve)
        self._results[invocation.request_id] = result
        self._sinks[invocation.request_id] = invocation.sink
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            self._deliver(invocation)
            waiter.set_result(invocation)
        else:
            self._queued = invocation
        try:
            return await result
        finally:
            self._results.pop(invocation.request_id, None)
            self._sinks.pop(invocation.request_id, None)
            self._streams.pop(invocation.request_id, None)
            if self._queued is invocation:
                self._queued = None

    def runtime_exited(self, status: int) -> None:
        """The runtime process exited: fail whoever waits on it."""
        if self.exit_status is not None:
            return
        self.exit_status = status
        self.state = RuntimeState.EXITED
        if not self._init.done():
            self._init.set_exception(RuntimeExited(status))
        for fut in self._results.values():
            if not fut.done():
                fut.set_exception(RuntimeExited(status))
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(RuntimeExited(status))
            _retrieve(waiter)

    # -- the server's side ----------------------------------------------------------------------

    def next_future(self) -> asyncio.Future[Invocation]:
        """A future for the runtime's `GET /invocation/next`: already done when an invocation is queued.

        Raises Rejected when the runtime still holds an unanswered invocation or INIT failed. The server
        calls `abandon_next` when the connection that asked goes away before the future is used.
        """
        if self.state is RuntimeState.INVOKING:
            raise Rejected(403, _forbidden(self.state, RuntimeState.IDLE.value))
        if self.state in (RuntimeState.INIT_FAILED, RuntimeState.EXITED):
            raise Rejected(403, _forbidden(self.state, RuntimeState.IDLE.value))
        if self.state is RuntimeState.INITIALIZING and not self._init.done():
            self._init.set_result(None)
        self.state = RuntimeState.IDLE
        self._current = None
        fut: asyncio.Future[Invocation] = asyncio.get_running_loop().create_future()
        queued, self._queued = self._queued, None
        if queued is not None:
            self._deliver(queued)
            fut.set_result(queued)
            return fut
        old, self._waiter = self._waiter, fut
        if old is not None and not old.done():
            # A second /next while one is pending: the runtime reconnected and the first connection is
            # presumably dead. The newest one wins; the old one is refused.
            old.set_exception(Rejected(403, _forbidden(self.state, RuntimeState.IDLE.value)))
            _retrieve(old)
        return fut

    def abandon_next(self, fut: asyncio.Future[Invocation]) -> None:
        """The connection behind `fut` closed: forget the waiter, or put back what it was handed."""
        if self._waiter is fut:
            self._waiter = None
        if not fut.done():
            fut.cancel()
            return
        if fut.cancelled() or fut.exception() is not None:
            return
        invocation = fut.result()
        if self._current == invocation.request_id and self.state is RuntimeState.INVOKING \
                and invocation.request_id in self._results:
            # Delivered but never written to the runtime: hand it to the next /next instead.
            self.state = RuntimeState.IDLE
            self._current = None
            self._queued = invocation

    async def next_invocation(self) -> Invocation:
        """`GET /invocation/next`, for callers that prefer a coroutine. Raises Rejected, RuntimeExited."""
        fut = self.next_future()
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            self.abandon_next(fut)
            raise

    def post_response(self, request_id: str, payload: bytes) -> int:
        status = self._accept_answer(request_id, payload)
        if status == 202:
            self._settle(request_id, InvocationResult(payload))
        return status

    def post_error(self, request_id: str, error_type: str, payload: bytes) -> int:
        status = self._accept_answer(request_id, payload)
        if status == 202:
            kind = error_type or _error_type_of(payload) or "Unhandled"
            self._settle(request_id, InvocationResult(payload, kind))
        return status

    def _accept_answer(self, request_id: str, payload: bytes) -> int:
        """202 when the answer may settle the invocation; otherwise the refusal, already handled (an
        oversized answer settles it as Function.ResponseSizeTooLarge)."""
        status = self._answer(request_id)
        if status == 202 and len(payload) > MAX_RESPONSE_BYTES:
            self._settle(request_id, InvocationResult(RESPONSE_TOO_LARGE, "Function.ResponseSizeTooLarge"))
            self.last_rejection = TOO_LARGE_BODY
            return 413
        return status

    # -- streamed responses ---------------------------------------------------------------------

    def begin_stream(self, request_id: str, content_type: str) -> int:
        """The runtime started a streamed `/response` (202: accepted; the bytes follow)."""
        status = self._answer(request_id)
        if status != 202:
            return status
        sink = self._sinks.get(request_id)
        self._streams[request_id] = _OpenStream(sink, content_type or "application/octet-stream")
        if sink is not None:
            sink.start(content_type or "application/octet-stream")
        return 202

    def stream_data(self, request_id: str, data: bytes) -> bool:
        """More bytes of an open stream. False once the stream went over its limit (drop the rest)."""
        stream = self._streams.get(request_id)
        if stream is None or stream.overflow:
            return False
        stream.size += len(data)
        if stream.size > MAX_STREAM_BYTES:
            stream.overflow = True
            self._end(request_id, stream, "Function.ResponseSizeTooLarge", STREAM_TOO_LARGE)
            return False
        if stream.sink is not None:
            stream.sink.write(data)
        else:
            stream.buffer += data
        return True

    def stream_sink(self, request_id: str) -> ResponseStream | None:
        stream = self._streams.get(request_id)
        return stream.sink if stream is not None else None

    def end_stream(self, request_id: str, error_type: str | None, error_body: bytes | None) -> None:
        """The runtime finished the stream; an error came as trailers (type, base64-decoded body)."""
        stream = self._streams.get(request_id)
        if stream is None or stream.overflow:
            return
        self._end(request_id, stream, error_type or None, error_body)

    def _end(self, request_id: str, stream: _OpenStream, error_type: str | None, error_body: bytes | None) -> None:
        self._streams.pop(request_id, None)
        if error_type is not None and not error_body:
            error_body = json.dumps({"errorType": error_type, "errorMessage": ""}).encode()
        if stream.sink is not None:
            stream.sink.finish(error_type, error_body)
            payload = (error_body or b"") if error_type is not None else b""
        elif error_type is not None:
            payload = error_body or b""
        elif len(stream.buffer) > MAX_RESPONSE_BYTES:
            # A buffered caller cannot take more than a buffered response.
            error_type, payload = "Function.ResponseSizeTooLarge", RESPONSE_TOO_LARGE
        else:
            payload = bytes(stream.buffer)
        self._settle(request_id, InvocationResult(payload, error_type, streamed=True,
                                                  content_type=stream.content_type))

    def post_init_error(self, error_type: str, payload: bytes) -> int:
        if self.state is not RuntimeState.INITIALIZING:
            self.last_rejection = _forbidden(self.state, RuntimeState.INIT_FAILED.value)
            return 403
        self.state = RuntimeState.INIT_FAILED
        kind = error_type or _error_type_of(payload) or "Runtime.Unknown"
        if len(payload) > MAX_RESPONSE_BYTES:
            payload = payload[:MAX_RESPONSE_BYTES]
        if not self._init.done():
            self._init.set_exception(InitError(kind, payload))
        return 202

    # -- internals ------------------------------------------------------------------------------

    def _deliver(self, invocation: Invocation) -> None:
        self.state = RuntimeState.INVOKING
        self._current = invocation.request_id

    def _answer(self, request_id: str) -> int:
        """Validate an answer before any state changes (a refused answer changes nothing)."""
        if request_id != self._current or self._current is None:
            self.last_rejection = INVALID_REQUEST_ID_BODY
            return 400
        if self.state is not RuntimeState.INVOKING:
            self.last_rejection = _forbidden(self.state, RuntimeState.ANSWERED.value)
            return 403
        self.state = RuntimeState.ANSWERED
        return 202

    def _settle(self, request_id: str, result: InvocationResult) -> None:
        fut = self._results.get(request_id)
        if fut is not None and not fut.done():
            fut.set_result(result)

    def statistics(self) -> dict[str, object]:
        return {
            "env_id": self.env_id,
            "state": self.state.value,
            "current": self._current,
            "waiting_next": self._waiter is not None,
            "queued": self._queued is not None,
        }
