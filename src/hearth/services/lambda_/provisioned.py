"""Provisioned concurrency operations: Put/Get/Delete/ListProvisionedConcurrencyConfigs.

It owns AWS's caller-facing rules for provisioned concurrency, with the recorded texts: only a
published version or an alias ($LATEST refused), one configuration per version (an alias and the
version it points at cannot both have one), the total within the function's reserved concurrency,
and, without a reservation, within the account's unreserved pool (which keeps its minimum of 100).
It also resolves a configuration's qualifier to the version it provisions (`target_resolver`).

The configurations and their environments belong to `hearth.invoke.provisioned.ProvisionedManager`;
this module never starts environments and never counts invocations.
"""

from __future__ import annotations

from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.functions import errors
from hearth.functions.model import FunctionVersion
from hearth.functions.names import LATEST, FunctionRef, function_arn
from hearth.functions.service import MAX_PAGE, FunctionService
from hearth.invoke.limiter import ConcurrencyLimiter
from hearth.invoke.provisioned import AllocationStatus, ConfigKey, ProvisionedManager, Resolver
from hearth.services.lambda_.errors import maps_domain_errors

MSG_UNPUBLISHED = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
MSG_NOT_ALIAS_OR_VERSION = "The function resource provided must be an alias or a published version."
MSG_NOT_FOUND = "No Provisioned Concurrency Config found for this function"
MSG_ALIAS_CONFLICT = "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version"
MSG_VERSION_CONFLICT = "Version is pointed by a Provisioned Concurrency alias"
MSG_OVER_RESERVED = ("Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution "
                     "for function")


def target_resolver(functions: FunctionService) -> Resolver:
    """The version a configuration provisions: the version itself, or the alias's primary version
    (never a weighted draw: provisioned environments belong to one version)."""

    def resolve(account: str, region: str, name: str, qualifier: str) -> FunctionVersion:
        version = qualifier
        if not qualifier.isdigit():
            version = _alias(functions, account, region, name, qualifier).function_version
        return functions.resolve_ref(FunctionRef(name, version, account, region))

    return resolve


def _alias(functions: FunctionService, account: str, region: str, name: str, alias: str) -> Any:
    try:
        return functions.get_alias(account, region, name, alias)
    except errors.NotFound:
        # AWS names the alias even when the function itself does not exist (recorded).
        raise errors.alias_not_found(function_arn(region, account, name, alias)) from None


def _invalid(message: str, *, typed: bool = True) -> AwsError:
    return AwsError("InvalidParameterValueException", message, 400, fields={"Type": "User" if typed else None})


