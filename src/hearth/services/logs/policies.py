"""CloudWatch Logs' resource policies and destinations: their operations (a part of `LogsProvider`).

It owns these operations' rules as AWS answers them: at most ten resource policies per account and
region (replacing one at the limit is allowed), "Policy with name [x] does not exist.", destinations
named by `arn:aws:logs:<region>:<account>:destination:<name>`. It stores policies as given and never
enforces them (Hearth's IAM authorizer judges identity policies, not these; docs/design.md).
"""

from __future__ import annotations

import time
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.logs.store import LogStore

# Resource policies per account and region (AWS's quota).
MAX_RESOURCE_POLICIES = 10


def _now_ms() -> int:
    return int(time.time() * 1000)


class PolicyOperations:
    """PutResourcePolicy, DescribeResourcePolicies, DeleteResourcePolicy and the destination operations."""

    _store: LogStore

    # -- resource policies ------------------------------------------------------------------------

    def put_resource_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("policyName")
        document = params.get("policyDocument")
        if not name or not document:
            raise AwsError("InvalidParameterException", "policyName and policyDocument are required.", 400)
        resources = self._store.resources
        if (resources.get(ctx.account_id, ctx.region, "resource_policy", name) is None
                and len(resources.list(ctx.account_id, ctx.region, "resource_policy")) >= MAX_RESOURCE_POLICIES):
            raise AwsError("LimitExceededException", "Resource limit exceeded.", 400)
        body = {"policyName": name, "policyDocument": document, "lastUpdatedTime": _now_ms(),
                "policyScope": "ACCOUNT"}
        resources.put(ctx.account_id, ctx.region, "resource_policy", name, body)
        return {"resourcePolicy": body}

    def describe_resource_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"resourcePolicies": self._store.resources.list(ctx.account_id, ctx.region, "resource_policy")}

    def delete_resource_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("policyName") or ""
        if not self._store.resources.delete(ctx.account_id, ctx.region, "resource_policy", name):
            raise AwsError("ResourceNotFoundException", f"Policy with name [{name}] does not exist.", 400)
        return {}

    # -- destinations (cross-account subscription targets) ----------------------------------------

    def put_destination(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["destinationName"]
        resources = self._store.resources
        old = resources.get(ctx.account_id, ctx.region, "destination", name)
        body: dict[str, Any] = {
            "destinationName": name, "targetArn": params["targetArn"], "roleArn": params["roleArn"],
            "arn": f"arn:aws:logs:{ctx.region}:{ctx.account_id}:destination:{name}",
            "creationTime": old["creationTime"] if old else _now_ms(),
        }
        if old and old.get("accessPolicy"):
            body["accessPolicy"] = old["accessPolicy"]
        resources.put(ctx.account_id, ctx.region, "destination", name, body)
        return {"destination": body}

    def describe_destinations(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("DestinationNamePrefix") or ""
        return {"destinations": self._store.resources.list(ctx.account_id, ctx.region, "destination", prefix)}

    def put_destination_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["destinationName"]
        body = self._store.resources.get(ctx.account_id, ctx.region, "destination", name)
        if body is None:
            raise AwsError("ResourceNotFoundException", "The specified destination does not exist.", 400)
        body["accessPolicy"] = params["accessPolicy"]
        self._store.resources.put(ctx.account_id, ctx.region, "destination", name, body)
        return {}

    def delete_destination(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if not self._store.resources.delete(ctx.account_id, ctx.region, "destination", params["destinationName"]):
            raise AwsError("ResourceNotFoundException", "The specified destination does not exist.", 400)
        return {}
