"""DynamoDB-compatible tables through boto3's client and resource (with boto3.dynamodb.conditions)
against one real server: tables, items, expressions, reads, batches, transactions, TTL, errors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Attr, Key
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.harness import ACCESS_KEY, SECRET_KEY, HearthServer


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    server = HearthServer(tmp_path_factory.mktemp("ddb") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ddb(srv: HearthServer) -> Any:
    return srv.client("dynamodb")


@pytest.fixture(scope="module")
def resource(srv: HearthServer) -> Any:
    return boto3.resource("dynamodb", endpoint_url=srv.endpoint, region_name="us-east-1",
                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                          config=Config(retries={"max_attempts": 1}))


def error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = info.value.response["Error"]
    return err["Code"], err["Message"]


def make_table(ddb: Any, name: str, *, range_key: str | None = None, range_type: str = "S",
               **extra: Any) -> dict[str, Any]:
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    defs = [{"AttributeName": "pk", "AttributeType": "S"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
        defs.append({"AttributeName": range_key, "AttributeType": range_type})
    defs += extra.pop("extra_defs", [])
    out: dict[str, Any] = ddb.create_table(TableName=name, KeySchema=schema, AttributeDefinitions=defs,
                                           BillingMode="PAY_PER_REQUEST", **extra)
    return out


def test_table_lifecycle(ddb: Any) -> None:
    created = ddb.create_table(TableName="crud", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                               AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                               ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
                               SSESpecification={"Enabled": True}, TableClass="STANDARD_INFREQUENT_ACCESS",
                               Tags=[{"Key": "team", "Value": "core"}])["TableDescription"]
    assert created["TableStatus"] == "CREATING" and created["ItemCount"] == 0
    assert created["ProvisionedThroughput"] == {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 5,
                                                "WriteCapacityUnits": 5}
    ddb.get_waiter("table_exists").wait(TableName="crud", WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    table = ddb.describe_table(TableName="crud")["Table"]
    assert table["TableStatus"] == "ACTIVE" and table["WarmThroughput"]["Status"] == "ACTIVE"
    assert table["SSEDescription"]["Status"] == "ENABLED"
    assert table["TableClassSummary"] == {"TableClass": "STANDARD_INFREQUENT_ACCESS"}
    assert ddb.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"] == [{"Key": "team", "Value": "core"}]
    ddb.tag_resource(ResourceArn=table["TableArn"], Tags=[{"Key": "env", "Value": "dev"}])
    ddb.untag_resource(ResourceArn=table["TableArn"], TagKeys=["team"])
    assert ddb.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"] == [{"Key": "env", "Value": "dev"}]
    with pytest.raises(ClientError) as info:
        ddb.create_table(TableName="crud", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
    assert error(info) == ("ResourceInUseException", "Table already exists: crud")
    with pytest.raises(ClientError) as info:
        ddb.create_table(TableName="ppr", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST",
                         ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
    assert error(info) == ("ValidationException", "One or more parameter values were invalid: Neither "
                           "ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is "
                           "PAY_PER_REQUEST")
    updated = ddb.update_table(TableName="crud", BillingMode="PAY_PER_REQUEST")["TableDescription"]
    assert updated["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert "LastUpdateToPayPerRequestDateTime" in updated["BillingModeSummary"]
    # UpdateTable's UPDATING description carries the warm throughput too, as AWS's.
    assert updated["WarmThroughput"] == {"ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 4000, "Status": "ACTIVE"}
    ddb.update_time_to_live(TableName="crud", TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    assert ddb.describe_time_to_live(TableName="crud")["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "exp"}
    backups = ddb.update_continuous_backups(TableName="crud", PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": True})["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert ddb.describe_continuous_backups(TableName="crud")["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"]["RecoveryPeriodInDays"] == 35
    assert ddb.describe_limits()["TableMaxReadCapacityUnits"] > 0
    assert ddb.describe_endpoints()["Endpoints"][0]["CachePeriodInMinutes"] == 1440
    deleted = ddb.delete_table(TableName="crud")["TableDescription"]
    assert deleted["TableStatus"] == "DELETING" and "KeySchema" not in deleted
    with pytest.raises(ClientError) as info:
        ddb.delete_table(TableName="non-existent")
    assert error(info) == ("ResourceNotFoundException", "Requested resource not found: Table: non-existent not found")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_list_tables_pages(ddb: Any) -> None:
    for i in range(3):
        make_table(ddb, f"page-{i}")
    names = [n for page in ddb.get_paginator("list_tables").paginate(PaginationConfig={"PageSize": 2})
             for n in page["TableNames"]]
    assert [n for n in names if n.startswith("page-")] == ["page-0", "page-1", "page-2"]


def test_items_and_return_values(ddb: Any) -> None:
    make_table(ddb, "items")
    assert "Attributes" not in ddb.put_item(TableName="items", Item={"pk": {"S": "id1"}, "data": {"S": "foobar"}})
    old = ddb.put_item(TableName="items", Item={"pk": {"S": "id1"}, "data": {"S": "x"}}, ReturnValues="ALL_OLD")
    assert old["Attributes"] == {"pk": {"S": "id1"}, "data": {"S": "foobar"}}
    got = ddb.get_item(TableName="items", Key={"pk": {"S": "id1"}}, ConsistentRead=True,
                       ReturnConsumedCapacity="TOTAL")
    assert got["Item"] == {"pk": {"S": "id1"}, "data": {"S": "x"}}
    assert got["ConsumedCapacity"] == {"TableName": "items", "CapacityUnits": 1.0, "ReadCapacityUnits": 1.0}
    up = ddb.update_item(
        TableName="items", Key={"pk": {"S": "id1"}},
        UpdateExpression="SET n = if_not_exists(n, :zero) + :one, tags = list_append(if_not_exists(tags, :e), :l), "
                         "m = :m REMOVE #d ADD cnt :one, s :set",
        ExpressionAttributeNames={"#d": "data"},
        ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}, ":e": {"L": []},
                                   ":l": {"L": [{"S": "a"}]}, ":m": {"M": {}}, ":set": {"SS": ["x", "y"]}},
        ConditionExpression="attribute_exists(pk)", ReturnValues="ALL_NEW")
    assert up["Attributes"] == {"pk": {"S": "id1"}, "n": {"N": "1"}, "cnt": {"N": "1"}, "m": {"M": {}},
                                "tags": {"L": [{"S": "a"}]}, "s": {"SS": ["x", "y"]}}


def test_update_nested_and_every_return_value(ddb: Any) -> None:
    make_table(ddb, "nested")
    ddb.put_item(TableName="nested", Item={"pk": {"S": "a"}, "m": {"M": {"x": {"N": "1"}, "l": {"L": [
        {"S": "p"}, {"S": "q"}, {"S": "r"}]}}}, "s": {"NS": ["1", "2"]}})
    kw: dict[str, Any] = {"TableName": "nested", "Key": {"pk": {"S": "a"}}}
    new = ddb.update_item(**kw, UpdateExpression="SET m.x = m.x + :two, m.l[1] = :z DELETE s :one",
                          ExpressionAttributeValues={":two": {"N": "2"}, ":z": {"S": "z"}, ":one": {"NS": ["1"]}},
                          ReturnValues="UPDATED_NEW")["Attributes"]
    assert new == {"m": {"M": {"x": {"N": "3"}, "l": {"L": [{"S": "z"}]}}}, "s": {"NS": ["2"]}}
    ddb.update_item(**kw, UpdateExpression="REMOVE m.l[0]")
    item = ddb.get_item(**kw)["Item"]
    assert item["m"]["M"]["l"] == {"L": [{"S": "z"}, {"S": "r"}]}
    old = ddb.update_item(**kw, UpdateExpression="SET m.x = :v", ExpressionAttributeValues={":v": {"N": "9"}},
                          ReturnValues="UPDATED_OLD")["Attributes"]
    assert old == {"m": {"M": {"x": {"N": "3"}}}}
    all_old = ddb.update_item(**kw, UpdateExpression="REMOVE s", ReturnValues="ALL_OLD")["Attributes"]
    assert all_old["s"] == {"NS": ["2"]}
    projected = ddb.get_item(**kw, ProjectionExpression="m.l[1], #p", ExpressionAttributeNames={"#p": "pk"})["Item"]
    assert projected == {"pk": {"S": "a"}, "m": {"M": {"l": {"L": [{"S": "r"}]}}}}
    with pytest.raises(ClientError) as info:
        ddb.update_item(**kw, UpdateExpression="SET nope.x = :v", ExpressionAttributeValues={":v": {"N": "1"}})
    assert error(info) == ("ValidationException",
                           "The document path provided in the update expression is invalid for update")
    with pytest.raises(ClientError) as info:
        ddb.update_item(**kw, UpdateExpression="SET pk = :v", ExpressionAttributeValues={":v": {"S": "b"}})
    assert error(info) == ("ValidationException", "One or more parameter values were invalid: Cannot update "
                           "attribute pk. This attribute is part of the key")


def test_conditions_and_errors(ddb: Any) -> None:
    make_table(ddb, "cond")
    ddb.put_item(TableName="cond", Item={"pk": {"S": "456"}, "price": {"N": "650"},
                                          "product": {"S": "sporting goods"}})
    with pytest.raises(ClientError) as info:
        ddb.put_item(TableName="cond", Item={"pk": {"S": "456"}}, ConditionExpression="attribute_not_exists(pk)",
                     ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert error(info) == ("ConditionalCheckFailedException", "The conditional request failed")
    assert info.value.response["Item"] == {"pk": {"S": "456"}, "price": {"N": "650"},
                                           "product": {"S": "sporting goods"}}
    ddb.delete_item(TableName="cond", Key={"pk": {"S": "456"}},
                    ConditionExpression="price BETWEEN :lo AND :hi AND begins_with(product, :p) AND "
                                        "size(product) > :n AND attribute_type(price, :t) AND NOT contains(product, :x)"
                                        " AND price IN (:a, :hi2)",
                    ExpressionAttributeValues={":lo": {"N": "600"}, ":hi": {"N": "700"}, ":p": {"S": "sport"},
                                               ":n": {"N": "3"}, ":t": {"S": "N"}, ":x": {"S": "zzz"},
                                               ":a": {"N": "1"}, ":hi2": {"N": "650.0"}})
    assert "Item" not in ddb.get_item(TableName="cond", Key={"pk": {"S": "456"}})
    cases = [
        ({"ConditionExpression": "a = :v", "ExpressionAttributeValues": {":v": {"S": "1"}, ":w": {"S": "2"}}},
         "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}"),
        ({"ConditionExpression": "a = :v"},
         "Invalid ConditionExpression: An expression attribute value used in expression is not defined; "
         "attribute value: :v"),
        ({"ConditionExpression": "#a = :v", "ExpressionAttributeValues": {":v": {"S": "1"}}},
         "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; "
         "attribute name: #a"),
        ({"ConditionExpression": "a = :v AND", "ExpressionAttributeValues": {":v": {"S": "1"}}},
         'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "AND"'),
        ({"ConditionExpression": "status = :v", "ExpressionAttributeValues": {":v": {"S": "1"}}},
         "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status"),
        ({"ConditionExpression": "foo(a)"}, "Invalid ConditionExpression: Invalid function name; function: foo"),
    ]
    for extra, message in cases:
        with pytest.raises(ClientError) as info:
            ddb.put_item(TableName="cond", Item={"pk": {"S": "1"}}, **extra)
        assert error(info) == ("ValidationException", message)


def test_key_and_value_rules(ddb: Any) -> None:
    make_table(ddb, "rules", range_key="sk", range_type="N")
    bad = [
        ({"pk": {"S": ""}, "sk": {"N": "1"}}, "One or more parameter values are not valid. The AttributeValue for a "
         "key attribute cannot contain an empty string value. Key: pk"),
        ({"pk": {"S": "a"}}, "One or more parameter values were invalid: Missing the key sk in the item"),
        ({"pk": {"S": "a"}, "sk": {"S": "1"}}, "One or more parameter values were invalid: Type mismatch for key sk "
         "expected: N actual: S"),
        ({"pk": {"S": "a"}, "sk": {"N": "1"}, "big": {"S": "x" * 409_600}},
         "Item size has exceeded the maximum allowed size"),
        ({"pk": {"S": "a"}, "sk": {"N": "1" * 39}}, "Attempting to store more than 38 significant digits in a Number"),
        ({"pk": {"S": "a"}, "sk": {"N": "1"}, "s": {"SS": []}}, "One or more parameter values were invalid: An string"
         " set  may not be empty"),
    ]
    for item, message in bad:
        with pytest.raises(ClientError) as info:
            ddb.put_item(TableName="rules", Item=item)
        assert error(info) == ("ValidationException", message)
    with pytest.raises(ClientError) as info:
        ddb.get_item(TableName="rules", Key={"pk": {"S": "a"}})
    assert error(info) == ("ValidationException", "The provided key element does not match the schema")
    ddb.put_item(TableName="rules", Item={"pk": {"S": "a"}, "sk": {"N": "1.50"}, "n": {"N": "-0012.3400e1"},
                                           "big": {"N": "9.9999999999999999999999999999999999999E+125"}})
    item = ddb.get_item(TableName="rules", Key={"pk": {"S": "a"}, "sk": {"N": "1.5"}})["Item"]
    assert item["sk"] == {"N": "1.5"} and item["n"] == {"N": "-123.4"}
    with pytest.raises(ClientError) as info:
        ddb.get_item(TableName="missing", Key={"pk": {"S": "a"}})
    assert error(info) == ("ResourceNotFoundException", "Requested resource not found")


def test_query_scan_and_indexes(ddb: Any) -> None:
    make_table(ddb, "orders", range_key="sk", range_type="N",
               extra_defs=[{"AttributeName": "status_", "AttributeType": "S"},
                           {"AttributeName": "lsk", "AttributeType": "S"}],
               GlobalSecondaryIndexes=[{"IndexName": "by-status", "KeySchema": [
                   {"AttributeName": "status_", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                   "Projection": {"ProjectionType": "KEYS_ONLY"}}],
               LocalSecondaryIndexes=[{"IndexName": "by-lsk", "KeySchema": [
                   {"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "lsk", "KeyType": "RANGE"}],
                   "Projection": {"ProjectionType": "ALL"}}])
    numbers = ["-10", "-1.5", "-1.25", "0", "0.5", "2", "10", "100.5"]
    for i, n in enumerate(numbers):
        item = {"pk": {"S": "p"}, "sk": {"N": n}, "lsk": {"S": f"l{7 - i}"}, "v": {"N": str(i)}}
        if i % 2 == 0:
            item["status_"] = {"S": "open"}
        ddb.put_item(TableName="orders", Item=item)
    ddb.put_item(TableName="orders", Item={"pk": {"S": "q"}, "sk": {"N": "1"}})
    q = ddb.query(TableName="orders", KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
                  ExpressionAttributeValues={":p": {"S": "p"}, ":a": {"N": "-1.5"}, ":b": {"N": "2"}})
    assert [i["sk"]["N"] for i in q["Items"]] == ["-1.5", "-1.25", "0", "0.5", "2"]
    back = ddb.query(TableName="orders", KeyConditionExpression="pk = :p", ScanIndexForward=False,
                     ExpressionAttributeValues={":p": {"S": "p"}, ":three": {"N": "3"}}, FilterExpression="v >= :three",
                     ProjectionExpression="sk")
    assert back["Items"][0] == {"sk": {"N": "100.5"}} and back["ScannedCount"] == 8 and back["Count"] == 5
    pages = list(ddb.get_paginator("query").paginate(
        TableName="orders", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}},
        PaginationConfig={"PageSize": 3}))
    assert [i["sk"]["N"] for p in pages for i in p["Items"]] == numbers
    assert pages[0]["LastEvaluatedKey"] == {"pk": {"S": "p"}, "sk": {"N": "-1.25"}}
    count = ddb.query(TableName="orders", KeyConditionExpression="pk = :p AND sk < :z", Select="COUNT",
                      ExpressionAttributeValues={":p": {"S": "p"}, ":z": {"N": "0"}})
    assert count["Count"] == 3 and "Items" not in count
    gsi = ddb.query(TableName="orders", IndexName="by-status", KeyConditionExpression="status_ = :o",
                    ExpressionAttributeValues={":o": {"S": "open"}})
    assert [set(i) for i in gsi["Items"]] == [{"pk", "sk", "status_"}] * 4  # sparse: only the open ones
    lsi = ddb.query(TableName="orders", IndexName="by-lsk", KeyConditionExpression="pk = :p AND begins_with(lsk, :l)",
                    ExpressionAttributeValues={":p": {"S": "p"}, ":l": {"S": "l"}}, Limit=2)
    assert [i["lsk"]["S"] for i in lsi["Items"]] == ["l0", "l1"]
    assert set(lsi["LastEvaluatedKey"]) == {"pk", "sk", "lsk"}
    seen = []
    for segment in range(3):
        seen += ddb.scan(TableName="orders", Segment=segment, TotalSegments=3)["Items"]
    assert len(seen) == 9
    filtered = ddb.scan(TableName="orders", FilterExpression="attribute_not_exists(status_)")
    assert filtered["Count"] == 5 and filtered["ScannedCount"] == 9
    with pytest.raises(ClientError) as info:
        ddb.query(TableName="orders", KeyConditionExpression="sk = :a", ExpressionAttributeValues={":a": {"N": "1"}})
    assert error(info) == ("ValidationException", "Query condition missed key schema element: pk")
    ddb.update_table(TableName="orders", AttributeDefinitions=[{"AttributeName": "v", "AttributeType": "N"}],
                     GlobalSecondaryIndexUpdates=[{"Create": {"IndexName": "by-v", "KeySchema": [
                         {"AttributeName": "v", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}}])
    by_v = ddb.query(TableName="orders", IndexName="by-v", KeyConditionExpression="v = :v",
                     ExpressionAttributeValues={":v": {"N": "3"}})
    assert by_v["Items"][0]["sk"] == {"N": "0"}  # backfilled
    ddb.update_table(TableName="orders", GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by-v"}}])
    assert len(ddb.describe_table(TableName="orders")["Table"]["GlobalSecondaryIndexes"]) == 1


def test_resource_and_conditions(resource: Any) -> None:
    table = resource.create_table(TableName="res", KeySchema=[{"AttributeName": "user", "KeyType": "HASH"},
                                                               {"AttributeName": "ts", "KeyType": "RANGE"}],
                                  AttributeDefinitions=[{"AttributeName": "user", "AttributeType": "S"},
                                                        {"AttributeName": "ts", "AttributeType": "N"}],
                                  BillingMode="PAY_PER_REQUEST")
    table.wait_until_exists()
    with table.batch_writer() as batch:
        for i in range(30):
            batch.put_item(Item={"user": "u1", "ts": i, "kind": "odd" if i % 2 else "even", "price": Decimal("1.5"),
                                 "tags": {"a", "b"}, "blob": b"\x00\x01"})
    got = table.query(KeyConditionExpression=Key("user").eq("u1") & Key("ts").between(5, 9),
                      FilterExpression=Attr("kind").eq("odd") & Attr("tags").contains("a"))
    assert [int(i["ts"]) for i in got["Items"]] == [5, 7, 9]
    assert got["Items"][0]["price"] == Decimal("1.5") and got["Items"][0]["blob"].value == b"\x00\x01"
    scan = table.scan(FilterExpression=Attr("ts").is_in([1, 2, 3]) | Attr("missing").exists())
    assert scan["Count"] == 3
    table.update_item(Key={"user": "u1", "ts": 1}, UpdateExpression="SET price = price + :d",
                      ExpressionAttributeValues={":d": Decimal("0.25")})
    assert table.get_item(Key={"user": "u1", "ts": 1})["Item"]["price"] == Decimal("1.75")
    with pytest.raises(ClientError):
        table.put_item(Item={"user": "u1", "ts": 1}, ConditionExpression=Attr("user").not_exists())
    table.delete()


def test_batches_and_transactions(ddb: Any) -> None:
    make_table(ddb, "tx")
    ddb.batch_write_item(RequestItems={"tx": [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}, "n": {"N": "1"}}}}
                                              for i in range(5)]})
    got = ddb.batch_get_item(RequestItems={"tx": {"Keys": [{"pk": {"S": "k1"}}, {"pk": {"S": "k9"}}]}})
    assert got["Responses"]["tx"] == [{"pk": {"S": "k1"}, "n": {"N": "1"}}] and got["UnprocessedKeys"] == {}
    for request in ({"DeleteRequest": {"Key": {"nope": {"S": "x"}}}}, {"PutRequest": {"Item": {"nope": {"S": "x"}}}}):
        with pytest.raises(ClientError) as info:
            ddb.batch_write_item(RequestItems={"tx": [request]})
        assert error(info) == ("ValidationException", "The provided key element does not match the schema")
    with pytest.raises(ClientError) as info:
        ddb.transact_write_items(TransactItems=[
            {"ConditionCheck": {"TableName": "tx", "Key": {"pk": {"S": "k1"}}, "ConditionExpression": "n = :two",
                                "ExpressionAttributeValues": {":two": {"N": "2"}}}},
            {"Put": {"TableName": "tx", "Item": {"pk": {"S": "new"}}}}])
    assert error(info) == ("TransactionCanceledException", "Transaction cancelled, please refer cancellation "
                           "reasons for specific reasons [ConditionalCheckFailed, None]")
    assert [r["Code"] for r in info.value.response["CancellationReasons"]] == ["ConditionalCheckFailed", "None"]
    assert "Item" not in ddb.get_item(TableName="tx", Key={"pk": {"S": "new"}})
    request: dict[str, Any] = {"TransactItems": [
        {"Update": {"TableName": "tx", "Key": {"pk": {"S": "k1"}}, "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Delete": {"TableName": "tx", "Key": {"pk": {"S": "k2"}}}}], "ClientRequestToken": "token-1"}
    ddb.transact_write_items(**request)
    ddb.transact_write_items(**request)  # idempotent: not applied twice
    items = ddb.transact_get_items(TransactItems=[{"Get": {"TableName": "tx", "Key": {"pk": {"S": "k1"}}}},
                                                  {"Get": {"TableName": "tx", "Key": {"pk": {"S": "k2"}}}}])
    assert items["Responses"] == [{"Item": {"pk": {"S": "k1"}, "n": {"N": "2"}}}, {}]
    with pytest.raises(ClientError) as info:
        ddb.transact_write_items(TransactItems=[{"Delete": {"TableName": "tx", "Key": {"pk": {"S": "k3"}}}}],
                                 ClientRequestToken="token-1")
    assert error(info)[0] == "IdempotentParameterMismatchException"


def test_ttl_deletes_expired_items(ddb: Any) -> None:
    make_table(ddb, "ttl", StreamSpecification={"StreamEnabled": True, "StreamViewType": "OLD_IMAGE"})
    ddb.update_time_to_live(TableName="ttl", TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    ddb.put_item(TableName="ttl", Item={"pk": {"S": "old"}, "exp": {"N": str(int(time.time()) - 10)}})
    ddb.put_item(TableName="ttl", Item={"pk": {"S": "new"}, "exp": {"N": "99999999999"}})
    deadline = time.monotonic() + 20
    while "Item" in ddb.get_item(TableName="ttl", Key={"pk": {"S": "old"}}):
        assert time.monotonic() < deadline, "the expired item was not deleted"
        time.sleep(0.2)
    assert "Item" in ddb.get_item(TableName="ttl", Key={"pk": {"S": "new"}})


def test_acknowledged_writes_and_their_records_survive_kill9(tmp_path: Path) -> None:
    server = HearthServer(tmp_path / "data")
    server.start()
    try:
        ddb = server.client("dynamodb")
        make_table(ddb, "durable", StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
        acknowledged: list[str] = []
        stop = threading.Event()

        def writer() -> None:
            client = server.client("dynamodb")
            n = 0
            while not stop.is_set():
                try:
                    client.put_item(TableName="durable", Item={"pk": {"S": f"k{n}"}})
                except Exception:  # the server died under this call: it was not acknowledged
                    return
                acknowledged.append(f"k{n}")
                n += 1

        thread = threading.Thread(target=writer)
        thread.start()
        while len(acknowledged) < 30:
            time.sleep(0.01)
        server.kill9()  # mid-write
        stop.set()
        thread.join()
        server.start()
        ddb = server.client("dynamodb")
        stored = {i["pk"]["S"] for p in ddb.get_paginator("scan").paginate(TableName="durable") for i in p["Items"]}
        assert set(acknowledged) <= stored
        streams = server.client("dynamodbstreams")
        arn = ddb.describe_table(TableName="durable")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in streams.get_records(ShardIterator=it["ShardIterator"])[
            "Records"]]
        assert sorted(keys) == sorted(stored)  # every write has its record, every record its write
    finally:
        server.stop()


def test_partiql_statements(ddb: Any) -> None:
    make_table(ddb, "pql", range_key="sk", range_type="N")
    ddb.execute_statement(Statement="INSERT INTO pql VALUE {'pk': 'a', 'sk': 1, 'tags': <<'x', 'y'>>, 'm': {'k': [1, "
                                    "TRUE, NULL]}}")
    ddb.execute_statement(Statement='INSERT INTO "pql" VALUE {\'pk\': ?, \'sk\': ?, \'n\': 5}',
                          Parameters=[{"S": "a"}, {"N": "2"}])
    with pytest.raises(ClientError) as info:
        ddb.execute_statement(Statement="INSERT INTO pql VALUE {'pk': 'a', 'sk': 1}")
    assert error(info) == ("DuplicateItemException", "Duplicate primary key exists in table")
    items = ddb.execute_statement(Statement="SELECT * FROM pql WHERE pk = 'a' AND sk >= 1")["Items"]
    assert [i["sk"] for i in items] == [{"N": "1"}, {"N": "2"}]
    assert items[0]["tags"]["SS"] == ["x", "y"] and items[0]["m"] == {"M": {"k": {"L": [
        {"N": "1"}, {"BOOL": True}, {"NULL": True}]}}}
    ddb.execute_statement(Statement="UPDATE pql SET n = 6 REMOVE tags WHERE pk = 'a' AND sk = 2 AND n = 5")
    got = ddb.execute_statement(Statement="SELECT n, sk FROM pql WHERE pk = ? AND n IS NOT MISSING",
                                Parameters=[{"S": "a"}])["Items"]
    assert got == [{"n": {"N": "6"}, "sk": {"N": "2"}}]
    with pytest.raises(ClientError) as info:
        ddb.execute_statement(Statement="UPDATE pql SET n = 7 WHERE pk = 'a' AND sk = 2 AND n = 5")
    assert error(info) == ("ConditionalCheckFailedException", "The conditional request failed")
    with pytest.raises(ClientError) as info:
        ddb.execute_statement(Statement="DELETE FROM pql WHERE pk = 'a'")
    assert error(info) == ("ValidationException",
                           "Where clause does not contain a mandatory equality on all key attributes")
    batch = ddb.batch_execute_statement(Statements=[
        {"Statement": "DELETE FROM pql WHERE pk = 'a' AND sk = 1"},
        {"Statement": "INSERT INTO pql VALUE {'pk': 'a', 'sk': 2}"}])["Responses"]
    assert batch[0] == {"TableName": "pql"} and batch[1]["Error"]["Code"] == "DuplicateItem"
    assert ddb.execute_statement(Statement="SELECT * FROM pql WHERE pk = 'a'")["Items"] == [
        {"pk": {"S": "a"}, "sk": {"N": "2"}, "n": {"N": "6"}}]
    ddb.execute_transaction(TransactStatements=[{"Statement": "INSERT INTO pql VALUE {'pk': 'b', 'sk': 1}"},
                                                {"Statement": "UPDATE pql SET n = 7 WHERE pk = 'a' AND sk = 2"}])
    with pytest.raises(ClientError) as info:
        ddb.execute_transaction(TransactStatements=[{"Statement": "INSERT INTO pql VALUE {'pk': 'c', 'sk': 1}"},
                                                    {"Statement": "UPDATE pql SET n = 8 WHERE pk = 'a' AND sk = 9"}])
    assert [r["Code"] for r in info.value.response["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    assert ddb.execute_statement(Statement="SELECT pk FROM pql WHERE pk = 'c'")["Items"] == []  # all or nothing
    got = ddb.execute_transaction(TransactStatements=[{"Statement": "SELECT n FROM pql WHERE pk = 'a' AND sk = 2"}])
    assert got["Responses"] == [{"Item": {"n": {"N": "7"}}}]
    with pytest.raises(ClientError) as info:
        ddb.execute_statement(Statement="SELEC * FROM pql")
    assert error(info)[0] == "ValidationException"


def test_legacy_parameters(ddb: Any) -> None:
    make_table(ddb, "legacy", range_key="sk", range_type="N")
    for n in range(5):
        ddb.put_item(TableName="legacy", Item={"pk": {"S": "a"}, "sk": {"N": str(n)}, "v": {"S": f"v{n}"}},
                     Expected={"pk": {"Exists": False}})
    with pytest.raises(ClientError) as info:
        ddb.put_item(TableName="legacy", Item={"pk": {"S": "a"}, "sk": {"N": "1"}},
                     Expected={"v": {"Value": {"S": "other"}}})
    assert error(info)[0] == "ConditionalCheckFailedException"
    got = ddb.query(TableName="legacy", KeyConditions={
        "pk": {"AttributeValueList": [{"S": "a"}], "ComparisonOperator": "EQ"},
        "sk": {"AttributeValueList": [{"N": "1"}, {"N": "3"}], "ComparisonOperator": "BETWEEN"}},
        QueryFilter={"v": {"AttributeValueList": [{"S": "v2"}], "ComparisonOperator": "NE"}},
        AttributesToGet=["sk"], ReturnConsumedCapacity="TOTAL")
    assert got["Items"] == [{"sk": {"N": "1"}}, {"sk": {"N": "3"}}] and got["ScannedCount"] == 3
    assert got["ConsumedCapacity"]["TableName"] == "legacy"
    ddb.update_item(TableName="legacy", Key={"pk": {"S": "a"}, "sk": {"N": "0"}},
                    AttributeUpdates={"v": {"Action": "DELETE"}, "n": {"Action": "ADD", "Value": {"N": "2"}}})
    assert ddb.get_item(TableName="legacy", Key={"pk": {"S": "a"}, "sk": {"N": "0"}})["Item"] == {
        "pk": {"S": "a"}, "sk": {"N": "0"}, "n": {"N": "2"}}
    scan = ddb.scan(TableName="legacy", ScanFilter={"v": {"ComparisonOperator": "BEGINS_WITH",
                                                         "AttributeValueList": [{"S": "v"}]}})
    assert scan["Count"] == 4
    with pytest.raises(ClientError) as info:
        ddb.query(TableName="legacy", KeyConditionExpression="pk = :a", ExpressionAttributeValues={":a": {"S": "a"}},
                  QueryFilter={"v": {"ComparisonOperator": "NOT_NULL"}})
    assert error(info) == ("ValidationException", "Can not use both expression and non-expression parameters in "
                           "the same request: Non-expression parameters: {QueryFilter} Expression parameters: "
                           "{KeyConditionExpression}")


def test_documented_results_through_the_api(ddb: Any) -> None:
    """The unit tests' tables of AWS's documented results, asked of the server through boto3."""
    import re

    from tests.unit.dynamodb.test_expressions import CONDITIONS, ITEM, NAMES, VALUES
    from tests.unit.dynamodb.test_values import NUMBERS

    ddb.create_table(TableName="documented", KeySchema=[{"AttributeName": "Id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "Id", "AttributeType": "N"}],
                     BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName="documented", Item=ITEM)
    for text, expected in CONDITIONS:
        names = {k: val for k, val in NAMES.items() if re.search(re.escape(k) + r"\b", text)}
        values = {k: val for k, val in VALUES.items() if re.search(re.escape(k) + r"\b", text)}
        extra: dict[str, Any] = {"ExpressionAttributeNames": names} if names else {}
        try:
            ddb.update_item(TableName="documented", Key={"Id": {"N": "123"}}, UpdateExpression="SET probe = :probe",
                            ConditionExpression=text, ExpressionAttributeValues={**values, ":probe": {"N": "1"}},
                            **extra)
            passed = True
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException", (text, exc.response)
            passed = False
        assert passed is expected, text
    for i, (raw, stored) in enumerate(NUMBERS):
        ddb.put_item(TableName="documented", Item={"Id": {"N": str(1000 + i)}, "n": {"N": raw}})
        got = ddb.get_item(TableName="documented", Key={"Id": {"N": str(1000 + i)}})["Item"]["n"]["N"]
        assert got == stored, raw


def test_pages_end_at_one_megabyte(ddb: Any) -> None:
    make_table(ddb, "pages", range_key="sk", range_type="N")
    blob = "x" * (200 * 1024)
    for n in range(7):  # 1.4 MB in one partition
        ddb.put_item(TableName="pages", Item={"pk": {"S": "p"}, "sk": {"N": str(n)}, "blob": {"S": blob}})
    first = ddb.query(TableName="pages", KeyConditionExpression="pk = :p", ExpressionAttributeValues={
        ":p": {"S": "p"}}, ProjectionExpression="sk")
    # The read that reaches 1 MB ends the page (it is the 6th item of ~200 KB here).
    assert first["Count"] == 6 and first["LastEvaluatedKey"] == {"pk": {"S": "p"}, "sk": {"N": "5"}}
    rest = ddb.query(TableName="pages", KeyConditionExpression="pk = :p", ExpressionAttributeValues={
        ":p": {"S": "p"}}, ProjectionExpression="sk", ExclusiveStartKey=first["LastEvaluatedKey"])
    assert [i["sk"]["N"] for i in rest["Items"]] == ["6"] and "LastEvaluatedKey" not in rest
    scanned = ddb.scan(TableName="pages", Select="COUNT")
    assert scanned["ScannedCount"] == 6 and "LastEvaluatedKey" in scanned


# -- Kinesis streaming destinations, contributor insights, warm throughput, SSE keys, replicas ----------

def _kinesis_records(kinesis: Any, stream: str, want: int) -> list[dict[str, Any]]:
    """Records of a one-shard stream from its start, polled until `want` arrived (the forwarder is async)."""
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while len(records) < want and time.monotonic() < deadline:
        page = kinesis.get_records(ShardIterator=iterator)
        records += page["Records"]
        iterator = page["NextShardIterator"]
        if len(records) < want:
            time.sleep(0.1)
    return [json.loads(r["Data"]) for r in records]


def test_kinesis_streaming_destination_receives_item_changes(srv: HearthServer, ddb: Any) -> None:
    kinesis = srv.client("kinesis")
    kinesis.create_stream(StreamName="ddb-changes", ShardCount=1)
    arn = kinesis.describe_stream(StreamName="ddb-changes")["StreamDescription"]["StreamARN"]
    make_table(ddb, "to-kinesis")
    with pytest.raises(ClientError) as info:
        ddb.enable_kinesis_streaming_destination(TableName="nope", StreamArn=arn)
    assert error(info) == ("ResourceNotFoundException", "Requested resource not found: Table: nope not found")
    enabled = ddb.enable_kinesis_streaming_destination(TableName="to-kinesis", StreamArn=arn)
    assert enabled["DestinationStatus"] == "ENABLING" and enabled["EnableKinesisStreamingConfiguration"] == {}
    assert ddb.describe_kinesis_streaming_destination(TableName="to-kinesis")["KinesisDataStreamDestinations"] == [
        {"StreamArn": arn, "DestinationStatus": "ACTIVE"}]
    ddb.put_item(TableName="to-kinesis", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    ddb.update_item(TableName="to-kinesis", Key={"pk": {"S": "a"}}, UpdateExpression="SET n = :n",
                    ExpressionAttributeValues={":n": {"N": "2"}})
    ddb.delete_item(TableName="to-kinesis", Key={"pk": {"S": "a"}})
    records = _kinesis_records(kinesis, "ddb-changes", 3)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    insert, modify, remove = records
    assert insert["tableName"] == "to-kinesis" and insert["recordFormat"] == "application/json"
    assert insert["eventSource"] == "aws:dynamodb" and "eventSourceARN" not in insert
    assert insert["dynamodb"]["NewImage"] == {"pk": {"S": "a"}, "n": {"N": "1"}} and "OldImage" not in insert[
        "dynamodb"]
    assert modify["dynamodb"]["OldImage"]["n"] == {"N": "1"} and modify["dynamodb"]["NewImage"]["n"] == {"N": "2"}
    assert remove["dynamodb"]["Keys"] == {"pk": {"S": "a"}} and "NewImage" not in remove["dynamodb"]
    assert insert["dynamodb"]["ApproximateCreationDateTimePrecision"] == "MILLISECOND"
    with pytest.raises(ClientError) as info:
        ddb.update_kinesis_streaming_destination(TableName="to-kinesis", StreamArn=arn)
    assert error(info)[1].endswith("UpdateKinesisStreamingConfiguration cannot be null or contain only null values")
    updated = ddb.update_kinesis_streaming_destination(
        TableName="to-kinesis", StreamArn=arn,
        UpdateKinesisStreamingConfiguration={"ApproximateCreationDateTimePrecision": "MICROSECOND"})
    assert updated["DestinationStatus"] == "UPDATING"
    with pytest.raises(ClientError) as info:
        ddb.update_kinesis_streaming_destination(
            TableName="to-kinesis", StreamArn=arn,
            UpdateKinesisStreamingConfiguration={"ApproximateCreationDateTimePrecision": "MICROSECOND"})
    assert "Precision is already set to the desired value of MICROSECOND" in error(info)[1]
    assert ddb.disable_kinesis_streaming_destination(TableName="to-kinesis",
                                                     StreamArn=arn)["DestinationStatus"] == "DISABLING"
    assert ddb.describe_kinesis_streaming_destination(TableName="to-kinesis")["KinesisDataStreamDestinations"][0][
        "DestinationStatus"] == "DISABLED"


def test_contributor_insights_and_warm_throughput_are_stored(ddb: Any) -> None:
    created = ddb.create_table(TableName="warm", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                               AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                               ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
                               WarmThroughput={"ReadUnitsPerSecond": 1000, "WriteUnitsPerSecond": 1200})
    assert created["TableDescription"]["WarmThroughput"] == {"ReadUnitsPerSecond": 1000, "WriteUnitsPerSecond": 1200,
                                                             "Status": "UPDATING"}
    assert ddb.describe_table(TableName="warm")["Table"]["WarmThroughput"] == {
        "ReadUnitsPerSecond": 1000, "WriteUnitsPerSecond": 1200, "Status": "ACTIVE"}
    described = ddb.describe_contributor_insights(TableName="warm")
    assert (described["TableName"], described["ContributorInsightsStatus"]) == ("warm", "DISABLED")
    assert ddb.update_contributor_insights(TableName="warm", ContributorInsightsAction="ENABLE")[
        "ContributorInsightsStatus"] == "ENABLING"
    enabled = ddb.describe_contributor_insights(TableName="warm")
    assert enabled["ContributorInsightsStatus"] == "ENABLED" and len(enabled["ContributorInsightsRuleList"]) == 2
    assert {"TableName": "warm", "ContributorInsightsStatus": "ENABLED",
            "ContributorInsightsMode": "ACCESSED_AND_THROTTLED_KEYS"} in ddb.list_contributor_insights()[
        "ContributorInsightsSummaries"]


def test_sse_with_the_aws_managed_key(srv: HearthServer, ddb: Any) -> None:
    created = ddb.create_table(TableName="sse", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                               AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                               BillingMode="PAY_PER_REQUEST", SSESpecification={"Enabled": True})
    key_arn = created["TableDescription"]["SSEDescription"]["KMSMasterKeyArn"]
    kms = srv.client("kms")
    meta = kms.describe_key(KeyId=key_arn)["KeyMetadata"]
    assert meta["Arn"] == key_arn and meta["KeyManager"] == "AWS" and meta["KeyState"] == "Enabled"
    assert meta["Description"] == "Default key that protects my DynamoDB data when no other key is defined"
    assert kms.describe_key(KeyId="alias/aws/dynamodb")["KeyMetadata"]["KeyId"] == meta["KeyId"]
    again = make_table(ddb, "sse-too", SSESpecification={"Enabled": True})
    assert again["TableDescription"]["SSEDescription"]["KMSMasterKeyArn"] == key_arn  # one managed key per account
    disabled = ddb.update_table(TableName="sse", SSESpecification={"Enabled": False})["TableDescription"]
    assert disabled["SSEDescription"] == {"Status": "UPDATING", "SSEType": "KMS", "KMSMasterKeyArn": key_arn}
    assert "SSEDescription" not in ddb.describe_table(TableName="sse")["Table"]
    with pytest.raises(ClientError) as info:
        kms.describe_key(KeyId="alias/aws/nothing")
    assert error(info)[0] == "NotFoundException"
    with pytest.raises(ClientError) as info:
        kms.describe_key(KeyId="0b7ee9e6-0000-4000-8000-000000000000")
    assert error(info) == ("NotFoundException", f"Key '{key_arn.rsplit('/', 1)[0]}/0b7ee9e6-0000-4000-8000-"
                                                "000000000000' does not exist")


def test_global_table_replica_gets_every_write_and_its_own_stream(srv: HearthServer, ddb: Any) -> None:
    west = boto3.client("dynamodb", endpoint_url=srv.endpoint, region_name="us-west-2",
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    make_table(ddb, "global", StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    ddb.put_item(TableName="global", Item={"pk": {"S": "before"}})
    ddb.update_table(TableName="global", ReplicaUpdates=[{"Create": {"RegionName": "us-west-2"}}])
    assert ddb.describe_table(TableName="global")["Table"]["Replicas"] == [{"RegionName": "us-west-2",
                                                                            "ReplicaStatus": "ACTIVE"}]
    replica = west.describe_table(TableName="global")["Table"]
    assert ":us-west-2:" in replica["LatestStreamArn"] and replica["Replicas"][0]["RegionName"] == "us-east-1"
    assert west.get_item(TableName="global", Key={"pk": {"S": "before"}})["Item"] == {"pk": {"S": "before"}}
    ddb.put_item(TableName="global", Item={"pk": {"S": "after"}})
    west.put_item(TableName="global", Item={"pk": {"S": "from-west"}})
    assert ddb.get_item(TableName="global", Key={"pk": {"S": "from-west"}})["Item"] == {"pk": {"S": "from-west"}}
    streams = boto3.client("dynamodbstreams", endpoint_url=srv.endpoint, region_name="us-west-2",
                           aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    shard = streams.describe_stream(StreamArn=replica["LatestStreamArn"])["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(StreamArn=replica["LatestStreamArn"], ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in streams.get_records(ShardIterator=iterator)["Records"]]
    assert keys[-2:] == ["after", "from-west"]
    west.delete_table(TableName="global")
    assert "Replicas" not in ddb.describe_table(TableName="global")["Table"]


def test_partiql_select_pages_with_next_token(ddb: Any) -> None:
    make_table(ddb, "pql-pages", range_key="sk", range_type="N")
    for n in range(5):
        ddb.put_item(TableName="pql-pages", Item={"pk": {"S": "p"}, "sk": {"N": str(n)}})
    seen: list[str] = []
    kwargs: dict[str, Any] = {"Statement": "SELECT sk FROM \"pql-pages\" WHERE pk = 'p'", "Limit": 2}
    pages = 0
    while True:
        page = ddb.execute_statement(**kwargs)
        pages += 1
        seen += [i["sk"]["N"] for i in page["Items"]]
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert seen == ["0", "1", "2", "3", "4"] and pages == 3
    with pytest.raises(ClientError) as info:
        ddb.execute_statement(Statement="SELECT * FROM \"pql-pages\"", NextToken=kwargs["NextToken"])
    assert error(info)[0] == "ValidationException"  # a token pages its own statement only


def test_consumed_capacity_per_index(ddb: Any) -> None:
    make_table(ddb, "cap-ix", extra_defs=[{"AttributeName": "g", "AttributeType": "S"}],
               GlobalSecondaryIndexes=[{"IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                        "Projection": {"ProjectionType": "KEYS_ONLY"}}])
    put = ddb.put_item(TableName="cap-ix", Item={"pk": {"S": "a"}, "g": {"S": "x"}}, ReturnConsumedCapacity="INDEXES")
    assert put["ConsumedCapacity"] == {
        "TableName": "cap-ix", "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0,
        "Table": {"CapacityUnits": 1.0, "WriteCapacityUnits": 1.0},
        "GlobalSecondaryIndexes": {"by-g": {"CapacityUnits": 1.0, "WriteCapacityUnits": 1.0}}}
    moved = ddb.put_item(TableName="cap-ix", Item={"pk": {"S": "a"}, "g": {"S": "y"}}, ReturnConsumedCapacity="TOTAL")
    assert moved["ConsumedCapacity"]["CapacityUnits"] == 3.0  # the entry is deleted and written again
    same = ddb.put_item(TableName="cap-ix", Item={"pk": {"S": "a"}, "g": {"S": "y"}, "other": {"S": "1"}},
                        ReturnConsumedCapacity="TOTAL")
    assert same["ConsumedCapacity"]["CapacityUnits"] == 1.0  # KEYS_ONLY: the index entry did not change
    entry = {"PutRequest": {"Item": {"pk": {"S": "b"}, "g": {"S": "z"}}}}
    batch = ddb.batch_write_item(RequestItems={"cap-ix": [entry]}, ReturnConsumedCapacity="TOTAL")
    assert batch["ConsumedCapacity"] == [{"TableName": "cap-ix", "CapacityUnits": 2.0}]
    query = ddb.query(TableName="cap-ix", IndexName="by-g", KeyConditionExpression="g = :g",
                      ExpressionAttributeValues={":g": {"S": "y"}}, ReturnConsumedCapacity="INDEXES")
    assert query["ConsumedCapacity"] == {
        "TableName": "cap-ix", "CapacityUnits": 0.5, "ReadCapacityUnits": 0.5,
        "Table": {"CapacityUnits": 0.0, "ReadCapacityUnits": 0.0},
        "GlobalSecondaryIndexes": {"by-g": {"CapacityUnits": 0.5, "ReadCapacityUnits": 0.5}}}
