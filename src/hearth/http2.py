"""HTTP/2 beside HTTP/1.1 on the same listening port: which protocol a connection speaks, and an ASGI
driver for the HTTP/2 ones (the sans-io `h2` library does the framing, HPACK and state machines).

Why: the AWS SDK for JavaScript v3's Kinesis client speaks only HTTP/2 — cleartext with prior knowledge
against an `http://` endpoint, over TLS by ALPN against `https://`.

Which protocol: uvicorn is given `HttpProtocol` (uvicorn's httptools protocol, unchanged on its request
path) and creates one per accepted connection; it hands the connection to `Http2Protocol` when

    cleartext, the first bytes are "PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n"   (prior knowledge)
    cleartext, a request without a body asks `Upgrade: h2c`         (101, then its answer on stream 1)
    TLS, ALPN selected "h2"                                          (decided when the handshake is done)

and otherwise stays HTTP/1.1. The first read of a cleartext connection goes to `_first_read` (an instance
attribute shadowing `data_received`, which the transport caches when it is given the protocol); it looks
at the bytes once, removes itself and gives the transport the protocol again, so every later read goes
straight to uvicorn's parser: nothing is added per request, and per connection one prefix comparison.

Http2Protocol, one per HTTP/2 connection, one asyncio task per stream (the ASGI app's call):
- request bodies are acknowledged to the peer (WINDOW_UPDATE) only as the app receives them, so a client
  can never have more than its window buffered here (1 MiB per stream, 16 MiB per connection);
- response bodies are sent in pieces no larger than the peer's stream and connection windows and its
  maximum frame size; a sender waits for WINDOW_UPDATE, and for the transport's buffer to drain;
- graceful shutdown and idleness send GOAWAY with the last stream id seen; streams the peer opens after
  it are refused (REFUSED_STREAM, safe to retry); the connection closes when its last stream ends.
It never interprets a request: scopes are built from the pseudo-headers and the app answers.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections import deque
from typing import Any, ClassVar, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import httptools
from hyperframe.frame import Frame, GoAwayFrame
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import get_local_addr, get_remote_addr, is_ssl
from uvicorn.server import ServerState

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
STREAM_WINDOW = 1 << 20  # what one stream's client may send ahead of the app reading it
CONNECTION_WINDOW = 16 << 20  # the same for all streams of a connection together
MAX_STREAMS = 128  # concurrent streams a client may open (SETTINGS_MAX_CONCURRENT_STREAMS)
IDLE_S = 120.0  # a connection without streams this long is sent GOAWAY and closed
# Hop-by-hop headers HTTP/2 forbids (RFC 9113 8.2.2); an ASGI app written for HTTP/1.1 may still set them.
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade",
                         b"te"})
_UPGRADE_RESPONSE = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"

logger = logging.getLogger("uvicorn.error")


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the three ways into HTTP/2 (see the module doc).

    `Upgrade: h2c` (RFC 7540 3.2; RFC 9113 deprecates it, curl --http2 still sends it): a request without
    a body is answered `101 Switching Protocols`, then over HTTP/2 as stream 1. One with a body is served
    over HTTP/1.1 as if it had not asked (RFC 7540 lets a server ignore the upgrade): llhttp treats whatever
    follows an upgrade request's headers as the new protocol, so the request is handed, without its
    Upgrade, to a fresh protocol together with those bytes. `data_received` is uvicorn's, except that it
    keeps where the upgraded bytes begin; the upgrade hooks run only for requests that carry `Upgrade`.
    """

    # uvicorn offers these by ALPN when it builds its TLS context from the protocol class.
    alpn_protocols: ClassVar[list[str]] = ["h2", "http/1.1"]

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._preface = b""  # the first bytes while they could still be HTTP/2's preface
        self.data_received = self._first_read  # type: ignore[method-assign]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.scheme == "https":  # TLS: ALPN has decided by now, and nothing needs sniffing
            self.__dict__.pop("data_received", None)
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
                self._to_http2()

    def _first_read(self, data: bytes) -> None:
        if self._preface:
            data = self._preface + data
        if len(data) < len(PREFACE) and PREFACE.startswith(data):
            self._preface = data  # a split first read: wait for the rest
            return
        if data.startswith(PREFACE):
            self._to_http2(data)
            return
        # HTTP/1.1: drop the shadowing attribute and give the transport the protocol again, which makes it
        # look data_received up anew (uvloop stores the bound method when it is given a protocol).
        self.__dict__.pop("data_received", None)
        self.transport.set_protocol(self)
        self.data_received(data)

    def _to_http2(self, first: bytes = b"") -> None:
        self.connections.discard(self)
        protocol = Http2Protocol(config=self.config, server_state=self.server_state, app_state=self.app_state,
                                 _loop=self.loop)
        protocol.connection_made(self.transport)
        self.transport.set_protocol(protocol)
        if first:
            protocol.data_received(first)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
        except httptools.HttpParserUpgrade as upgrade:
            if self._h2c_requested():
                self._h2c(data[upgrade.args[0]:] if upgrade.args else b"")
            elif self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def _should_upgrade(self) -> bool:
        # True keeps uvicorn from starting the request's ASGI call on HTTP/1.1 (on_headers_complete)
        return self._h2c_requested() or super()._should_upgrade()

    def _h2c_requested(self) -> bool:
        upgrade = self._get_upgrade()
        return (upgrade is not None and b"h2c" in [token.strip() for token in upgrade.split(b",")]
                and any(name == b"http2-settings" for name, _ in self.headers))

    def _h2c(self, rest: bytes) -> None:
        self.connections.discard(self)
        self._unset_keepalive_if_required()
        if any((name == b"content-length" and value.strip() not in (b"", b"0")) or name == b"transfer-encoding"
               for name, value in self.headers):
            self._replay_without_upgrade(rest)
            return
        settings = b""
        headers: list[tuple[bytes, bytes]] = []
        for name, value in self.headers:
            if name == b"http2-settings":
                settings = value.strip()
            elif name not in _HOP_BY_HOP and name != b"host":
                headers.append((name, value))
        host = next((value for name, value in self.headers if name == b"host"), b"")
        self.transport.write(_UPGRADE_RESPONSE)
        protocol = Http2Protocol(config=self.config, server_state=self.server_state, app_state=self.app_state,
                                 _loop=self.loop)
        request = [(b":method", self.scope["method"].encode("ascii")), (b":path", self.url),
                   (b":scheme", self.scheme.encode("ascii") if self.scheme else b"http"), (b":authority", host),
                   *headers]
        protocol.connection_made(self.transport, upgrade=(settings, request))
        self.transport.set_protocol(protocol)
        if rest:  # a client should wait for the 101 before its preface; one that did not is still heard
            protocol.data_received(rest)

    def _replay_without_upgrade(self, rest: bytes) -> None:
        lines = [self.scope["method"].encode("ascii"), b" ", self.url, b" HTTP/1.1\r\n"]
        for name, value in self.headers:
            if name == b"connection":
                tokens = [t.strip() for t in value.split(b",")
                          if t.strip().lower() not in (b"upgrade", b"http2-settings")]
                if tokens:
                    lines += [b"connection: ", b", ".join(tokens), b"\r\n"]
            elif name not in (b"upgrade", b"http2-settings"):
                lines += [name, b": ", value, b"\r\n"]
        lines.append(b"\r\n")
        protocol = HttpProtocol(config=self.config, server_state=self.server_state, app_state=self.app_state,
                                _loop=self.loop)
        protocol.__dict__.pop("data_received", None)  # it continues an HTTP/1.1 connection: nothing to look for
        protocol.connection_made(self.transport)
        self.transport.set_protocol(protocol)
        protocol.data_received(b"".join(lines) + rest)


