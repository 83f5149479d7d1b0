"""Kinesis streams through the provider: hashing, sequence numbers, iterators, retention, errors."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import KinesisDataStreamModel

from hearth.aws.context import Principal, RequestContext
from hearth.aws.errors import AwsError
from hearth.services.kinesis.provider import KinesisProvider
from hearth.services.kinesis.streams import StreamService, lambda_record

ACCOUNT = "000000000000"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def kin(tmp_path: Path) -> Iterator[tuple[KinesisProvider, Clock]]:
    clock = Clock()
    streams = StreamService(tmp_path, clock=clock)
    yield KinesisProvider(streams, clock=clock), clock
    streams.close()


def ctx(account: str = ACCOUNT) -> RequestContext:
    return RequestContext("kinesis", "X", "us-east-1", Principal("AK", account), "rid")


def call(p: KinesisProvider, op: str, **params: Any) -> Any:
    return getattr(p, op)(ctx(), params)


def error(p: KinesisProvider, op: str, **params: Any) -> tuple[str, str]:
    with pytest.raises(AwsError) as info:
        call(p, op, **params)
    return info.value.code, info.value.message


def test_shards_split_the_hash_space_and_keys_hash_by_md5(kin: Any) -> None:
    p, _ = kin
    call(p, "create_stream", StreamName="s", ShardCount=4)
    shards = call(p, "list_shards", StreamName="s")["Shards"]
    assert [s["ShardId"] for s in shards] == [f"shardId-00000000000{i}" for i in range(4)]
    assert shards[0]["HashKeyRange"] == {"StartingHashKey": "0",
                                         "EndingHashKey": "85070591730234615865843651857942052863"}
    assert shards[3]["HashKeyRange"]["EndingHashKey"] == str(2**128 - 1)
    for key in ("alpha", "beta", "gamma", "delta", "x" * 200):
        expected = int(hashlib.md5(key.encode()).hexdigest(), 16) // (2**128 // 4)
        put = call(p, "put_record", StreamName="s", PartitionKey=key, Data=b"d")
        assert put["ShardId"] == f"shardId-00000000000{expected}"
    assert call(p, "put_record", StreamName="s", PartitionKey="k", Data=b"d",
                ExplicitHashKey=str(2**128 - 1))["ShardId"] == "shardId-000000000003"


def test_put_get_with_iterators(kin: Any) -> None:
    p, clock = kin
    call(p, "create_stream", StreamName="s", ShardCount=1)
    latest = call(p, "get_shard_iterator", StreamName="s", ShardId="shardId-000000000000",
                  ShardIteratorType="LATEST")["ShardIterator"]
    puts = call(p, "put_records", StreamName="s", Records=[{"PartitionKey": f"k{i}", "Data": f"r{i}".encode()}
                                                            for i in range(5)])
    assert puts["FailedRecordCount"] == 0
    seqs = [r["SequenceNumber"] for r in puts["Records"]]
    assert seqs == sorted(seqs, key=int) and len(set(seqs)) == 5 and all(len(s) == 56 for s in seqs)
    got = call(p, "get_records", ShardIterator=latest, Limit=2)
    assert [r["Data"] for r in got["Records"]] == [b"r0", b"r1"]
    assert got["Records"][0]["ApproximateArrivalTimestamp"] == datetime.fromtimestamp(clock.now, UTC)
    rest = call(p, "get_records", ShardIterator=got["NextShardIterator"])
    assert [r["Data"] for r in rest["Records"]] == [b"r2", b"r3", b"r4"] and rest["MillisBehindLatest"] == 0
    empty = call(p, "get_records", ShardIterator=rest["NextShardIterator"])
    assert empty["Records"] == [] and empty["NextShardIterator"]

    def first(kind: str, **extra: Any) -> bytes:
        it = call(p, "get_shard_iterator", StreamName="s", ShardId="shardId-000000000000", ShardIteratorType=kind,
                  **extra)["ShardIterator"]
        records = call(p, "get_records", ShardIterator=it)["Records"]
        return records[0]["Data"] if records else b""

    assert first("TRIM_HORIZON") == b"r0"
    assert first("AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2]) == b"r2"
    assert first("AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2]) == b"r3"
    assert first("LATEST") == b""
    clock.now += 10
    call(p, "put_record", StreamName="s", PartitionKey="k", Data=b"later")
    assert first("AT_TIMESTAMP", Timestamp=datetime.fromtimestamp(clock.now - 1, UTC)) == b"later"


def test_retention_expires_records_and_iterators_expire(kin: Any) -> None:
    p, clock = kin
    call(p, "create_stream", StreamName="s", ShardCount=1)
    call(p, "put_record", StreamName="s", PartitionKey="k", Data=b"old")
    it = call(p, "get_shard_iterator", StreamName="s", ShardId="shardId-000000000000",
              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    clock.now += 301
    code, message = error(p, "get_records", ShardIterator=it)
    assert code == "ExpiredIteratorException" and message.startswith("Iterator expired.")
    call(p, "increase_stream_retention_period", StreamName="s", RetentionPeriodHours=48)
    assert call(p, "describe_stream_summary", StreamName="s")["StreamDescriptionSummary"]["RetentionPeriodHours"] == 48
    clock.now += 25 * 3600
    it = call(p, "get_shard_iterator", StreamName="s", ShardId="shardId-000000000000",
              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert len(call(p, "get_records", ShardIterator=it)["Records"]) == 1  # kept: within 48 hours
    call(p, "decrease_stream_retention_period", StreamName="s", RetentionPeriodHours=24)
    it = call(p, "get_shard_iterator", StreamName="s", ShardId="shardId-000000000000",
              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert call(p, "get_records", ShardIterator=it)["Records"] == []
    assert error(p, "decrease_stream_retention_period", StreamName="s", RetentionPeriodHours=12)[0] == \
        "InvalidArgumentException"
    assert error(p, "increase_stream_retention_period", StreamName="s", RetentionPeriodHours=9000)[0] == \
        "InvalidArgumentException"


def test_errors_and_account_isolation(kin: Any) -> None:
    p, _ = kin
    assert error(p, "describe_stream", StreamName="nope") == (
        "ResourceNotFoundException", f"Stream nope under account {ACCOUNT} not found.")
    call(p, "create_stream", StreamName="s", ShardCount=1)
    assert error(p, "create_stream", StreamName="s", ShardCount=1) == (
        "ResourceInUseException", f"Stream s under account {ACCOUNT} already exists.")
    assert error(p, "get_shard_iterator", StreamName="s", ShardId="shardId-000000000009",
                 ShardIteratorType="LATEST")[0] == "ResourceNotFoundException"
    assert error(p, "get_records", ShardIterator="garbage!")[0] == "InvalidArgumentException"
    it = call(p, "get_shard_iterator", StreamName="s", ShardId="shardId-000000000000",
              ShardIteratorType="LATEST")["ShardIterator"]
    with pytest.raises(AwsError):
        p.get_records(ctx("111111111111"), {"ShardIterator": it})
    with pytest.raises(AwsError):
        p.describe_stream(ctx("111111111111"), {"StreamName": "s"})
    assert error(p, "get_shard_iterator", StreamName="s", ShardId="shardId-000000000000",
                 ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber="123")[0] == "InvalidArgumentException"


def test_describe_list_tags_delete(kin: Any) -> None:
    p, _ = kin
    call(p, "create_stream", StreamName="b", ShardCount=2)
    call(p, "create_stream", StreamName="a", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    desc = call(p, "describe_stream", StreamName="a")["StreamDescription"]
    assert desc["StreamStatus"] == "ACTIVE" and len(desc["Shards"]) == 4
    assert desc["StreamARN"] == f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/a"
    assert desc["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    listed = call(p, "list_streams", Limit=1)
    assert listed["StreamNames"] == ["a"] and listed["HasMoreStreams"]
    assert call(p, "list_streams", ExclusiveStartStreamName="a")["StreamNames"] == ["b"]
    assert call(p, "describe_stream", StreamARN=desc["StreamARN"])["StreamDescription"]["StreamName"] == "a"
    call(p, "add_tags_to_stream", StreamName="a", Tags={"env": "dev", "team": "x"})
    call(p, "remove_tags_from_stream", StreamName="a", TagKeys=["team"])
    assert call(p, "list_tags_for_stream", StreamName="a")["Tags"] == [{"Key": "env", "Value": "dev"}]
    page = call(p, "list_shards", StreamName="a", MaxResults=3)
    assert len(page["Shards"]) == 3
    assert [s["ShardId"] for s in call(p, "list_shards", NextToken=page["NextToken"])["Shards"]] == [
        "shardId-000000000003"]
    call(p, "delete_stream", StreamName="a")
    assert call(p, "list_streams")["StreamNames"] == ["b"]


async def test_reader_api_wakes_on_put_and_renders_lambda_records(kin: Any) -> None:
    p, _ = kin
    call(p, "create_stream", StreamName="s", ShardCount=1)
    streams = p.streams
    waiter = asyncio.ensure_future(streams.wait_for_records(ACCOUNT, "us-east-1", "s", 5.0))
    await asyncio.sleep(0)
    call(p, "put_record", StreamName="s", PartitionKey="pk", Data=b'{"hello": 1}')
    assert await waiter is True
    assert await streams.wait_for_records(ACCOUNT, "us-east-1", "s", 0.01) is False
    stream = streams.get(ACCOUNT, "us-east-1", "s")
    assert stream is not None
    records = streams.read(stream, 0, 0, 10)
    event = {"Records": [lambda_record(stream, r, "arn:aws:iam::000000000000:role/r") for r in records]}
    model = KinesisDataStreamModel.model_validate(event)
    assert model.Records[0].kinesis.data == b'{"hello": 1}'
    assert model.Records[0].kinesis.partitionKey == "pk"


def test_a_stream_without_shard_count_or_mode_is_on_demand_with_four_shards(kin: Any) -> None:
    p, _ = kin
    call(p, "create_stream", StreamName="s")
    summary = call(p, "describe_stream_summary", StreamName="s")["StreamDescriptionSummary"]
    assert summary["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"} and summary["OpenShardCount"] == 4
    assert error(p, "create_stream", StreamName="t", StreamModeDetails={"StreamMode": "PROVISIONED"}) == (
        "InvalidArgumentException", "ShardCount is required for PROVISIONED streams.")


def test_resource_policy_and_registered_consumers(kin: Any) -> None:
    p, _ = kin
    call(p, "create_stream", StreamName="s", ShardCount=1)
    arn = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s"
    assert call(p, "get_resource_policy", ResourceARN=arn) == {"Policy": "{}"}
    call(p, "put_resource_policy", ResourceARN=arn, Policy='{"Version": "2012-10-17"}')
    assert call(p, "get_resource_policy", ResourceARN=arn) == {"Policy": '{"Version": "2012-10-17"}'}
    call(p, "delete_resource_policy", ResourceARN=arn)
    assert error(p, "delete_resource_policy", ResourceARN=arn)[0] == "ResourceNotFoundException"
    assert error(p, "put_resource_policy", ResourceARN=f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/nope",
                 Policy="{}")[0] == "ResourceNotFoundException"
    consumer = call(p, "register_stream_consumer", StreamARN=arn, ConsumerName="c")["Consumer"]
    assert consumer["ConsumerARN"].startswith(f"{arn}/consumer/c:") and consumer["ConsumerStatus"] == "ACTIVE"
    assert error(p, "register_stream_consumer", StreamARN=arn, ConsumerName="c")[0] == "ResourceInUseException"
    assert [c["ConsumerName"] for c in call(p, "list_stream_consumers", StreamARN=arn)["Consumers"]] == ["c"]
    described = call(p, "describe_stream_consumer", ConsumerARN=consumer["ConsumerARN"])["ConsumerDescription"]
    assert described["StreamARN"] == arn and described["ConsumerName"] == "c"
    assert call(p, "describe_stream_summary", StreamName="s")["StreamDescriptionSummary"]["ConsumerCount"] == 1
    call(p, "deregister_stream_consumer", StreamARN=arn, ConsumerName="c")
    assert call(p, "list_stream_consumers", StreamARN=arn) == {"Consumers": []}


def test_a_quoted_shard_iterator_is_accepted(kin: Any) -> None:
    p, _ = kin
    call(p, "create_stream", StreamName="s", ShardCount=1)
    call(p, "put_record", StreamName="s", Data=b"x", PartitionKey="k")
    iterator = call(p, "get_shard_iterator", StreamName="s", ShardId="shardId-000000000000",
                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert [r["Data"] for r in call(p, "get_records", ShardIterator=f'"{iterator}"')["Records"]] == [b"x"]
