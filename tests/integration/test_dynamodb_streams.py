"""DynamoDB Streams through boto3's `dynamodbstreams` client, and a table's stream triggering a Python
function: events validate against powertools' DynamoDBStreamModel; a poison record is isolated by
bisection and described (DDBStreamBatchInfo) to the on-failure queue."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel
from botocore.exceptions import ClientError

from tests.integration.harness import HearthServer, create_function

# Forwards every event to an observer queue; fails the batch when a record's new image is poisoned.
HANDLER = """
import json, os, boto3
sqs = boto3.client("sqs")
url = sqs.get_queue_url(QueueName=os.environ["SEEN"])["QueueUrl"]

def handler(event, context):
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
    for r in event["Records"]:
        if "poison" in r["dynamodb"].get("NewImage", {}):
            raise ValueError("poison record")
    return {}
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    server = HearthServer(tmp_path_factory.mktemp("ddbs") / "data")
    server.start()
    yield server
    server.stop()


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


def _table(ddb: Any, view: str) -> tuple[str, str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    desc = ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST",
                            StreamSpecification={"StreamEnabled": True, "StreamViewType": view})["TableDescription"]
    return name, desc["LatestStreamArn"]


def _records(streams: Any, arn: str, kind: str = "TRIM_HORIZON", **extra: Any) -> list[dict[str, Any]]:
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType=kind, **extra)["ShardIterator"]
    out: list[dict[str, Any]] = streams.get_records(ShardIterator=it)["Records"]
    return out


def test_stream_records_in_aws_shape(srv: HearthServer) -> None:
    ddb, streams = srv.client("dynamodb"), srv.client("dynamodbstreams")
    name, arn = _table(ddb, "NEW_AND_OLD_IMAGES")
    key = {"id": {"S": "my-item-id"}}
    ddb.put_item(TableName=name, Item={**key, "attr1": {"S": "value1"}, "attr2": {"S": "value2"}})
    ddb.update_item(TableName=name, Key=key, UpdateExpression="SET attr1 = :a, attr2 = :b",
                    ExpressionAttributeValues={":a": {"S": "value2"}, ":b": {"S": "value3"}})
    ddb.update_item(TableName=name, Key=key, UpdateExpression="SET attr1 = :a",  # changes nothing: no record
                    ExpressionAttributeValues={":a": {"S": "value2"}})
    ddb.delete_item(TableName=name, Key=key)
    ddb.delete_item(TableName=name, Key=key)  # nothing to delete: no record
    described = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert described["StreamStatus"] == "ENABLED" and described["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert described["TableName"] == name and described["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    records = _records(streams, arn)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    insert, modify, remove = records
    assert insert["eventVersion"] == "1.1" and insert["eventSource"] == "aws:dynamodb"
    assert insert["awsRegion"] == "us-east-1"
    assert insert["dynamodb"]["SizeBytes"] == 46 and modify["dynamodb"]["SizeBytes"] == 80  # AWS's recorded sizes
    assert "OldImage" not in insert["dynamodb"] and modify["dynamodb"]["OldImage"]["attr1"] == {"S": "value1"}
    assert remove["dynamodb"]["Keys"] == key and "NewImage" not in remove["dynamodb"]
    seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert seqs == sorted(seqs)
    after = _records(streams, arn, "AFTER_SEQUENCE_NUMBER", SequenceNumber=records[0]["dynamodb"]["SequenceNumber"])
    assert [r["eventName"] for r in after] == ["MODIFY", "REMOVE"]
    assert _records(streams, arn, "LATEST") == []
    listed = streams.list_streams(TableName=name)["Streams"]
    assert listed == [{"StreamArn": arn, "TableName": name, "StreamLabel": arn.rsplit("/", 1)[-1]}]
    ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})
    assert streams.describe_stream(StreamArn=arn)["StreamDescription"]["StreamStatus"] == "DISABLED"
    with pytest.raises(ClientError) as info:
        streams.describe_stream(StreamArn=arn + "x")
    assert info.value.response["Error"] == {
        "Code": "ResourceNotFoundException", "Message": f"Requested resource not found: Stream: {arn}x not found"}