class H2Connection(h2.connection.H2Connection):
    """h2's connection, except that a GOAWAY from the client lets the streams it already opened finish.

    h2 moves to CLOSED on any GOAWAY received and then rejects every later frame as a protocol error,
    including the WINDOW_UPDATEs and DATA of streams still open. Node.js's http2 client (so the AWS SDK
    for JavaScript) sends GOAWAY as soon as it closes its session, while the last response is still
    arriving; RFC 9113 6.8 says streams up to the last one the server saw go on. So the frame is only
    reported (ConnectionTerminated); Http2Protocol then opens no stream and closes once the last ends.
    """

    def _receive_goaway_frame(self, frame: GoAwayFrame) -> tuple[list[Frame], list[h2.events.Event]]:
        event = h2.events.ConnectionTerminated()
        try:
            event.error_code = h2.errors.ErrorCodes(frame.error_code)
        except ValueError:
            event.error_code = frame.error_code
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]


class _Stream:
    """One request/response exchange of an HTTP/2 connection, as the ASGI app sees it."""

    __slots__ = ("chunks", "disconnected", "ended", "final_sent", "head", "id", "readable", "response_complete",
                 "response_started", "writable")

    def __init__(self, stream_id: int, head: bool) -> None:
        self.id = stream_id
        self.head = head
        self.chunks: deque[tuple[bytes, int]] = deque()  # (data, flow-controlled length incl. padding)
        self.ended = False  # the peer sent END_STREAM
        self.final_sent = False  # the app was given more_body=False
        self.disconnected = False  # reset by the peer, or the connection was lost
        self.response_started = False
        self.response_complete = False
        self.readable = asyncio.Event()  # request data, END_STREAM or a disconnect arrived
        self.writable = asyncio.Event()  # the peer opened its window, or the stream went away


