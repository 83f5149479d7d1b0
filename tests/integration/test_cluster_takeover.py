"""kill -9 of the node running the event source mappings, with queue messages received and in flight and a
stream batch read past its last checkpoint (issue 18): another node takes the mappings' lease over and
every message and record is processed (at least once, as AWS promises); nothing acknowledged is lost.

Runs on a throwaway PostgreSQL cluster (tests/pgcluster.py) in `./run test-postgresql`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests import pgcluster
from tests.integration.harness import HearthServer, create_function

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not pgcluster.available(), reason="no PostgreSQL server binaries"),
              pytest.mark.skipif(not pgcluster.enabled(), reason="the PostgreSQL run's (./run test-postgresql)")]

FAST_CLUSTER = {"HEARTH_CLUSTER_TIMES": "0.3,1.5,2.5"}  # heartbeat, lease, dead after (seconds)

# Each record's id goes to the "done" queue, slowly enough that the kill finds batches in flight.
SINK = '''
import base64, json, os, time
import boto3

sqs = boto3.client("sqs")

def handler(event, context):
    for record in event["Records"]:
        if "kinesis" in record:
            item = base64.b64decode(record["kinesis"]["data"]).decode()
        else:
            item = record["body"]
        sqs.send_message(QueueUrl=os.environ["DONE"], MessageBody=item)
    time.sleep(1)
'''


def test_mappings_survive_the_kill_of_their_node(tmp_path: Path) -> None:
    database = pgcluster.cluster().new_database("takeover")
    a = HearthServer(tmp_path / "a", extra_args=("--database", database),
                     extra_env={"HEARTH_NODE_ID": "mapper", **FAST_CLUSTER})
    b = HearthServer(tmp_path / "b", extra_args=("--database", database),
                     extra_env={"HEARTH_NODE_ID": "heir", **FAST_CLUSTER}, make_role=False)
    a.start()
    b.start()
    try:
        sqs, kinesis, lam = a.client("sqs"), a.client("kinesis"), a.client("lambda")
        done = sqs.create_queue(QueueName="takeover-done")["QueueUrl"]
        source = sqs.create_queue(QueueName="takeover-in", Attributes={"VisibilityTimeout": "6"})["QueueUrl"]
        source_arn = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        kinesis.create_stream(StreamName="takeover-stream", ShardCount=1)
        stream_arn = kinesis.describe_stream(StreamName="takeover-stream")["StreamDescription"]["StreamARN"]
        create_function(lam, "takeover-sink", {"app.py": SINK}, Timeout=30,
                        Environment={"Variables": {"DONE": done}})
        lam.create_event_source_mapping(FunctionName="takeover-sink", EventSourceArn=source_arn, BatchSize=1)
        lam.create_event_source_mapping(FunctionName="takeover-sink", EventSourceArn=stream_arn, BatchSize=2,
                                        StartingPosition="TRIM_HORIZON")
        leases = {x["name"]: x["holder"] for x in a.health()["cluster"]["leases"]}
        assert leases["event-source-mappings"] == "mapper"
        expected = {f"q{n}" for n in range(6)} | {f"k{n}" for n in range(6)}
        for n in range(6):
            sqs.send_message(QueueUrl=source, MessageBody=f"q{n}")
            kinesis.put_record(StreamName="takeover-stream", Data=f"k{n}".encode(), PartitionKey="p")
        reader = b.client("sqs")
        seen: list[str] = []

        def drain() -> None:
            for message in reader.receive_message(QueueUrl=done, MaxNumberOfMessages=10,
                                                  WaitTimeSeconds=1).get("Messages", []):
                seen.append(message["Body"])
                reader.delete_message(QueueUrl=done, ReceiptHandle=message["ReceiptHandle"])

        deadline = time.monotonic() + 60
        while not (any(x.startswith("q") for x in seen) and any(x.startswith("k") for x in seen)):
            assert time.monotonic() < deadline, f"the mappings never ran: {seen}\n{a.log()}"
            drain()
        a.kill9()  # batches in flight on both mappings; most of the work still queued
        deadline = time.monotonic() + 120
        while not expected <= set(seen):
            assert time.monotonic() < deadline, f"lost after the takeover: {sorted(expected - set(seen))}\n{b.log()}"
            drain()
        leases = {x["name"]: x["holder"] for x in b.health()["cluster"]["leases"]}
        assert leases["event-source-mappings"] == "heir"
        assert set(seen) == expected  # nothing but what was sent
    finally:
        a.stop()
        assert b.stop() == 0, b.log()
