"""One execution environment: a sandbox, its Runtime API, its output, and its lifecycle.

States and the only transitions allowed::

    STARTING ──► INITIALIZING ──► READY ◄──► INVOKING
                      │             │ ▲
                      │             ▼ │
                      │           FROZEN
                      ▼             ▼
                 SHUTTING_DOWN ──► DEAD      (any state may also go straight to DEAD: the process died)

Guarantees: one invocation at a time; a timeout, a crash or an init failure kills the sandbox and the
environment never serves again; a dead environment stays harmless (its sockets and pipes are closed).
It owns nothing shared: the pool decides when to start, reuse and reclaim environments.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import errno
import json
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hearth.invoke import logs
from hearth.invoke.platform_log import LogStyle, PlatformRecord
from hearth.runtime_api.channel import (
    EnvironmentChannel,
    InitError,
    Invocation,
    InvocationResult,
    RuntimeExited,
)
from hearth.runtime_api.ext_routes import ExtensionRoutes
from hearth.runtime_api.extensions import ExtensionFailure, ExtensionsApi, FunctionInfo
from hearth.runtime_api.server import RuntimeApiServer
from hearth.runtime_api.telemetry import OutputSplitter, TelemetryHub, iso_time
from hearth.runtimes.registry import fallback_note, runtime_for
from hearth.sandbox import netns
from hearth.sandbox.types import IsolationBackend, MemoryPeak, Sandbox, SandboxSpec

log = logging.getLogger(__name__)

INIT_TIMEOUT_S = 10.0  # AWS's limit on the INIT phase of an on-demand environment
SHUTDOWN_GRACE_S = 0.5  # SIGTERM → SIGKILL grace when an environment is reclaimed
# AWS's SHUTDOWN phase with extensions: 2,000 ms when external extensions registered, 500 ms when only
# internal ones did (the runtime's own share of it, 300 ms or 500 ms, is inside these).
SHUTDOWN_EXTERNAL_S = 2.0
SHUTDOWN_INTERNAL_S = 0.5


class EnvState(enum.Enum):
    STARTING = "Starting"
    INITIALIZING = "Initializing"
    READY = "Ready"
    INVOKING = "Invoking"
    FROZEN = "Frozen"
    SHUTTING_DOWN = "ShuttingDown"
    DEAD = "Dead"


_ALLOWED: dict[EnvState, set[EnvState]] = {
    EnvState.STARTING: {EnvState.INITIALIZING, EnvState.DEAD},
    EnvState.INITIALIZING: {EnvState.READY, EnvState.SHUTTING_DOWN, EnvState.DEAD},
    EnvState.READY: {EnvState.INVOKING, EnvState.FROZEN, EnvState.SHUTTING_DOWN, EnvState.DEAD},
    EnvState.INVOKING: {EnvState.READY, EnvState.SHUTTING_DOWN, EnvState.DEAD},
    EnvState.FROZEN: {EnvState.READY, EnvState.SHUTTING_DOWN, EnvState.DEAD},
    EnvState.SHUTTING_DOWN: {EnvState.DEAD},
    EnvState.DEAD: set(),
}


class InvalidTransition(RuntimeError):
    pass


@dataclass
class InitFailure(Exception):
    """INIT did not complete: the payload is what an invocation that needed this environment returns."""

    error_type: str
    payload: bytes
    init_log: list[tuple[int, str]]


@dataclass
class RunResult:
    """What one invocation produced, with the environment's view of it."""

    result: InvocationResult
    events: list[tuple[int, str]]  # log events of this invocation (START … REPORT)
    duration_ms: float
    init_duration_ms: float | None
    env_dead: bool
    restore_ms: float | None = None  # a SnapStart environment's restore, reported on its first invocation
    # PostRuntimeExtensionsDuration: how long extensions worked after the runtime answered (the
    # Extensions API sets it; None: no extension ran). Spans export it as the Overhead phase.
    extensions_ms: float | None = None
    # With extensions that registered for INVOKE, the invocation is not over when the runtime answers:
    # this task ends it (waits for the extensions, writes END/REPORT) and returns the whole log events.
    after: asyncio.Task[list[tuple[int, str]]] | None = None


