"""HTTP/2 beside HTTP/1.1 on one port (hearth.http2), driven by h2 as the client over a real socket:
prior knowledge, `Upgrade: h2c`, ALPN, both directions of flow control, streaming, a client's early
GOAWAY, graceful shutdown — and HTTP/1.1 still served by uvicorn's httptools protocol."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
import uvicorn
from uvicorn.server import ServerState

from hearth.http2 import STREAM_WINDOW, H2Connection, Http2Protocol, HttpProtocol
from hearth.tls import default_hosts, ensure_tls

BIG = bytes(range(256)) * 12_000  # ~3 MB: more than a stream's window, so the client must wait for ours


@dataclass
class App:
    """Echoes what it was asked (JSON-free, so the test reads it as bytes); /stream waits on a gate."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        self.seen.append(scope)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(b"x-version", scope["http_version"].encode()), (b"connection", b"keep-alive")]
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"first,", "more_body": True})
            await self.gate.wait()  # opened by the client once it has read "first,"
            await send({"type": "http.response.body", "body": b"second", "more_body": False})
            return
        if scope["path"] == "/big":
            body = BIG
        elif scope["path"] == "/echo":
            body = hashlib.sha256(body).hexdigest().encode() + b" %d" % len(body)
        else:
            host = dict(scope["headers"]).get(b"host", b"")
            body = b"%s %s %s" % (scope["method"].encode(), scope["raw_path"], host)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


@dataclass
class Server:
    app: App
    port: int
    state: ServerState
    server: asyncio.Server


async def _serve(app: App, **tls: str) -> Server:
    """The protocol as `hearth serve` gives it to uvicorn (`tls`: uvicorn's ssl_certfile/ssl_keyfile)."""
    config = uvicorn.Config(app, http=HttpProtocol, lifespan="off", log_level="warning", **tls)
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(config, state, {}), "127.0.0.1", 0,
                                      ssl=config.ssl)
    return Server(app, server.sockets[0].getsockname()[1], state, server)


async def _stop(srv: Server) -> None:
    for conn in list(srv.state.connections):
        conn.shutdown()
    srv.server.close()
    await srv.server.wait_closed()


@pytest.fixture
async def served() -> AsyncIterator[Server]:
    srv = await _serve(App())
    yield srv
    await _stop(srv)


