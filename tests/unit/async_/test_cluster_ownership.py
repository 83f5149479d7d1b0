"""Asynchronous events in a cluster: each runs on the node that accepted it; a node that died or left
has its events taken over (`AsyncQueue.adopt`), once, and the old owner — if it was only cut off and
comes back — does not run what was taken from it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.unit.async_.helpers import ACCOUNT, REGION, FakeFunctions, Policies, ScriptedInvoker

from hearth.events.delivery import DeliveryRouter
from hearth.invoke.async_queue import AsyncQueue, AsyncQueueConfig, ManualClock


class Node:
    def __init__(self, data_dir: Path, node_id: str) -> None:
        self.invoker = ScriptedInvoker()
        functions = FakeFunctions()
        functions.add("fn")
        self.queue = AsyncQueue(data_dir, self.invoker, functions, DeliveryRouter(), policies=Policies(),
                                clock=ManualClock(), config=AsyncQueueConfig(), node_id=node_id)

    def enqueue(self, request_id: str) -> None:
        self.queue.enqueue(account=ACCOUNT, region=REGION, function_name="fn", qualifier=None, payload=b"{}",
                           request_id=request_id)

    def ran(self) -> list[str | None]:
        return [c.request_id for c in self.invoker.calls]


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:
    a, b = Node(tmp_path / "data", "a"), Node(tmp_path / "data", "b")
    yield a, b
    await a.queue.close()
    await b.queue.close()


async def test_a_nodes_events_run_there_until_another_adopts_them(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    a.enqueue("from-a")  # a accepted it, then died before running it
    b.queue.start()
    await b.queue.wait_idle()
    assert b.ran() == []  # not b's while a may be alive
    assert b.queue.adopt(["a"]) == 1
    await b.queue.wait_idle()
    assert b.ran() == ["from-a"]
    assert b.queue.pending() == 0
    assert b.queue.adopt(["a"]) == 0  # nothing is taken twice


async def test_an_old_owner_that_comes_back_does_not_run_what_was_taken(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    a.enqueue("contested")  # queued in a's memory too
    b.queue.start()
    assert b.queue.adopt(["a"]) == 1  # a was declared dead (cut off from the database)
    a.queue.start()  # a reaches the database again: its in-memory copy is fenced by the owner column
    await a.queue.wait_idle()
    await b.queue.wait_idle()
    assert (a.ran(), b.ran()) == ([], ["contested"])


async def test_a_restarted_node_resumes_its_own_events(tmp_path: Path) -> None:
    first = Node(tmp_path / "data", "a")
    first.enqueue("mine")
    await first.queue.close()
    again = Node(tmp_path / "data", "a")
    try:
        again.queue.start()
        await again.queue.wait_idle()
        assert again.ran() == ["mine"]
    finally:
        await again.queue.close()