AwsProxyStarter = Callable[[Sandbox], "asyncio.Task[None] | None"]
# Starts the sandbox of an environment in a way other than `backend.start(spec)`: a SnapStart clone of a
# template, or a template itself. `until_ready`, when given, replaces "the runtime asked for its first
# invocation" as the end of INIT (a template never asks: it waits for clone requests).
Launcher = Callable[[SandboxSpec], Awaitable[Sandbox]]
ReadyWaiter = Callable[[Sandbox], Awaitable[bool]]


class Environment:
    def __init__(
        self,
        *,
        env_id: str,
        spec: SandboxSpec,
        backend: IsolationBackend,
        version: str,
        memory_mb: int,
        log_stream: str,
        start_aws_proxy: AwsProxyStarter | None = None,
        on_dead: Callable[[Environment], None] | None = None,
        launcher: Launcher | None = None,
        until_ready: ReadyWaiter | None = None,
        restored: bool = False,
        init_timeout_s: float = INIT_TIMEOUT_S,
        log_style: LogStyle | None = None,
        account_id: str = "",
        write_logs: Callable[[list[tuple[int, str]]], None] | None = None,
    ) -> None:
        self.env_id = env_id
        self.spec = spec
        self.version = version
        self.memory_mb = memory_mb
        self.log_stream = log_stream
        self.state = EnvState.STARTING
        self.created_at = time.monotonic()
        self.last_used = self.created_at
        self.invocations = 0
        self.init_duration_ms: float | None = None
        # A SnapStart clone reports Restore Duration (whole restore) and Billed Restore Duration (the
        # runtime's part: from its sandbox being ready to its first request) instead of Init Duration.
        self.restored = restored
        self.restore_ms: tuple[float, float] | None = None
        self._launcher = launcher
        self._until_ready = until_ready
        self._init_timeout_s = init_timeout_s
        self._backend = backend
        self._start_aws_proxy = start_aws_proxy
        self._on_dead = on_dead
        self._sandbox: Sandbox | None = None
        self._channel = EnvironmentChannel(env_id)
        self._server = RuntimeApiServer(self._channel, self._extra_routes)
        # Extensions (issue 16), built only when something uses them: the launcher (layers with
        # /opt/extensions) or the first request of an internal extension.
        self._account_id = account_id
        self._write_logs = write_logs  # what extensions write during SHUTDOWN goes to the log stream too
        self._ext: ExtensionsApi | None = None
        self._telemetry: TelemetryHub | None = None
        self._splitter: OutputSplitter | None = None
        self._init_started = time.time()
        self.post_runtime_extensions_ms = 0.0  # the last invocation's (AWS's PostRuntimeExtensionsDuration)
        self._tasks: list[asyncio.Task[None]] = []
        self._style = log_style or LogStyle()  # the function's LoggingConfig
        self._capture = logs.LogCapture(self._style)  # INIT output until the first invocation
        runtime_id = spec.env.get("AWS_EXECUTION_ENV", "").removeprefix("AWS_Lambda_")
        info = runtime_for(runtime_id)
        # INIT_START; in the Text format only when the function runs on another version of its
        # runtime (fallback_note), to say so first.
        self._init_type = spec.env.get("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        self._capture.platform(logs.init_start_record(
            function_name=spec.env.get("AWS_LAMBDA_FUNCTION_NAME", ""), function_version=version,
            initialization_type=self._init_type,
            runtime_version=f"{info.kind}:{info.version}" if info is not None else runtime_id,
            region=spec.env.get("AWS_REGION", ""), note=fallback_note(runtime_id), restore=restored))
        self._output_fd: int | None = None
        self._dead = asyncio.Event()
        if any(arg.endswith("extensions_launcher.py") for arg in spec.argv[:4]) or (restored and spec.restore_argv):
            self._extra_routes()  # marks on extension output must be stripped from the first byte

    # -- extensions -----------------------------------------------------------------------------

    def _extra_routes(self) -> ExtensionRoutes:
        """Build the Extensions and Telemetry APIs of this environment (once)."""
        if self._ext is None or self._telemetry is None:
            env = self.spec.env
            info = FunctionInfo(env.get("AWS_LAMBDA_FUNCTION_NAME", ""), env.get("AWS_LAMBDA_FUNCTION_VERSION", ""),
                                env.get("_HANDLER", ""), self._account_id)
            self._telemetry = TelemetryHub(self._connect_in_sandbox)
            self._ext = ExtensionsApi(info, on_registered=self._extension_registered,
                                      on_init_failure=self._extension_init_failed,
                                      awaiting_launcher=self.restored and bool(self.spec.restore_argv))
            self._splitter = OutputSplitter(self._telemetry, json_format=env.get("AWS_LAMBDA_LOG_FORMAT") == "JSON")
            record: dict[str, object] = {"functionName": info.function_name, "functionVersion": info.function_version,
                                         "instanceMaxMemory": self.memory_mb << 20}
            if self.restored:
                self._telemetry.emit("platform.restoreStart", record, iso_time(self._init_started))
            else:
                record.update(initializationType=env.get("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
                              phase="init")
                self._telemetry.emit("platform.initStart", record, iso_time(self._init_started))
            if self.state not in (EnvState.STARTING, EnvState.INITIALIZING):
                # A first request after INIT (registration is refused then, as on AWS).
                self._ext.init_done()
                self._telemetry.init_ended()
        return ExtensionRoutes(self._ext, self._telemetry)

    async def _connect_in_sandbox(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._sandbox is None:
            raise OSError("the sandbox is gone")
        return await netns.open_connection(self._sandbox.pid, port)

    def _extension_registered(self, name: str, events: list[str]) -> None:
        # AWS's INIT log line for each extension.
        self._capture.add(f"EXTENSION\tName: {name}\tState: Ready\tEvents: [{','.join(events)}]\n")
        if self._telemetry is not None:
            self._telemetry.emit("platform.extension", {"name": name, "state": "Ready", "events": events})

    def _extension_init_failed(self, failure: ExtensionFailure) -> None:
        # Ends the wait for the runtime too (it may not even have started: the launcher holds it back).
        self._channel.post_init_error(failure.error_type, failure.payload())

    async def _extensions_ready(self, timeout_s: float) -> None:
        """INIT: after the runtime's first next, until every extension waits in next too."""
        ext, telemetry = self._ext, self._telemetry
        if ext is None or telemetry is None:
            return
        phase = "restore" if self.restored else "init"
        init_type = self.spec.env.get("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        base: dict[str, object] = {} if self.restored else {"initializationType": init_type, "phase": "init"}
        telemetry.emit(f"platform.{phase}RuntimeDone", {**base, "status": "success"})
        await asyncio.wait_for(ext.wait_ready(), max(0.001, timeout_s))
        ext.init_done()
        duration = (time.time() - self._init_started) * 1000
        telemetry.emit(f"platform.{phase}Report", {**base, "status": "success",
                                                   "metrics": {"durationMs": round(duration, 3)}})
        telemetry.init_ended()

    async def _shutdown_extensions(self, reason: str) -> None:
        """SHUTDOWN for the extensions: telemetry first, then the event, then at most AWS's limit."""
        ext, telemetry = self._ext, self._telemetry
        if ext is None or telemetry is None:
            return
        limit = SHUTDOWN_EXTERNAL_S if ext.has_external() else SHUTDOWN_INTERNAL_S
        deadline = time.time() + limit
        with contextlib.suppress(Exception):
            await asyncio.wait_for(telemetry.flush(), limit / 2)
        remaining = deadline - time.time()
        if ext.deliver_shutdown(reason, int(deadline * 1000)) and remaining > 0 and not self._dead.is_set():
            # Over when they are done, at the deadline, or when the sandbox is gone (a crashed runtime
            # takes its sandbox, and the extensions in it, along).
            ready = asyncio.ensure_future(ext.wait_ready())
            dead = asyncio.ensure_future(self._dead.wait())
            try:
                await asyncio.wait({ready, dead}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (ready, dead):
                    waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError, ExtensionFailure):
                    await ready

    def _feed(self, data: bytes) -> None:
        if self._splitter is not None:
            data = self._splitter.feed(data)
        self._capture.feed(data)

    # -- state ----------------------------------------------------------------------------------

    def _to(self, new: EnvState) -> None:
        if new is self.state:
            return
        if new not in _ALLOWED[self.state]:
            raise InvalidTransition(f"environment {self.env_id}: {self.state.value} -> {new.value}")
        self.state = new
        if new is EnvState.DEAD and self._on_dead is not None:
            self._on_dead(self)

    @property
    def alive(self) -> bool:
        return self.state not in (EnvState.SHUTTING_DOWN, EnvState.DEAD)

    # -- INIT -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the sandbox and wait for INIT to finish. Raises InitFailure (environment is dead)."""
        started = time.perf_counter()
        self._init_started = time.time()
        try:
            if self._launcher is not None:
                self._sandbox = await self._launcher(self.spec)
            else:
                self._sandbox = await self._backend.start(self.spec)
        except Exception:
            self._to(EnvState.DEAD)
            raise
        sandbox_ready = time.perf_counter()
        sandbox = self._sandbox
        self._to(EnvState.INITIALIZING)
        self._tasks.append(asyncio.create_task(self._server.serve(sandbox.runtime_api_sock)))
        if self._start_aws_proxy is not None:
            proxy = self._start_aws_proxy(sandbox)
            if proxy is not None:
                self._tasks.append(proxy)
        self._output_fd = sandbox.output_fd
        os.set_blocking(self._output_fd, False)
        asyncio.get_running_loop().add_reader(self._output_fd, self._read_output)
        self._tasks.append(asyncio.create_task(self._watch_exit(sandbox)))
        try:
            await asyncio.wait_for(self._initialized(sandbox), self._init_timeout_s)
            if self._ext is not None:
                await self._extensions_ready(self._init_timeout_s - (time.perf_counter() - started))
        except ExtensionFailure as exc:
            await self._fail_init(exc.error_type, exc.payload())
        except InitError as exc:
            await self._fail_init(exc.error_type, exc.payload)
        except RuntimeExited as exc:
            error_type, payload = self._exit_error("", exc.status)
            await self._fail_init(error_type, payload)
        except TimeoutError:
            payload = json.dumps({
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"INIT phase timed out after {self._init_timeout_s:.2f} seconds",
            }).encode()
            await self._fail_init("Sandbox.Timedout", payload)
        now = time.perf_counter()
        self._capture.platform(logs.init_runtime_done_record(self._init_type, restore=self.restored))
        if self.restored:
            self.restore_ms = ((now - started) * 1000, (now - sandbox_ready) * 1000)
            self._capture.platform(PlatformRecord(
                "platform.restoreReport",
                {"status": "success", "metrics": {"durationMs": round(self.restore_ms[0], 3)}}, None))
        else:
            self.init_duration_ms = (now - started) * 1000
        self._to(EnvState.READY)

    async def _initialized(self, sandbox: Sandbox) -> None:
        if self._until_ready is None:
            await self._channel.wait_initialized()
            return
        # A template: ready when the runtime says so on its template socket; an INIT error or an exit
        # on the Runtime API side ends the wait too.
        ready = asyncio.ensure_future(self._until_ready(sandbox))
        failed = asyncio.ensure_future(self._channel.wait_initialized())
        try:
            done, _ = await asyncio.wait({ready, failed}, return_when=asyncio.FIRST_COMPLETED)
            if failed in done:
                failed.result()  # raises InitError or RuntimeExited
            if ready in done and not ready.result():
                await failed  # the template went away: the exit (or error) arrives there
        finally:
            ready.cancel()
            failed.cancel()

    def take_init_log(self) -> list[tuple[int, str]]:
        """What the runtime wrote during INIT, for an environment that serves no invocation itself (a
        SnapStart template): its log events, once."""
        self._drain_output()
        capture, self._capture = self._capture, logs.LogCapture(self._style)
        capture.close()
        return capture.events

    @property
    def sandbox(self) -> Sandbox | None:
        return self._sandbox

    async def _fail_init(self, error_type: str, payload: bytes) -> None:
        self._drain_output()
        self._capture.platform(logs.init_runtime_done_record(self._init_type, error_type=error_type,
                                                             restore=self.restored))
        self._capture.close()
        events = self._capture.events
        await self.kill()
        raise InitFailure(error_type, payload, events)

    # -- INVOKE ---------------------------------------------------------------------------------

    async def invoke(self, invocation: Invocation, timeout_s: float) -> RunResult:
        """Run one invocation. The caller owns this environment exclusively until it returns (or, when
        the result has an `after` task, until that task is done)."""
        if self.state is EnvState.FROZEN:
            self.thaw()
        self._to(EnvState.INVOKING)
        init_ms, self.init_duration_ms = self.init_duration_ms, None  # reported once, on the cold start
        restore_ms, self.restore_ms = self.restore_ms, None
        init_capture, self._capture = self._capture, logs.LogCapture(self._style)
        init_capture.close()
        capture = self._capture
        json_logs = self._style.json
        capture.platform(logs.start_record(invocation.request_id, self.version, invocation.trace_id, json=json_logs))
        ext = self._ext
        extensions_invoked = False
        if ext is not None:
            extensions_invoked = self._extensions_invoke(ext, invocation)
        started = time.perf_counter()
        status: str | None = None
        try:
            result = await asyncio.wait_for(self._channel.invoke(invocation), timeout_s)
        except TimeoutError:
            result = _error_result(
                "Sandbox.Timedout",
                f"RequestId: {invocation.request_id} Error: Task timed out after {timeout_s:.2f} seconds",
            )
            status = "timeout"
            # JSON format: the timeout is in platform.report's status and errorType.
            capture.platform(logs.text_only(
                f"{_iso_now()} {invocation.request_id} Task timed out after {timeout_s:.2f} seconds\n"))
            await self._shutdown_extensions("timeout")
            await self.kill()
        except RuntimeExited as exc:
            error_type, payload = self._exit_error(invocation.request_id, exc.status)
            result = InvocationResult(payload=payload, error_type=error_type)
            status = "error"
            await self._shutdown_extensions("failure")
            await self.kill()
        except asyncio.CancelledError:
            # The caller went away (a client that hung up on a stream): the sink must not wait forever.
            if invocation.sink is not None:
                invocation.sink.finish("Sandbox.Cancelled", None)
            raise
        duration_ms = (time.perf_counter() - started) * 1000
        if invocation.sink is not None:
            # A stream cut short (timeout, crash) ends with the invocation's error; a finished one is
            # left as it is (finish is idempotent). A buffered answer leaves the sink unstarted.
            invocation.sink.finish(result.error_type, result.payload if result.error_type else None)
        if ext is not None:
            self._runtime_done(invocation, result, status, duration_ms)
        if extensions_invoked and self.alive:
            # The caller has its answer now; the invocation ends when the extensions are done with it.
            self._drain_output()
            so_far = init_capture.events + capture.events
            after = asyncio.create_task(self._after_extensions(
                invocation, init_capture, result, started, duration_ms, init_ms, restore_ms, timeout_s))
            return RunResult(result, so_far, duration_ms, init_ms, False,
                             restore_ms=restore_ms[0] if restore_ms is not None else None, after=after)
        if ext is not None:
            ext.invoke_done()
        events = self._end_invocation(invocation, init_capture, result, status, duration_ms, init_ms, restore_ms)
        dead = not self.alive
        if not dead:
            self._to(EnvState.READY)
        return RunResult(result, events, duration_ms, init_ms, dead,
                         restore_ms=restore_ms[0] if restore_ms is not None else None)

    def _end_invocation(self, invocation: Invocation, init_capture: logs.LogCapture, result: InvocationResult,
                        status: str | None, duration_ms: float, init_ms: float | None,
                        restore_ms: tuple[float, float] | None) -> list[tuple[int, str]]:
        """END and REPORT: the invocation's whole log events."""
        capture = self._capture
        self._drain_output()
        capture.close()
        self.invocations += 1
        self.last_used = time.monotonic()
        max_used = self._max_memory_used_mb()
        json_logs = self._style.json
        done_status = {"timeout": "timeout", "error": "failure"}.get(status or "", "success")
        if done_status == "success" and result.error_type is not None:
            done_status = "error"
        capture.platform(logs.runtime_done_record(
            invocation.request_id, status=done_status, duration_ms=duration_ms,
            produced_bytes=len(result.payload), error_type=result.error_type, trace_id=invocation.trace_id,
            json=json_logs))
        capture.platform(logs.report_record(
            invocation.request_id, duration_ms=duration_ms, memory_mb=self.memory_mb,
            max_memory_used_mb=max_used, init_duration_ms=init_ms, status=status, restore_ms=restore_ms,
            error_type=result.error_type if status else None, trace_id=invocation.trace_id, json=json_logs,
        ))
        if self._telemetry is not None:
            self._report(invocation, result, status, duration_ms, max_used, init_ms, restore_ms)
        events = init_capture.events + capture.events
        self._capture = logs.LogCapture(self._style)
        return events

    def _extensions_invoke(self, ext: ExtensionsApi, invocation: Invocation) -> bool:
        if self._telemetry is not None:
            self._telemetry.emit("platform.start", {
                "requestId": invocation.request_id, "version": self.version,
                "tracing": {"type": "X-Amzn-Trace-Id", "value": invocation.trace_id}})
        return ext.deliver_invoke(invocation.request_id, invocation.deadline_ms, invocation.invoked_function_arn,
                                  invocation.trace_id)

    def _runtime_done(self, invocation: Invocation, result: InvocationResult, status: str | None,
                      duration_ms: float) -> None:
        if self._telemetry is None:
            return
        done_status = status or ("error" if result.error_type else "success")
        start = time.time() - duration_ms / 1000
        record: dict[str, object] = {
            "requestId": invocation.request_id, "status": done_status,
            "metrics": {"durationMs": round(duration_ms, 3), "producedBytes": len(result.payload)},
            "spans": [{"name": "responseLatency", "start": iso_time(start), "durationMs": round(duration_ms, 3)},
                      {"name": "responseDuration", "start": iso_time(), "durationMs": 0.0}],
            "tracing": {"type": "X-Amzn-Trace-Id", "value": invocation.trace_id},
        }
        if result.error_type:
            record["errorType"] = result.error_type
        self._telemetry.emit("platform.runtimeDone", record)

    def _report(self, invocation: Invocation, result: InvocationResult, status: str | None, duration_ms: float,
                max_used: int, init_ms: float | None, restore_ms: tuple[float, float] | None) -> None:
        assert self._telemetry is not None
        metrics: dict[str, object] = {
            "durationMs": round(duration_ms, 3), "billedDurationMs": max(1, math.ceil(duration_ms)),
            "memorySizeMB": self.memory_mb, "maxMemoryUsedMB": max_used}
        if init_ms is not None:
            metrics["initDurationMs"] = round(init_ms, 3)
        if restore_ms is not None:
            metrics["restoreDurationMs"] = round(restore_ms[0], 3)
            metrics["billedRestoreDurationMs"] = max(1, math.ceil(restore_ms[1]))
        record: dict[str, object] = {
            "requestId": invocation.request_id, "status": status or ("error" if result.error_type else "success"),
            "metrics": metrics, "tracing": {"type": "X-Amzn-Trace-Id", "value": invocation.trace_id}}
        if result.error_type:
            record["errorType"] = result.error_type
        self._telemetry.emit("platform.report", record)

    async def _after_extensions(self, invocation: Invocation, init_capture: logs.LogCapture,
                                result: InvocationResult, started: float, runtime_ms: float,
                                init_ms: float | None, restore_ms: tuple[float, float] | None,
                                timeout_s: float) -> list[tuple[int, str]]:
        """The rest of an invocation once the runtime answered: until every extension that took the
        INVOKE asks for its next event. Their time (AWS's PostRuntimeExtensionsDuration) counts in the
        REPORT's Duration; past the function's timeout the environment is reset."""
        assert self._ext is not None
        status: str | None = None
        try:
            await asyncio.wait_for(self._ext.wait_ready(), max(0.001, timeout_s - runtime_ms / 1000))
        except TimeoutError:
            status = "timeout"
            self._capture.platform(logs.text_only(
                f"{_iso_now()} {invocation.request_id} Task timed out after {timeout_s:.2f} seconds\n"))
            await self._shutdown_extensions("timeout")
            await self.kill()
        except ExtensionFailure as exc:
            status = "error"
            self._capture.add(f"{_iso_now()} {invocation.request_id} {exc.error_type}: {exc.message}\n")
            await self._shutdown_extensions("failure")
            await self.kill()
        duration_ms = (time.perf_counter() - started) * 1000
        self.post_runtime_extensions_ms = duration_ms - runtime_ms
        if self._ext is not None:
            self._ext.invoke_done()
        events = self._end_invocation(invocation, init_capture, result, status, duration_ms, init_ms, restore_ms)
        if self.alive:
            self._to(EnvState.READY)
        return events

    def _exit_error(self, request_id: str, status: int) -> tuple[str, bytes]:
        """AWS's report for a runtime that went away: out of memory, or an exit with or without a code."""
        stats = self._sandbox.stats() if self._sandbox is not None else None
        prefix = f"RequestId: {request_id} " if request_id else ""
        if stats is not None and stats.oom_killed:
            return "Runtime.OutOfMemory", json.dumps({
                "errorType": "Runtime.OutOfMemory",
                "errorMessage": f"{prefix}Error: Runtime exited with error: signal: killed",
            }).encode()
        if status == 0:
            message = f"{prefix}Error: Runtime exited without providing a reason"
        elif status < 0:
            message = f"{prefix}Error: Runtime exited with error: signal: {_signal_name(-status)}"
        else:
            message = f"{prefix}Error: Runtime exited with error: exit status {status}"
        return "Runtime.ExitError", json.dumps({"errorType": "Runtime.ExitError", "errorMessage": message}).encode()

    def _max_memory_used_mb(self) -> int:
        if self._sandbox is None:
            return 0
        try:
            # Backends that can read the peak alone skip the OOM counter (one read after every invoke).
            sandbox = self._sandbox
            peak = sandbox.memory_peak() if isinstance(sandbox, MemoryPeak) else sandbox.stats().memory_peak_bytes
        except OSError:
            return 0
        return max(1, round(peak / (1 << 20)))

    # -- freeze / thaw / shutdown ---------------------------------------------------------------

    # Freezing and thawing a cgroup costs a few hundred microseconds of kernel work each. Both run on
    # one freezer thread, in order, so neither sits on the invoke path: an invocation handed to a
    # runtime that is still being thawed waits in its socket until the thaw lands.
    def freeze(self) -> None:
        if self.state is EnvState.READY and self._sandbox is not None:
            _FREEZER.submit(_quietly, self._sandbox.freeze, self.env_id)
            self._to(EnvState.FROZEN)
            if self._telemetry is not None:
                self._telemetry.freeze()

    def thaw(self) -> None:
        if self.state is EnvState.FROZEN and self._sandbox is not None:
            _FREEZER.submit(_quietly, self._sandbox.thaw, self.env_id)
            self._to(EnvState.READY)
            if self._telemetry is not None:
                self._telemetry.thaw()

    async def shutdown(self) -> None:
        """SHUTDOWN: ask the runtime to stop (SIGTERM), then kill after a short grace."""
        if not self.alive:
            return
        if self.state is EnvState.FROZEN:
            self.thaw()
        self._to(EnvState.SHUTTING_DOWN)
        sandbox = self._sandbox
        if sandbox is not None and self._ext is not None:
            sandbox.terminate()  # the runtime's SIGTERM, while the extensions get SHUTDOWN
            await self._shutdown_extensions("spindown")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dead.wait(), SHUTDOWN_GRACE_S)
            await self.kill()
            self._capture.close()
            if self._capture.events and self._write_logs is not None:
                self._write_logs(self._capture.events)
            return
        if sandbox is not None:
            sandbox.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dead.wait(), SHUTDOWN_GRACE_S)
        await self.kill()

    async def kill(self) -> None:
        """Kill the whole tree at once; idempotent."""
        if self._sandbox is not None:
            self._sandbox.kill()
        await self._close_io()
        if self.state is not EnvState.DEAD:
            if self.state is not EnvState.SHUTTING_DOWN and EnvState.SHUTTING_DOWN in _ALLOWED[self.state]:
                self._to(EnvState.SHUTTING_DOWN)
            self._to(EnvState.DEAD)

    async def _close_io(self) -> None:
        if self._output_fd is not None:
            self._drain_output()
            loop = asyncio.get_running_loop()
            loop.remove_reader(self._output_fd)
            with contextlib.suppress(OSError):
                os.close(self._output_fd)
            self._output_fd = None
        await self._server.close()
        if self._ext is not None and self._telemetry is not None:
            self._ext.close()
            self._telemetry.close()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    async def _watch_exit(self, sandbox: Sandbox) -> None:
        status = await sandbox.wait()
        self._dead.set()
        self._channel.runtime_exited(status)

    # -- output ---------------------------------------------------------------------------------

    def _read_output(self) -> None:
        fd = self._output_fd
        if fd is None:
            return
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EAGAIN:
                asyncio.get_running_loop().remove_reader(fd)
            return
        if not data:  # every writer closed the pipe
            asyncio.get_running_loop().remove_reader(fd)
            return
        self._feed(data)

    def _drain_output(self) -> None:
        """Read what the runtime wrote before it answered: those bytes are already in the pipe."""
        fd = self._output_fd
        if fd is None:
            return
        for _ in range(4096):  # bounded: a runtime still writing at full speed cannot hold us here
            try:
                data = os.read(fd, 65536)
            except OSError:
                return
            if not data:
                return
            self._feed(data)

    def statistics(self) -> dict[str, object]:
        return {
            "env_id": self.env_id,
            "state": self.state.value,
            "invocations": self.invocations,
            "idle_s": round(time.monotonic() - self.last_used, 3),
            "pid": self._sandbox.pid if self._sandbox else None,
        }


_FREEZER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearth-freezer")


def _quietly(operation: Callable[[], None], env_id: str) -> None:
    try:
        operation()
    except OSError:
        # The sandbox died meanwhile (its cgroup is gone): the environment notices on its own.
        log.debug("freezer operation on environment %s failed", env_id, exc_info=True)


def _error_result(error_type: str, message: str) -> InvocationResult:
    return InvocationResult(
        payload=json.dumps({"errorType": error_type, "errorMessage": message}).encode(),
        error_type=error_type,
    )


def _iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def _signal_name(signum: int) -> str:
    # Go's names, which AWS's messages use ("signal: killed", "signal: segmentation fault").
    names = {9: "killed", 11: "segmentation fault", 6: "aborted", 15: "terminated", 7: "bus error",
             8: "floating point exception", 4: "illegal instruction", 13: "broken pipe"}
    return names.get(signum, f"signal {signum}")
