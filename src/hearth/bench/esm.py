"""Event source mapping benchmarks: queue mapping throughput (messages/s through a no-op function at
batch sizes 1, 10 and 100), SendMessage-to-handler latency (p50/p99), stream records/s per shard.

Run: `hearth bench --section esm` (or `.venv/bin/python benchmarks/esm.py`). It starts its own Hearth
server and stops it. Figures are wall-clock on the machine at hand: informative, not pass/fail.
"""

from __future__ import annotations

import io
import json
import statistics
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from hearth.bench.progress import SILENT, Progress
from hearth.bench.rawclient import SignedClient
from hearth.bench.servers import BENCH_KEY, start_hearth

ROLE = f"arn:aws:iam::{BENCH_KEY[2]}:role/bench"
NOOP = "def handler(event, context):\n    return None\n"
# Reports (handler start - the sender's timestamp in the body) to a results queue.
STAMP = """
import json, os, time, boto3
sqs = boto3.client("sqs")
url = sqs.get_queue_url(QueueName=os.environ["RESULTS"])["QueueUrl"]

def handler(event, context):
    now = time.time()
    for r in event["Records"]:
        sqs.send_message(QueueUrl=url, MessageBody=str(now - json.loads(r["body"])["t"]))
"""
# Signals a done queue when it sees the stream's last record (order per shard makes that the end).
STREAM_DONE = """
import base64, os, boto3
sqs = boto3.client("sqs")
url = sqs.get_queue_url(QueueName=os.environ["DONE"])["QueueUrl"]

def handler(event, context):
    if any(base64.b64decode(r["kinesis"]["data"]) == b"last" for r in event["Records"]):
        sqs.send_message(QueueUrl=url, MessageBody="done")
"""


def _zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", source)
    return buf.getvalue()


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=BENCH_KEY[0],
                        aws_secret_access_key=BENCH_KEY[1],
                        config=Config(retries={"max_attempts": 1}, read_timeout=120, max_pool_connections=20))


def _function(lam: Any, source: str, env: dict[str, str] | None = None, memory: int = 128) -> str:
    name = f"esm-bench-{uuid.uuid4().hex[:8]}"
    lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
                        Code={"ZipFile": _zip(source)}, Timeout=60, Environment={"Variables": env or {}},
                        MemorySize=memory)
    while lam.get_function_configuration(FunctionName=name)["State"] != "Active":
        time.sleep(0.02)
    lam.invoke(FunctionName=name, Payload=b'{"Records": []}')  # warm: the figures leave the cold start out
    return name


def _queue(sqs: Any, name: str, **attributes: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _backlog(sqs: Any, url: str) -> int:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                               "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def _wait_state(lam: Any, mapping_uuid: str, state: str) -> None:
    while lam.get_event_source_mapping(UUID=mapping_uuid)["State"] != state:
        time.sleep(0.01)


def queue_throughput(endpoint: str, batch_size: int, messages: int) -> dict[str, float]:
    lam, sqs = _client(endpoint, "lambda"), _client(endpoint, "sqs")
    fn = _function(lam, NOOP)
    url, arn = _queue(sqs, f"tp-{batch_size}-{uuid.uuid4().hex[:6]}")
    for start in range(0, messages, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f'{{"i": {start + i}}}'}
                                                      for i in range(min(10, messages - start))])
    window = {"MaximumBatchingWindowInSeconds": 1} if batch_size > 10 else {}
    started = time.perf_counter()
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, BatchSize=batch_size, **window)
    while _backlog(sqs, url):
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    lam.delete_event_source_mapping(UUID=mapping["UUID"])
    return {"batch_size": batch_size, "messages": messages, "seconds": elapsed, "messages_per_s": messages / elapsed}


