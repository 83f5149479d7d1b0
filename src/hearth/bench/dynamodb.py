"""DynamoDB benchmarks: PutItem and GetItem p50/p99 and operations per second against the ASGI echo
baseline (same raw HTTP client, same signed body size, same run), a Query returning 1,000 items, and
the latency from a PutItem to the handler of a function triggered by the table's stream.

The client is the thinnest one: one keep-alive `http.client` connection, each request signed with
botocore's SigV4 signer (the echo request is signed too, so both sides pay the same client cost).
Run: `hearth bench --section dynamodb` (or `.venv/bin/python benchmarks/dynamodb.py`). It starts its
own Hearth and echo servers and stops them. Figures are wall-clock on the machine at hand.
"""

from __future__ import annotations

import http.client
import io
import json
import statistics
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from hearth.bench.servers import BENCH_KEY, start_echo, start_hearth

ROLE = f"arn:aws:iam::{BENCH_KEY[2]}:role/bench"
# Reports (handler start - the item's write time) to a results queue.
STAMP = """
import os, time, boto3
sqs = boto3.client("sqs")
url = sqs.get_queue_url(QueueName=os.environ["RESULTS"])["QueueUrl"]

def handler(event, context):
    now = time.time()
    for r in event["Records"]:
        sqs.send_message(QueueUrl=url, MessageBody=str(now - float(r["dynamodb"]["NewImage"]["t"]["N"])))
"""


class RawClient:
    """One keep-alive connection; requests signed as botocore signs them for DynamoDB (json 1.0)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        parts = urlsplit(endpoint)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
        self.signer = SigV4Auth(Credentials(BENCH_KEY[0], BENCH_KEY[1]), "dynamodb", "us-east-1")

    def call(self, operation: str, body: dict[str, Any]) -> bytes:
        data = json.dumps(body).encode()
        request = AWSRequest("POST", self.endpoint + "/", data=data, headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"DynamoDB_20120810.{operation}"})
        self.signer.add_auth(request)
        self.conn.request("POST", "/", body=data, headers=dict(request.headers.items()))
        response = self.conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"{operation}: {response.status} {payload[:200]!r}")
        return payload

    def close(self) -> None:
        self.conn.close()


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {"p50": statistics.median(ordered), "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            "n": float(len(ordered)), "ops_per_s": 1000.0 * len(ordered) / sum(ordered)}


def _timed(fn: Any, n: int) -> dict[str, float]:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - start) * 1000)
    return percentiles(samples)


def _boto(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=BENCH_KEY[0],
                        aws_secret_access_key=BENCH_KEY[1], config=Config(retries={"max_attempts": 1}))


def _stream_latency(endpoint: str, table: str, writes: int) -> dict[str, float]:
    ddb, lam, sqs = _boto(endpoint, "dynamodb"), _boto(endpoint, "lambda"), _boto(endpoint, "sqs")
    stream = ddb.update_table(TableName=table, StreamSpecification={
        "StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})["TableDescription"]["LatestStreamArn"]
    results = f"ddb-bench-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=results)["QueueUrl"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", STAMP)
    name = f"ddb-bench-{uuid.uuid4().hex[:8]}"
    lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
                        Code={"ZipFile": buf.getvalue()}, Timeout=60, Environment={"Variables": {"RESULTS": results}})
    while lam.get_function_configuration(FunctionName=name)["State"] != "Active":
        time.sleep(0.02)
    lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=name, StartingPosition="LATEST",
                                    BatchSize=1)
    time.sleep(1.0)  # the mapping settles and its poller starts at LATEST
    ddb.put_item(TableName=table, Item={"pk": {"S": "warm"}, "sk": {"N": "0"}, "t": {"N": repr(time.time())}})
    samples: list[float] = []
    deadline = time.monotonic() + 60
    while not samples and time.monotonic() < deadline:  # the first (cold) one is not a sample
        samples += [1] if sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages") else []
    samples = []
    for i in range(writes):
        ddb.put_item(TableName=table, Item={"pk": {"S": "stream"}, "sk": {"N": str(i)},
                                             "t": {"N": repr(time.time())}})
        time.sleep(0.05)
    deadline = time.monotonic() + 60
    while len(samples) < writes and time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            samples.append(float(m["Body"]) * 1000)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return percentiles(samples) if samples else {"n": 0.0}


def run(ops: int = 2000, queries: int = 50, stream_writes: int = 50) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hearth-bench-ddb-") as tmp:
        echo_proc, echo_url = start_echo(Path(tmp))
        hearth, url = start_hearth(Path(tmp))
        try:
            boto = _boto(url, "dynamodb")
            table = "bench"
            boto.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                         {"AttributeName": "sk", "KeyType": "RANGE"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                    {"AttributeName": "sk", "AttributeType": "N"}])
            client, echo_client = RawClient(url), RawClient(echo_url)

            def item(i: int) -> dict[str, Any]:
                return {"pk": {"S": f"user-{i % 100}"}, "sk": {"N": str(i)}, "name": {"S": "x" * 40},
                        "n": {"N": str(i * 7)}}

            put = {"TableName": table, "Item": item(0)}
            for i in range(200):  # warm-up: connections, caches
                client.call("PutItem", {"TableName": table, "Item": item(i)})
                echo_client.call("PutItem", put)
            echo = _timed(lambda i: echo_client.call("PutItem", {"TableName": table, "Item": item(i)}), ops)
            put_item = _timed(lambda i: client.call("PutItem", {"TableName": table, "Item": item(i)}), ops)
            get_item = _timed(lambda i: client.call("GetItem", {"TableName": table, "Key": {
                "pk": {"S": f"user-{i % 100}"}, "sk": {"N": str(i)}}}), ops)
            for start in range(0, 1000, 25):
                client.call("BatchWriteItem", {"RequestItems": {table: [
                    {"PutRequest": {"Item": {"pk": {"S": "big"}, "sk": {"N": str(start + j)}, "v": {"S": "y" * 60}}}}
                    for j in range(25)]}})
            query = _timed(lambda i: client.call("Query", {
                "TableName": table, "KeyConditionExpression": "pk = :p",
                "ExpressionAttributeValues": {":p": {"S": "big"}}}), queries)
            count = len(json.loads(client.call("Query", {
                "TableName": table, "KeyConditionExpression": "pk = :p",
                "ExpressionAttributeValues": {":p": {"S": "big"}}}))["Items"])
            client.close()
            echo_client.close()
            stream = _stream_latency(url, table, stream_writes)
        finally:
            hearth.stop()
            echo_proc.stop()
    return {
        "echo": echo, "put_item": put_item, "get_item": get_item,
        "put_item_ratio": put_item["p50"] / echo["p50"], "get_item_ratio": get_item["p50"] / echo["p50"],
        "query_1000": {**query, "items": float(count)}, "write_to_handler": stream,
    }
