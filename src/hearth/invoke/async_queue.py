"""The durable queue of asynchronous invocations (`InvocationType=Event`, destinations, topic and rule
deliveries to functions): storage, dispatch, retries, event age, destinations, dead-letter queues and
recursive loop stops.

It owns the `async_events` component tables and the state machine of one event:

    queued --run--> succeeded ............. -> OnSuccess destination, then forgotten
       ^      |---> function error, retries left -> queued (after ~1 min, then ~2 min)
       |      |---> function error, none left ---> RetriesExhausted -> OnFailure / DLQ
       |      |---> throttled / system error ----> queued (back-off 1 s .. 5 min; a throttled event runs
       |      |                                     sooner when an invocation of its function ends)
       |      |---> reserved concurrency 0 -------> ZeroReservedConcurrency -> OnFailure / DLQ
       |      '---> older than MaximumEventAgeInSeconds -> EventAgeExceeded -> OnFailure / DLQ
       |      '---> 17th run of a function in one chain -> RecursiveInvocationException -> OnFailure / DLQ
       '-- restart: every stored event is queued again (stage `run`) or re-delivered (stage `deliver`)

Rules (written down in docs/design.md too):
- Acknowledged means committed: `enqueue` returns only after the row is committed (WAL, synchronous=FULL).
- At-least-once: an event runs until an outcome is recorded; a crash during a run runs it again, and a
  crash between recording an outcome and its deliveries delivers again. Retries keep the request id.
- The function's concurrency is the invoker's business (`invoker.invoke`); a 429 from it is a throttle.
- Destinations and DLQs go through the DeliveryRouter; a failed delivery is counted and logged, never
  retried forever and never silent.
It never parses AWS requests, never runs code itself and never imports another service.

Time comes from a `Clock`; tests use `ManualClock`, and `HEARTH_ASYNC_TIME_SCALE` runs this queue's
clock (and only it) faster than the wall clock so integration tests see minutes pass in seconds.
"""

from __future__ import annotations

import asyncio
import base64
import heapq
import itertools
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from hearth.config import Settings
from hearth.events import lineage
from hearth.events.delivery import DeliveryError, DeliveryRouter, Message
from hearth.functions.errors import AccessDenied, Conflict, FunctionsError, InvalidParameter, NotFound
from hearth.functions.model import FunctionVersion
from hearth.functions.names import InvalidFunctionRef, parse_function_ref
from hearth.invoke.errors import NotAccepting, Throttled, ThrottleReason
from hearth.invoke.request import InvokeOutcome, InvokeRequest
from hearth.store.component import ComponentDb

log = logging.getLogger("hearth.async")

# The asynchronous payload limit: 1 MB since AWS raised it from 256 KB (October 2025), as AWS counts a
# MB for Lambda's payloads (its 6 MB synchronous limit is 6 times 1,048,576 bytes). This is the one place
# that says so (the Invoke operation imports it).
ASYNC_PAYLOAD_LIMIT = 1024 * 1024
INTERNAL_PAYLOAD_LIMIT = 6 * 1024 * 1024  # destination records and topic deliveries carry more

DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_EVENT_AGE_S = 21_600
RECURSION_CONDITION = "RecursiveInvocationException"
# A delivery that names a function it cannot reach says why in the router's vocabulary, which
# spells the reasons as AWS's error codes (they end up in DLQ attributes and delivery logs).
_ERROR_CODES: dict[type[FunctionsError], str] = {
    NotFound: "ResourceNotFoundException",
    AccessDenied: "AccessDeniedException",
    InvalidParameter: "InvalidParameterValueException",
    Conflict: "ResourceConflictException",
}

COMPONENT = "async_events"
MIGRATIONS = [
    """
    CREATE TABLE async_events (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        function_name TEXT NOT NULL,
        qualifier TEXT,
        payload BLOB NOT NULL,
        trace_header TEXT,
        enqueued_at REAL NOT NULL,
        next_attempt_at REAL NOT NULL,
        invoke_count INTEGER NOT NULL DEFAULT 0,
        function_errors INTEGER NOT NULL DEFAULT 0,
        throttles INTEGER NOT NULL DEFAULT 0,
        last_version TEXT,
        last_error TEXT,
        last_response BLOB,
        stage TEXT NOT NULL DEFAULT 'run' CHECK (stage IN ('run', 'deliver')),
        deliveries TEXT
    );
    CREATE INDEX async_events_due ON async_events (next_attempt_at);
    """,
    # Scale-out: the node that runs the event (NULL: any, a single node's events before this version).
    """
    ALTER TABLE async_events ADD COLUMN owner TEXT;
    CREATE INDEX async_events_owner ON async_events (owner);
    """,
]


