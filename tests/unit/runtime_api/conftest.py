"""A Runtime API server with its channel on a loopback socket, and a raw HTTP client for it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from hearth.runtime_api.channel import EnvironmentChannel
from hearth.runtime_api.server import RuntimeApiServer


@dataclass
class Api:
    channel: EnvironmentChannel
    server: RuntimeApiServer
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    channel = EnvironmentChannel("env-test")
    server = RuntimeApiServer(channel)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    task = asyncio.create_task(server.serve(listener))
    await asyncio.sleep(0)
    try:
        yield Api(channel, server, port)
    finally:
        await server.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        listener.close()


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class RawClient:
    """One keep-alive connection that sends exactly the bytes a test gives it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_response(self) -> Response:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return Response(status, headers, body)

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                      chunked: bool = False) -> Response:
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        if chunked:
            head += "Transfer-Encoding: chunked\r\n\r\n"
            data = head.encode()
            for i in range(0, len(body), 7):
                part = body[i:i + 7]
                data += f"{len(part):x}\r\n".encode() + part + b"\r\n"
            data += b"0\r\n\r\n"
        elif method == "POST":
            data = head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        else:
            data = (head + "\r\n").encode()
        await self.send(data)
        return await self.read_response()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


@pytest.fixture
async def client(api: Api) -> AsyncIterator[RawClient]:
    c = await RawClient.connect(api.port)
    try:
        yield c
    finally:
        await c.close()
