"""hearth.asgi's streamed bodies: they end when the producer ends, and stop when the client leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from hearth.asgi import send_stream


async def test_a_streamed_body_stops_when_the_client_leaves() -> None:
    left = asyncio.Event()
    produced: list[bytes] = []
    closed = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            n = 0
            while True:
                n += 1
                produced.append(b"%d" % n)
                yield produced[-1]
                if n == 2:
                    await asyncio.sleep(3600)  # waits for records that never come
        finally:
            closed.set()

    async def receive() -> dict[str, Any]:
        await left.wait()
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if len(sent) == 2:
            left.set()  # the client goes away after the second chunk

    await asyncio.wait_for(send_stream(send, endless(), receive), 10)
    assert closed.is_set() and produced == [b"1", b"2"]
    assert [m["body"] for m in sent] == [b"1", b"2", b""] and sent[-1]["more_body"] is False


async def test_a_streamed_body_ends_with_its_producer_while_the_client_stays() -> None:
    async def three() -> AsyncIterator[bytes]:
        for chunk in (b"a", b"", b"c"):
            yield chunk

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # a client that stays: uvicorn answers only when it leaves
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(send_stream(send, three(), receive), 10)
    assert [m["body"] for m in sent] == [b"a", b"c", b""]