@maps_domain_errors
class ProvisionedConcurrencyProvider:
    def __init__(self, functions: FunctionService, manager: ProvisionedManager, limiter: ConcurrencyLimiter) -> None:
        self._functions = functions
        self._manager = manager
        self._limiter = limiter

    def _key(self, ctx: RequestContext, params: dict[str, Any], action: str, *, put: bool = False) -> ConfigKey:
        """The configuration's key after AWS's checks on the qualifier and its existence."""
        ref = self._functions.parse_ref(ctx.account_id, ctx.region, params["FunctionName"],
                                        params.get("Qualifier"), action=action)
        account, region = ref.account or ctx.account_id, ref.region or ctx.region
        qualifier = ref.qualifier
        if qualifier in (None, "", LATEST):
            raise _invalid(MSG_UNPUBLISHED if put else MSG_NOT_ALIAS_OR_VERSION)
        assert qualifier is not None
        if qualifier.isdigit():
            self._functions.resolve_ref(FunctionRef(ref.name, qualifier, account, region))  # 404 names it
        else:
            _alias(self._functions, account, region, ref.name, qualifier)
        return (account, region, ref.name, qualifier)

    def put_provisioned_concurrency_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = self._key(ctx, params, "PutProvisionedConcurrencyConfig", put=True)
        account, region, name, qualifier = key
        requested = int(params["ProvisionedConcurrentExecutions"])
        self._check_overlap(key)
        arn = function_arn(region, account, name)
        others = self._manager.total(account, region, name, excluding=qualifier)
        reserved = self._limiter.reserved(arn)
        if reserved is not None:
            if others + requested > reserved:
                raise _invalid(MSG_OVER_RESERVED)
        else:
            # The shared pool as it would be without this configuration's current floor.
            current = self._manager.get(key)
            unreserved = self._limiter.unreserved_capacity(account, region) + (current.requested if current else 0)
            if requested > unreserved:
                raise _invalid("Specified ConcurrentExecutions for function is greater than account's unreserved "
                               f"concurrency [{unreserved}].", typed=False)
            if unreserved - requested < self._limiter.min_unreserved:
                raise _invalid("Specified ConcurrentExecutions for function decreases account's "
                               "UnreservedConcurrentExecution below its minimum value of "
                               f"[{self._limiter.min_unreserved}].", typed=False)
        status = self._manager.put(account, region, name, qualifier, requested)
        return _render(status, with_reason=False)

    def _check_overlap(self, key: ConfigKey) -> None:
        """One configuration per version: an alias and its version (or two aliases) cannot share one."""
        account, region, name, qualifier = key
        target = self._target_version(key)
        holders = [q for q in self._manager.qualifiers_on_version(account, region, name, target) if q != qualifier]
        if not holders:
            return
        if qualifier.isdigit():
            raise errors.conflict(MSG_VERSION_CONFLICT)
        raise errors.conflict(MSG_ALIAS_CONFLICT)

    def _target_version(self, key: ConfigKey) -> str:
        account, region, name, qualifier = key
        if qualifier.isdigit():
            return qualifier
        return str(_alias(self._functions, account, region, name, qualifier).function_version)

    def get_provisioned_concurrency_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = self._key(ctx, params, "GetProvisionedConcurrencyConfig")
        status = self._manager.status(key)
        if status is None:
            raise AwsError("ProvisionedConcurrencyConfigNotFoundException", MSG_NOT_FOUND, 404,
                           fields={"Type": "User"})
        return _render(status)

    def delete_provisioned_concurrency_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = self._key(ctx, params, "DeleteProvisionedConcurrencyConfig")
        self._manager.delete(key)  # no configuration is no error (AWS: 204, recorded)
        return {}

    def list_provisioned_concurrency_configs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ref = self._functions.parse_ref(ctx.account_id, ctx.region, params["FunctionName"], None,
                                        action="ListProvisionedConcurrencyConfigs")
        account, region = ref.account or ctx.account_id, ref.region or ctx.region
        self._functions.get(account, region, ref.name)  # 404 for a missing function (unqualified ARN)
        configs = self._manager.list_configs(account, region, ref.name)
        start = 0
        marker = params.get("Marker")
        if marker:
            start = next((i + 1 for i, c in enumerate(configs) if c.qualifier == marker), len(configs))
        limit = min(int(params.get("MaxItems") or MAX_PAGE), MAX_PAGE)
        page = configs[start:start + limit]
        items = []
        for config in page:
            status = self._manager.status(config.key)
            if status is not None:
                items.append({"FunctionArn": config.qualified_arn, **_render(status)})
        out: dict[str, Any] = {"ProvisionedConcurrencyConfigs": items}
        if start + limit < len(configs) and page:
            out["NextMarker"] = page[-1].qualifier
        return out


def _render(status: AllocationStatus, *, with_reason: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "RequestedProvisionedConcurrentExecutions": status.requested,
        "AvailableProvisionedConcurrentExecutions": status.available,
        "AllocatedProvisionedConcurrentExecutions": status.allocated,
        "Status": status.status,
        "LastModified": status.last_modified,
    }
    if with_reason and status.reason is not None:
        out["StatusReason"] = status.reason
    return out
