"""The poller of one queue event source mapping: long-poll the queue, batch, invoke, delete.

It owns the mapping's polling workers and what a batch's outcome does to its messages:
- success: the whole batch is deleted;
- function error (or a response that ReportBatchItemFailures reads as a complete failure): nothing
  is deleted, so the messages come back after the queue's visibility timeout and the queue's own
  redrive policy moves them to its dead-letter queue after maxReceiveCount receives;
- ReportBatchItemFailures: every message except the reported ones is deleted;
- FilterCriteria: messages no pattern matches are deleted without invoking (as AWS does).

Scaling: each worker holds at most one batch in flight. The mapping starts with up to
`INITIAL_POLLERS` workers (AWS starts with five) and adds one whenever a worker receives a full
batch (a backlog), at most every `GROWTH_INTERVAL_S` (AWS's 300 per minute), never beyond
ScalingConfig.MaximumConcurrency (else `DEFAULT_MAX_POLLERS`); a worker whose long poll came back
empty leaves while others remain (idle mappings shrink to one).
FIFO order per message group holds because the queue never hands out a message of a group that has
one in flight.

It never spins: an empty queue is waited on with `QueueService.wait_for_messages` (woken by sends
and visibility resets), bounded by the next in-flight message's return. It never changes queue
attributes and never invokes except through the injected `Invoke`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from hearth.aws.errors import AwsError
from hearth.esm import batching
from hearth.esm.model import RESULT_FUNCTION_FAILED, RESULT_FUNCTION_MISSING, RESULT_OK, Mapping
from hearth.esm.target import Invoke
from hearth.events import lineage
from hearth.functions.names import function_arn, parse_function_ref
from hearth.services.sqs.messages import lambda_record
from hearth.services.sqs.queues import QueueService

log = logging.getLogger(__name__)

POLL_WAIT_S = 20.0  # one long poll, as AWS's pollers use
INITIAL_POLLERS = 5
DEFAULT_MAX_POLLERS = 1000
GROWTH_INTERVAL_S = 60 / 300  # AWS adds up to 300 concurrent batches per minute to a queue mapping
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024 - 64 * 1024  # stop batching before a synchronous invoke's 6 MB
MISSING_SOURCE_RETRY_S = 5.0
DRAIN_S = 5.0


class SqsPoller:
    def __init__(self, mapping: Mapping, queues: QueueService, invoke: Invoke, *,
                 on_result: Callable[[str], None] | None = None, poll_wait_s: float = POLL_WAIT_S) -> None:
        self.mapping = mapping
        self._queues = queues
        self._invoke = invoke
        self._on_result = on_result or (lambda _result: None)
        self._poll_wait_s = poll_wait_s
        self._filters = batching.compile_filters(mapping.config.filters)
        self._workers: dict[asyncio.Task[None], bool] = {}  # task -> busy (holds a batch)
        self._stopping = False
        self._last_growth = float("-inf")
        self.stats: dict[str, int] = {"batches": 0, "invoked": 0, "deleted": 0, "failed": 0, "filtered": 0,
                                      "peak_pollers": 0}

    @property
    def cap(self) -> int:
        return self.mapping.config.max_concurrency or DEFAULT_MAX_POLLERS

    @property
    def pollers(self) -> int:
        return len(self._workers)

    def start(self) -> None:
        for _ in range(min(INITIAL_POLLERS, self.cap)):
            self._spawn()

    def _spawn(self) -> None:
        if self._stopping or len(self._workers) >= self.cap:
            return
        task = asyncio.get_running_loop().create_task(self._worker())
        self._workers[task] = False
        task.add_done_callback(self._finished)
        self.stats["peak_pollers"] = max(self.stats["peak_pollers"], len(self._workers))

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._workers.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("queue poller of mapping %s ended", self.mapping.uuid, exc_info=task.exception())

    async def stop(self, drain_s: float = DRAIN_S) -> None:
        """Stop: idle workers at once; a worker holding a batch may finish it for up to `drain_s`
        (what it does not finish becomes visible again after the visibility timeout)."""
        self._stopping = True
        for task, busy in list(self._workers.items()):
            if not busy:
                task.cancel()
        tasks = list(self._workers)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=drain_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- one worker ---------------------------------------------------------------------------------

    async def _worker(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        while not self._stopping:
            batch = await self._collect()
            if self._stopping:
                return
            if not batch:
                if len(self._workers) > 1:
                    # Idle: shrink. Leave the set now (not in the done callback), so idle workers
                    # waking together cannot all see "others remain" and all leave.
                    self._workers.pop(me, None)
                    return
                continue
            now = asyncio.get_running_loop().time()
            if len(batch) >= min(self.mapping.config.batch_size, 10) and now - self._last_growth >= GROWTH_INTERVAL_S:
                self._last_growth = now
                self._spawn()  # a full batch means a backlog: one more batch in flight
            self._workers[me] = True
            try:
                await self._process(batch)
            finally:
                self._workers[me] = False

    def _receive(self, count: int) -> list[dict[str, Any]] | None:
        m = self.mapping
        try:
            return self._queues.receive(m.account, m.region, m.source_arn, max_messages=count)
        except AwsError:
            return None  # the queue was deleted

    async def _wait(self, timeout: float) -> None:
        queue = self._queues.by_arn(self.mapping.source_arn)
        if queue is None:
            await asyncio.sleep(min(timeout, MISSING_SOURCE_RETRY_S))
            return
        upcoming = self._queues.next_visible_in(queue)
        if upcoming is not None:
            timeout = min(timeout, upcoming + 0.01)
        loop = asyncio.get_running_loop()
        started = loop.time()
        woken = await self._queues.wait_for_messages(queue.arn, max(timeout, 0.001))
        if not woken and loop.time() - started < min(timeout, 0.01):
            # The queue service no longer waits (it is shutting down): never spin on it.
            await asyncio.sleep(min(timeout, 0.5))

    async def _collect(self) -> list[dict[str, Any]]:
        """One batch: whatever is available now (window 0), or up to BatchSize within the window."""
        cfg = self.mapping.config
        loop = asyncio.get_running_loop()
        batch = self._receive(min(cfg.batch_size, 10) if cfg.window_s == 0 else cfg.batch_size)
        if not batch:
            await self._wait(self._poll_wait_s)
            batch = self._receive(min(cfg.batch_size, 10) if cfg.window_s == 0 else cfg.batch_size)
            if not batch:
                return []
        if cfg.window_s > 0:
            deadline = loop.time() + cfg.window_s
            size = sum(len(m.get("Body", "")) for m in batch)
            while len(batch) < cfg.batch_size and size < MAX_PAYLOAD_BYTES and not self._stopping:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                await self._wait(remaining)
                more = self._receive(cfg.batch_size - len(batch)) or []
                batch.extend(more)
                size += sum(len(m.get("Body", "")) for m in more)
        return batch

    # -- one batch ----------------------------------------------------------------------------------

    def _delete(self, records: list[dict[str, Any]]) -> None:
        m = self.mapping
        for record in records:
            try:
                self._queues.delete(m.account, m.region, m.source_arn, record["receiptHandle"])
                self.stats["deleted"] += 1
            except AwsError:
                pass  # the queue is gone: nothing left to delete

    async def _process(self, messages: list[dict[str, Any]]) -> None:
        m = self.mapping
        records = [lambda_record(msg, m.source_arn, m.region) for msg in messages]
        if self._filters:
            verdicts = [batching.keep(self._filters, batching.sqs_filter_view(r)) for r in records]
            kept = [r for r, ok in zip(records, verdicts, strict=True) if ok]
            dropped = [r for r, ok in zip(records, verdicts, strict=True) if not ok]
            self.stats["filtered"] += len(dropped)
            self._delete(dropped)
            records = kept
        records, trace_header = self._stop_loops(records)
        if not records:
            return
        self.stats["batches"] += 1
        self.stats["invoked"] += len(records)
        payload = json.dumps({"Records": records}).encode()
        try:
            result = await self._invoke(m.account, m.region, m.function_arn, payload, trace_header=trace_header)
        except Exception:
            log.exception("mapping %s: invoking %s failed", m.uuid, m.function_arn)
            self.stats["failed"] += len(records)
            return
        if result.missing:
            self._on_result(RESULT_FUNCTION_MISSING)
            self.stats["failed"] += len(records)
            return
        if result.function_error is not None:
            self._on_result(RESULT_FUNCTION_FAILED)
            self.stats["failed"] += len(records)
            return
        self._on_result(RESULT_OK)
        if not m.config.report_failures:
            self._delete(records)
            return
        verdict = batching.item_failures(result.payload, [r["messageId"] for r in records])
        if verdict.all_failed:
            self.stats["failed"] += len(records)
            return
        self.stats["failed"] += len(verdict.failed)
        self._delete([r for r in records if r["messageId"] not in verdict.failed])

    def _stop_loops(self, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
        """Recursive loop detection (AWS's): a message whose trace header says this function already ran
        16 times in its chain is not delivered. Decision: it stays in the queue when the queue has a
        redrive policy (its dead-letter queue takes it after maxReceiveCount, as any failing message),
        otherwise it is deleted; either way the stop is logged and counted. The batch continues the
        chain of its longest lineage."""
        m = self.mapping
        headers = {r["messageId"]: r.get("attributes", {}).get("AWSTraceHeader") for r in records}
        stopped = [r for r in records
                   if self._invoke.stops_loop(m.account, m.region, m.function_arn, headers[r["messageId"]])]
        if stopped:
            self.stats["recursive_stopped"] = self.stats.get("recursive_stopped", 0) + len(stopped)
            log.warning("mapping %s: stopped a recursive loop of %s (%d message(s))", m.uuid, m.function_arn,
                        len(stopped))
            if not self._has_redrive():
                self._delete(stopped)
        kept = [r for r in records if r not in stopped]
        kept_headers = [h for r in kept if (h := headers[r["messageId"]])]
        if not kept_headers:
            return kept, None
        ref = parse_function_ref(m.function_arn)
        arn = function_arn(ref.region or m.region, ref.account or m.account, ref.name)
        return kept, max(kept_headers, key=lambda h: lineage.hops(h, arn))

    def _has_redrive(self) -> bool:
        m = self.mapping
        try:
            return self._queues.require_arn(m.source_arn, m.account).redrive() is not None
        except Exception:
            return False

    def statistics(self) -> dict[str, int]:
        return {**self.stats, "pollers": len(self._workers),
                "busy": sum(1 for busy in self._workers.values() if busy)}
