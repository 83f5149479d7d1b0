from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.aws.context import Principal, RequestContext
from hearth.aws.errors import AwsError
from hearth.services.logs.provider import LogsProvider
from hearth.services.logs.store import LogStore

G = "/aws/lambda/fn"


def ctx(account: str = "111111111111", region: str = "us-east-1") -> RequestContext:
    return RequestContext("logs", "Op", region, Principal("AKIDEXAMPLE", account), "req-1")


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[LogsProvider]:
    store = LogStore(tmp_path)
    yield LogsProvider(store)
    store.close()


def now_ms() -> int:
    return int(time.time() * 1000)


def setup_stream(p: LogsProvider, c: RequestContext | None = None) -> None:
    c = c or ctx()
    p.create_log_group(c, {"logGroupName": G})
    p.create_log_stream(c, {"logGroupName": G, "logStreamName": "s"})


def test_group_lifecycle_and_aws_errors(provider: LogsProvider) -> None:
    provider.create_log_group(ctx(), {"logGroupName": G, "tags": {"a": "1"}})
    with pytest.raises(AwsError) as err:
        provider.create_log_group(ctx(), {"logGroupName": G})
    assert (err.value.code, err.value.message, err.value.status) == (
        "ResourceAlreadyExistsException", "The specified log group already exists", 400)
    out = provider.describe_log_groups(ctx(), {"logGroupNamePrefix": "/aws/"})
    group = out["logGroups"][0]
    assert group["logGroupName"] == G
    assert group["arn"] == f"arn:aws:logs:us-east-1:111111111111:log-group:{G}:*"
    assert group["logGroupArn"] == f"arn:aws:logs:us-east-1:111111111111:log-group:{G}"
    assert group["storedBytes"] == 0 and "retentionInDays" not in group and "nextToken" not in out
    assert provider.list_tags_log_group(ctx(), {"logGroupName": G}) == {"tags": {"a": "1"}}
    provider.delete_log_group(ctx(), {"logGroupName": G})
    with pytest.raises(AwsError) as err:
        provider.delete_log_group(ctx(), {"logGroupName": G})
    assert (err.value.code, err.value.message) == (
        "ResourceNotFoundException", "The specified log group does not exist.")


def test_stream_errors(provider: LogsProvider) -> None:
    setup_stream(provider)
    with pytest.raises(AwsError) as err:
        provider.create_log_stream(ctx(), {"logGroupName": G, "logStreamName": "s"})
    assert err.value.code == "ResourceAlreadyExistsException"
    with pytest.raises(AwsError) as err:
        provider.get_log_events(ctx(), {"logGroupName": G, "logStreamName": "nope"})
    assert (err.value.code, err.value.message) == (
        "ResourceNotFoundException", "The specified log stream does not exist.")


def test_put_then_get_and_filter(provider: LogsProvider) -> None:
    setup_stream(provider)
    t = now_ms()
    out = provider.put_log_events(ctx(), {
        "logGroupName": G, "logStreamName": "s", "sequenceToken": "ignored",
        "logEvents": [{"timestamp": t, "message": "hello"}, {"timestamp": t + 1, "message": "ERROR boom"}],
    })
    assert "rejectedLogEventsInfo" not in out and out["nextSequenceToken"]
    got = provider.get_log_events(ctx(), {"logGroupName": G, "logStreamName": "s", "startFromHead": True})
    assert [e["message"] for e in got["events"]] == ["hello", "ERROR boom"]
    assert got["nextForwardToken"].startswith("f/") and got["nextBackwardToken"].startswith("b/")
    assert set(got["events"][0]) == {"timestamp", "message", "ingestionTime"}
    filtered = provider.filter_log_events(ctx(), {"logGroupName": G, "filterPattern": "ERROR"})
    assert [e["message"] for e in filtered["events"]] == ["ERROR boom"]
    assert filtered["events"][0]["logStreamName"] == "s" and filtered["events"][0]["eventId"]
    streams = provider.describe_log_streams(ctx(), {"logGroupName": G})["logStreams"]
    assert streams[0]["firstEventTimestamp"] == t and streams[0]["lastEventTimestamp"] == t + 1
    assert streams[0]["arn"].endswith(f"log-group:{G}:log-stream:s")