def test_binary_values_come_back_as_written(srv: HearthServer) -> None:
    ddb, streams = srv.client("dynamodb"), srv.client("dynamodbstreams")
    name, arn = _table(ddb, "NEW_IMAGE")
    item = {"id": {"S": "b"}, "data": {"B": b"\x90"}, "set": {"BS": [b"\x01", b"\xff"]},
            "nested": {"M": {"inner": {"L": [{"B": b"\x00x"}]}}}}
    ddb.put_item(TableName=name, Item=item)
    [record] = _records(streams, arn)
    assert record["dynamodb"]["NewImage"] == item  # raw bytes, not their base64 text
    # A write-only PartiQL transaction answers an empty Responses list, as AWS does.
    assert ddb.execute_transaction(TransactStatements=[
        {"Statement": f"UPDATE \"{name}\" SET v = 1 WHERE id = 'b'"}])["Responses"] == []


def test_ttl_deletion_is_a_service_remove(srv: HearthServer) -> None:
    ddb, streams = srv.client("dynamodb"), srv.client("dynamodbstreams")
    name, arn = _table(ddb, "KEYS_ONLY")
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    ddb.put_item(TableName=name, Item={"id": {"S": "gone"}, "exp": {"N": str(int(time.time()) - 5)}})
    removes = _wait(lambda: [r for r in _records(streams, arn) if r["eventName"] == "REMOVE"], 20, "the TTL delete")
    assert removes[0]["userIdentity"] == {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    assert removes[0]["dynamodb"]["StreamViewType"] == "KEYS_ONLY"


def test_stream_triggers_a_function_with_bisection(srv: HearthServer) -> None:
    lam, sqs, ddb = srv.client("lambda"), srv.client("sqs"), srv.client("dynamodb")
    seen = f"seen-{uuid.uuid4().hex[:8]}"
    seen_url = sqs.create_queue(QueueName=seen)["QueueUrl"]
    failed_url = sqs.create_queue(QueueName=f"onfail-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    failed_arn = sqs.get_queue_attributes(QueueUrl=failed_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    fn = f"ddb-fn-{uuid.uuid4().hex[:8]}"
    create_function(lam, fn, {"app.py": HANDLER}, Environment={"Variables": {"SEEN": seen}}, Timeout=10)
    name, arn = _table(ddb, "NEW_IMAGE")
    for n in range(8):
        item = {"id": {"S": f"item-{n}"}, "n": {"N": str(n)}, "blob": {"B": b"foobar"}}
        if n == 5:
            item["poison"] = {"BOOL": True}
        ddb.put_item(TableName=name, Item=item)
    # A table's stream is read from TRIM_HORIZON or LATEST only (LocalStack's test_create_event_source_validation).
    with pytest.raises(ClientError) as exc:
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="AT_TIMESTAMP",
                                        StartingPositionTimestamp=1741010802)
    assert exc.value.response["Error"]["Message"] == f"Unsupported starting position for arn type: {arn}"
    created = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON", BatchSize=8,
        BisectBatchOnFunctionError=True, MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": failed_arn}})
    assert created["EventSourceArn"] == arn and created["StartingPosition"] == "TRIM_HORIZON"
    assert created["StateTransitionReason"] == "User action"

    failure = json.loads(_wait(lambda: _drain(sqs, failed_url), 40, "the failure record")[0]["Body"])
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    info = failure["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1 and info["streamArn"] == arn
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    assert re.fullmatch(r"shardId-\d{20}-[0-9a-f]{8}", info["shardId"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["approximateArrivalOfFirstRecord"])

    events: list[dict[str, Any]] = []

    def numbers(event: dict[str, Any]) -> list[int]:
        return [int(r["dynamodb"]["NewImage"]["n"]["N"]) for r in event["Records"]]

    def collect() -> int:
        for m in _drain(sqs, seen_url):
            event = json.loads(m["Body"])
            DynamoDBStreamModel.model_validate(event)  # an independent model of AWS's event
            events.append(event)
        return sum(len(e["Records"]) for e in events if 5 not in numbers(e)) >= 7

    _wait(collect, 20, "the good records")
    good = [n for e in events if 5 not in numbers(e) for n in numbers(e)]
    assert good == [0, 1, 2, 3, 4, 6, 7]  # each once, in order
    assert any(numbers(e) == [5] for e in events)  # isolated by bisection
    record = events[0]["Records"][0]
    assert record["eventSourceARN"] == arn and record["eventName"] == "INSERT"
    assert record["dynamodb"]["NewImage"]["blob"] == {"B": "Zm9vYmFy"}
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], (int, float))
    lam.delete_event_source_mapping(UUID=created["UUID"])


def test_filter_criteria_on_dynamodb_json(srv: HearthServer) -> None:
    lam, sqs, ddb = srv.client("lambda"), srv.client("sqs"), srv.client("dynamodb")
    seen = f"seen-{uuid.uuid4().hex[:8]}"
    seen_url = sqs.create_queue(QueueName=seen)["QueueUrl"]
    fn = f"ddb-filter-{uuid.uuid4().hex[:8]}"
    create_function(lam, fn, {"app.py": HANDLER}, Environment={"Variables": {"SEEN": seen}}, Timeout=10)
    name, arn = _table(ddb, "NEW_AND_OLD_IMAGES")
    pattern = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["keep"]}}}}
    created = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON",
                                              FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]})
    for n, kind in enumerate(["drop", "keep", "drop", "keep"]):
        ddb.put_item(TableName=name, Item={"id": {"S": f"i{n}"}, "kind": {"S": kind}})
    ddb.put_item(TableName=name, Item={"id": {"S": "i1"}, "kind": {"S": "keep"}, "x": {"N": "1"}})  # a MODIFY
    ddb.put_item(TableName=name, Item={"id": {"S": "last"}, "kind": {"S": "keep"}})
    got: list[str] = []

    def collect() -> bool:
        for m in _drain(sqs, seen_url):
            got.extend(r["dynamodb"]["Keys"]["id"]["S"] for r in json.loads(m["Body"])["Records"])
        return "last" in got

    _wait(collect, 30, "the filtered records")
    assert got == ["i1", "i3", "last"]
    lam.delete_event_source_mapping(UUID=created["UUID"])


