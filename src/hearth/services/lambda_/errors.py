"""The Lambda providers' side of domain errors: each error `hearth.functions` and `hearth.invoke` raise,
as AWS Lambda answers it (code, status, `Type`, the casing of the message member).

It owns the mapping, and `maps_domain_errors`, the class decorator every Lambda provider wears so that
its operations answer AWS errors whatever the domain raised. It never decides when an error happens;
the texts are the domain's (checked against recorded AWS responses).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from hearth.aws.errors import AwsError
from hearth.functions import errors as fn
from hearth.invoke import errors as inv

T = TypeVar("T")
USER = {"Type": "User"}


def to_aws(exc: fn.FunctionsError | inv.InvokeError) -> AwsError:
    """The AWS error a caller sees for a domain error."""
    if isinstance(exc, fn.NotFound):
        return AwsError("ResourceNotFoundException", exc.message, 404, fields=USER, message_key="Message")
    if isinstance(exc, fn.AccessDenied):
        return AwsError("AccessDeniedException", exc.message, 403, message_key="Message")
    if isinstance(exc, fn.InvalidParameter):
        return AwsError("InvalidParameterValueException", exc.message, 400,
                        fields=USER if exc.typed else {"Type": None})  # None: the renderer leaves it out
    if isinstance(exc, fn.Conflict):
        return AwsError("ResourceConflictException", exc.message, 409, fields=USER)
    if isinstance(exc, fn.PreconditionFailed):
        return AwsError("PreconditionFailedException", exc.message, 412, fields=USER)
    if isinstance(exc, fn.TooLarge):
        return AwsError("RequestEntityTooLargeException", exc.message, 413)  # AWS's body: no Type here
    if isinstance(exc, inv.Throttled):
        return AwsError("TooManyRequestsException", "Rate Exceeded.", 429,
                        fields={"Type": "User", "Reason": exc.reason.value}, message_key="message")
    if isinstance(exc, inv.NotAccepting):
        return AwsError("ServiceException", "Hearth is shutting down; retry the request.", 500,
                        fields={"Type": "Service"}, message_key="Message")
    return AwsError("ServiceException", "An internal error occurred.", 500, fields={"Type": "Service"},
                    message_key="Message")


DOMAIN_ERRORS = (fn.FunctionsError, inv.InvokeError)


def maps_domain_errors(cls: type[T]) -> type[T]:
    """Every public method of a provider class answers domain errors as AWS errors (`to_aws`)."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        setattr(cls, name, _async_mapped(member) if inspect.iscoroutinefunction(member) else _mapped(member))
    return cls


def _async_mapped(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def mapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except DOMAIN_ERRORS as exc:
            raise to_aws(exc) from None

    return mapped


def _mapped(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def mapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except DOMAIN_ERRORS as exc:
            raise to_aws(exc) from None

    return mapped
