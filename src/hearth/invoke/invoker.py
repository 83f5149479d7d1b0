"""Running one invocation end to end: pick an environment, run, log, answer.

It owns the result a caller sees (payload, function error, log tail, executed version) and the
writing of each invocation's log events. It never parses AWS requests (the Lambda provider does)
and never isolates anything (the pool and sandbox do).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from hearth.functions.model import FunctionVersion
from hearth.invoke import logs
from hearth.invoke.environment import InitFailure
from hearth.invoke.launch import LaunchError
from hearth.invoke.limiter import ConcurrencyLimiter, Lease, Throttled
from hearth.invoke.pool import EnvironmentPool
from hearth.observability.metrics import InvokeMetrics
from hearth.runtime_api.channel import Invocation, ResponseStream

log = logging.getLogger(__name__)


class LogSink(Protocol):
    def ensure_group(self, account: str, region: str, group: str) -> None: ...
    def ensure_stream(self, account: str, region: str, group: str, stream: str) -> None: ...
    def append(self, account: str, region: str, group: str, stream: str,
               events: list[tuple[int, str]]) -> None: ...


@dataclass(frozen=True)
class InvokeOutcome:
    request_id: str
    payload: bytes
    function_error: str | None  # "Unhandled" when the function (or its runtime) failed
    error_type: str | None  # the precise type, for logs and metrics
    executed_version: str
    log_tail: str | None  # base64 of the last 4 KB, when asked
    duration_ms: float
    cold: bool


class Invoker:
    def __init__(self, pool: EnvironmentPool, log_sink: LogSink) -> None:
        self._pool = pool
        self._logs = log_sink
        self._background: set[asyncio.Task[None]] = set()
        self.invocations = 0
        self.errors = 0
        # Set by the server: admission (the concurrency limiter) and the invoke metrics.
        self.limiter: ConcurrencyLimiter | None = None
        self.metrics: InvokeMetrics | None = None

    async def invoke(
        self, fv: FunctionVersion, payload: bytes, *, lease: Lease | None = None, wait_for_capacity: bool = False,
        **options: Any,
    ) -> InvokeOutcome:
        """Admit (a concurrency lease: `Throttled` when none is free and `wait_for_capacity` is off), run,
        count. A caller that already holds a lease (the async queue, after `try_acquire`) passes it in;
        it is released here either way. `options` are `_run`'s keyword arguments."""
        if lease is None and self.limiter is not None:
            try:
                lease = await self.limiter.acquire(fv, wait=wait_for_capacity)
            except Throttled:
                if self.metrics is not None:
                    self.metrics.throttled(fv.name, fv.version)
                raise
        try:
            outcome = await self._run(fv, payload, **options)
        finally:
            if lease is not None:
                lease.release()
        if self.metrics is not None:
            self.metrics.invoked(fv.name, fv.version, duration_s=outcome.duration_ms / 1000,
                                 error=outcome.function_error is not None, cold=outcome.cold)
        return outcome

    async def _run(
        self,
        fv: FunctionVersion,
        payload: bytes,
        *,
        tail: bool = False,
        client_context: str | None = None,
        request_id: str | None = None,
        trace_id: str | None = None,
        stream: ResponseStream | None = None,  # takes a streamed response as it is produced
        invoked_arn: str | None = None,  # the ARN the caller named (an alias ARN stays an alias ARN)
    ) -> InvokeOutcome:
        request_id = request_id or str(uuid.uuid4())
        trace_id = trace_id or _trace_id()
        self.invocations += 1
        try:
            env, cold = await self._pool.acquire(fv)
        except InitFailure as failure:
            self.errors += 1
            events = [*failure.init_log, (int(time.time() * 1000), logs.init_report_line(failure.error_type))]
            self.write_logs(fv, f"{logs.log_stream_name(fv.version, uuid.uuid4().hex)}", events)
            return InvokeOutcome(request_id, failure.payload, "Unhandled", failure.error_type, fv.version,
                                 logs.tail(events) if tail else None, 0.0, True)
        except LaunchError as exc:
            self.errors += 1
            payload_out = json.dumps({"errorType": exc.error_type, "errorMessage": exc.message}).encode()
            return InvokeOutcome(request_id, payload_out, "Unhandled", exc.error_type, fv.version, None, 0.0, True)
        invocation = Invocation(
            request_id=request_id,
            payload=payload,
            deadline_ms=int(time.time() * 1000) + fv.timeout_s * 1000,
            invoked_function_arn=invoked_arn or (fv.function_arn if fv.version == "$LATEST" else fv.qualified_arn),
            trace_id=trace_id,
            client_context=client_context,
            sink=stream,
        )
        try:
            run = await env.invoke(invocation, float(fv.timeout_s))
        finally:
            self._pool.release(fv, env)
        self.write_logs(fv, env.log_stream, run.events)
        error_type = run.result.error_type
        if error_type is not None:
            self.errors += 1
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

    def invoke_in_background(self, fv: FunctionVersion, payload: bytes, request_id: str) -> None:
        """`InvocationType=Event` until the durable async queue exists: run once, in the background."""
        task = asyncio.create_task(self._run_event(fv, payload, request_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _run_event(self, fv: FunctionVersion, payload: bytes, request_id: str) -> None:
        try:
            # Throttled events wait for capacity instead of failing (until the durable async queue
            # takes this over with its own retry policy).
            await self.invoke(fv, payload, request_id=request_id, wait_for_capacity=True)
        except Exception:
            log.exception("event invocation %s of %s failed", request_id, fv.function_arn)

    def write_logs(self, fv: FunctionVersion, stream: str, events: list[tuple[int, str]]) -> None:
        group = fv.effective_log_group
        try:
            self._logs.ensure_group(fv.account_id, fv.region, group)
            self._logs.ensure_stream(fv.account_id, fv.region, group, stream)
            self._logs.append(fv.account_id, fv.region, group, stream, events)
        except Exception:  # logging must never fail an invocation
            log.exception("writing logs of %s failed", fv.function_arn)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    def statistics(self) -> dict[str, object]:
        return {"invocations": self.invocations, "errors": self.errors, "background": len(self._background)}


def _trace_id() -> str:
    # X-Ray's format: Root=1-<8 hex epoch seconds>-<24 hex>;Parent=<16 hex>;Sampled=0
    return f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()};Parent={os.urandom(8).hex()};Sampled=0"
