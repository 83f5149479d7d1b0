"""Logs' settings beside groups and streams: metric and subscription filters, resource policies,
destinations, vended-log delivery and Insights queries, with AWS's texts (LocalStack's AWS recordings)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.aws.context import Principal, RequestContext
from hearth.aws.errors import AwsError
from hearth.events.delivery import DeliveryRouter, Message
from hearth.services.logs.provider import LogsProvider
from hearth.services.logs.store import LogStore
from hearth.services.logs.subscriptions import SubscriptionDelivery

G = "/aws/lambda/fn"
FN = "arn:aws:lambda:us-east-1:111111111111:function:fn"


def ctx(account: str = "111111111111") -> RequestContext:
    return RequestContext("logs", "Op", "us-east-1", Principal("AKIDEXAMPLE", account), "req-1")


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[LogsProvider]:
    store = LogStore(tmp_path)
    p = LogsProvider(store)
    p.create_log_group(ctx(), {"logGroupName": G})
    yield p
    store.close()


def error(call: object, *args: object) -> tuple[str, str]:
    with pytest.raises(AwsError) as err:
        call(*args)  # type: ignore[operator]
    return err.value.code, err.value.message


def metric(name: str, namespace: str = "ns") -> dict[str, object]:
    return {"metricName": name, "metricNamespace": namespace, "metricValue": "1"}


def test_metric_filters_are_kept_per_group_counted_and_deleted_with_it(provider: LogsProvider) -> None:
    c = ctx()
    provider.put_metric_filter(c, {"logGroupName": G, "filterName": "f1", "filterPattern": " ",
                                   "metricTransformations": [{**metric("m1"), "defaultValue": 0}]})
    provider.put_metric_filter(c, {"logGroupName": G, "filterName": "f2", "filterPattern": "ERROR",
                                   "metricTransformations": [metric("m2")]})
    found = provider.describe_metric_filters(c, {"logGroupName": G, "filterNamePrefix": "f1"})["metricFilters"]
    assert [(f["filterName"], f["logGroupName"], f["metricTransformations"][0]["defaultValue"])
            for f in found] == [("f1", G, 0.0)]
    by_metric = provider.describe_metric_filters(c, {"metricName": "m2", "metricNamespace": "ns"})
    assert [f["filterName"] for f in by_metric["metricFilters"]] == ["f2"]
    assert "defaultValue" not in by_metric["metricFilters"][0]["metricTransformations"][0]
    assert provider.describe_log_groups(c, {})["logGroups"][0]["metricFilterCount"] == 2
    provider.delete_metric_filter(c, {"logGroupName": G, "filterName": "f1"})
    assert error(provider.delete_metric_filter, c, {"logGroupName": G, "filterName": "f1"})[0] == \
        "ResourceNotFoundException"
    provider.delete_log_group(c, {"logGroupName": G})
    provider.create_log_group(c, {"logGroupName": G})
    assert provider.describe_metric_filters(c, {"logGroupName": G}) == {"metricFilters": []}
    # Another account sees nothing of this one's filters.
    assert provider.describe_metric_filters(ctx("222222222222"), {}) == {"metricFilters": []}


def test_subscription_filters_limits_and_errors(provider: LogsProvider) -> None:
    c = ctx()
    assert error(provider.put_subscription_filter, c, {
        "logGroupName": G, "filterName": "x", "filterPattern": "",
        "destinationArn": "arn:aws:lambda:us-east-1:123456789012:function:test"}) == (
        "AccessDeniedException", "Cross-account lambda invocation passing is not allowed. You must use "
                                 "DestinationPolicies to create cross account lambda triggers.")
    assert error(provider.put_subscription_filter, c, {
        "logGroupName": G, "filterName": "x", "filterPattern": "",
        "destinationArn": "arn:aws:kinesis:us-east-1:111111111111:stream/s"}) == (
        "InvalidParameterException", "destinationArn for vendor kinesis cannot be used without roleArn")
    for name in ("a", "b", "a"):  # the second "a" replaces the first: no new filter
        provider.put_subscription_filter(c, {"logGroupName": G, "filterName": name, "filterPattern": "[]",
                                             "destinationArn": FN})
    assert error(provider.put_subscription_filter, c, {"logGroupName": G, "filterName": "c",
                                                       "filterPattern": "", "destinationArn": FN}) == (
        "LimitExceededException", "Resource limit exceeded.")
    found = provider.describe_subscription_filters(c, {"logGroupName": G})["subscriptionFilters"]
    assert [(f["filterName"], f["distribution"]) for f in found] == [("a", "ByLogStream"), ("b", "ByLogStream")]
    provider.delete_subscription_filter(c, {"logGroupName": G, "filterName": "a"})
    assert error(provider.delete_subscription_filter, c, {"logGroupName": G, "filterName": "a"}) == (
        "ResourceNotFoundException", "The specified subscription filter does not exist.")
    assert error(provider.describe_subscription_filters, c, {"logGroupName": "nope"}) == (
        "ResourceNotFoundException", "The specified log group does not exist.")


def test_resource_policies_limit_allows_replacing_at_the_limit(provider: LogsProvider) -> None:
    c = ctx()
    for i in range(10):
        provider.put_resource_policy(c, {"policyName": f"p{i}", "policyDocument": "{}"})
    assert error(provider.put_resource_policy, c, {"policyName": "p10", "policyDocument": "{}"}) == (
        "LimitExceededException", "Resource limit exceeded.")
    out = provider.put_resource_policy(c, {"policyName": "p1", "policyDocument": '{"Version": "2012-10-17"}'})
    assert out["resourcePolicy"]["policyScope"] == "ACCOUNT"
    assert len(provider.describe_resource_policies(c, {})["resourcePolicies"]) == 10
    assert error(provider.delete_resource_policy, c, {"policyName": "non-existent"}) == (
        "ResourceNotFoundException", "Policy with name [non-existent] does not exist.")


def test_destinations_and_their_policy(provider: LogsProvider) -> None:
    c = ctx()
    stream = "arn:aws:kinesis:us-east-1:111111111111:stream/s"
    out = provider.put_destination(c, {"destinationName": "d", "targetArn": stream, "roleArn": "arn:aws:iam::1:role/r"})
    assert out["destination"]["arn"] == "arn:aws:logs:us-east-1:111111111111:destination:d"
    provider.put_destination_policy(c, {"destinationName": "d", "accessPolicy": "{}"})
    found = provider.describe_destinations(c, {"DestinationNamePrefix": "d"})["destinations"]
    assert [(d["destinationName"], d["accessPolicy"]) for d in found] == [("d", "{}")]
    provider.delete_destination(c, {"destinationName": "d"})
    assert provider.describe_destinations(c, {}) == {"destinations": []}


def test_delivery_destinations(provider: LogsProvider) -> None:
    c = ctx()
    missing = ("ResourceNotFoundException", "Requested Delivery Destination does not exist in this account.")
    out = provider.put_delivery_destination(c, {
        "name": "dd", "outputFormat": "json",
        "deliveryDestinationConfiguration": {"destinationResourceArn": "arn:aws:s3:::bucket"}})
    assert out["deliveryDestination"]["deliveryDestinationType"] == "S3"
    provider.put_delivery_destination_policy(c, {"deliveryDestinationName": "dd", "deliveryDestinationPolicy": "{}"})
    assert provider.get_delivery_destination_policy(c, {"deliveryDestinationName": "dd"}) == {
        "policy": {"deliveryDestinationPolicy": "{}"}}
    assert "policy" not in provider.get_delivery_destination(c, {"name": "dd"})["deliveryDestination"]
    provider.delete_delivery_destination_policy(c, {"deliveryDestinationName": "dd"})
    assert provider.get_delivery_destination_policy(c, {"deliveryDestinationName": "dd"}) == {"policy": {}}
    provider.delete_delivery_destination(c, {"name": "dd"})
    assert error(provider.get_delivery_destination, c, {"name": "dd"}) == missing
    assert error(provider.put_delivery_source, c, {"name": "s", "resourceArn": "arn:aws:s3:::b",
                                                   "logType": "ACCESS_LOGS"}) == (
        "ResourceNotFoundException", "Cannot access provided service.")


def test_insights_query_runs_at_once(provider: LogsProvider) -> None:
    c = ctx()
    provider.create_log_stream(c, {"logGroupName": G, "logStreamName": "s"})
    now = int(time.time() * 1000)
    provider.put_log_events(c, {"logGroupName": G, "logStreamName": "s",
                                "logEvents": [{"timestamp": now - 2000 + i, "message": f"event {i}"}
                                              for i in range(3)]})
    window = {"logGroupName": G, "startTime": now // 1000 - 60, "endTime": now // 1000 + 60}
    qid = provider.start_query(c, {**window, "queryString": "fields @message | sort @timestamp desc | limit 2"})
    out = provider.get_query_results(c, qid)
    assert out["status"] == "Complete"
    assert [row[0] for row in out["results"]] == [{"field": "@message", "value": "event 2"},
                                                  {"field": "@message", "value": "event 1"}]
    described = provider.describe_queries(c, {"logGroupName": G, "status": "Complete"})["queries"]
    assert described[0]["queryString"].startswith(f'SOURCE "{G}" START=')
    assert provider.describe_queries(c, {"logGroupName": G, "status": "Scheduled"}) == {"queries": []}
    assert error(provider.start_query, c, {**window, "logGroupName": "nope", "queryString": "fields @message"}) == (
        "ResourceNotFoundException", "Log group 'nope' does not exist for account ID '111111111111'")
    assert error(provider.start_query, c, {**window, "queryString": "stats count(*)"})[0] == "MalformedQueryException"


async def test_subscription_filters_deliver_new_events_to_functions(tmp_path: Path) -> None:
    got: list[tuple[str, Message]] = []
    arrived = asyncio.Event()

    async def function(arn: str, message: Message) -> None:
        got.append((arn, message))
        arrived.set()

    router = DeliveryRouter()
    router.register("lambda", function)
    store = LogStore(tmp_path)
    try:
        p = LogsProvider(store, SubscriptionDelivery(router))
        c = ctx()
        p.create_log_group(c, {"logGroupName": G})
        p.create_log_stream(c, {"logGroupName": G, "logStreamName": "s"})
        p.put_subscription_filter(c, {"logGroupName": G, "filterName": "errors", "filterPattern": "ERROR",
                                      "destinationArn": FN})
        now = int(time.time() * 1000)
        p.put_log_events(c, {"logGroupName": G, "logStreamName": "s", "logEvents": [
            {"timestamp": now, "message": "ERROR one"}, {"timestamp": now, "message": "fine"}]})
        await asyncio.wait_for(arrived.wait(), 10)
    finally:
        store.close()
    arn, message = got[0]
    data = json.loads(gzip.decompress(base64.b64decode(json.loads(message.body)["awslogs"]["data"])))
    assert arn == FN and message.source_arn == f"arn:aws:logs:us-east-1:111111111111:log-group:{G}:*"
    assert (data["messageType"], data["logGroup"], data["logStream"], data["subscriptionFilters"]) == (
        "DATA_MESSAGE", G, "s", ["errors"])
    assert [(e["message"], e["id"].isdigit()) for e in data["logEvents"]] == [("ERROR one", True)]


def test_list_log_groups_and_delivery_destinations_in_creation_order(provider: LogsProvider) -> None:
    c = ctx()
    provider.create_log_group(c, {"logGroupName": "other-group"})
    assert [g["logGroupName"] for g in provider.list_log_groups(c, {"logGroupNamePattern": "other"})["logGroups"]] \
        == ["other-group"]
    assert provider.list_log_groups(c, {"logGroupNamePattern": "no-such-group"}) == {"logGroups": []}
    for name in ("zz", "aa"):
        provider.put_delivery_destination(c, {"name": name, "deliveryDestinationConfiguration": {
            "destinationResourceArn": "arn:aws:s3:::bucket"}})
    listed = provider.describe_delivery_destinations(c, {})["deliveryDestinations"]
    assert [d["name"] for d in listed] == ["zz", "aa"] and all("_created" not in d for d in listed)