WINDOW_HANDLER = """
import json, os, boto3
sqs = boto3.client("sqs")
url = sqs.get_queue_url(QueueName=os.environ["SEEN"])["QueueUrl"]

def handler(event, context):
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
    total = event["state"].get("sum", 0) + sum(int(r["dynamodb"]["NewImage"]["n"]["N"]) for r in event["Records"])
    return {"state": {"sum": total}}
"""


def test_tumbling_window_aggregates_a_table_stream(srv: HearthServer) -> None:
    lam, sqs, ddb = srv.client("lambda"), srv.client("sqs"), srv.client("dynamodb")
    seen = f"seen-{uuid.uuid4().hex[:8]}"
    seen_url = sqs.create_queue(QueueName=seen)["QueueUrl"]
    fn = f"ddb-window-{uuid.uuid4().hex[:8]}"
    create_function(lam, fn, {"app.py": WINDOW_HANDLER}, Environment={"Variables": {"SEEN": seen}}, Timeout=10)
    name, arn = _table(ddb, "NEW_IMAGE")
    created = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON",
                                              TumblingWindowInSeconds=2, BatchSize=2)
    assert created["TumblingWindowInSeconds"] == 2
    for n in (1, 2, 3):
        ddb.put_item(TableName=name, Item={"id": {"S": f"i{n}"}, "n": {"N": str(n)}})
    events: list[dict[str, Any]] = []

    def finals() -> list[dict[str, Any]]:
        events.extend(json.loads(m["Body"]) for m in _drain(sqs, seen_url))
        return [e for e in events if e["isFinalInvokeForWindow"]]

    # Each window's final invocation carries its aggregate: over the windows, 1 + 2 + 3.
    _wait(lambda: sum(f["state"]["sum"] for f in finals()) == 6, 30, "the windows' final invocations")
    final = finals()[0]
    assert final["Records"] == [] and final["eventSourceARN"] == arn and set(final["window"]) == {"start", "end"}
    assert all(not e["isFinalInvokeForWindow"] for e in events if e["Records"])
    lam.delete_event_source_mapping(UUID=created["UUID"])
