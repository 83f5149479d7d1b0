"""Reserved concurrency operations (Put/Get/DeleteFunctionConcurrency) and GetAccountSettings.

It owns AWS's caller-facing rules for reserved concurrency: only unqualified functions, the account
keeps at least 100 unreserved, reserved never below the function's provisioned concurrency, with the
recorded texts; and GetAccountSettings, which reports the unreserved pool. The counts themselves
belong to the `ConcurrencyLimiter`; this module never counts invocations.
"""

from __future__ import annotations

from typing import Any, Protocol

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.functions import errors
from hearth.functions.config import FunctionConfig
from hearth.functions.names import LATEST, FunctionRef, function_arn
from hearth.invoke.limiter import ConcurrencyLimiter
from hearth.services.lambda_ import validation
from hearth.services.lambda_.errors import maps_domain_errors
from hearth.services.lambda_.provider import TOTAL_CODE_SIZE_LIMIT
from hearth.store.blobs import UNZIPPED_LIMIT

# These errors of PutFunctionConcurrency carry no `Type` in AWS's body (recorded).
_UNTYPED: dict[str, Any] = {"Type": None}

MSG_QUALIFIED = ("This operation is permitted on Lambda functions only. Aliases and versions do not support this "
                 "operation. Please specify either a function name or an unqualified function ARN.")


class Functions(Protocol):
    def parse_ref(self, account: str, region: str, name_or_arn: str, qualifier: str | None, *,
                  action: str) -> FunctionRef: ...
    def get(self, account: str, region: str, name: str) -> FunctionConfig: ...
    def usage(self, account: str, region: str) -> tuple[int, int]: ...


@maps_domain_errors
class ConcurrencyProvider:
    def __init__(self, functions: Functions, limiter: ConcurrencyLimiter) -> None:
        self._functions = functions
        self._limiter = limiter

    def _function(self, ctx: RequestContext, name: str, action: str, *, latest_in_404: bool) -> str:
        """The unqualified ARN of an existing function: the caller's, or another account's whose policy
        lets the caller (404 otherwise)."""
        ref = self._functions.parse_ref(ctx.account_id, ctx.region, name, None, action=action)
        owner = ref.account or ctx.account_id
        try:
            self._functions.get(owner, ctx.region, ref.name)
        except errors.NotFound:
            if not latest_in_404:
                raise
            # AWS names $LATEST in this 404 (recorded), even before it looks at the qualifier.
            raise errors.not_found(function_arn(ctx.region, owner, ref.name, LATEST)) from None
        if ref.qualifier is not None:
            raise errors.invalid_parameter(MSG_QUALIFIED)
        return function_arn(ctx.region, owner, ref.name)

    def put_function_concurrency(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = self._function(ctx, params["FunctionName"], "PutFunctionConcurrency", latest_in_404=True)
        reserved = int(params["ReservedConcurrentExecutions"])
        provisioned = self._limiter.provisioned(arn)
        if reserved < provisioned:
            # Spacing exactly as recorded from AWS.
            raise AwsError("InvalidParameterValueException",
                           f" ReservedConcurrentExecutions  {reserved} should not be lower than function's total "
                           f"provisioned concurrency [{provisioned}].", 400, fields=_UNTYPED)
        unreserved = self._limiter.unreserved_if(_owner(arn), ctx.region, arn, reserved)
        if unreserved < self._limiter.min_unreserved:
            raise AwsError("InvalidParameterValueException",
                           "Specified ReservedConcurrentExecutions for function decreases account's "
                           "UnreservedConcurrentExecution below its minimum value of "
                           f"[{self._limiter.min_unreserved}].", 400, fields=_UNTYPED)
        self._limiter.set_reserved(arn, _owner(arn), ctx.region, reserved)
        return {"ReservedConcurrentExecutions": reserved}

    def get_function_concurrency(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = self._function(ctx, params["FunctionName"], "GetFunctionConcurrency", latest_in_404=False)
        reserved = self._limiter.reserved(arn)
        return {} if reserved is None else {"ReservedConcurrentExecutions": reserved}

    def delete_function_concurrency(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = self._function(ctx, params["FunctionName"], "DeleteFunctionConcurrency", latest_in_404=False)
        self._limiter.set_reserved(arn, _owner(arn), ctx.region, None)
        return {}

    def get_account_settings(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        size, count = self._functions.usage(ctx.account_id, ctx.region)
        return {
            "AccountLimit": {
                "TotalCodeSize": TOTAL_CODE_SIZE_LIMIT,
                "CodeSizeUnzipped": UNZIPPED_LIMIT,
                "CodeSizeZipped": validation.ZIPPED_LIMIT,
                "ConcurrentExecutions": self._limiter.account_limit,
                "UnreservedConcurrentExecutions": self._limiter.unreserved_capacity(ctx.account_id, ctx.region),
            },
            "AccountUsage": {"TotalCodeSize": size, "FunctionCount": count},
        }


def _owner(arn: str) -> str:
    """The account of a function ARN (arn:aws:lambda:<region>:<account>:function:<name>)."""
    return arn.split(":")[4]
