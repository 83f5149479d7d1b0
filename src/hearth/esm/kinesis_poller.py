"""The poller of one stream event source mapping (a Kinesis stream or a DynamoDB stream, through a
`StreamSource`): per shard, in order, one batch in flight.

It owns each shard's reading position and what a failing batch does:
- a shard reads from its durable checkpoint (else from StartingPosition: TRIM_HORIZON, LATEST or
  AT_TIMESTAMP, saved at once so a restart keeps the position) and checkpoints after a batch is
  done (delivered, or handed to the on-failure destination);
- ParallelizationFactor N: the records read are split into N lanes by partition key (order per key
  holds), each lane running its batches one after another, lanes concurrently;
- a function error retries the same batch until MaximumRetryAttempts (-1: until its records are
  too old or expire) or MaximumRecordAgeInSeconds; what is given up goes to DestinationConfig
  OnFailure as AWS's failure record (the source's batch description: KinesisBatchInfo or
  DDBStreamBatchInfo, with the shard and sequence range);
- BisectBatchOnFunctionError splits a failing batch in halves and retries each; as AWS documents,
  splitting a batch does not count towards the retry quota: only a failure that cannot be split
  (one record left) is a retry. A poison record is thus isolated and given up alone;
- ReportBatchItemFailures: the batch is checkpointed up to the lowest failed sequence number and
  retried from there;
- FilterCriteria: records no pattern matches are skipped (checkpointed past) without invoking;
- TumblingWindowInSeconds: batches never span windows, carry the window and the function's state,
  and a final invocation closes each window (hearth.esm.windows).
Iterator age (ms since the last record of a batch arrived) is a gauge:
`hearth_esm_iterator_age_milliseconds{mapping, shard}`.

It never writes to the stream and never invokes except through the injected `Invoke`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from hearth.esm import batching
from hearth.esm.model import RESULT_FUNCTION_FAILED, RESULT_FUNCTION_MISSING, RESULT_OK, Mapping
from hearth.esm.store import MappingStore
from hearth.esm.stream_source import KinesisSource, StreamSource, iso, parse_stream_arn
from hearth.esm.target import Invoke, InvokeResult
from hearth.esm.windows import TumblingWindows
from hearth.events.delivery import Message
from hearth.observability import metrics
from hearth.services.kinesis.streams import StreamService, partition_hash

log = logging.getLogger(__name__)

POLL_WAIT_S = 5.0  # a put wakes the shard at once; this only bounds noticing a deleted stream
RETRY_BACKOFF_S = (0.05, 1.0)  # first retry delay, cap (doubling)
DRAIN_S = 5.0
Deliver = Callable[[str, Message], Awaitable[None]]

ITERATOR_AGE = metrics.gauge("hearth_esm_iterator_age_milliseconds",
                             "Age of the last record of the latest batch a stream mapping read, per shard")


class _Stopping(Exception):
    """The poller is stopping while a batch waits to be retried: leave it without a checkpoint."""


__all__ = ["KinesisPoller", "parse_stream_arn"]
StoredRecord = Any  # a source's record (hearth.esm.stream_source.SourceRecord)


class KinesisPoller:
    def __init__(self, mapping: Mapping, streams: StreamService | StreamSource, store: MappingStore, invoke: Invoke,
                 deliver: Deliver, *, on_result: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 poll_wait_s: float = POLL_WAIT_S) -> None:
        self.mapping = mapping
        self._source: StreamSource = (KinesisSource(streams, mapping.source_arn) if isinstance(streams, StreamService)
                                      else streams)
        self._store = store
        self._invoke = invoke
        self._deliver = deliver
        self._on_result = on_result or (lambda _result: None)
        self._clock = clock
        self._sleep = sleep
        self._poll_wait_s = poll_wait_s
        self._filters = batching.compile_filters(mapping.config.filters)
        seconds = mapping.config.tumbling_window_s
        self._windows = TumblingWindows(seconds) if seconds > 0 else None
        self._tasks: list[asyncio.Task[None]] = []
        self._busy: set[int] = set()  # shards with a batch in flight
        self._stopping = False
        self.stats: dict[str, int] = {"batches": 0, "records": 0, "retries": 0, "bisections": 0,
                                      "discarded": 0, "filtered": 0}

    def start(self) -> None:
        count = self._source.shard_count()
        if count is None:
            log.warning("mapping %s: stream %s does not exist", self.mapping.uuid, self.mapping.source_arn)
            return
        loop = asyncio.get_running_loop()
        for shard in range(count):
            task = loop.create_task(self._shard_loop(shard))
            task.add_done_callback(self._finished)
            self._tasks.append(task)

    def _finished(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("stream poller of mapping %s ended", self.mapping.uuid, exc_info=task.exception())

    async def stop(self, drain_s: float = DRAIN_S) -> None:
        """Stop every shard: idle ones at once; one with a batch in flight may finish and checkpoint it
        for up to `drain_s` (a batch cut short is not checkpointed, so it is delivered again later)."""
        self._stopping = True
        for shard, task in enumerate(self._tasks):
            if shard not in self._busy:
                task.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=drain_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    # -- positions ----------------------------------------------------------------------------------

    def _start_counter(self, shard: int) -> int:
        saved = self._store.checkpoint(self.mapping.uuid, shard)
        if saved is not None:
            return saved
        cfg = self.mapping.config
        if cfg.starting_position == "LATEST":
            counter = self._source.next_counter(shard)
        elif cfg.starting_position == "AT_TIMESTAMP" and cfg.starting_timestamp is not None:
            counter = self._source.first_counter_at(shard, cfg.starting_timestamp)
        else:  # TRIM_HORIZON: the oldest record still retained
            counter = 0
        self._store.save_checkpoint(self.mapping.uuid, shard, counter)
        return counter

    async def _shard_loop(self, shard: int) -> None:
        m = self.mapping
        cfg = m.config
        if self._source.shard_count() is None:
            return
        labels = {"mapping": m.uuid, "shard": self._source.shard_id(shard)}
        cursor = self._start_counter(shard)
        limit = cfg.batch_size * cfg.parallelization
        while not self._stopping:
            if self._source.shard_count() is None:
                return  # the stream was deleted: nothing more will arrive
            records = self._source.read(shard, cursor, limit)
            if not records:
                ITERATOR_AGE.set(0, labels)
                wait = self._poll_wait_s
                if self._windows is not None:
                    if self._windows.ended(shard, self._clock()):
                        await self._close_window(shard)
                    wait = min(wait, self._windows.seconds_left(shard, self._clock()) or wait)
                await self._source.wait(wait)
                continue
            if cfg.window_s > 0 and len(records) < limit:
                records = await self._fill(shard, cursor, limit, records)
            ITERATOR_AGE.set(max(0.0, (self._clock() - records[-1].arrival) * 1000), labels)
            self._busy.add(shard)
            try:
                await self._deliver_records(shard, records)
                cursor = records[-1].counter + 1
                self._store.save_checkpoint(m.uuid, shard, cursor)
            except _Stopping:
                return
            finally:
                self._busy.discard(shard)

    async def _fill(self, shard: int, cursor: int, limit: int,
                    records: list[StoredRecord]) -> list[StoredRecord]:
        """The batching window: keep reading until the batch is full or the window closes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.mapping.config.window_s
        while len(records) < limit and (remaining := deadline - loop.time()) > 0:
            await self._source.wait(remaining)
            records = self._source.read(shard, cursor, limit)
        return records

    # -- delivery -----------------------------------------------------------------------------------

    async def _deliver_records(self, shard: int, records: list[StoredRecord]) -> None:
        cfg = self.mapping.config
        if self._filters:
            kept = [r for r in records if batching.keep(self._filters, self._source.filter_view(r))]
            self.stats["filtered"] += len(records) - len(kept)
            records = kept
        if self._windows is not None:
            await self._deliver_windowed(shard, records)
            return
        if not records:
            return
        if cfg.parallelization == 1:
            lanes = [records]
        else:
            by_lane: dict[int, list[StoredRecord]] = {}
            for r in records:
                by_lane.setdefault(partition_hash(r.partition_key) % cfg.parallelization, []).append(r)
            lanes = list(by_lane.values())
        await asyncio.gather(*(self._run_lane(shard, lane) for lane in lanes))

    async def _deliver_windowed(self, shard: int, records: list[StoredRecord]) -> None:
        """Batches within one window each (one lane: the state is a sequence), then close ended windows."""
        assert self._windows is not None
        for start, group in self._windows.split(records):
            current = self._windows.current(shard)
            if current is not None and current.start != start:
                await self._close_window(shard)
            self._windows.open(shard, start)
            await self._run_lane(shard, group)
        if self._windows.ended(shard, self._clock()):
            await self._close_window(shard)

    async def _close_window(self, shard: int) -> None:
        """The window's final invocation (no records, its aggregate state); then the state is dropped."""
        assert self._windows is not None
        m = self.mapping
        payload = {"Records": [], **self._windows.fields(shard, self._source.shard_id(shard), m.source_arn,
                                                         final=True)}
        try:
            result = await self._invoke(m.account, m.region, m.function_arn, json.dumps(payload).encode())
            if result.failed:
                log.warning("mapping %s: the final invocation of a window failed (%s)", m.uuid,
                            result.function_error)
        except Exception:
            log.exception("mapping %s: the final invocation of a window failed", m.uuid)
        self._windows.close(shard)

    async def _run_lane(self, shard: int, records: list[StoredRecord]) -> None:
        size = self.mapping.config.batch_size
        for start in range(0, len(records), size):
            await self._run_batch(shard, records[start:start + size])

    async def _run_batch(self, shard: int, batch: list[StoredRecord]) -> None:
        """One batch until it is delivered or given up (retries, bisection, partial failures)."""
        cfg = self.mapping.config
        pending: deque[tuple[list[StoredRecord], int]] = deque([(batch, 0)])  # (records, failed attempts)
        while pending:
            part, attempts = pending.popleft()
            if cfg.max_record_age_s != -1:
                now = self._clock()
                old = [r for r in part if now - r.arrival > cfg.max_record_age_s]
                if old:
                    await self._give_up(shard, old, "RecordAgeExceeded", None, attempts)
                    part = [r for r in part if now - r.arrival <= cfg.max_record_age_s]
                    if not part:
                        continue
            result = await self._call(part, shard)
            self.stats["batches"] += 1
            failed = self._failed_tail(part, result)
            if not failed:
                if self._windows is not None:
                    self._windows.absorb(shard, result.payload)
                self.stats["records"] += len(part)
                self._on_result(RESULT_OK)
                continue
            self._on_result(RESULT_FUNCTION_MISSING if result.missing else RESULT_FUNCTION_FAILED)
            self.stats["records"] += len(part) - len(failed)
            if cfg.bisect and len(failed) > 1:
                first, second = batching.halves(failed)
                self.stats["bisections"] += 1
                pending.appendleft((second, attempts))  # a split is not a retry (AWS)
                pending.appendleft((first, attempts))
                continue
            attempts += 1
            if cfg.max_retries != -1 and attempts > cfg.max_retries:
                await self._give_up(shard, failed, "RetryAttemptsExhausted", result, attempts)
                continue
            if self._stopping:
                raise _Stopping
            self.stats["retries"] += 1
            await self._sleep(min(RETRY_BACKOFF_S[0] * 2 ** (attempts - 1), RETRY_BACKOFF_S[1]))
            pending.appendleft((failed, attempts))

    async def _call(self, part: list[StoredRecord], shard: int) -> InvokeResult:
        m = self.mapping
        records = [self._source.event_record(r) for r in part]
        if any("invokeIdentityArn" in r for r in records):  # Kinesis records name the function's role
            role = self._invoke.role(m.account, m.region, m.function_arn)
            for r in records:
                if "invokeIdentityArn" in r:
                    r["invokeIdentityArn"] = role
        event: dict[str, Any] = {"Records": records}
        if self._windows is not None:
            event.update(self._windows.fields(shard, self._source.shard_id(shard), m.source_arn, final=False))
        payload = json.dumps(event).encode()
        try:
            return await self._invoke(m.account, m.region, m.function_arn, payload)
        except Exception:
            log.exception("mapping %s: invoking %s failed", m.uuid, m.function_arn)
            return InvokeResult(b"", "Unhandled")

    def _failed_tail(self, part: list[StoredRecord], result: InvokeResult) -> list[StoredRecord]:
        """The records to retry: none, all, or (ReportBatchItemFailures) from the lowest failed one."""
        if result.failed:
            return part
        if not self.mapping.config.report_failures:
            return []
        verdict = batching.item_failures(result.payload, [r.sequence_number for r in part])
        if verdict.all_failed:
            return part
        for index, record in enumerate(part):
            if record.sequence_number in verdict.failed:
                return part[index:]
        return []

    async def _give_up(self, shard: int, records: list[StoredRecord], condition: str,
                       result: InvokeResult | None, attempts: int) -> None:
        """Skip records for good; tell the on-failure destination with AWS's record."""
        m = self.mapping
        self.stats["discarded"] += len(records)
        target = m.config.on_failure
        log.warning("mapping %s: %s; %d records of %s skipped", m.uuid, condition, len(records),
                    self._source.shard_id(shard))
        if not target:
            return
        doc: dict[str, Any] = {
            "requestContext": {
                "requestId": result.request_id if result is not None and result.request_id else "",
                "functionArn": m.function_arn,
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": result.executed_version if result is not None else "$LATEST",
                # null when the function answered without error (its batch item failures failed the
                # records), as AWS's record; "" when no answer came at all.
                "functionError": result.function_error if result is not None else "",
            },
            "version": "1.0",
            "timestamp": iso(self._clock()),
        }
        info_name, info = self._source.batch_info(shard, records)
        doc[info_name] = info
        try:
            await self._deliver(target, Message(body=json.dumps(doc), source_arn=m.function_arn))
        except Exception:
            log.exception("mapping %s: the on-failure destination %s refused the failure record", m.uuid, target)

    def statistics(self) -> dict[str, int]:
        return {**self.stats, "shards": len(self._tasks)}
