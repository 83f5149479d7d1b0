"""Wake-ups between nodes through LISTEN/NOTIFY (hearth.cluster.notices): a notice reaches the other
node's callback on its event loop and never the sender's own; a long poll on one node's queue service
answers a message sent through another's at once, though its own re-check is a minute away."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests import pgcluster

from hearth.cluster.notices import ClusterNotices
from hearth.services.sqs.queues import OutgoingMessage, QueueService
from hearth.store.engine import use_engine
from hearth.store.postgres import PostgresEngine

pytestmark = pytest.mark.skipif(not pgcluster.available(), reason="no PostgreSQL server binaries")


def test_a_notice_reaches_the_other_node_only() -> None:
    engine = PostgresEngine(pgcluster.cluster().new_database("notices"))

    async def run() -> tuple[list[str], list[str]]:
        a, b = ClusterNotices(engine, "a"), ClusterNotices(engine, "b")
        got_a: list[str] = []
        got_b: list[str] = []
        arrived = asyncio.Event()
        a.on("sqs", got_a.append)
        b.on("sqs", lambda key: (got_b.append(key), arrived.set()))
        a.start()
        b.start()
        try:
            a.announce("sqs", "arn:aws:sqs:us-east-1:000000000000:q")
            a.announce("other-topic", "ignored")
            await asyncio.wait_for(arrived.wait(), 30)
            await asyncio.sleep(0)
        finally:
            a.close()
            b.close()
        return got_a, got_b

    got_a, got_b = asyncio.run(run())
    assert got_b == ["arn:aws:sqs:us-east-1:000000000000:q"]
    assert got_a == []  # its own change already woke its own waiters


def test_a_long_poll_is_woken_by_a_send_through_another_node(tmp_path: Path) -> None:
    url = pgcluster.cluster().new_database("notices-sqs")
    engine = PostgresEngine(url)
    use_engine(tmp_path / "a", engine)
    use_engine(tmp_path / "b", engine)

    async def run() -> list[str]:
        notices_a, notices_b = ClusterNotices(engine, "a"), ClusterNotices(engine, "b")
        # A re-check a minute away: only the notice can end the wait within the test's limit.
        node_a = QueueService(tmp_path / "a", recheck_s=60.0, announce=lambda arn: notices_a.announce("sqs", arn))
        node_b = QueueService(tmp_path / "b", recheck_s=60.0, announce=lambda arn: notices_b.announce("sqs", arn))
        notices_b.on("sqs", node_b.wake)
        notices_a.start()
        notices_b.start()
        try:
            queue = node_a.create_queue("000000000000", "us-east-1", "woken", {})
            waiting = asyncio.ensure_future(node_b.receive_wait(node_b.require_arn(queue.arn), 1, None, 20))
            await asyncio.sleep(0.2)  # the long poll is waiting (it found nothing)
            assert not waiting.done()
            node_a.send(queue, OutgoingMessage(body="across", sender_id="000000000000"))
            found = await asyncio.wait_for(waiting, 15)
        finally:
            notices_a.close()
            notices_b.close()
            node_a.close()
            node_b.close()
        return [m["Body"] for m in found]

    assert asyncio.run(run()) == ["across"]