# -- clocks ------------------------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on this clock's time line (durable: stored times are compared with it after restarts)."""
        ...

    async def sleep(self, seconds: float | None, wake: asyncio.Event) -> None:
        """Return after `seconds` of this clock, or as soon as `wake` is set (None: only on wake)."""
        ...


_SCALE_ANCHOR = 1_700_000_000.0  # any fixed instant: a scaled clock is a pure function of wall time


class SystemClock:
    """Wall-clock time, optionally `scale` times faster.

    A scaled clock reads `anchor + (wall - anchor) * scale`, so its readings stay consistent across
    restarts (times stored before a crash still compare correctly). It is for tests only: with a scale,
    event ages and retry delays shrink, but function timeouts and AWS timestamps in records do not.
    """

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("the clock scale must be positive")
        self.scale = scale

    def now(self) -> float:
        wall = time.time()
        if self.scale == 1.0:
            return wall
        return _SCALE_ANCHOR + (wall - _SCALE_ANCHOR) * self.scale

    async def sleep(self, seconds: float | None, wake: asyncio.Event) -> None:
        timeout = None if seconds is None else max(0.0, seconds / self.scale)
        try:
            await asyncio.wait_for(wake.wait(), timeout)
        except TimeoutError:
            pass


class ManualClock:
    """A clock that moves only when told to (`advance`), waking every sleeper: retry back-offs of
    minutes are tested in milliseconds."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self._sleepers: set[asyncio.Event] = set()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds
        for wake in list(self._sleepers):
            wake.set()

    async def sleep(self, seconds: float | None, wake: asyncio.Event) -> None:
        if seconds is not None and seconds <= 0:
            return
        self._sleepers.add(wake)
        try:
            await wake.wait()
        finally:
            self._sleepers.discard(wake)


# -- configuration and collaborators ----------------------------------------------------------------


@dataclass(frozen=True)
class AsyncQueueConfig:
    retry_delays_s: tuple[float, ...] = (60.0, 120.0)  # AWS: about 1 minute, then about 2 minutes
    throttle_backoff_s: tuple[float, float] = (1.0, 300.0)  # first delay, cap (AWS: 1 s up to 5 min)
    time_scale: float = 1.0
    max_inflight: int = 64  # events running at once (each still needs a concurrency slot)
    drain_s: float = 5.0  # on shutdown, running events get this long before they are cancelled

    @classmethod
    def from_settings(cls, settings: Settings) -> AsyncQueueConfig:
        """The test knobs of the settings (HEARTH_ASYNC_RETRY_DELAYS, HEARTH_ASYNC_TIME_SCALE)."""
        kwargs: dict[str, Any] = {"time_scale": settings.async_time_scale}
        if settings.async_retry_delays_s:
            kwargs["retry_delays_s"] = settings.async_retry_delays_s
        return cls(**kwargs)


@dataclass(frozen=True)
class AsyncPolicy:
    """What a function's event invoke config says about one event (AWS defaults when it has none)."""

    max_retries: int = DEFAULT_MAX_RETRIES
    max_age_s: int = DEFAULT_MAX_EVENT_AGE_S
    on_success: str | None = None
    on_failure: str | None = None


class PolicySource(Protocol):
    def async_policy(self, account: str, region: str, name: str, qualifier: str | None) -> AsyncPolicy: ...
    def recursion_allowed(self, account: str, region: str, name: str) -> bool: ...


class DefaultPolicies:
    def async_policy(self, account: str, region: str, name: str, qualifier: str | None) -> AsyncPolicy:
        return AsyncPolicy()

    def recursion_allowed(self, account: str, region: str, name: str) -> bool:
        return False


