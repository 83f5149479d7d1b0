"""How a poller runs its mapping's function: resolve the (qualified) function, wait while it is
Pending, invoke synchronously through the invoker (so the concurrency limiter applies and a
throttle waits for capacity instead of failing), and report a plain `InvokeResult`.

It owns nothing durable. It never reads queues or streams and never decides what a result means
for the batch (the pollers do). `Invoke` is the one-method protocol pollers depend on, so unit
tests drive pollers with a plain async function.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hearth.events import lineage
from hearth.functions import names
from hearth.functions.errors import NotFound
from hearth.functions.model import FunctionVersion
from hearth.functions.names import parse_function_ref
from hearth.functions.service import FunctionService
from hearth.invoke.errors import InvokeError, Throttled
from hearth.invoke.invoker import Invoker
from hearth.invoke.request import InvokeRequest

log = logging.getLogger(__name__)

PENDING_POLL_S = 0.1
PENDING_LIMIT_S = 60.0


@dataclass(frozen=True)
class InvokeResult:
    payload: bytes
    function_error: str | None = None  # "Unhandled" when the function failed
    executed_version: str = "$LATEST"
    request_id: str = ""
    missing: bool = False  # the function (or its qualifier) does not exist

    @property
    def failed(self) -> bool:
        return self.missing or self.function_error is not None


class Invoke(Protocol):
    async def __call__(self, account: str, region: str, function_arn: str, payload: bytes, *,
                       trace_header: str | None = None) -> InvokeResult:
        """Run the function once with `payload`, continuing the chain of `trace_header` if given."""
        ...

    def stops_loop(self, account: str, region: str, function_arn: str, trace_header: str | None) -> bool:
        """Whether a record with this trace header must not run the function (a recursive loop)."""
        ...

    def role(self, account: str, region: str, function_arn: str) -> str:
        """The function's execution role ARN ("" when the function is gone): Kinesis records name it
        as their `invokeIdentityArn`."""
        ...


class PlatformInvoke:
    """The real `Invoke`: FunctionService + Invoker."""

    def __init__(self, functions: FunctionService, invoker: Invoker, *,
                 recursion_allowed: Callable[[str, str, str], bool] | None = None) -> None:
        self._functions = functions
        self._invoker = invoker
        self._recursion_allowed = recursion_allowed or (lambda account, region, name: False)

    def stops_loop(self, account: str, region: str, function_arn: str, trace_header: str | None) -> bool:
        """Whether running the function for a record with this trace header would be its 17th run in
        one chain (and the function does not allow recursive loops)."""
        ref = parse_function_ref(function_arn)
        unqualified = names.function_arn(ref.region or region, ref.account or account, ref.name)
        if not trace_header or not lineage.is_loop(trace_header, unqualified):
            return False
        return not self._recursion_allowed(account, region, ref.name)

    def role(self, account: str, region: str, function_arn: str) -> str:
        fv = self._resolve(account, region, function_arn)
        return fv.role if fv is not None else ""

    def _resolve(self, account: str, region: str, function_arn: str) -> FunctionVersion | None:
        try:
            return self._functions.resolve(account, region, function_arn, None)
        except NotFound:
            return None

    async def __call__(self, account: str, region: str, function_arn: str, payload: bytes, *,
                       trace_header: str | None = None) -> InvokeResult:
        fv = self._resolve(account, region, function_arn)
        waited = 0.0
        while fv is not None and fv.state == "Pending" and waited < PENDING_LIMIT_S:
            await asyncio.sleep(PENDING_POLL_S)  # a function being created or updated: AWS waits too
            waited += PENDING_POLL_S
            fv = self._resolve(account, region, function_arn)
        if fv is None:
            return InvokeResult(b'{"errorType": "ResourceNotFoundException"}', "Unhandled", missing=True)
        try:
            trace = lineage.next_hop(trace_header, fv.function_arn,  # a run without a chain starts one
                                     active=fv.tracing_mode == "Active")
            outcome = await self._invoker.invoke(InvokeRequest(fv, payload, wait_for_capacity=True, trace_id=trace))
        except InvokeError as err:
            code = "TooManyRequestsException" if isinstance(err, Throttled) else type(err).__name__
            log.warning("event source mapping could not invoke %s: %s %s", function_arn, code, err)
            return InvokeResult(f'{{"errorType": "{code}"}}'.encode(), "Unhandled", fv.version)
        return InvokeResult(outcome.payload, outcome.function_error, outcome.executed_version, outcome.request_id)

