"""The data plane's own errors: what `hearth.invoke` raises to its callers.

It owns the exception types; the Lambda providers map them to AWS errors
(`hearth.services.lambda_.errors`), other callers (the async queue, mappings, function URLs) decide
what each means for them. It never decides when to raise them.

Exception tree::

    InvokeError
    ├── Throttled          no concurrency slot was free (reason: the function's or the account's limit)
    └── NotAccepting       the data plane is shutting down and takes no new work
"""

from __future__ import annotations

import enum


class ThrottleReason(enum.Enum):
    """AWS's `Reason` field of a 429."""

    RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"
    ACCOUNT = "ConcurrentInvocationLimitExceeded"


class InvokeError(Exception):
    pass


class Throttled(InvokeError):
    """A synchronous invocation that found no free slot."""

    def __init__(self, reason: ThrottleReason, *, reserved: int | None = None) -> None:
        super().__init__(reason.value)
        self.reason = reason
        # The function's reserved concurrency when that refused it: 0 means it can never run (an
        # asynchronous event then fails at once with AWS's condition ZeroReservedConcurrency).
        self.reserved = reserved


class NotAccepting(InvokeError):
    """The data plane is shutting down: the caller should retry the request later."""
