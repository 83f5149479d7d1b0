"""Kinesis streams through boto3 and the AWS CLI against a real server, and their durability."""

from __future__ import annotations

import hashlib
import json

import pytest
from botocore.exceptions import ClientError

from tests.integration.harness import ACCOUNT, HearthServer


def test_stream_round_trip(server: HearthServer) -> None:
    kinesis = server.client("kinesis")
    kinesis.create_stream(StreamName="orders", ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName="orders", WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    shards = kinesis.list_shards(StreamName="orders")["Shards"]
    assert len(shards) == 2
    put = kinesis.put_records(StreamName="orders", Records=[
        {"PartitionKey": f"customer-{i}", "Data": json.dumps({"n": i}).encode()} for i in range(20)])
    assert put["FailedRecordCount"] == 0
    for i, rec in enumerate(put["Records"]):
        expected = int(hashlib.md5(f"customer-{i}".encode()).hexdigest(), 16) >= 2**127
        assert rec["ShardId"] == f"shardId-00000000000{int(expected)}"
    seen: list[int] = []
    for shard in shards:
        it = kinesis.get_shard_iterator(StreamName="orders", ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        got = kinesis.get_records(ShardIterator=it, Limit=100)
        seqs = [int(r["SequenceNumber"]) for r in got["Records"]]
        assert seqs == sorted(seqs)
        seen += [json.loads(r["Data"])["n"] for r in got["Records"]]
        assert got["MillisBehindLatest"] >= 0 and got["NextShardIterator"]
    assert sorted(seen) == list(range(20))
    single = kinesis.put_record(StreamName="orders", PartitionKey="x", Data=b"raw")
    it = kinesis.get_shard_iterator(StreamName="orders", ShardId=single["ShardId"],
                                    ShardIteratorType="AT_SEQUENCE_NUMBER",
                                    StartingSequenceNumber=single["SequenceNumber"])["ShardIterator"]
    assert kinesis.get_records(ShardIterator=it)["Records"][0]["Data"] == b"raw"
    with pytest.raises(ClientError) as info:
        kinesis.describe_stream(StreamName="missing")
    assert info.value.response["Error"] == {
        "Code": "ResourceNotFoundException", "Message": f"Stream missing under account {ACCOUNT} not found."}
    out = json.loads(server.aws("kinesis", "list-streams").stdout)
    assert "orders" in out["StreamNames"]
    kinesis.delete_stream(StreamName="orders")


def test_records_survive_a_restart(fresh_server: HearthServer) -> None:
    fresh_server.start()
    kinesis = fresh_server.client("kinesis")
    kinesis.create_stream(StreamName="durable", ShardCount=1)
    seq = kinesis.put_record(StreamName="durable", PartitionKey="k", Data=b"kept")["SequenceNumber"]
    fresh_server.kill9()
    fresh_server.start()
    kinesis = fresh_server.client("kinesis")
    it = kinesis.get_shard_iterator(StreamName="durable", ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    (record,) = kinesis.get_records(ShardIterator=it)["Records"]
    assert (record["Data"], record["SequenceNumber"]) == (b"kept", seq)
    nxt = kinesis.put_record(StreamName="durable", PartitionKey="k", Data=b"after")["SequenceNumber"]
    assert int(nxt) > int(seq)


def test_subscribe_to_shard_pushes_records(server: HearthServer) -> None:
    kinesis = server.client("kinesis")
    kinesis.create_stream(StreamName="fanout", ShardCount=1)
    arn = kinesis.describe_stream(StreamName="fanout")["StreamDescription"]["StreamARN"]
    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="c1")["Consumer"]["ConsumerARN"]
    before = kinesis.put_record(StreamName="fanout", PartitionKey="k", Data=b"before")["SequenceNumber"]
    subscribed = kinesis.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000000",
                                            StartingPosition={"Type": "TRIM_HORIZON"})
    stream = subscribed["EventStream"]
    try:
        events = iter(stream)
        first = next(events)["SubscribeToShardEvent"]  # the backlog, at once
        assert [r["Data"] for r in first["Records"]] == [b"before"]
        assert first["ContinuationSequenceNumber"] == before and first["MillisBehindLatest"] == 0
        put = kinesis.put_records(StreamName="fanout", Records=[
            {"PartitionKey": "k", "Data": f"after-{i}".encode()} for i in range(3)])
        pushed: list[dict[str, object]] = []
        while len(pushed) < 3:
            event = next(events)["SubscribeToShardEvent"]
            pushed += event["Records"]
        assert [r["Data"] for r in pushed] == [b"after-0", b"after-1", b"after-2"]
        assert [r["SequenceNumber"] for r in pushed] == [r["SequenceNumber"] for r in put["Records"]]
        assert event["ContinuationSequenceNumber"] == put["Records"][-1]["SequenceNumber"]
    finally:
        stream.close()
    # Where an event left off: subscribing after its continuation number starts at the next record.
    again = kinesis.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000000", StartingPosition={
        "Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": before})["EventStream"]
    try:
        assert next(iter(again))["SubscribeToShardEvent"]["Records"][0]["Data"] == b"after-0"
    finally:
        again.close()
    with pytest.raises(ClientError) as info:
        kinesis.subscribe_to_shard(ConsumerARN=f"{arn}/consumer/missing:1", ShardId="shardId-000000000000",
                                   StartingPosition={"Type": "LATEST"})
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    kinesis.delete_stream(StreamName="fanout")
