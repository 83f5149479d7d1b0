"""The Extensions API (2020-01-01) of one execution environment: who registered, and the phase rules.

It owns the extensions' state machine, independent of HTTP (the server's routes call it):

    register ──► REGISTERED ──next──► READY ◄──next── PROCESSING (an INVOKE or SHUTDOWN was handed over)
                                        └──event──────────►┘          any state ──exit──► EXITED

and AWS's phase rules built on it: INIT completes once every registered extension waits in `next`
(`wait_ready`); an invocation is complete once every extension that registered for INVOKE asked for
`next` again after it (`wait_ready` after `deliver_invoke`); SHUTDOWN is handed to the extensions that
registered for it and completes when they ask for `next` again or exit. An extension that exits (its
launcher reports it) or posts `init/error` during INIT fails INIT (`Extension.Crash`, or its own error
type); afterwards a crash or an `exit/error` fails what is being waited for, and the environment is reset.

It exists only in environments where something registered or a launcher reported extensions: the
no-extension path never builds one. It never starts or kills processes (the environment does) and
never blocks: every method runs on the event loop.
"""

from __future__ import annotations

import asyncio
import enum
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_EXTENSIONS = 10  # AWS's limit per function
EVENT_TYPES = ("INVOKE", "SHUTDOWN")


class ExtState(enum.Enum):
    REGISTERED = "Registered"
    READY = "Ready"  # waiting in (or about to call) event/next
    PROCESSING = "Processing"  # holding an event it has not acknowledged with another next
    EXITED = "Exited"


class Phase(enum.Enum):
    INIT = "init"
    READY = "ready"
    INVOKE = "invoke"
    SHUTDOWN = "shutdown"


class ApiError(Exception):
    """A request the API refuses: answered `status` with AWS's error body."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def body(self) -> bytes:
        return json.dumps({"errorMessage": self.message, "errorType": self.error_type}).encode()


class ExtensionFailure(Exception):
    """An extension failed the phase being waited for (crash, init/error, exit/error)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message

    def payload(self) -> bytes:
        return json.dumps({"errorType": self.error_type, "errorMessage": self.message}).encode()


@dataclass
class Extension:
    ext_id: str
    name: str
    events: frozenset[str]
    internal: bool  # registered from inside the runtime process (no launcher started it)
    state: ExtState = ExtState.REGISTERED
    waiter: asyncio.Future[bytes] | None = None
    queued: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class FunctionInfo:
    function_name: str
    function_version: str
    handler: str
    account_id: str


def _retrieve(fut: asyncio.Future[object]) -> None:
    if not fut.cancelled():
        fut.exception()