def test_put_log_events_rules(provider: LogsProvider) -> None:
    setup_stream(provider)
    t = now_ms()
    base = {"logGroupName": G, "logStreamName": "s"}
    with pytest.raises(AwsError) as err:
        provider.put_log_events(ctx(), {**base, "logEvents": [{"timestamp": t, "message": "b"},
                                                             {"timestamp": t - 1, "message": "a"}]})
    assert err.value.code == "InvalidParameterException" and "chronological order" in err.value.message
    with pytest.raises(AwsError) as err:
        provider.put_log_events(ctx(), {**base, "logEvents": [{"timestamp": t - 86_400_001, "message": "a"},
                                                             {"timestamp": t, "message": "b"}]})
    assert "24 hours" in err.value.message
    out = provider.put_log_events(ctx(), {**base, "logEvents": [
        {"timestamp": t - 15 * 86_400_000, "message": "too old"},
        {"timestamp": t - 15 * 86_400_000 + 1000, "message": "too old too"},
    ]})
    assert out["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 2}
    out = provider.put_log_events(ctx(), {**base, "logEvents": [
        {"timestamp": t, "message": "fine"}, {"timestamp": t + 3 * 3_600_000, "message": "too new"}]})
    assert out["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    got = provider.get_log_events(ctx(), {**base, "startFromHead": True})
    assert [e["message"] for e in got["events"]] == ["fine"]
    with pytest.raises(AwsError) as err:
        provider.put_log_events(ctx(), {"logGroupName": G, "logStreamName": "missing",
                                        "logEvents": [{"timestamp": t, "message": "x"}]})
    assert err.value.message == "The specified log stream does not exist."


def test_retention_policy_values(provider: LogsProvider) -> None:
    setup_stream(provider)
    with pytest.raises(AwsError) as err:
        provider.put_retention_policy(ctx(), {"logGroupName": G, "retentionInDays": 2})
    assert err.value.code == "InvalidParameterException"
    assert "Value '2' at 'retentionInDays'" in err.value.message
    provider.put_retention_policy(ctx(), {"logGroupName": G, "retentionInDays": 7})
    assert provider.describe_log_groups(ctx(), {})["logGroups"][0]["retentionInDays"] == 7
    provider.delete_retention_policy(ctx(), {"logGroupName": G})
    assert "retentionInDays" not in provider.describe_log_groups(ctx(), {})["logGroups"][0]


def test_another_account_sees_nothing_even_by_arn(provider: LogsProvider) -> None:
    setup_stream(provider)
    other = ctx(account="222222222222")
    assert provider.describe_log_groups(other, {})["logGroups"] == []
    arn = f"arn:aws:logs:us-east-1:111111111111:log-group:{G}"
    with pytest.raises(AwsError) as err:
        provider.filter_log_events(other, {"logGroupIdentifier": arn})
    assert err.value.code == "ResourceNotFoundException"
    with pytest.raises(AwsError):
        provider.list_tags_for_resource(other, {"resourceArn": arn})
    # The owner may use the ARN form.
    assert provider.filter_log_events(ctx(), {"logGroupIdentifier": arn})["events"] == []
    with pytest.raises(AwsError) as err:
        provider.get_log_events(other, {"logGroupName": G, "logStreamName": "s"})
    assert err.value.message == "The specified log group does not exist."


def test_describe_log_streams_order_rule_and_identifier_exclusivity(provider: LogsProvider) -> None:
    setup_stream(provider)
    with pytest.raises(AwsError) as err:
        provider.describe_log_streams(ctx(), {"logGroupName": G, "orderBy": "LastEventTime",
                                              "logStreamNamePrefix": "s"})
    assert err.value.code == "InvalidParameterException"
    with pytest.raises(AwsError) as err:
        provider.describe_log_streams(ctx(), {"logGroupName": G, "logGroupIdentifier": G})
    # AWS answers this one as a ValidationException (recorded by LocalStack's AWS-validated tests).
    assert err.value.code == "ValidationException"


def test_bad_next_token_is_invalid_parameter(provider: LogsProvider) -> None:
    setup_stream(provider)
    with pytest.raises(AwsError) as err:
        provider.filter_log_events(ctx(), {"logGroupName": G, "nextToken": "not-a-token"})
    assert err.value.code == "InvalidParameterException"
