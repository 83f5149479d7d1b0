from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.unit.esm.conftest import FakeInvoke, until

from hearth.esm import sqs_poller
from hearth.esm.model import ENABLED, Mapping, MappingConfig
from hearth.esm.sqs_poller import SqsPoller
from hearth.esm.target import InvokeResult
from hearth.services.sqs.queues import OutgoingMessage, QueueService

ACCOUNT, REGION = "000000000000", "us-east-1"


def _setup(queues: QueueService, attributes: dict[str, str] | None = None, **cfg: Any) -> Mapping:
    queue = queues.create_queue(ACCOUNT, REGION, "q", attributes or {"VisibilityTimeout": "30"})
    config = MappingConfig(batch_size=cfg.pop("batch_size", 10), **cfg)
    return Mapping("m-1", ACCOUNT, REGION, queue.arn, "sqs", "arn:aws:lambda:us-east-1:0:function:f", True, ENABLED,
                   config, 0.0)


def _send(queues: QueueService, *bodies: str) -> None:
    queue = queues.get(ACCOUNT, REGION, "q")
    queues.send_batch(queue, [OutgoingMessage(body=b) for b in bodies])


def _counts(queues: QueueService) -> tuple[int, int]:
    c = queues.counts(queues.get(ACCOUNT, REGION, "q"))
    return c["ApproximateNumberOfMessages"], c["ApproximateNumberOfMessagesNotVisible"]


async def test_success_deletes_and_function_error_leaves_messages_in_flight(queues: QueueService) -> None:
    mapping = _setup(queues)
    fail = {"on": False}
    invoke = FakeInvoke(lambda r: InvokeResult(b"{}", "Unhandled" if fail["on"] else None))
    poller = SqsPoller(mapping, queues, invoke, poll_wait_s=0.05)
    poller.start()
    _send(queues, "a", "b")
    await until(lambda: poller.stats["deleted"] == 2)
    fail["on"] = True
    _send(queues, "c")
    await until(lambda: poller.stats["failed"] == 1)
    await poller.stop()
    assert _counts(queues) == (0, 1)  # back after the visibility timeout, never deleted
    assert sorted(r["body"] for b in invoke.batches for r in b) == ["a", "b", "c"]
    assert all(r["eventSource"] == "aws:sqs" for b in invoke.batches for r in b)


async def test_partial_failures_delete_all_but_the_reported(queues: QueueService) -> None:
    mapping = _setup(queues, report_failures=True)

    def respond(records: list[dict[str, Any]]) -> InvokeResult:
        bad = [{"itemIdentifier": r["messageId"]} for r in records if r["body"] == "bad"]
        return InvokeResult(json.dumps({"batchItemFailures": bad}).encode())

    poller = SqsPoller(mapping, queues, FakeInvoke(respond), poll_wait_s=0.05)
    poller.start()
    _send(queues, "ok", "bad", "ok")
    await until(lambda: poller.stats["deleted"] == 2 and poller.stats["failed"] == 1)
    await poller.stop()
    assert _counts(queues) == (0, 1)


async def test_malformed_partial_response_is_a_complete_failure(queues: QueueService) -> None:
    mapping = _setup(queues, report_failures=True)
    poller = SqsPoller(mapping, queues, FakeInvoke(lambda r: InvokeResult(b"not json")), poll_wait_s=0.05)
    poller.start()
    _send(queues, "x", "y")
    await until(lambda: poller.stats["failed"] == 2)
    await poller.stop()
    assert poller.stats["deleted"] == 0 and _counts(queues) == (0, 2)


async def test_filter_deletes_non_matching_without_invoking(queues: QueueService) -> None:
    mapping = _setup(queues, filters=('{"body": {"k": ["yes"]}}',))
    invoke = FakeInvoke()
    poller = SqsPoller(mapping, queues, invoke, poll_wait_s=0.05)
    poller.start()
    _send(queues, json.dumps({"k": "no"}), "plain", json.dumps({"k": "yes"}))
    await until(lambda: poller.stats["deleted"] == 3)
    await poller.stop()
    assert [r["body"] for b in invoke.batches for r in b] == [json.dumps({"k": "yes"})]
    assert poller.stats["filtered"] == 2 and _counts(queues) == (0, 0)


async def test_maximum_concurrency_caps_batches_in_flight(queues: QueueService) -> None:
    mapping = _setup(queues, batch_size=1, max_concurrency=2)
    invoke = FakeInvoke()
    invoke.gate = asyncio.Event()
    poller = SqsPoller(mapping, queues, invoke, poll_wait_s=0.05)
    poller.start()
    _send(queues, *[str(n) for n in range(6)])
    await until(lambda: invoke.running == 2)
    await asyncio.sleep(0.05)  # give a third poller every chance to appear (it must not)
    assert invoke.running == 2 and poller.pollers <= 2
    invoke.gate.set()
    await until(lambda: poller.stats["deleted"] == 6)
    await poller.stop()
    assert invoke.peak == 2


async def test_pollers_grow_with_the_backlog_and_shrink_when_idle(queues: QueueService, monkeypatch: Any) -> None:
    monkeypatch.setattr(sqs_poller, "INITIAL_POLLERS", 1)
    monkeypatch.setattr(sqs_poller, "GROWTH_INTERVAL_S", 0.0)
    mapping = _setup(queues, batch_size=1)
    invoke = FakeInvoke()
    invoke.gate = asyncio.Event()
    poller = SqsPoller(mapping, queues, invoke, poll_wait_s=0.05)
    poller.start()
    assert poller.pollers == 1
    _send(queues, *[str(n) for n in range(8)])
    await until(lambda: invoke.running >= 4)  # each full batch added a poller
    invoke.gate.set()
    await until(lambda: poller.stats["deleted"] == 8)
    await until(lambda: poller.pollers == 1)  # idle long polls shrink it back to one
    await poller.stop()
    assert poller.stats["peak_pollers"] >= 4


async def test_batching_window_gathers_up_to_batch_size(queues: QueueService, monkeypatch: Any) -> None:
    monkeypatch.setattr(sqs_poller, "INITIAL_POLLERS", 1)
    mapping = _setup(queues, batch_size=25, window_s=60)
    invoke = FakeInvoke()
    poller = SqsPoller(mapping, queues, invoke, poll_wait_s=0.05)
    _send(queues, *[str(n) for n in range(10)])
    poller.start()
    await asyncio.sleep(0)
    _send(queues, *[str(n) for n in range(10, 20)])
    _send(queues, *[str(n) for n in range(20, 25)])
    await until(lambda: poller.stats["deleted"] == 25)
    await poller.stop()
    assert [len(b) for b in invoke.batches] == [25]  # a full batch ended the 60 s window early