def _raw_send(raw: SignedClient, url: str, body: str) -> None:
    """SendMessage through the raw signed client (json protocol), so the figure holds no SDK time."""
    payload = json.dumps({"QueueUrl": url, "MessageBody": body}).encode()
    status, _, answer = raw.request("POST", "/", payload, headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessage"})
    if status != 200:
        raise RuntimeError(f"SendMessage: HTTP {status}: {answer[:200]!r}")


def send_to_handler_latency(endpoint: str, samples: int, progress: Progress = SILENT) -> dict[str, Any]:
    """From just before a SendMessage (raw signed client) to the handler's first line, per message. The
    handler reports through a results queue, read after the stamp: its own SDK time is not counted."""
    lam, sqs = _client(endpoint, "lambda"), _client(endpoint, "sqs")
    raw = SignedClient(endpoint, "sqs", BENCH_KEY[0], BENCH_KEY[1])
    results_name = f"lat-results-{uuid.uuid4().hex[:6]}"
    results_url, _ = _queue(sqs, results_name)
    # One whole vCPU (1,769 MB): at 128 MB the handler's own SDK call to the results queue spends the
    # function's CFS quota (7 ms per 100 ms) every few messages, and the runtime is then throttled for
    # up to ~60 ms: the figure would measure the function's CPU share, not the mapping's path.
    fn = _function(lam, STAMP, {"RESULTS": results_name}, memory=1769)
    url, arn = _queue(sqs, f"lat-{uuid.uuid4().hex[:6]}")
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, BatchSize=1)
    _wait_state(lam, mapping["UUID"], "Enabled")
    latencies: list[float] = []
    advance = progress.phase("SendMessage -> handler through a queue mapping", samples)
    for _ in range(samples):
        _raw_send(raw, url, json.dumps({"t": time.time()}))
        advance(1)
        got = sqs.receive_message(QueueUrl=results_url, WaitTimeSeconds=20).get("Messages", [])
        for m in got:
            latencies.append(float(m["Body"]) * 1000)
            sqs.delete_message(QueueUrl=results_url, ReceiptHandle=m["ReceiptHandle"])
    lam.delete_event_source_mapping(UUID=mapping["UUID"])
    raw.close()
    ordered = sorted(latencies)
    return {"n": len(ordered), "p50_ms": statistics.median(ordered),
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], "samples": latencies}


def stream_throughput(endpoint: str, records: int, batch_size: int = 100) -> dict[str, float]:
    lam, sqs, kinesis = _client(endpoint, "lambda"), _client(endpoint, "sqs"), _client(endpoint, "kinesis")
    done_name = f"st-done-{uuid.uuid4().hex[:6]}"
    done_url, _ = _queue(sqs, done_name)
    fn = _function(lam, STREAM_DONE, {"DONE": done_name})
    stream = f"st-{uuid.uuid4().hex[:6]}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    for start in range(0, records, 500):
        count = min(500, records - start)
        kinesis.put_records(StreamName=stream, Records=[
            {"PartitionKey": "k", "Data": b"last" if start + i == records - 1 else b'{"v": 1}'} for i in range(count)])
    started = time.perf_counter()
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, BatchSize=batch_size,
                                              StartingPosition="TRIM_HORIZON")
    while not sqs.receive_message(QueueUrl=done_url, WaitTimeSeconds=20).get("Messages"):
        pass
    elapsed = time.perf_counter() - started
    lam.delete_event_source_mapping(UUID=mapping["UUID"])
    return {"records": records, "batch_size": batch_size, "seconds": elapsed,
            "records_per_s_per_shard": records / elapsed}


def run(*, quick: bool = False, progress: Progress = SILENT) -> dict[str, Any]:
    scale = 0.2 if quick else 1.0
    with tempfile.TemporaryDirectory(prefix="hearth-bench-esm-") as tmp:
        server, endpoint = start_hearth(Path(tmp))
        try:
            latency = send_to_handler_latency(endpoint, int(200 * scale), progress)
            advance = progress.phase("queue throughput at batch 1, 10, 100; stream records/s", 4)
            throughput = []
            for bs, n in ((1, 1000), (10, 4000), (100, 10000)):
                throughput.append(queue_throughput(endpoint, bs, int(n * scale)))
                advance(1)
            stream = stream_throughput(endpoint, int(10000 * scale))
            advance(1)
            return {"queue_throughput": throughput, "send_to_handler": latency, "stream": stream,
                    "distributions": [{"title": "SendMessage -> handler (queue mapping, batch 1)",
                                       "series": {"send to handler": latency["samples"]}}]}
        finally:
            server.stop()
