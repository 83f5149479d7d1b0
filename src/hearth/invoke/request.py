"""The data plane's front door types: what a caller asks (`InvokeRequest`) and what it gets back
(`InvokeOutcome`).

It owns the one typed shape every caller of `Invoker.invoke` uses — the Invoke and
InvokeWithResponseStream operations, function URLs, the async queue, event source mappings — in
place of keyword options. It never holds behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hearth.functions.model import FunctionVersion
from hearth.invoke.limiter import Lease
from hearth.runtime_api.channel import ResponseStream


@dataclass(frozen=True)
class InvokeRequest:
    """One invocation of one resolved function version."""

    version: FunctionVersion
    payload: bytes
    request_id: str | None = None  # None: a new one (the caller's x-amzn-RequestId when it has one)
    trace_id: str | None = None  # the X-Ray header the runtime sees; None: a new trace
    client_context: str | None = None  # the client context JSON, already base64-decoded
    tail: bool = False  # LogType=Tail: the last 4 KB of the invocation's log come back
    invoked_arn: str | None = None  # the ARN the caller named (an alias ARN stays an alias ARN)
    # Admission: wait for a free concurrency slot instead of failing with Throttled; or a slot the
    # caller holds already (the async queue's `try_acquire`), released when the invocation ends.
    wait_for_capacity: bool = False
    lease: Lease | None = field(default=None, compare=False)
    # Takes a streamed response as it is produced (function URLs, InvokeWithResponseStream).
    stream: ResponseStream | None = field(default=None, compare=False)
    # Scale-out: runs on this node whatever placement would choose (another node forwarded it here).
    local: bool = False


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