class Client:
    """An h2 client connection: send requests, collect each stream's response, honour flow control."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 conn: h2.connection.H2Connection) -> None:
        self.reader, self.writer, self.conn = reader, writer, conn
        self.headers: dict[int, dict[bytes, bytes]] = {}
        self.bodies: dict[int, bytes] = {}
        self.ended: set[int] = set()
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.resets: dict[int, int] = {}

    @classmethod
    async def connect(cls, port: int, *, window: int | None = None) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        conn = H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        conn.initiate_connection()
        if window is not None:
            conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        client = cls(reader, writer, conn)
        client.flush()
        return client

    def flush(self) -> None:
        self.writer.write(self.conn.data_to_send())

    def request(self, method: str, path: str, body: bytes = b"") -> int:
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(b":method", method.encode()), (b":path", path.encode()),
                                     (b":scheme", b"http"), (b":authority", b"example.test")],
                               end_stream=not body)
        self.flush()
        return sid

    async def send_body(self, sid: int, body: bytes) -> None:
        """All of `body` on stream `sid`, never more at once than the server's windows allow."""
        view = memoryview(body)
        while view:
            room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if room == 0:
                await self.pump()  # the server opens its window as the app reads
                continue
            self.conn.send_data(sid, view[:room].tobytes(), end_stream=len(view) <= room)
            view = view[room:]
            self.flush()

    async def pump(self) -> None:
        data = await asyncio.wait_for(self.reader.read(65536), 10)
        assert data, "the server closed the connection"
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                self.headers[event.stream_id] = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                self.bodies[event.stream_id] = self.bodies.get(event.stream_id, b"") + event.data
                # read at once: acknowledging is what lets the server send on past the window
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.ended.add(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self.resets[event.stream_id] = event.error_code
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = event
        self.flush()

    async def response(self, sid: int) -> tuple[dict[bytes, bytes], bytes]:
        while sid not in self.ended:
            assert sid not in self.resets, self.resets
            await self.pump()
        return self.headers[sid], self.bodies.get(sid, b"")

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def test_prior_knowledge_request(served: Server) -> None:
    client = await Client.connect(served.port)
    headers, body = await client.response(client.request("GET", "/a%20b?x=1"))
    assert headers[b":status"] == b"200" and headers[b"x-version"] == b"2"
    assert b"connection" not in headers  # hop-by-hop headers of an HTTP/1.1-minded app are dropped
    assert body == b"GET /a%20b example.test"  # Host comes from :authority
    scope = served.app.seen[0]
    assert (scope["path"], scope["query_string"], scope["scheme"]) == ("/a b", b"x=1", "http")
    await client.close()


async def test_flow_control_both_ways(served: Server) -> None:
    # A client window of 16 KiB: h2 raises FlowControlError on its side if the server ever sends past it.
    client = await Client.connect(served.port, window=16384)
    down = client.request("GET", "/big")
    up = client.request("POST", "/echo", BIG)
    await client.send_body(up, BIG)  # 3 MB through a 1 MiB stream window: only as the app reads
    assert len(BIG) > STREAM_WINDOW
    _, echoed = await client.response(up)
    assert echoed == hashlib.sha256(BIG).hexdigest().encode() + b" %d" % len(BIG)
    _, body = await client.response(down)
    assert body == BIG
    await client.close()


async def test_streamed_response_arrives_piece_by_piece(served: Server) -> None:
    client = await Client.connect(served.port)
    sid = client.request("GET", "/stream")
    while client.bodies.get(sid) != b"first,":
        await client.pump()
    assert sid not in client.ended
    served.app.gate.set()
    _, body = await client.response(sid)
    assert body == b"first,second"
    await client.close()


async def test_client_goaway_lets_the_open_stream_finish(served: Server) -> None:
    # Node's http2 client sends GOAWAY when it closes its session, while the last response still arrives.
    client = await Client.connect(served.port, window=16384)
    sid = client.request("GET", "/big")
    await client.pump()
    client.conn.close_connection()
    client.flush()
    client.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN  # keep reading as Node does
    _, body = await client.response(sid)
    assert body == BIG
    assert await asyncio.wait_for(client.reader.read(), 10) == b""  # then the server closes the connection
    await client.close()


async def test_graceful_shutdown_sends_goaway_and_finishes_open_streams(served: Server) -> None:
    client = await Client.connect(served.port)
    sid = client.request("GET", "/stream")
    while client.bodies.get(sid) != b"first,":
        await client.pump()
    for conn in list(served.state.connections):
        conn.shutdown()
    while client.goaway is None:
        await client.pump()
    assert client.goaway.last_stream_id == sid
    served.app.gate.set()
    _, body = await client.response(sid)
    assert body == b"first,second"
    assert await asyncio.wait_for(client.reader.read(), 10) == b""
    await client.close()


async def test_upgrade_h2c_without_a_body(served: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    conn = H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    settings = conn.initiate_upgrade_connection()
    assert settings is not None
    writer.write(b"GET /up HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                 b"Upgrade: h2c\r\nHTTP2-Settings: " + settings.rstrip(b"=") + b"\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101 ") and b"upgrade: h2c" in head.lower()
    client = Client(reader, writer, conn)
    client.flush()  # the client's preface, after the 101
    headers, body = await client.response(1)
    assert headers[b"x-version"] == b"2" and body == b"GET /up example.test"
    await client.close()


async def test_http11_is_still_uvicorns_and_upgrade_with_a_body_stays_http11(served: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    # curl --http2 -d asks for h2c with a body: it is served over HTTP/1.1, body included
    writer.write(b"POST /echo HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                 b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 3\r\n\r\nabc")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200 ") and b"x-version: 1.1" in head
    expected = hashlib.sha256(b"abc").hexdigest().encode() + b" 3"
    assert await asyncio.wait_for(reader.readexactly(len(expected)), 10) == expected
    writer.write(b"GET /plain HTTP/1.1\r\nHost: example.test\r\n\r\n")  # and the connection goes on in 1.1
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200 ") and b"x-version: 1.1" in head
    assert await asyncio.wait_for(reader.readexactly(23), 10) == b"GET /plain example.test"
    protocols = {type(conn) for conn in served.state.connections}
    assert HttpProtocol in protocols and Http2Protocol not in protocols
    writer.close()


async def test_preface_split_over_reads_is_still_http2(served: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    conn = H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    first = conn.data_to_send()
    writer.write(first[:5])
    await writer.drain()
    await asyncio.sleep(0.05)  # two reads on the server's side (the result does not depend on it)
    writer.write(first[5:])
    client = Client(reader, writer, conn)
    _, body = await client.response(client.request("GET", "/split"))
    assert body == b"GET /split example.test"
    await client.close()


async def test_alpn_h2_on_tls(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path, default_hosts("127.0.0.1"))
    # uvicorn builds the TLS context and offers the protocol class's ALPN list (h2, http/1.1)
    srv = await _serve(App(), ssl_certfile=str(files.server_cert), ssl_keyfile=str(files.server_key))
    try:
        client_context = ssl.create_default_context(cafile=str(files.ca_cert))
        client_context.set_alpn_protocols(["h2"])
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port, ssl=client_context,
                                                       server_hostname="localhost")
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
        conn = H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        conn.initiate_connection()
        client = Client(reader, writer, conn)
        client.flush()
        headers, _ = await client.response(client.request("GET", "/tls"))
        assert headers[b"x-version"] == b"2" and srv.app.seen[0]["scheme"] == "https"
        await client.close()
    finally:
        srv.server.close()
        await srv.server.wait_closed()



@pytest.mark.parametrize("scenario", [test_prior_knowledge_request, test_flow_control_both_ways,
                                      test_upgrade_h2c_without_a_body,
                                      test_http11_is_still_uvicorns_and_upgrade_with_a_body_stays_http11,
                                      test_preface_split_over_reads_is_still_http2])
def test_under_uvloop(scenario: Callable[[Server], Awaitable[None]]) -> None:
    """uvloop (what `hearth serve` runs) keeps a protocol's data_received from when it was given the protocol:
    the first-read check must hand over to uvicorn's parser there too."""
    import uvloop

    async def main() -> None:
        srv = await _serve(App())
        try:
            await scenario(srv)
        finally:
            await _stop(srv)

    uvloop.run(main())


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_only_the_first_read_of_a_connection_is_looked_at(loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    looked_at: list[bytes] = []
    first_read = HttpProtocol._first_read

    def counting(self: HttpProtocol, data: bytes) -> None:
        looked_at.append(data)
        first_read(self, data)

    monkeypatch.setattr(HttpProtocol, "_first_read", counting)

    async def main() -> None:
        srv = await _serve(App())
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            for path in (b"/one", b"/two"):  # two reads: the second request waits for the first answer
                writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: example.test\r\n\r\n")
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                assert await reader.readexactly(length) == b"GET " + path + b" example.test"
            writer.close()
        finally:
            await _stop(srv)

    if loop == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
    assert len(looked_at) == 1 and looked_at[0].startswith(b"GET /one ")