class ExtensionsApi:
    """One environment's extensions. `on_registered(name, events)` feeds the Telemetry API's
    `platform.extension`; `on_init_failure(failure)` lets the environment end INIT at once."""

    def __init__(self, info: FunctionInfo, *, on_registered: Callable[[str, list[str]], None] | None = None,
                 on_init_failure: Callable[[ExtensionFailure], None] | None = None,
                 awaiting_launcher: bool = False) -> None:
        self.info = info
        # A SnapStart clone's launcher starts beside the runtime, not before it: INIT (the restore)
        # also waits for its `launched` (which it would otherwise not know to wait for).
        self._awaiting_launcher = awaiting_launcher
        self.phase = Phase.INIT
        self.extensions: dict[str, Extension] = {}
        self.failure: ExtensionFailure | None = None
        self.launched: set[str] = set()  # external extensions the launcher started
        self._launch_waiter: asyncio.Future[None] | None = None
        self._changed: asyncio.Future[None] | None = None
        self._on_registered = on_registered
        self._on_init_failure = on_init_failure

    # -- what the extensions call --------------------------------------------------------------

    def register(self, name: str, events: object, *, accept_account_id: bool) -> tuple[str, bytes]:
        """`POST /extension/register`: (identifier, response body). Raises ApiError."""
        if not name:
            raise ApiError(403, "Extension.InvalidExtensionName", "Empty extension name")
        if self.phase is not Phase.INIT:
            raise ApiError(403, "Extension.InvalidRegistrationPhase",
                           "Extensions can only register during the INIT phase")
        if any(ext.name == name for ext in self.extensions.values()):
            raise ApiError(409, "Extension.AlreadyRegistered", f"Extension {name} is already registered")
        if len(self.extensions) >= MAX_EXTENSIONS:
            raise ApiError(403, "Extension.TooManyExtensions",
                           f"Too many extensions: at most {MAX_EXTENSIONS} can register")
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise ApiError(400, "InvalidRequestFormat", "events must be a list of event types")
        unknown = [e for e in events if e not in EVENT_TYPES]
        if unknown:
            raise ApiError(400, "Extension.InvalidEventType", f"Unknown event type: {unknown[0]}")
        internal = name not in self.launched
        if internal and "SHUTDOWN" in events:
            raise ApiError(400, "ShutdownEventNotSupportedForInternalExtension",
                           "Internal extensions cannot register for the SHUTDOWN event")
        ext = Extension(uuid.uuid4().hex, name, frozenset(events), internal)
        self.extensions[ext.ext_id] = ext
        body: dict[str, str] = {"functionName": self.info.function_name,
                                "functionVersion": self.info.function_version, "handler": self.info.handler}
        if accept_account_id:
            body["accountId"] = self.info.account_id
        if self._on_registered is not None:
            self._on_registered(name, sorted(events))
        self._notify()
        return ext.ext_id, json.dumps(body).encode()

    def get(self, ext_id: str | None) -> Extension:
        if not ext_id:
            raise ApiError(403, "Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header")
        ext = self.extensions.get(ext_id)
        if ext is None:
            raise ApiError(403, "Extension.UnknownExtensionIdentifier", "Unknown extension " + ext_id)
        return ext

    def next_future(self, ext_id: str | None) -> asyncio.Future[bytes]:
        """`GET /extension/event/next`: a future for the next event. Raises ApiError."""
        ext = self.get(ext_id)
        if ext.state is ExtState.EXITED:
            raise ApiError(403, "Extension.InvalidStateTransition", "The extension has exited")
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_retrieve)  # type: ignore[arg-type]
        old, ext.waiter = ext.waiter, None
        if old is not None and not old.done():
            old.cancel()
        if ext.queued:
            ext.state = ExtState.PROCESSING
            fut.set_result(ext.queued.pop(0))
        else:
            ext.state = ExtState.READY
            ext.waiter = fut
        self._notify()
        return fut

    def abandon(self, ext_id: str, fut: asyncio.Future[bytes]) -> None:
        """The connection waiting in `next` went away: an event it was handed is offered again."""
        ext = self.extensions.get(ext_id)
        if ext is None:
            return
        if ext.waiter is fut:
            ext.waiter = None
        if fut.done() and not fut.cancelled() and fut.exception() is None and ext.state is ExtState.PROCESSING:
            ext.queued.insert(0, fut.result())
        elif not fut.done():
            fut.cancel()

    def init_error(self, ext_id: str | None, error_type: str, message: str) -> None:
        ext = self.get(ext_id)
        self._fail(ExtensionFailure(error_type or "Extension.UnknownReason",
                                    message or f"Extension {ext.name} reported an initialization error"))

    def exit_error(self, ext_id: str | None, error_type: str, message: str) -> None:
        ext = self.get(ext_id)
        ext.state = ExtState.EXITED
        self._fail(ExtensionFailure(error_type or "Extension.UnknownReason",
                                    message or f"Extension {ext.name} reported an exit error"))

    # -- what the launcher calls ---------------------------------------------------------------

    def expect(self, names: list[str]) -> None:
        """The launcher is about to start `names`: they are external extensions (told before they
        start, so that one registering at once is not taken for an internal one)."""
        self.launched.update(names)

    def launched_future(self, names: list[str]) -> asyncio.Future[None]:
        """The launcher started `names`: resolved when all of them registered (the runtime may start)."""
        self.launched.update(names)
        for ext in self.extensions.values():  # a fast one may have registered before the launcher said so
            if ext.name in self.launched:
                ext.internal = False
        self._launch_waiter = asyncio.get_running_loop().create_future()
        self._launch_waiter.add_done_callback(_retrieve)  # type: ignore[arg-type]
        self._check_launched()
        return self._launch_waiter

    def process_exited(self, name: str, status: int) -> None:
        """An external extension's process ended (reaped by the launcher)."""
        for ext in self.extensions.values():
            if ext.name == name:
                ext.state = ExtState.EXITED
        if self.phase is Phase.SHUTDOWN:
            self._notify()
            return
        # AWS's text ("Error: exit code 1"); the invocation's request id is not known here.
        reason = f"exit code {status}" if status >= 0 else f"signal {-status}"
        self._fail(ExtensionFailure("Extension.Crash", f"Error: {reason}"))

    # -- what the environment calls ------------------------------------------------------------

    def pending(self) -> list[str]:
        """Names of extensions the current phase still waits for."""
        wanted = None if self.phase is Phase.INIT else ("INVOKE" if self.phase is Phase.INVOKE else "SHUTDOWN")
        return [ext.name for ext in self.extensions.values()
                if ext.state not in (ExtState.READY, ExtState.EXITED) and (wanted is None or wanted in ext.events)]

    async def wait_ready(self) -> None:
        """Until the current phase's extensions all wait in `next` (or exited, at SHUTDOWN). Raises
        ExtensionFailure."""
        while True:
            if self.failure is not None and self.phase is not Phase.SHUTDOWN:
                raise self.failure
            if not self.pending() and not self._launch_open():
                return
            await self._wait_change()

    def init_done(self) -> None:
        self.phase = Phase.READY

    def deliver_invoke(self, request_id: str, deadline_ms: int, invoked_arn: str, trace_id: str) -> bool:
        """Start an invocation: INVOKE to those that registered for it. True when any did."""
        self.phase = Phase.INVOKE
        body = json.dumps({
            "eventType": "INVOKE", "deadlineMs": deadline_ms, "requestId": request_id,
            "invokedFunctionArn": invoked_arn,
            "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id},
        }).encode()
        return self._deliver("INVOKE", body)

    def invoke_done(self) -> None:
        self.phase = Phase.READY

    def deliver_shutdown(self, reason: str, deadline_ms: int) -> bool:
        """SHUTDOWN to those that registered for it. True when any did."""
        self.phase = Phase.SHUTDOWN
        body = json.dumps({"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": deadline_ms}).encode()
        return self._deliver("SHUTDOWN", body)

    def has_external(self) -> bool:
        return any(not ext.internal for ext in self.extensions.values())

    def has_internal(self) -> bool:
        return any(ext.internal for ext in self.extensions.values())

    def close(self) -> None:
        for ext in self.extensions.values():
            if ext.waiter is not None and not ext.waiter.done():
                ext.waiter.cancel()
        if self._launch_waiter is not None and not self._launch_waiter.done():
            self._launch_waiter.cancel()

    # -- internals -----------------------------------------------------------------------------

    def _deliver(self, event: str, body: bytes) -> bool:
        any_ = False
        for ext in self.extensions.values():
            if event not in ext.events or ext.state is ExtState.EXITED:
                continue
            any_ = True
            waiter, ext.waiter = ext.waiter, None
            ext.state = ExtState.PROCESSING
            if waiter is not None and not waiter.done():
                waiter.set_result(body)
            else:
                ext.queued.append(body)
        return any_

    def _launch_open(self) -> bool:
        if self._launch_waiter is None:
            return self._awaiting_launcher and self.failure is None
        return not self._launch_waiter.done()

    def _check_launched(self) -> None:
        waiter = self._launch_waiter
        if waiter is None or waiter.done():
            return
        registered = {ext.name for ext in self.extensions.values()}
        if self.launched <= registered:
            waiter.set_result(None)
            self._notify()

    def _fail(self, failure: ExtensionFailure) -> None:
        if self.failure is None:
            self.failure = failure
        if self._launch_waiter is not None and not self._launch_waiter.done():
            self._launch_waiter.set_exception(failure)
        if self.phase is Phase.INIT and self._on_init_failure is not None:
            self._on_init_failure(failure)
        self._notify()

    def _notify(self) -> None:
        self._check_launched()
        changed, self._changed = self._changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)

    async def _wait_change(self) -> None:
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._changed)
