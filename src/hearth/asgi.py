"""ASGI plumbing shared by Hearth's HTTP fronts (the AWS gateway and its S3 front, function URLs, API
Gateway): reading a request body under a limit, streaming a response body, and finding the target a
Host header or a `/_hearth/<kind>/<id>/` path names. It never interprets what it reads."""

from __future__ import annotations

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


async def send_stream(send: Send, body: AsyncIterator[bytes]) -> None:
    """Send a response body chunk by chunk (after its `http.response.start`), and always end it."""
    try:
        async for chunk in body:
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        if isinstance(body, AsyncGenerator):
            await body.aclose()  # what feeds it (a file behind a download) is closed even when the client left
        await send({"type": "http.response.body", "body": b"", "more_body": False})


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
