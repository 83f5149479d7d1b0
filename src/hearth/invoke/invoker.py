"""The data plane's front door: running one invocation end to end (admit, pick an environment, run,
log, answer), preparing a version's snapshot, retiring a changed function's environments, statistics.

    invoke(InvokeRequest) -> InvokeOutcome     every caller: Invoke, streams, URLs, async queue, mappings
    prepare(version) / snapshot_applies(...)   SnapStart, for the function service
    retire(function_arn, ...)                  a function changed or was deleted
    statistics()

It owns the result a caller sees (payload, function error, log tail, executed version). It is built
on what lies below it (the pool, the limiter, the function logs) and nothing below calls up into it.
It never parses AWS requests (the Lambda provider does) and never isolates anything (the pool and
sandbox do).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
import uuid
from typing import Protocol

from hearth.functions.model import FunctionVersion
from hearth.invoke import logs
from hearth.invoke.environment import Environment, InitFailure, RunResult
from hearth.invoke.errors import Throttled, ThrottleReason
from hearth.invoke.launch import LaunchError
from hearth.invoke.limiter import ConcurrencyLimiter, Lease
from hearth.invoke.logs import FunctionLogs
from hearth.invoke.platform_log import LogStyle
from hearth.invoke.pool import EnvironmentPool
from hearth.invoke.request import InvokeOutcome, InvokeRequest
from hearth.observability.metrics import InvokeMetrics
from hearth.observability.spans import InvocationSpans, Phases, SpanIds
from hearth.runtime_api.channel import Invocation

log = logging.getLogger(__name__)

__all__ = ["InvokeOutcome", "InvokeRequest", "Invoker"]


class Elsewhere(Protocol):
    """Scale-out: runs an invocation on another node when that is the better place (hearth.cluster.placement)."""

    async def run_elsewhere(self, request: InvokeRequest, *, throttled: bool = False) -> InvokeOutcome | None: ...


class Invoker:
    def __init__(self, pool: EnvironmentPool, function_logs: FunctionLogs, *,
                 limiter: ConcurrencyLimiter | None = None, metrics: InvokeMetrics | None = None,
                 spans: InvocationSpans | None = None, elsewhere: Elsewhere | None = None) -> None:
        self._pool = pool
        self._logs = function_logs
        self._background: set[asyncio.Task[None]] = set()
        self.invocations = 0
        self.errors = 0
        self._limiter = limiter  # admission (None: every invocation is admitted, as in unit tests)
        self._metrics = metrics
        self._spans = spans  # OTLP export of the platform phases (None: HEARTH_OTLP_ENDPOINT unset)
        self._elsewhere = elsewhere  # a cluster's other nodes (None: one node)

    async def invoke(self, request: InvokeRequest) -> InvokeOutcome:
        """Admit (a concurrency lease: `Throttled` when none is free and `wait_for_capacity` is off), run,
        count. A caller that already holds a lease (the async queue, after `try_acquire`) passes it in;
        it is released here either way."""
        fv = request.version
        lease: Lease | None = request.lease
        if self._elsewhere is not None and lease is None and not request.local:
            forwarded = await self._elsewhere.run_elsewhere(request)
            if forwarded is not None:
                return forwarded
        if lease is None and self._limiter is not None:
            try:
                lease = await self._limiter.acquire(fv, wait=request.wait_for_capacity)
            except Throttled as exc:
                # Past this node's share of the account limit: another node may have room for it.
                if self._elsewhere is not None and exc.reason is ThrottleReason.ACCOUNT and not request.local:
                    forwarded = await self._elsewhere.run_elsewhere(request, throttled=True)
                    if forwarded is not None:
                        return forwarded
                if self._metrics is not None:
                    self._metrics.throttled(fv.name, fv.version)
                raise
        holder = [lease]  # _run takes the lease when the invocation outlives its answer (extensions)
        try:
            outcome = await self._run(request, holder)
        finally:
            if holder[0] is not None:
                holder[0].release()
        if self._metrics is not None:
            self._metrics.invoked(fv.name, fv.version, duration_s=outcome.duration_ms / 1000,
                                  error=outcome.function_error is not None, cold=outcome.cold)
        return outcome

    async def _run(self, request: InvokeRequest, holder: list[Lease | None] | None = None) -> InvokeOutcome:
        fv, tail = request.version, request.tail
        request_id = request.request_id or str(uuid.uuid4())
        trace_id = request.trace_id or _trace_id()
        span_ids = None
        if self._spans is not None:  # the function's Parent becomes Hearth's function span
            span_ids = self._spans.begin(trace_id)
            trace_id = span_ids.header
        self.invocations += 1
        acquiring_ns = time.time_ns() if self._spans is not None else 0
        try:
            env, cold = await self._pool.acquire(fv)
        except InitFailure as failure:
            self.errors += 1
            if self._spans is not None and span_ids is not None:  # the failed INIT, as its own span
                now = time.time_ns()
                self._record_spans(request, span_ids, Phases(now, now, init_ms=(now - acquiring_ns) / 1e6,
                                                             invoked=False),
                                   request_id=request_id, cold=True, invoked_arn=request.invoked_arn,
                                   error_type=failure.error_type)
            report = LogStyle.of(fv).render(logs.init_report_record("on-demand", error_type=failure.error_type))
            events = [*failure.init_log]
            if report is not None:
                events.append((int(time.time() * 1000), report))
            self._logs.write(fv, f"{logs.log_stream_name(fv.version, uuid.uuid4().hex)}", events)
            return InvokeOutcome(request_id, failure.payload, "Unhandled", failure.error_type, fv.version,
                                 logs.tail(events) if tail else None, 0.0, True)
        except LaunchError as exc:
            self.errors += 1
            payload_out = json.dumps({"errorType": exc.error_type, "errorMessage": exc.message}).encode()
            return InvokeOutcome(request_id, payload_out, "Unhandled", exc.error_type, fv.version, None, 0.0, True)
        invocation = Invocation(
            request_id=request_id,
            payload=request.payload,
            deadline_ms=int(time.time() * 1000) + fv.timeout_s * 1000,
            invoked_function_arn=request.invoked_arn or (
                fv.function_arn if fv.version == "$LATEST" else fv.qualified_arn),
            trace_id=trace_id,
            client_context=request.client_context,
            sink=request.stream,
        )
        try:
            run = await env.invoke(invocation, float(fv.timeout_s))
        except BaseException:
            self._pool.release(fv, env)
            raise
        if run.after is None:
            self._pool.release(fv, env)
            self._logs.write(fv, env.log_stream, run.events)
        else:
            # Extensions still work on this invocation: the caller gets its answer now; the environment,
            # the concurrency lease and the log (with its REPORT) follow when they are done.
            lease = holder[0] if holder else None
            if holder:
                holder[0] = None
            task = asyncio.create_task(self._finish_later(fv, env, run.after, lease))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        error_type = run.result.error_type
        if error_type is not None:
            self.errors += 1
        if self._spans is not None and span_ids is not None:
            self._export_spans(request, invocation, span_ids, run, cold)
        return InvokeOutcome(
            request_id=request_id,
            payload=run.result.payload,
            function_error="Unhandled" if error_type is not None else None,
            error_type=error_type,
            executed_version=fv.version,
            log_tail=logs.tail(run.events) if tail else None,
            duration_ms=run.duration_ms,
            cold=cold,
        )

    def _export_spans(self, request: InvokeRequest, invocation: Invocation, ids: SpanIds, run: RunResult,
                      cold: bool) -> None:
        assert self._spans is not None
        end = time.time_ns()
        phases = Phases(invoke_start_ns=end - int(run.duration_ms * 1_000_000), invoke_end_ns=end,
                        init_ms=run.init_duration_ms, restore_ms=run.restore_ms, extensions_ms=run.extensions_ms)
        self._record_spans(request, ids, phases, request_id=invocation.request_id, cold=cold,
                           invoked_arn=invocation.invoked_function_arn, error_type=run.result.error_type)

    def _record_spans(self, request: InvokeRequest, ids: SpanIds, phases: Phases, *, request_id: str, cold: bool,
                      invoked_arn: str | None, error_type: str | None) -> None:
        assert self._spans is not None
        try:
            self._spans.record(request.version, ids, phases, request_id=request_id, cold=cold,
                               invoked_arn=invoked_arn, error_type=error_type)
        except Exception:  # tracing must never fail an invocation
            log.exception("recording the spans of %s failed", request_id)

    async def _finish_later(self, fv: FunctionVersion, env: Environment,
                            after: asyncio.Task[list[tuple[int, str]]], lease: Lease | None) -> None:
        try:
            events = await after
            self._logs.write(fv, env.log_stream, events)
            if self._metrics is not None:
                self._metrics.post_runtime_extensions.observe(env.post_runtime_extensions_ms / 1000,
                                                              self._metrics.labels(fv.name, fv.version))
        except Exception:
            log.exception("finishing invocation on environment %s failed", env.env_id)
        finally:
            self._pool.release(fv, env)
            if lease is not None:
                lease.release()

    def invoke_in_background(self, request: InvokeRequest) -> None:
        """`InvocationType=Event` without the durable async queue (unit rigs): run once, in the
        background; a throttled event waits for capacity instead of failing."""
        task = asyncio.create_task(self._run_event(dataclasses.replace(request, wait_for_capacity=True)))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _run_event(self, request: InvokeRequest) -> None:
        try:
            await self.invoke(request)
        except Exception:
            log.exception("event invocation %s of %s failed", request.request_id, request.version.function_arn)

    # -- SnapStart, changes, statistics -------------------------------------------------------------

    def snapshot_applies(self, fv: FunctionVersion) -> bool:
        """Whether new environments of `fv` are restored from a snapshot (SnapStart)."""
        return self._pool.snapshot_applies(fv)

    async def prepare(self, fv: FunctionVersion) -> None:
        """Make `fv` ready before it is invoked: take its snapshot (PublishVersion of a SnapStart
        version). Raises SnapshotFailed."""
        await self._pool.prepare_snapshot(fv)

    async def retire(self, function_arn: str, *, version: str | None = None,
                     keep_revision: str | None = None) -> None:
        """A function changed (`keep_revision`: the new revision, whose environments stay) or was
        deleted (`version` None: every version): its other environments go, idle ones now, busy ones
        when they finish; a deleted function's concurrency accounting is forgotten."""
        if version is None and keep_revision is None and self._limiter is not None:
            self._limiter.forget_function(function_arn)
        await self._pool.retire(function_arn, version=version, keep_revision=keep_revision)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    def statistics(self) -> dict[str, object]:
        return {"invocations": self.invocations, "errors": self.errors, "background": len(self._background),
                "environments": self._pool.statistics()}


def _trace_id() -> str:
    # X-Ray's format: Root=1-<8 hex epoch seconds>-<24 hex>;Parent=<16 hex>;Sampled=0
    return f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()};Parent={os.urandom(8).hex()};Sampled=0"