class _DeadLetterConfig(Protocol):
    @property
    def dead_letter_target(self) -> str | None: ...


class FunctionLookup(Protocol):
    def resolve(self, account: str, region: str, name: str, qualifier: str | None) -> FunctionVersion: ...
    def get_qualified(self, account: str, region: str, name: str, qualifier: str | None) -> _DeadLetterConfig: ...


class EventInvoker(Protocol):
    async def invoke(self, request: InvokeRequest) -> InvokeOutcome: ...


@dataclass
class _Event:
    id: str
    account: str
    region: str
    function_name: str
    qualifier: str | None
    payload: bytes
    trace_header: str | None
    enqueued_at: float
    invoke_count: int
    function_errors: int
    throttles: int
    last_version: str | None
    last_error: str | None
    last_response: bytes | None
    stage: str
    deliveries: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AsyncStats:
    enqueued: int = 0
    succeeded: int = 0
    retried: int = 0
    throttled: int = 0
    system_errors: int = 0
    dropped: int = 0  # the function was deleted
    recursive_stopped: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # condition -> count
    destination_deliveries: int = 0
    destination_delivery_failures: int = 0
    dead_letter_deliveries: int = 0
    dead_letter_errors: int = 0


# -- the queue ---------------------------------------------------------------------------------------