class Http2Protocol(asyncio.Protocol):
    """One HTTP/2 connection: h2's state machine fed from the transport, an ASGI call per stream."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.server_state = server_state
        self.app_state = app_state
        self.loop = _loop or asyncio.get_event_loop()
        self.conn = H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        self.streams: dict[int, _Stream] = {}
        self.transport: asyncio.Transport | None = None
        self.server: tuple[str, int | None] | None = None
        self.client: tuple[str, int] | None = None
        self.scheme = "http"
        self.transport_writable = asyncio.Event()
        self.transport_writable.set()
        self.closing = False  # GOAWAY sent: no new streams; close when the last one ends
        self.idle_timer: asyncio.TimerHandle | None = None

    # -- the transport's side

    def connection_made(self, transport: asyncio.BaseTransport,
                        upgrade: tuple[bytes, list[tuple[bytes, bytes]]] | None = None) -> None:
        """`upgrade`: (the HTTP2-Settings header, the upgraded request's headers) after an h2c 101."""
        self.transport = cast(asyncio.Transport, transport)
        self.server_state.connections.add(self)  # type: ignore[arg-type]
        self.server = get_local_addr(self.transport)
        self.client = get_remote_addr(self.transport)
        self.scheme = "https" if is_ssl(self.transport) else "http"
        if upgrade is None:
            self.conn.initiate_connection()
        else:
            settings = upgrade[0] + b"=" * (-len(upgrade[0]) % 4)  # base64url, sent without padding
            try:
                self.conn.initiate_upgrade_connection(settings)
            except (ValueError, h2.exceptions.H2Error):
                logger.warning("Invalid HTTP2-Settings header in an h2c upgrade.")
                self.transport.close()
                return
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                                   h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS})
        self.conn.increment_flow_control_window(CONNECTION_WINDOW - self.conn.inbound_flow_control_window)
        self._flush()
        if upgrade is not None:  # stream 1 is the upgraded request: complete, without a body
            self._start_stream(1, upgrade[1], ended=True)
        else:
            self._arm_idle()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            logger.warning("Invalid HTTP/2 data received: %s", exc)
            self._flush()  # h2 queued the GOAWAY that says why
            self._close_transport()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self._start_stream(event.stream_id, event.headers or [], ended=False)
            elif isinstance(event, h2.events.DataReceived):
                self._data(event.stream_id, event.data or b"", event.flow_controlled_length or 0)
            elif isinstance(event, h2.events.StreamEnded):
                stream = self.streams.get(event.stream_id or 0)
                if stream is not None:
                    stream.ended = True
                    stream.readable.set()
            elif isinstance(event, h2.events.StreamReset):
                self._lose(event.stream_id or 0)
            elif isinstance(event, h2.events.WindowUpdated):
                self._window_opened(event.stream_id or 0)
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                    self._window_opened(0)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.closing = True  # the peer's GOAWAY: it opens no more streams
                if event.error_code != h2.errors.ErrorCodes.NO_ERROR:
                    for stream_id in list(self.streams):  # it gave up on them too
                        self._lose(stream_id)
                    self._close_transport()
                elif not self.streams:
                    self._close_transport()
        self._flush()

    def eof_received(self) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        for stream_id in list(self.streams):
            self._lose(stream_id)
        self.transport_writable.set()

    def pause_writing(self) -> None:
        self.transport_writable.clear()

    def resume_writing(self) -> None:
        self.transport_writable.set()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: refuse new streams, let the open ones finish."""
        self._go_away()

    # -- streams

    def _start_stream(self, stream_id: int, headers: list[tuple[bytes, bytes]], *, ended: bool) -> None:
        if self.closing:
            self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        scope = self._scope(headers)
        if scope is None:
            self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        stream = _Stream(stream_id, scope["method"] == "HEAD")
        stream.ended = ended
        self.streams[stream_id] = stream
        task = self.loop.create_task(self._run(stream, scope))
        task.add_done_callback(self.server_state.tasks.discard)
        self.server_state.tasks.add(task)

    def _scope(self, headers: list[tuple[bytes, bytes]]) -> dict[str, Any] | None:
        """The ASGI scope of a request, or None when a pseudo-header it needs is missing (CONNECT)."""
        pseudo: dict[bytes, bytes] = {}
        plain: list[tuple[bytes, bytes]] = []
        cookies: list[bytes] = []
        for name, value in headers:
            if name.startswith(b":"):
                pseudo[name] = value
            elif name == b"cookie":
                cookies.append(value)  # HTTP/2 may split the Cookie header; apps expect one (RFC 9113 8.2.3)
            else:
                plain.append((name, value))
        method, target = pseudo.get(b":method"), pseudo.get(b":path")
        if method is None or not target:
            return None
        if cookies:
            plain.append((b"cookie", b"; ".join(cookies)))
        authority = pseudo.get(b":authority")
        if authority and not any(name == b"host" for name, _ in plain):
            plain.insert(0, (b"host", authority))  # ASGI apps route on Host; HTTP/2 carries it as :authority
        raw_path, _, query = target.partition(b"?")
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = urllib.parse.unquote(path)
        root = self.config.root_path
        return {
            "type": "http",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.3"},
            "http_version": "2",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "method": method.decode("ascii"),
            "root_path": root,
            "path": root + path,
            "raw_path": root.encode("ascii") + raw_path,
            "query_string": query,
            "headers": plain,
            "state": self.app_state.copy(),
        }

    async def _run(self, stream: _Stream, scope: dict[str, Any]) -> None:
        async def receive() -> dict[str, Any]:
            return await self._receive(stream)

        async def send(message: dict[str, Any]) -> None:
            await self._send(stream, message)

        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            logger.error("Exception in ASGI application\n", exc_info=exc)
            self._fail(stream)
            if not isinstance(exc, Exception):
                raise  # cancellation (shutdown's deadline) goes on
        else:
            if not stream.response_complete:
                if not stream.response_started:
                    logger.error("ASGI callable returned without starting response.")
                self._fail(stream)
        finally:
            self._end_stream(stream)

    def _fail(self, stream: _Stream) -> None:
        """A 500 when nothing was answered yet, else a reset: the peer must not take a cut body as whole."""
        if stream.disconnected or stream.response_complete:
            return
        try:
            if not stream.response_started:
                body = b"Internal Server Error"
                self.conn.send_headers(stream.id, [(b":status", b"500"),
                                                   (b"content-type", b"text/plain; charset=utf-8"),
                                                   (b"content-length", str(len(body)).encode())])
                stream.response_started = True
                if len(body) <= min(self.conn.local_flow_control_window(stream.id), self.conn.max_outbound_frame_size):
                    self.conn.send_data(stream.id, body, end_stream=True)
                    stream.response_complete = True
                    self._flush()
                    return
            self.conn.reset_stream(stream.id, h2.errors.ErrorCodes.INTERNAL_ERROR)
        except h2.exceptions.H2Error:
            pass  # the stream is already gone
        stream.response_complete = True
        self._flush()

    def _end_stream(self, stream: _Stream) -> None:
        self.streams.pop(stream.id, None)
        # Data the app never read still counts against the connection's window: give it back.
        unread = sum(length for _, length in stream.chunks)
        stream.chunks.clear()
        if unread and not stream.disconnected:
            self._acknowledge(stream.id, unread)
        if not stream.ended and not stream.disconnected:
            # The answer is complete but the peer is still sending: it must stop (RFC 9113 8.1).
            try:
                self.conn.reset_stream(stream.id, h2.errors.ErrorCodes.NO_ERROR)
            except h2.exceptions.H2Error:
                pass
        self.server_state.total_requests += 1
        self._flush()
        if not self.streams:
            if self.closing:
                self._close_transport()
            else:
                self._arm_idle()

    def _data(self, stream_id: int, data: bytes, flow_length: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.response_complete:
            self._acknowledge(stream_id, flow_length)  # nobody will read it: do not let it shrink the window
            return
        stream.chunks.append((data, flow_length))
        stream.readable.set()

    def _acknowledge(self, stream_id: int, flow_length: int) -> None:
        if flow_length <= 0:
            return
        try:  # h2 still reopens the connection's window when the stream is gone
            self.conn.acknowledge_received_data(flow_length, stream_id)
        except h2.exceptions.H2Error:
            pass

    def _lose(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.disconnected = True
            stream.readable.set()
            stream.writable.set()

    def _window_opened(self, stream_id: int) -> None:
        if stream_id == 0:
            for stream in self.streams.values():
                stream.writable.set()
        else:
            one = self.streams.get(stream_id)
            if one is not None:
                one.writable.set()

    # -- the app's side

    async def _receive(self, stream: _Stream) -> dict[str, Any]:
        while True:
            if stream.chunks:
                data = b"".join(chunk for chunk, _ in stream.chunks)
                flow_length = sum(length for _, length in stream.chunks)
                stream.chunks.clear()
                self._acknowledge(stream.id, flow_length)  # the peer may send this much more now
                self._flush()
                stream.final_sent = stream.ended
                return {"type": "http.request", "body": data, "more_body": not stream.ended}
            if stream.disconnected or stream.response_complete:
                return {"type": "http.disconnect"}
            if stream.ended and not stream.final_sent:
                stream.final_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            stream.readable.clear()
            await stream.readable.wait()

    async def _send(self, stream: _Stream, message: dict[str, Any]) -> None:
        kind = message["type"]
        if stream.disconnected:
            return  # as uvicorn does for HTTP/1.1: the app may finish writing to a client that left
        if kind == "http.response.start":
            if stream.response_started:
                raise RuntimeError("Unexpected ASGI message 'http.response.start': the response already started.")
            headers = [(b":status", str(message["status"]).encode("ascii"))]
            headers += self.server_state.default_headers
            for name, value in message.get("headers", ()):
                name = bytes(name).lower()
                if name not in _HOP_BY_HOP:
                    headers.append((name, bytes(value)))
            stream.response_started = True
            try:
                self.conn.send_headers(stream.id, headers)
            except h2.exceptions.StreamClosedError:
                stream.disconnected = True
            self._flush()
        elif kind == "http.response.body":
            if not stream.response_started:
                raise RuntimeError("Unexpected ASGI message 'http.response.body' sent, before 'http.response.start'.")
            if stream.response_complete:
                raise RuntimeError("Unexpected ASGI message 'http.response.body': the response is complete.")
            body: bytes = b"" if stream.head else bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            await self._send_data(stream, body, end=not more)
            if not more:
                stream.response_complete = True
                stream.readable.set()  # a receive() waiting for the disconnect returns now
        else:
            raise RuntimeError(f"Unexpected ASGI message '{kind}' sent, for an HTTP/2 request.")

    async def _send_data(self, stream: _Stream, body: bytes, *, end: bool) -> None:
        """Send `body` within the peer's windows and frame size, waiting for them to open as needed."""
        view = memoryview(body)
        while True:
            if stream.disconnected:
                return
            if not self.transport_writable.is_set():
                await self.transport_writable.wait()
                continue
            if not view:
                if end:
                    try:
                        self.conn.end_stream(stream.id)
                    except h2.exceptions.StreamClosedError:
                        stream.disconnected = True
                    self._flush()
                return
            try:
                room = min(self.conn.local_flow_control_window(stream.id), self.conn.max_outbound_frame_size)
            except h2.exceptions.StreamClosedError:
                stream.disconnected = True
                return
            if room <= 0:
                stream.writable.clear()
                await stream.writable.wait()
                continue
            piece, view = view[:room], view[room:]
            last = end and not view
            self.conn.send_data(stream.id, piece.tobytes(), end_stream=last)
            self._flush()
            if last:
                return

    # -- the connection's end

    def _go_away(self) -> None:
        """GOAWAY(NO_ERROR) naming the last stream we will serve; close once the open ones are done.

        Written as a frame beside h2's state machine: h2's own close_connection would make every later
        frame of the still-open streams a protocol error, where a graceful GOAWAY lets them finish."""
        if self.closing or self.transport is None or self.transport.is_closing():
            return
        self.closing = True
        self._flush()
        self.transport.write(GoAwayFrame(0, last_stream_id=self.conn.highest_inbound_stream_id,
                                         error_code=h2.errors.ErrorCodes.NO_ERROR).serialize())
        if not self.streams:
            self._close_transport()

    def _arm_idle(self) -> None:
        if self.idle_timer is None and not self.closing:
            self.idle_timer = self.loop.call_later(max(IDLE_S, self.config.timeout_keep_alive), self._idle)

    def _idle(self) -> None:
        self.idle_timer = None
        if not self.streams:
            self._go_away()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _close_transport(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

