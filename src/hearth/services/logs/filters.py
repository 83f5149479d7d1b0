"""CloudWatch Logs' metric filters and subscription filters: their operations (a part of `LogsProvider`).

It owns these operations' rules as AWS answers them: a filter belongs to an existing log group, a group
holds at most two subscription filters, a subscription to another account's Lambda function needs a
destination policy, a Kinesis or Firehose destination needs a role. It keeps the filters as settings: it
never evaluates a metric filter into metrics, and never delivers a group's events to a subscription's
destination (Hearth has no CloudWatch metrics, and subscriptions do not deliver yet; docs/design.md).
"""

from __future__ import annotations

import time
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.logs.resources import scoped_name
from hearth.services.logs.store import LogStore, LogStoreError

# Subscription filters per log group (AWS's quota).
MAX_SUBSCRIPTION_FILTERS = 2


def group_not_found() -> AwsError:
    return AwsError("ResourceNotFoundException", "The specified log group does not exist.", 400)


class FilterOperations:
    """PutMetricFilter, DescribeMetricFilters, DeleteMetricFilter and the subscription filter ones."""

    _store: LogStore

    def _require_group(self, ctx: RequestContext, group: str) -> None:
        try:
            self._store.get_group(ctx.account_id, ctx.region, group)
        except LogStoreError:
            raise group_not_found() from None

    # -- metric filters ---------------------------------------------------------------------------

    def put_metric_filter(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group, name = params["logGroupName"], params["filterName"]
        self._require_group(ctx, group)
        resources = self._store.resources
        key = scoped_name(group, name)
        old = resources.get(ctx.account_id, ctx.region, "metric_filter", key)
        transformations = []
        for given in params["metricTransformations"]:
            transformation = {k: given[k] for k in ("metricName", "metricNamespace", "metricValue")}
            if given.get("defaultValue") is not None:
                transformation["defaultValue"] = float(given["defaultValue"])
            for optional in ("dimensions", "unit"):
                if given.get(optional):
                    transformation[optional] = given[optional]
            transformations.append(transformation)
        body = {
            "filterName": name, "filterPattern": params["filterPattern"],
            "metricTransformations": transformations,
            "creationTime": old["creationTime"] if old else int(time.time() * 1000),
            "logGroupName": group, "applyOnTransformedLogs": bool(params.get("applyOnTransformedLogs", False)),
        }
        resources.put(ctx.account_id, ctx.region, "metric_filter", key, body)
        return {}

    def describe_metric_filters(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group, prefix = params.get("logGroupName"), params.get("filterNamePrefix")
        metric, namespace = params.get("metricName"), params.get("metricNamespace")
        if bool(metric) != bool(namespace):
            raise AwsError("InvalidParameterException",
                           "If you specify either metricName or metricNamespace, you must specify both.", 400)
        if group:
            self._require_group(ctx, group)
        found = self._store.resources.list(ctx.account_id, ctx.region, "metric_filter",
                                           scoped_name(group, prefix or "") if group else "")
        if prefix and not group:  # a name prefix alone looks through every group's filters
            found = [f for f in found if str(f["filterName"]).startswith(prefix)]
        if metric:
            found = [f for f in found if any(t["metricName"] == metric and t["metricNamespace"] == namespace
                                             for t in f["metricTransformations"])]
        return {"metricFilters": found}

    def delete_metric_filter(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group, name = params["logGroupName"], params["filterName"]
        self._require_group(ctx, group)
        if not self._store.resources.delete(ctx.account_id, ctx.region, "metric_filter", scoped_name(group, name)):
            raise AwsError("ResourceNotFoundException", "The specified metric filter does not exist.", 400)
        return {}

    def metric_filter_counts(self, ctx: RequestContext) -> dict[str, int]:
        """Log group name → how many metric filters it has (DescribeLogGroups' metricFilterCount)."""
        counts: dict[str, int] = {}
        for found in self._store.resources.list(ctx.account_id, ctx.region, "metric_filter"):
            counts[found["logGroupName"]] = counts.get(found["logGroupName"], 0) + 1
        return counts

    # -- subscription filters ---------------------------------------------------------------------

    def put_subscription_filter(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group, name, destination = params["logGroupName"], params["filterName"], params["destinationArn"]
        parts = destination.split(":")
        service = parts[2] if len(parts) > 5 else ""
        if service == "lambda" and parts[4] != ctx.account_id:
            raise AwsError("AccessDeniedException",
                           "Cross-account lambda invocation passing is not allowed. You must use "
                           "DestinationPolicies to create cross account lambda triggers.", 400)
        if service in ("kinesis", "firehose") and not params.get("roleArn"):
            raise AwsError("InvalidParameterException",
                           f"destinationArn for vendor {service} cannot be used without roleArn", 400)
        self._require_group(ctx, group)
        resources = self._store.resources
        key = scoped_name(group, name)
        existing = resources.list(ctx.account_id, ctx.region, "subscription_filter", scoped_name(group, ""))
        old = next((f for f in existing if f["filterName"] == name), None)
        if old is None and len(existing) >= MAX_SUBSCRIPTION_FILTERS:
            raise AwsError("LimitExceededException", "Resource limit exceeded.", 400)
        body: dict[str, Any] = {
            "filterName": name, "logGroupName": group, "filterPattern": params["filterPattern"],
            "destinationArn": destination, "distribution": params.get("distribution") or "ByLogStream",
            "applyOnTransformedLogs": bool(params.get("applyOnTransformedLogs", False)),
            "creationTime": old["creationTime"] if old else int(time.time() * 1000),
        }
        if params.get("roleArn"):
            body["roleArn"] = params["roleArn"]
        resources.put(ctx.account_id, ctx.region, "subscription_filter", key, body)
        return {}

    def describe_subscription_filters(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = params["logGroupName"]
        self._require_group(ctx, group)
        found = self._store.resources.list(ctx.account_id, ctx.region, "subscription_filter",
                                           scoped_name(group, params.get("filterNamePrefix") or ""))
        return {"subscriptionFilters": found}

    def delete_subscription_filter(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group, name = params["logGroupName"], params["filterName"]
        self._require_group(ctx, group)
        if not self._store.resources.delete(ctx.account_id, ctx.region, "subscription_filter",
                                            scoped_name(group, name)):
            raise AwsError("ResourceNotFoundException", "The specified subscription filter does not exist.", 400)
        return {}