class AsyncQueue:
    def __init__(
        self,
        data_dir: Path,
        invoker: EventInvoker,
        functions: FunctionLookup,
        router: DeliveryRouter,
        *,
        policies: PolicySource | None = None,
        clock: Clock | None = None,
        config: AsyncQueueConfig | None = None,
        node_id: str | None = None,
    ) -> None:
        self.config = config or AsyncQueueConfig()
        # In a cluster (hearth.cluster): this node's id. Each event is owned by the node that accepted it
        # (column `owner`), runs there only, and passes to another node when its owner dies or leaves
        # (`adopt`). None: one node, every stored event is this queue's.
        self._node_id = node_id
        self._db = ComponentDb(data_dir, COMPONENT, MIGRATIONS)
        self._invoker = invoker
        self._functions = functions
        self._router = router
        self._policies: PolicySource = policies or DefaultPolicies()
        self.clock: Clock = clock or SystemClock(self.config.time_scale)
        self.stats = AsyncStats()
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}  # event id -> its current heap entry (older entries are stale)
        self._seq = itertools.count()
        self._running: dict[str, asyncio.Task[None]] = {}
        # Throttled events per function, oldest first: when one of the function's invocations ends, a
        # slot is free and the first of them runs at once instead of at the end of its back-off (without
        # this, events of a function reserved at N drain N per back-off period, ever further apart).
        self._parked: dict[str, list[str]] = {}
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Queue every stored event again (crash recovery) and start dispatching. In a cluster: this
        node's own events (from before a restart) and those no node owns."""
        if self._node_id is None:
            rows = self._db.query("SELECT id, next_attempt_at FROM async_events")
        else:
            with self._db.tx() as db:
                rows = db.execute("UPDATE async_events SET owner = ? WHERE owner IS NULL OR owner = ? "
                                  "RETURNING id, next_attempt_at", (self._node_id, self._node_id)).fetchall()
        for row in rows:
            self._schedule(str(row["id"]), float(row["next_attempt_at"]))
        if self._due:
            log.info("resuming %d asynchronous event(s)", len(self._due))
        self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch_loop())
        self._dispatcher.add_done_callback(_report_dispatcher_end)

    async def close(self) -> None:
        """Stop dispatching, give running events `drain_s`, cancel the rest (they stay stored)."""
        self._closed = True
        self._wake.set()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
        running = list(self._running.values())
        if running:
            _, pending = await asyncio.wait(running, timeout=self.config.drain_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        self._db.close()

    def adopt(self, node_ids: list[str]) -> int:
        """Take over the stored events of nodes that died or left (cluster): they run here from now on.
        Two nodes adopting at once cannot both get an event (one UPDATE under the write lock wins)."""
        if self._node_id is None or self._closed or not node_ids:
            return 0
        with self._db.tx() as db:
            rows = []
            for node in node_ids:
                if node != self._node_id:
                    rows += db.execute("UPDATE async_events SET owner = ? WHERE owner = ? "
                                       "RETURNING id, next_attempt_at", (self._node_id, node)).fetchall()
        for row in rows:
            self._schedule(str(row["id"]), float(row["next_attempt_at"]))
        if rows:
            log.info("took over %d asynchronous event(s) of %s", len(rows), ", ".join(node_ids))
        return len(rows)

    # -- accepting events ---------------------------------------------------------------------------

    def enqueue(
        self,
        *,
        account: str,
        region: str,
        function_name: str,
        qualifier: str | None,
        payload: bytes,
        request_id: str | None = None,
        trace_header: str | None = None,
    ) -> str:
        """Store one event durably and queue it; returns its request id. Idempotent per request id."""
        if self._closed:
            raise NotAccepting("the asynchronous event queue is closed")
        request_id = request_id or str(uuid.uuid4())
        now = self.clock.now()
        with self._db.tx() as db:
            inserted = db.execute(
                "INSERT INTO async_events (id, account, region, function_name, qualifier, payload, trace_header, "
                "enqueued_at, next_attempt_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                (request_id, account, region, function_name, qualifier, payload, trace_header, now, now,
                 self._node_id),
            ).rowcount
        if inserted:  # a repeated request id is the same event, already queued
            self.stats.enqueued += 1
            self._schedule(request_id, now)
        return request_id

    async def deliver_to_function(self, target_arn: str, message: Message) -> None:
        """The DeliveryRouter's "lambda" handler: an asynchronous invocation of the target function."""
        try:
            ref = parse_function_ref(target_arn)
        except InvalidFunctionRef:
            raise DeliveryError(f"not a function ARN: {target_arn}", "InvalidParameterValueException") from None
        if ref.account is None or ref.region is None:
            raise DeliveryError(f"not a function ARN: {target_arn}", "InvalidParameterValueException")
        try:
            self._functions.resolve(ref.account, ref.region, ref.name, ref.qualifier)
        except FunctionsError as err:
            raise DeliveryError(err.message, _ERROR_CODES.get(type(err), "ServiceException")) from None
        payload = message.body.encode()
        if len(payload) > INTERNAL_PAYLOAD_LIMIT:
            raise DeliveryError(f"the message is larger than {INTERNAL_PAYLOAD_LIMIT} bytes",
                                "RequestEntityTooLargeException")
        self.enqueue(account=ref.account, region=ref.region, function_name=ref.name, qualifier=ref.qualifier,
                     payload=payload or b"{}", trace_header=message.trace_header)

    # -- dispatching --------------------------------------------------------------------------------

    def _schedule(self, event_id: str, due: float) -> None:
        self._due[event_id] = due
        heapq.heappush(self._heap, (due, next(self._seq), event_id))
        self._wake.set()

    async def _dispatch_loop(self) -> None:
        while not self._closed:
            now = self.clock.now()
            while self._heap and self._heap[0][0] <= now and len(self._running) < self.config.max_inflight:
                due, _, event_id = heapq.heappop(self._heap)
                if self._due.get(event_id) != due:
                    continue  # stale entry: the event was rescheduled
                del self._due[event_id]
                if event_id in self._running:
                    continue  # its running attempt reschedules it if it needs another
                task = asyncio.get_running_loop().create_task(self._attempt(event_id))
                self._running[event_id] = task
            self._wake.clear()
            if len(self._running) >= self.config.max_inflight or not self._heap:
                delay: float | None = None  # a finishing task or a new event wakes us
            else:
                delay = self._heap[0][0] - now
            await self.clock.sleep(delay, self._wake)

    async def _attempt(self, event_id: str) -> None:
        try:
            ev = self._load(event_id)
            if ev is None:
                return
            if ev.stage == "deliver":
                await self._deliver_all(ev)
            else:
                await self._run(ev)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug must not lose an acknowledged event: it stays stored and is tried again later.
            log.exception("asynchronous event %s failed inside Hearth; retrying it later", event_id)
            self._schedule(event_id, self.clock.now() + self.config.throttle_backoff_s[1])
        finally:
            self._running.pop(event_id, None)
            self._wake.set()

    async def _run(self, ev: _Event) -> None:
        policy = self._policies.async_policy(ev.account, ev.region, ev.function_name, ev.qualifier)
        now = self.clock.now()
        try:
            fv = self._functions.resolve(ev.account, ev.region, ev.function_name, ev.qualifier)
        except NotFound as err:
            # The function (or its version / alias) was deleted: AWS discards its queued events.
            log.warning("dropping asynchronous event %s: %s", ev.id, err.message)
            self.stats.dropped += 1
            self._delete(ev.id)
            return
        except FunctionsError as err:
            self._retry_later(ev, policy, f"{type(err).__name__}: {err.message}")
            return
        if now >= ev.enqueued_at + policy.max_age_s:
            await self._fail(ev, fv, policy, "EventAgeExceeded", ev.trace_header)
            return
        if lineage.is_loop(ev.trace_header, fv.function_arn) and not self._policies.recursion_allowed(
                ev.account, ev.region, ev.function_name):
            self.stats.recursive_stopped += 1
            log.warning("stopped a recursive invocation loop: %s would run for the %dth time in one chain "
                        "(request %s); the event goes to its failure destination / DLQ",
                        fv.function_arn, lineage.MAX_HOPS + 1, ev.id)
            await self._fail(ev, fv, policy, RECURSION_CONDITION, ev.trace_header)
            return
        if fv.state != "Active":
            self._retry_later(ev, policy, f"the function is {fv.state}")
            return
        trace = lineage.next_hop(ev.trace_header, fv.function_arn, active=fv.tracing_mode == "Active")
        try:
            outcome = await self._invoker.invoke(InvokeRequest(fv, ev.payload, request_id=ev.id, trace_id=trace))
        except Throttled as err:
            if err.reason is ThrottleReason.RESERVED and err.reserved == 0:
                # A function reserved at 0 can never run: AWS does not retry its events.
                await self._fail(ev, fv, policy, "ZeroReservedConcurrency", trace)
                return
            self._retry_later(ev, policy, f"TooManyRequestsException: {err.reason.value}", throttled=True)
            parked = self._parked.setdefault(fv.function_arn, [])
            if ev.id not in parked:
                parked.append(ev.id)
            return
        self._unpark(fv.function_arn)
        ev.invoke_count += 1
        ev.last_version = outcome.executed_version
        ev.last_error = outcome.function_error
        ev.last_response = outcome.payload
        if outcome.function_error is None:
            self.stats.succeeded += 1
            await self._succeed(ev, fv, policy, trace)
            return
        ev.function_errors += 1
        if ev.function_errors > policy.max_retries:
            await self._fail(ev, fv, policy, "RetriesExhausted", trace)
            return
        delays = self.config.retry_delays_s or (0.0,)
        delay = delays[min(ev.function_errors - 1, len(delays) - 1)]
        self.stats.retried += 1
        self._persist_retry(ev, min(now + delay, ev.enqueued_at + policy.max_age_s))

    def _unpark(self, function_arn: str) -> None:
        """One of the function's invocations ended: its oldest throttled event still waiting runs now."""
        parked = self._parked.get(function_arn)
        while parked:
            event_id = parked.pop(0)
            if event_id in self._due:  # still waiting for its back-off (not running, not finished)
                self._schedule(event_id, self.clock.now())
                break
        if not parked:
            self._parked.pop(function_arn, None)

    def _retry_later(self, ev: _Event, policy: AsyncPolicy, reason: str, *, throttled: bool = False) -> None:
        """Throttles and system errors: exponential back-off, until the event is too old."""
        if throttled:
            self.stats.throttled += 1
        else:
            self.stats.system_errors += 1
            log.warning("asynchronous event %s of %s could not run (%s); retrying", ev.id, ev.function_name, reason)
        ev.throttles += 1
        first, cap = self.config.throttle_backoff_s
        delay = min(first * 2 ** min(ev.throttles - 1, 30), cap)
        self._persist_retry(ev, min(self.clock.now() + delay, ev.enqueued_at + policy.max_age_s))

    def _persist_retry(self, ev: _Event, due: float) -> None:
        with self._db.tx() as db:
            db.execute(
                "UPDATE async_events SET next_attempt_at = ?, invoke_count = ?, function_errors = ?, throttles = ?, "
                "last_version = ?, last_error = ?, last_response = ? WHERE id = ?",
                (due, ev.invoke_count, ev.function_errors, ev.throttles, ev.last_version, ev.last_error,
                 ev.last_response, ev.id),
            )
        self._schedule(ev.id, due)

    # -- outcomes -----------------------------------------------------------------------------------

    async def _succeed(self, ev: _Event, fv: FunctionVersion, policy: AsyncPolicy, trace: str) -> None:
        deliveries: list[dict[str, Any]] = []
        if policy.on_success:
            record = self._record(ev, fv, "Success")
            deliveries.append(_delivery("destination", policy.on_success, json.dumps(record), {}, trace, fv))
        await self._complete(ev, deliveries)

    async def _fail(self, ev: _Event, fv: FunctionVersion, policy: AsyncPolicy, condition: str,
                    trace: str | None) -> None:
        self.stats.failed[condition] = self.stats.failed.get(condition, 0) + 1
        deliveries: list[dict[str, Any]] = []
        if policy.on_failure:
            record = self._record(ev, fv, condition)
            deliveries.append(_delivery("destination", policy.on_failure, json.dumps(record), {}, trace, fv))
        dead_letter = self._dead_letter_target(ev, fv)
        if dead_letter:
            code, message = self._dead_letter_error(ev, condition)
            attributes = {
                "RequestID": {"DataType": "String", "StringValue": ev.id},
                "ErrorCode": {"DataType": "Number", "StringValue": code},  # a Number (AWS records)
                "ErrorMessage": {"DataType": "String", "StringValue": message},
            }
            deliveries.append(_delivery("dlq", dead_letter, ev.payload.decode(errors="replace"), attributes,
                                        trace, fv))
        if not deliveries:
            log.warning("asynchronous event %s of %s failed (%s) and has no failure destination or DLQ",
                        ev.id, fv.function_arn, condition)
        await self._complete(ev, deliveries)

    def _dead_letter_target(self, ev: _Event, fv: FunctionVersion) -> str | None:
        """The DeadLetterConfig of the version that ran (or would have run) the event."""
        try:
            return self._functions.get_qualified(ev.account, ev.region, ev.function_name, fv.version).dead_letter_target
        except FunctionsError:
            return None

    @staticmethod
    def _dead_letter_error(ev: _Event, condition: str) -> tuple[str, str]:
        """AWS's DLQ attributes: ErrorCode is the invocation's status code, ErrorMessage the error."""
        if condition == RECURSION_CONDITION:
            return "400", "RecursiveInvocationException: Lambda detected a recursive invocation loop."
        if ev.last_response is not None and ev.last_error is not None:
            try:
                body = json.loads(ev.last_response)
                message = str(body.get("errorMessage", "")) if isinstance(body, dict) else ""
            except ValueError:
                message = ""
            return "200", (message or ev.last_response.decode(errors="replace"))[:1024]
        if condition == "EventAgeExceeded":
            return ("429" if ev.throttles else "200"), "EventAgeExceeded: the event expired before it could run."
        return "200", condition

    def _record(self, ev: _Event, fv: FunctionVersion, condition: str) -> dict[str, Any]:
        """The invocation record AWS writes to destinations."""
        record: dict[str, Any] = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "requestContext": {
                "requestId": ev.id,
                "functionArn": f"{fv.function_arn}:{ev.qualifier or '$LATEST'}",
                "condition": condition,
                "approximateInvokeCount": ev.invoke_count,
            },
            "requestPayload": _json_or_text(ev.payload),
        }
        if ev.invoke_count > 0 and ev.last_response is not None:
            response: dict[str, Any] = {"statusCode": 200, "executedVersion": ev.last_version or fv.version}
            if ev.last_error is not None:
                response["functionError"] = ev.last_error
            record["responseContext"] = response
            record["responsePayload"] = _json_or_text(ev.last_response)
        return record

    async def _complete(self, ev: _Event, deliveries: list[dict[str, Any]]) -> None:
        if not deliveries:
            self._delete(ev.id)
            return
        ev.deliveries = deliveries
        with self._db.tx() as db:
            db.execute(
                "UPDATE async_events SET stage = 'deliver', deliveries = ?, invoke_count = ?, function_errors = ?, "
                "last_version = ?, last_error = ?, last_response = ? WHERE id = ?",
                (json.dumps(deliveries), ev.invoke_count, ev.function_errors, ev.last_version, ev.last_error,
                 ev.last_response, ev.id),
            )
        await self._deliver_all(ev)

    async def _deliver_all(self, ev: _Event) -> None:
        for item in ev.deliveries:
            kind = str(item["kind"])
            target = str(item["target"])
            message = Message(body=str(item["body"]), attributes=dict(item.get("attributes") or {}),
                              trace_header=item.get("trace_header"), source_arn=item.get("source_arn"))
            try:
                await self._router.deliver(target, message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                code = exc.code if isinstance(exc, DeliveryError) else type(exc).__name__
                if kind == "dlq":
                    self.stats.dead_letter_errors += 1
                else:
                    self.stats.destination_delivery_failures += 1
                log.warning("delivering the %s of asynchronous event %s to %s failed: %s (%s)",
                            "dead-letter message" if kind == "dlq" else "invocation record", ev.id, target, exc, code)
                continue
            if kind == "dlq":
                self.stats.dead_letter_deliveries += 1
            else:
                self.stats.destination_deliveries += 1
        self._delete(ev.id)

    # -- storage ------------------------------------------------------------------------------------

    def _load(self, event_id: str) -> _Event | None:
        rows = self._db.query("SELECT * FROM async_events WHERE id = ?", (event_id,))
        if not rows:
            return None
        if self._node_id is not None and rows[0]["owner"] not in (None, self._node_id):
            # Fenced: another node took the event over while this one was cut off (declared dead).
            self._due.pop(event_id, None)
            return None
        r = rows[0]
        return _Event(
            id=r["id"], account=r["account"], region=r["region"], function_name=r["function_name"],
            qualifier=r["qualifier"], payload=bytes(r["payload"]), trace_header=r["trace_header"],
            enqueued_at=float(r["enqueued_at"]), invoke_count=int(r["invoke_count"]),
            function_errors=int(r["function_errors"]), throttles=int(r["throttles"]),
            last_version=r["last_version"], last_error=r["last_error"],
            last_response=bytes(r["last_response"]) if r["last_response"] is not None else None,
            stage=r["stage"], deliveries=json.loads(r["deliveries"]) if r["deliveries"] else [],
        )

    def _delete(self, event_id: str) -> None:
        with self._db.tx() as db:
            db.execute("DELETE FROM async_events WHERE id = ?", (event_id,))

    def pending(self) -> int:
        """Events stored and not finished (queued, running or being delivered)."""
        return int(self._db.query("SELECT COUNT(*) AS n FROM async_events")[0]["n"])

    async def wait_idle(self) -> None:
        """Wait until nothing is due now and nothing runs (tests: after advancing a manual clock)."""
        while True:
            await asyncio.sleep(0)
            now = self.clock.now()
            due_now = any(due <= now for due in self._due.values())
            if not self._running and not due_now:
                return
            if self._running:
                await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    def statistics(self) -> dict[str, object]:
        s = self.stats
        return {
            "pending": len(self._due) + len(self._running),
            "running": len(self._running),
            "enqueued": s.enqueued,
            "succeeded": s.succeeded,
            "retried": s.retried,
            "throttled": s.throttled,
            "system_errors": s.system_errors,
            "dropped": s.dropped,
            "recursive_stopped": s.recursive_stopped,
            "failed": dict(s.failed),
            "DestinationDeliveries": s.destination_deliveries,
            "DestinationDeliveryFailures": s.destination_delivery_failures,
            "DeadLetterDeliveries": s.dead_letter_deliveries,
            "DeadLetterErrors": s.dead_letter_errors,
        }


def _report_dispatcher_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the asynchronous event dispatcher stopped: %r; stored events wait for a restart",
                  task.exception())


def _delivery(kind: str, target: str, body: str, attributes: dict[str, dict[str, str]], trace: str | None,
              fv: FunctionVersion) -> dict[str, Any]:
    return {"kind": kind, "target": target, "body": body, "attributes": attributes, "trace_header": trace,
            "source_arn": fv.function_arn}


def _json_or_text(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode()
