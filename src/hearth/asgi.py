"""ASGI plumbing shared by Hearth's HTTP fronts (the AWS gateway and its S3 front, function URLs, API
Gateway): reading a request body under a limit, streaming a response body, and finding the target a
Host header or a `/_hearth/<kind>/<id>/` path names. It never interprets what it reads."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BodyTooLarge(Exception):
    """The body is (or announces itself as) larger than the limit; nothing more is read."""


async def read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """The whole request body, refused early when Content-Length already exceeds `limit`.
    `headers` are lower-cased names."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks) if len(chunks) != 1 else chunks[0]


async def send_stream(send: Send, body: AsyncIterator[bytes], receive: Receive | None = None) -> None:
    """Send a response body chunk by chunk (after its `http.response.start`), and always end it.

    With `receive` (the request's body read already), the body also stops when the client leaves:
    uvicorn drops writes to a closed connection without a word, so a body that only ends when its
    reader stops (an event-stream subscription) would otherwise be produced for nobody until it times out."""
    try:
        if receive is None:
            async for chunk in body:
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        else:
            async with contextlib.aclosing(_until_disconnect(body, receive)) as chunks:
                async for chunk in chunks:
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        if isinstance(body, AsyncGenerator):
            await body.aclose()  # what feeds it (a file behind a download) is closed even when the client left
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _until_disconnect(body: AsyncIterator[bytes], receive: Receive) -> AsyncGenerator[bytes, None]:
    """`body`'s chunks until it ends or `receive` reports the client gone (then the pending chunk is
    cancelled: the producer sees CancelledError where it waited)."""
    gone = asyncio.ensure_future(_disconnect(receive))
    chunks = body.__aiter__()
    try:
        while True:
            pending = asyncio.ensure_future(chunks.__anext__())
            await asyncio.wait((pending, gone), return_when=asyncio.FIRST_COMPLETED)
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await pending
                return
            try:
                chunk = pending.result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        gone.cancel()


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def host_or_path_target(scope: dict[str, Any], host_rx: re.Pattern[str],
                        path_prefix: str) -> tuple[str, str | None, str] | None:
    """(id, region or None, raw path after the id) when the Host header matches `host_rx` (groups: id,
    region) or the path starts with `path_prefix` (`<prefix><id>/<rest>`, for clients without wildcard DNS)."""
    raw = scope.get("raw_path")
    raw_path = raw.decode("latin-1").partition("?")[0] if raw else scope.get("path", "/")
    for name, value in scope.get("headers", ()):
        if name == b"host":
            m = host_rx.match(value.decode("latin-1").lower())
            if m is not None:
                return m.group(1), m.group(2), raw_path or "/"
            break
    if raw_path.startswith(path_prefix):
        target, _, rest = raw_path[len(path_prefix):].partition("/")
        return target, None, "/" + rest
    return None
