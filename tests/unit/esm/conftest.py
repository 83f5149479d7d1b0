from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hearth.esm.store import MappingStore
from hearth.esm.target import InvokeResult
from hearth.events.delivery import Message
from hearth.services.kinesis.streams import StreamService
from hearth.services.sqs.queues import QueueService


class FakeInvoke:
    """Records each batch; `respond(records) -> InvokeResult` decides the outcome."""

    def __init__(self, respond: Callable[[list[dict[str, Any]]], InvokeResult] | None = None) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.respond = respond or (lambda _records: InvokeResult(b"null"))
        self.gate: asyncio.Event | None = None  # when set up, every call waits on it
        self.running = 0
        self.peak = 0

    def stops_loop(self, account: str, region: str, function_arn: str, trace_header: str | None) -> bool:
        return False

    def role(self, account: str, region: str, function_arn: str) -> str:
        return "arn:aws:iam::000000000000:role/fn-role"

    async def __call__(self, account: str, region: str, function_arn: str, payload: bytes, *,
                       trace_header: str | None = None) -> InvokeResult:
        records = json.loads(payload)["Records"]
        self.batches.append(records)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            return self.respond(records)
        finally:
            self.running -= 1


class FakeDeliver:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, target: str, message: Message) -> None:
        self.sent.append((target, json.loads(message.body)))


async def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Yield to the loop until `predicate()` holds (a bound for a hung test, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)


@pytest.fixture
def streams(tmp_path: Path) -> Iterator[StreamService]:
    svc = StreamService(tmp_path)
    yield svc
    svc.close()


@pytest.fixture
def queues(tmp_path: Path) -> Iterator[QueueService]:
    svc = QueueService(tmp_path)
    yield svc
    svc.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MappingStore]:
    s = MappingStore(tmp_path)
    yield s
    s.close()
