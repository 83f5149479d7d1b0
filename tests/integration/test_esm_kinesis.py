"""Stream event source mappings through boto3 against a real server: ordered processing, a poison
record isolated by bisection and sent to the on-failure queue, the API's stream defaults and errors,
and checkpoints surviving kill -9 and a restart. Events are checked against powertools' KinesisDataStreamModel."""

from __future__ import annotations

import base64
import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import KinesisDataStreamModel
from botocore.exceptions import ClientError

from tests.integration.harness import HearthServer, create_function

# Forwards every event to an observer queue; fails the batch when any record is poisoned.
HANDLER = """
import base64, json, os, boto3
sqs = boto3.client("sqs")
url = sqs.get_queue_url(QueueName=os.environ["SEEN"])["QueueUrl"]

def handler(event, context):
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
    for r in event["Records"]:
        if json.loads(base64.b64decode(r["kinesis"]["data"])).get("poison"):
            raise ValueError("poison record")
    return {}
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


def _drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        out.extend(got)
    return out


def _stream(kinesis: Any, shards: int = 1) -> tuple[str, str]:
    name = _name("st")
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    return name, arn


def _setup(server: HearthServer) -> tuple[Any, Any, Any, str, str]:
    lam, sqs, kinesis = server.client("lambda"), server.client("sqs"), server.client("kinesis")
    seen = _name("seen")
    seen_url = sqs.create_queue(QueueName=seen)["QueueUrl"]
    fn = _name("ks-fn")
    create_function(lam, fn, {"app.py": HANDLER}, Environment={"Variables": {"SEEN": seen}}, Timeout=10)
    return lam, sqs, kinesis, fn, seen_url


def _events(sqs: Any, seen_url: str, into: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for m in _drain(sqs, seen_url):
        event = json.loads(m["Body"])
        KinesisDataStreamModel.model_validate(event)
        into.append(event)
    return into


def _numbers(event: dict[str, Any]) -> list[int]:
    return [json.loads(base64.b64decode(r["kinesis"]["data"]))["n"] for r in event["Records"]]


def test_poison_record_is_isolated_by_bisection_and_sent_on_failure(server: HearthServer) -> None:
    lam, sqs, kinesis, fn, seen_url = _setup(server)
    name, stream_arn = _stream(kinesis)
    failed_url = sqs.create_queue(QueueName=_name("onfail"))["QueueUrl"]
    failed_arn = sqs.get_queue_attributes(QueueUrl=failed_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    put = kinesis.put_records(StreamName=name, Records=[
        {"PartitionKey": "k", "Data": json.dumps({"n": n, "poison": n == 5}).encode()} for n in range(8)])
    sequences = [r["SequenceNumber"] for r in put["Records"]]
    created = lam.create_event_source_mapping(
        EventSourceArn=stream_arn, FunctionName=fn, StartingPosition="TRIM_HORIZON", BatchSize=8,
        BisectBatchOnFunctionError=True, MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": failed_arn}})
    assert created["State"] == "Creating" and created["LastProcessingResult"] == "No records processed"
    assert created["DestinationConfig"] == {"OnFailure": {"Destination": failed_arn}}

    failure = json.loads(_wait(lambda: _drain(sqs, failed_url), 30, "the failure record")[0]["Body"])
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["functionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{fn}"
    assert failure["responseContext"]["functionError"] == "Unhandled" and failure["version"] == "1.0"
    info = failure["KinesisBatchInfo"]
    assert info["batchSize"] == 1 and info["shardId"] == "shardId-000000000000"
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == sequences[5]
    assert info["streamArn"] == stream_arn

    events: list[dict[str, Any]] = []
    _wait(lambda: sum(len(e["Records"]) for e in _events(sqs, seen_url, events) if 5 not in _numbers(e)) >= 7,
          15, "the good records")
    good = [n for e in events if 5 not in _numbers(e) for n in _numbers(e)]
    assert good == [0, 1, 2, 3, 4, 6, 7]  # each once, in order
    assert any(_numbers(e) == [5] for e in events)  # the poison record was isolated by bisection
    assert all(r["eventSourceARN"] == stream_arn and r["eventID"].startswith("shardId-000000000000:")
               for e in events for r in e["Records"])
    mapping = lam.get_event_source_mapping(UUID=created["UUID"])
    assert mapping["State"] == "Enabled" and mapping["LastProcessingResult"] in ("OK", "PROBLEM: Function call failed")
    with urllib.request.urlopen(f"{server.endpoint}/_hearth/metrics", timeout=5) as resp:
        assert f'hearth_esm_iterator_age_milliseconds{{mapping="{created["UUID"]}"' in resp.read().decode()
    lam.delete_event_source_mapping(UUID=created["UUID"])


def test_stream_mapping_defaults_and_errors(server: HearthServer) -> None:
    lam, _, kinesis, fn, _ = _setup(server)
    _, stream_arn = _stream(kinesis)

    def error(**kwargs: Any) -> dict[str, Any]:
        with pytest.raises(ClientError) as exc:
            lam.create_event_source_mapping(FunctionName=fn, **kwargs)
        return dict(exc.value.response["Error"])

    assert error(EventSourceArn=stream_arn) == {
        "Code": "InvalidParameterValueException",
        "Message": "1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: "
                   "Member must not be null."}
    assert error(EventSourceArn=stream_arn, StartingPosition="invalid") == {
        "Code": "ValidationException",
        "Message": "1 validation error detected: Value 'invalid' at 'startingPosition' failed to satisfy "
                   "constraint: Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]"}
    assert error(EventSourceArn=stream_arn + "-gone", StartingPosition="LATEST")["Message"] == \
        f"Stream not found: {stream_arn}-gone"
    assert error(EventSourceArn=stream_arn, StartingPosition="LATEST",
                 ScalingConfig={"MaximumConcurrency": 2})["Code"] == "InvalidParameterValueException"
    created = lam.create_event_source_mapping(EventSourceArn=stream_arn, FunctionName=fn, StartingPosition="LATEST",
                                              Enabled=False)
    expected = {"StartingPosition": "LATEST", "BatchSize": 100, "MaximumBatchingWindowInSeconds": 0,
                "ParallelizationFactor": 1, "DestinationConfig": {"OnFailure": {}}, "MaximumRecordAgeInSeconds": -1,
                "BisectBatchOnFunctionError": False, "MaximumRetryAttempts": -1, "TumblingWindowInSeconds": 0,
                "FunctionResponseTypes": [], "StateTransitionReason": "User action"}
    assert {k: created.get(k) for k in expected} == expected
    lam.delete_event_source_mapping(UUID=created["UUID"])


def test_checkpoints_survive_kill_9(fresh_server: HearthServer) -> None:
    fresh_server.start()
    lam, sqs, kinesis, fn, seen_url = _setup(fresh_server)
    name, stream_arn = _stream(kinesis, shards=2)
    created = lam.create_event_source_mapping(EventSourceArn=stream_arn, FunctionName=fn,
                                              StartingPosition="TRIM_HORIZON", ParallelizationFactor=2)
    kinesis.put_records(StreamName=name, Records=[
        {"PartitionKey": f"p{n % 3}", "Data": json.dumps({"n": n}).encode()} for n in range(6)])
    events: list[dict[str, Any]] = []
    _wait(lambda: sum(len(e["Records"]) for e in _events(sqs, seen_url, events)) >= 6, 20, "the first records")
    # The poller counts a batch's records and commits its checkpoint in one step of the event loop:
    # once the server reports six records, their checkpoints are acknowledged.
    _wait(lambda: fresh_server.health()["event_source_mappings"]["pollers"][created["UUID"]]["records"] >= 6, 20,
          "the checkpoints")
    fresh_server.kill9()
    fresh_server.start()
    kinesis = fresh_server.client("kinesis")
    kinesis.put_record(StreamName=name, PartitionKey="p0", Data=json.dumps({"n": 6}).encode())
    later: list[dict[str, Any]] = []
    _wait(lambda: any(6 in _numbers(e) for e in _events(sqs, seen_url, later)), 20, "the new record")
    assert sorted(n for e in later for n in _numbers(e)) == [6]  # nothing before the checkpoint again
    # Order per partition key held across lanes and shards.
    by_key: dict[str, list[int]] = {}
    for e in events:
        for r in e["Records"]:
            by_key.setdefault(r["kinesis"]["partitionKey"], []).append(json.loads(base64.b64decode(
                r["kinesis"]["data"]))["n"])
    assert all(v == sorted(v) for v in by_key.values()) and sum(map(len, by_key.values())) == 6
    lam.delete_event_source_mapping(UUID=created["UUID"])
