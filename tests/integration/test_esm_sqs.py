"""Queue event source mappings through boto3 against a real server: the API, partial batch failures
re-driving only the failed messages into the DLQ, filters deleting non-matching messages, disabled
mappings never firing. Events are checked against aws-lambda-powertools' SqsModel."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel
from botocore.exceptions import ClientError

from tests.integration.harness import HearthServer, create_function

# The function forwards every event it gets to an observer queue, and reports as failed each message
# whose body says {"fail": true}.
OBSERVER = """
import json, os, boto3
sqs = boto3.client("sqs")
url = sqs.get_queue_url(QueueName=os.environ["SEEN"])["QueueUrl"]

def handler(event, context):
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
    failed = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if json.loads(r["body"]).get("fail")]
    return {"batchItemFailures": failed}
"""


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _wait(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return out
        for m in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        out.extend(got)


def _counts(sqs: Any, url: str) -> tuple[int, int]:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                               "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def _enabled(lam: Any, mapping_uuid: str) -> dict[str, Any]:
    return dict(_wait(lambda: (m := lam.get_event_source_mapping(UUID=mapping_uuid))["State"] == "Enabled" and m,
                      10, "Enabled"))


@pytest.fixture
def sqs(server: HearthServer) -> Any:
    return server.client("sqs")


@pytest.fixture
def observer(lam: Any, sqs: Any) -> tuple[str, str]:
    """(function name, observer queue url)."""
    seen = _name("seen")
    url = sqs.create_queue(QueueName=seen)["QueueUrl"]
    fn = _name("esm-fn")
    create_function(lam, fn, {"app.py": OBSERVER}, Environment={"Variables": {"SEEN": seen}}, Timeout=10)
    return fn, url


def _observed(sqs: Any, seen_url: str, into: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for m in _drain(sqs, seen_url):
        event = json.loads(m["Body"])
        SqsModel.model_validate(event)  # the event is AWS's aws:sqs shape
        into.extend(event["Records"])
    return into


def test_partial_batch_failure_redrives_only_failed_messages_to_the_dlq(lam: Any, sqs: Any,
                                                                      observer: tuple[str, str]) -> None:
    fn, seen_url = observer
    dlq_url = sqs.create_queue(QueueName=_name("dlq"))["QueueUrl"]
    src_url = sqs.create_queue(QueueName=_name("src"), Attributes={
        "VisibilityTimeout": "1",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": _arn(sqs, dlq_url), "maxReceiveCount": "2"}),
    })["QueueUrl"]
    src_arn = _arn(sqs, src_url)
    created = lam.create_event_source_mapping(EventSourceArn=src_arn, FunctionName=fn, BatchSize=10,
                                              FunctionResponseTypes=["ReportBatchItemFailures"])
    assert created["State"] == "Creating" and created["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    _enabled(lam, created["UUID"])
    bodies = {"ok-1": False, "ok-2": False, "bad-1": True, "bad-2": True}
    ids = {sqs.send_message(QueueUrl=src_url, MessageBody=json.dumps({"n": n, "fail": fail}))["MessageId"]: n
           for n, fail in bodies.items()}

    dead = _wait(lambda: (got := _drain(sqs, dlq_url)) and got, 30, "the DLQ")
    dead += _wait_more(sqs, dlq_url, 2 - len(dead))
    assert sorted(json.loads(m["Body"])["n"] for m in dead) == ["bad-1", "bad-2"]
    _wait(lambda: _counts(sqs, src_url) == (0, 0), 10, "an empty source queue")
    records: list[dict[str, Any]] = []
    _wait(lambda: len(_observed(sqs, seen_url, records)) >= 6, 10, "every delivery")
    delivered: dict[str, int] = {}
    for r in records:
        assert r["eventSource"] == "aws:sqs" and r["eventSourceARN"] == src_arn
        delivered[ids[r["messageId"]]] = delivered.get(ids[r["messageId"]], 0) + 1
    # Successful messages were deleted after one delivery; failed ones came back until maxReceiveCount.
    assert delivered == {"ok-1": 1, "ok-2": 1, "bad-1": 2, "bad-2": 2}
    lam.delete_event_source_mapping(UUID=created["UUID"])


def _wait_more(sqs: Any, url: str, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 15
    while len(got) < count and time.monotonic() < deadline:
        got += _drain(sqs, url)
        time.sleep(0.1)
    return got


def test_filter_deletes_non_matching_messages(lam: Any, sqs: Any, observer: tuple[str, str]) -> None:
    fn, seen_url = observer
    src_url = sqs.create_queue(QueueName=_name("filt"), Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    created = lam.create_event_source_mapping(
        EventSourceArn=_arn(sqs, src_url), FunctionName=fn, BatchSize=10,
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"body": {"kind": ["keep"]}})}]})
    assert created["FilterCriteria"]["Filters"][0]["Pattern"] == json.dumps({"body": {"kind": ["keep"]}})
    _enabled(lam, created["UUID"])
    for kind in ("keep", "drop", "keep", "plain text"):
        body = kind if kind == "plain text" else json.dumps({"kind": kind})
        sqs.send_message(QueueUrl=src_url, MessageBody=body)
    records: list[dict[str, Any]] = []
    _wait(lambda: len(_observed(sqs, seen_url, records)) >= 2, 20, "the matching messages")
    _wait(lambda: _counts(sqs, src_url) == (0, 0), 10, "the non-matching messages to be deleted")
    _observed(sqs, seen_url, records)
    assert sorted(json.loads(r["body"])["kind"] for r in records) == ["keep", "keep"]
    lam.delete_event_source_mapping(UUID=created["UUID"])


def test_mapping_api_lifecycle_and_errors(lam: Any, sqs: Any, observer: tuple[str, str],
                                         server: HearthServer) -> None:
    fn, _ = observer
    src_url = sqs.create_queue(QueueName=_name("api"), Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    src_arn = _arn(sqs, src_url)
    created = lam.create_event_source_mapping(EventSourceArn=src_arn, FunctionName=fn, Enabled=False,
                                              ScalingConfig={"MaximumConcurrency": 2}, Tags={"team": "a"})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    # A mapping is tagged by its ARN, as a function (LocalStack's TestLambdaTag, event_source_mapping).
    esm_arn = created["EventSourceMappingArn"]
    lam.tag_resource(Resource=esm_arn, Tags={"b": "1", "c": "2"})
    lam.untag_resource(Resource=esm_arn, TagKeys=["c", "missing"])
    assert lam.list_tags(Resource=esm_arn)["Tags"] == {"team": "a", "b": "1"}
    assert created["BatchSize"] == 10 and created["MaximumBatchingWindowInSeconds"] == 0
    assert created["StateTransitionReason"] == "USER_INITIATED"
    assert created["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert created["FunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{fn}"
    assert created["EventSourceMappingArn"].endswith(f":event-source-mapping:{created['UUID']}")
    assert "StartingPosition" not in created and "ParallelizationFactor" not in created
    mid = created["UUID"]
    _wait(lambda: lam.get_event_source_mapping(UUID=mid)["State"] == "Disabled", 10, "Disabled")
    # A disabled mapping never fires: it has no poller, so nothing can take the message.
    sqs.send_message(QueueUrl=src_url, MessageBody="{}")
    assert mid not in server.health()["event_source_mappings"]["pollers"]
    assert _counts(sqs, src_url) == (1, 0)
    listed = lam.list_event_source_mappings(FunctionName=fn)["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [mid]
    assert lam.list_event_source_mappings(EventSourceArn=src_arn)["EventSourceMappings"][0]["UUID"] == mid
    updated = lam.update_event_source_mapping(UUID=mid, Enabled=True, BatchSize=50, MaximumBatchingWindowInSeconds=1)
    assert updated["State"] == "Enabling" and updated["BatchSize"] == 50
    _enabled(lam, mid)
    _wait(lambda: _counts(sqs, src_url) == (0, 0), 10, "the message to be consumed")

    def error(call: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
        with pytest.raises(ClientError) as exc:
            call(**kwargs)
        return {**exc.value.response["Error"], "status": exc.value.response["ResponseMetadata"]["HTTPStatusCode"]}

    dup = error(lam.create_event_source_mapping, EventSourceArn=src_arn, FunctionName=fn)
    assert dup["Code"] == "ResourceConflictException" and mid in dup["Message"]
    assert error(lam.create_event_source_mapping, EventSourceArn=src_arn, FunctionName=fn, BatchSize=20) == {
        "Code": "InvalidParameterValueException", "status": 400,
        "Message": "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"}
    assert error(lam.create_event_source_mapping, EventSourceArn=src_arn, FunctionName="nope-" + fn)["Message"] == \
        "Function does not exist"
    assert error(lam.create_event_source_mapping, FunctionName=fn)["Message"] == "Unrecognized event source."
    assert error(lam.create_event_source_mapping, EventSourceArn=src_arn, FunctionName=fn,
                 DestinationConfig={"OnFailure": {"Destination": src_arn}})["Message"] == \
        "Unsupported DestinationConfig parameter for given event source mapping type."
    assert error(lam.create_event_source_mapping, EventSourceArn=src_arn, FunctionName=fn,
                 StartingPosition="LATEST")["Message"] == "StartingPosition is not valid for SQS event sources."
    assert error(lam.create_event_source_mapping, EventSourceArn=src_arn + "-missing", FunctionName=fn)["Code"] == \
        "InvalidParameterValueException"
    assert error(lam.update_event_source_mapping, UUID=mid,
                 FilterCriteria={"Filters": [{"Pattern": "{\"a\": 1}"}]})["Message"] == \
        "Invalid filter pattern definition."
    missing = str(uuid.uuid4())
    for call in (lam.get_event_source_mapping, lam.delete_event_source_mapping, lam.update_event_source_mapping):
        assert error(call, UUID=missing) == {"Code": "ResourceNotFoundException", "status": 404,
                                             "Message": "The resource you requested does not exist."}
    deleted = lam.delete_event_source_mapping(UUID=mid)
    assert deleted["State"] == "Deleting"
    _wait(lambda: not lam.list_event_source_mappings(FunctionName=fn)["EventSourceMappings"], 10, "deletion")
    assert error(lam.list_tags, Resource=esm_arn) == {"Code": "ResourceNotFoundException", "status": 404,
                                                      "Message": f"Event source mapping not found: {esm_arn}"}
