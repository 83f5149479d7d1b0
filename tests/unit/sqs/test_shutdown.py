"""Stopping the server ends SQS long polls at once: they answer with what is there (or nothing)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hearth.services.sqs.queues import OutgoingMessage, QueueService

ACCOUNT, REGION = "000000000000", "us-east-1"


async def _waiting(svc: QueueService) -> None:
    while svc.statistics()["waiting_queues"] < 1:
        await asyncio.sleep(0)


async def test_stop_waiting_answers_open_long_polls_empty(tmp_path: Path) -> None:
    svc = QueueService(tmp_path)
    try:
        q = svc.create_queue(ACCOUNT, REGION, "q", {})
        poll = asyncio.create_task(svc.receive_wait(q, 1, None, 20.0))
        await asyncio.wait_for(_waiting(svc), 5)
        svc.stop_waiting()
        assert await asyncio.wait_for(poll, 5) == []
        # New long polls after the stop began do not wait either, and still see what is there.
        svc.send(q, OutgoingMessage(body="late"))
        got = await asyncio.wait_for(svc.receive_wait(q, 1, None, 20.0), 5)
        assert [m["Body"] for m in got] == ["late"]
        assert await asyncio.wait_for(svc.receive_wait(q, 1, None, 20.0), 5) == []
    finally:
        svc.close()


async def test_close_during_a_long_poll_answers_empty(tmp_path: Path) -> None:
    svc = QueueService(tmp_path)
    q = svc.create_queue(ACCOUNT, REGION, "q", {})
    poll = asyncio.create_task(svc.receive_wait(q, 1, None, 20.0))
    await asyncio.wait_for(_waiting(svc), 5)
    svc.close()  # the database is gone: the poll must not touch it again
    assert await asyncio.wait_for(poll, 5) == []
