"""Carries connections made inside an environment to 127.0.0.1:4566 (and :443) over to Hearth's AWS API.

Inside its network namespace an environment sees only its own loopback. The sandbox hands the server
a listening socket bound there; this module accepts on it and splices each connection to the real
API endpoint, so functions call Hearth's services with the AWS SDK unchanged. It never interprets
the bytes: requests are authenticated by the API like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

log = logging.getLogger(__name__)
MAX_CONNECTIONS = 64  # per environment: a function cannot exhaust the server's file descriptors


async def serve_proxies(listeners: list[socket.socket], host: str, port: int) -> None:
    """Every listener of one environment to the same endpoint, until cancelled."""
    await asyncio.gather(*(serve_proxy(listener, host, port) for listener in listeners))


async def serve_proxy(listener: socket.socket, host: str, port: int) -> None:
    listener.setblocking(False)
    loop = asyncio.get_running_loop()
    active: set[asyncio.Task[None]] = set()
    try:
        while True:
            conn, _ = await loop.sock_accept(listener)
            if len(active) >= MAX_CONNECTIONS:
                conn.close()
                continue
            task = asyncio.create_task(_splice(conn, host, port))
            active.add(task)
            task.add_done_callback(active.discard)
    except (asyncio.CancelledError, OSError):
        pass
    finally:
        for task in active:
            task.cancel()
        listener.close()


async def _splice(conn: socket.socket, host: str, port: int) -> None:
    conn.setblocking(False)
    inner_reader, inner_writer = await asyncio.open_connection(sock=conn)
    try:
        outer_reader, outer_writer = await asyncio.open_connection(host, port)
    except OSError:
        inner_writer.close()
        return

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    try:
        await asyncio.gather(pump(inner_reader, outer_writer), pump(outer_reader, inner_writer))
    finally:
        for writer in (inner_writer, outer_writer):
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()
