"""The soak benchmark: sustained mixed load with a crash in the middle, for drift and lost events.

What runs together for `minutes`: synchronous invokes at concurrency 32 (raw signed clients), an
asynchronous invoke stream, a queue (SQS) mapping and a stream (Kinesis) mapping, the last three all
delivering to one sink function that reports every id it sees to a results queue. Half-way through,
the server is killed with SIGKILL and started again on the same data directory and port.

What it reports:
- server growth per server life (RSS MiB, open files, threads, asyncio tasks), from the first sample
  after a warm-up to the last, the larger of the two lives (`rss_growth_mib`, `fd_growth`, ...);
- errors: failed calls outside the restart window (`errors`) and inside it (`errors_in_restart`, from
  the kill until the server answers again plus a short settling time: calls in flight there fail by
  design and were never acknowledged);
- `lost`: ids acknowledged by the API (202 for an async invoke, 200 for SendMessage and PutRecord)
  that the sink never reported after a final drain; `duplicates`: ids reported more than once (allowed:
  delivery is at least once, and a crash re-delivers what was not yet checkpointed).

It never kills anything but the server it started (by pid), and removes its data directory at the end.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from hearth.bench.progress import SILENT, Progress
from hearth.bench.rawclient import SignedClient
from hearth.bench.servers import BENCH_KEY, Process, free_port, hearth_env, wait_running

ROLE = f"arn:aws:iam::{BENCH_KEY[2]}:role/bench"
ECHO = "def handler(event, context):\n    return event\n"
SINK = """
import base64, json, os, boto3
sqs = boto3.client("sqs")
url = sqs.get_queue_url(QueueName=os.environ["RESULTS"])["QueueUrl"]

def handler(event, context):
    ids = [event["id"]] if "id" in event else []
    for r in event.get("Records", []):
        if "body" in r:
            ids.append(json.loads(r["body"])["id"])
        elif "kinesis" in r:
            ids.append(json.loads(base64.b64decode(r["kinesis"]["data"]))["id"])
    if ids:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(ids))
"""
SYNC_CONCURRENCY = 32
RATE_PER_S = 10.0  # async invokes, messages and records per second, each
SAMPLE_S = 5.0
SETTLE_S = 5.0  # after the restarted server answers, calls may still meet the old connections' errors
DRAIN_S = 180.0


def _zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", source)
    return buf.getvalue()


def _boto(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=BENCH_KEY[0],
                        aws_secret_access_key=BENCH_KEY[1],
                        config=Config(retries={"max_attempts": 1}, read_timeout=60, connect_timeout=5))


def _raw(endpoint: str, service: str) -> SignedClient:
    return SignedClient(endpoint, service, BENCH_KEY[0], BENCH_KEY[1], timeout=60)


def _proc_figures(pid: int) -> dict[str, float]:
    """RSS MiB, open files and threads of one process, from /proc (zeros when it is gone)."""
    out = {"rss_mib": 0.0, "fds": 0.0, "threads": 0.0}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    out["rss_mib"] = int(line.split()[1]) / 1024
                elif line.startswith("Threads:"):
                    out["threads"] = float(line.split()[1])
        out["fds"] = float(len(os.listdir(f"/proc/{pid}/fd")))
    except OSError:
        pass
    return out


def growth(samples: list[dict[str, float]], key: str, warmup_s: float) -> float:
    """The largest growth of `key` over one server life: per life, the last sample minus the first one
    of the life's second half (and at least `warmup_s` in): the first half is the ramp-up (environments
    start, caches fill), a leak keeps growing after it. Lives with no such pair count as no growth."""
    worst = 0.0
    for life in sorted({int(s["life"]) for s in samples}):
        mine = [s for s in samples if int(s["life"]) == life]
        if not mine:
            continue
        start = max(warmup_s, mine[-1]["age_s"] / 2)
        steady = [s for s in mine if s["age_s"] >= start]
        if len(steady) >= 2:
            worst = max(worst, steady[-1][key] - steady[0][key])
    return worst


class _Server:
    """The server under soak: started, killed with SIGKILL and started again on the same port and data."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.data = tmp / "data"
        self.data.mkdir()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.life = 0
        self.started_at = 0.0
        self.proc: Process | None = None

    def start(self) -> None:
        import sys

        self.proc = Process([sys.executable, "-m", "hearth", "serve", "--port", str(self.port), "--data-dir",
                             str(self.data)], f"{self.endpoint}/_hearth/health", env=hearth_env())
        wait_running(self.endpoint)
        self.life += 1
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.proc.pid

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.proc.send_signal(signal.SIGKILL)
        self.proc.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


class _Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.error_times: list[float] = []
        self.acked: set[str] = set()

    def ok(self, kind: str, ack: str | None = None) -> None:
        with self.lock:
            self.calls[kind] += 1
            if ack is not None:
                self.acked.add(ack)

    def failed(self) -> None:
        with self.lock:
            self.error_times.append(time.monotonic())


def _sync_worker(endpoint: str, name: str, stop: threading.Event, counts: _Counts) -> None:
    client = _raw(endpoint, "lambda")
    while not stop.is_set():
        try:
            status, _ = client.invoke(name, b'{"soak": 1}')
            if status == 200:
                counts.ok("sync_invokes")
            else:
                counts.failed()
        except OSError:
            counts.failed()
            time.sleep(0.2)
    client.close()


def _paced(stop: threading.Event, rate: float, send: Callable[[int], bool], counts: _Counts) -> None:
    """Calls `send(i)` at `rate` per second until stopped; a False or an exception is an error."""
    i = 0
    next_at = time.monotonic()
    while not stop.is_set():
        try:
            if not send(i):
                counts.failed()
        except OSError:
            counts.failed()
        i += 1
        next_at += 1 / rate
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_at = time.monotonic()


def _producers(endpoint: str, sink: str, queue_url: str, stream: str, stop: threading.Event,
               counts: _Counts) -> list[threading.Thread]:
    lam, sqs, kinesis = _raw(endpoint, "lambda"), _raw(endpoint, "sqs"), _raw(endpoint, "kinesis")

    def async_invoke(i: int) -> bool:
        ident = f"a-{i}"
        status, _ = lam.invoke(sink, json.dumps({"id": ident}).encode(), invocation_type="Event")
        if status == 202:
            counts.ok("async_invokes", ident)
        return status == 202

    def send_message(i: int) -> bool:
        ident = f"q-{i}"
        body = json.dumps({"QueueUrl": queue_url, "MessageBody": json.dumps({"id": ident})}).encode()
        status, _, _ = sqs.request("POST", "/", body, headers={"Content-Type": "application/x-amz-json-1.0",
                                                               "X-Amz-Target": "AmazonSQS.SendMessage"})
        if status == 200:
            counts.ok("messages_sent", ident)
        return status == 200

    def put_record(i: int) -> bool:
        ident = f"k-{i}"
        data = base64.b64encode(json.dumps({"id": ident}).encode()).decode()
        body = json.dumps({"StreamName": stream, "Data": data, "PartitionKey": str(i % 7)}).encode()
        status, _, _ = kinesis.request("POST", "/", body, headers={
            "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.PutRecord"})
        if status == 200:
            counts.ok("records_put", ident)
        return status == 200

    return [threading.Thread(target=_paced, args=(stop, RATE_PER_S, fn, counts), daemon=True)
            for fn in (async_invoke, send_message, put_record)]


def _collector(endpoint: str, results_url: str, stop: threading.Event, seen: Counter[str]) -> None:
    """Reads the sink's reports from the results queue into `seen` (ids -> times reported)."""
    sqs = _boto(endpoint, "sqs")
    while not stop.is_set():
        try:
            got = sqs.receive_message(QueueUrl=results_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            messages = got.get("Messages", [])
            for m in messages:
                seen.update(json.loads(m["Body"]))
            if messages:
                sqs.delete_message_batch(QueueUrl=results_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
        except Exception:  # the server is restarting: try again shortly
            stop.wait(0.5)


def _health(endpoint: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"{endpoint}/_hearth/health", timeout=10) as resp:
        result: dict[str, Any] = json.load(resp)
        return result


def run(minutes: float = 30.0, progress: Progress = SILENT) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="hearth-bench-soak-"))
    server = _Server(tmp)
    server.start()
    endpoint = server.endpoint
    stop = threading.Event()
    counts = _Counts()
    seen: Counter[str] = Counter()
    samples: list[dict[str, float]] = []
    threads: list[threading.Thread] = []
    total_s = minutes * 60
    try:
        lam, sqs, kinesis = _boto(endpoint, "lambda"), _boto(endpoint, "sqs"), _boto(endpoint, "kinesis")
        suffix = uuid.uuid4().hex[:6]
        results_url = sqs.create_queue(QueueName=f"soak-results-{suffix}")["QueueUrl"]
        queue_url = sqs.create_queue(QueueName=f"soak-in-{suffix}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        stream = f"soak-{suffix}"
        kinesis.create_stream(StreamName=stream, ShardCount=1)
        stream_arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
        echo, sink = f"soak-echo-{suffix}", f"soak-sink-{suffix}"
        for name, source, env in ((echo, ECHO, {}), (sink, SINK, {"RESULTS": f"soak-results-{suffix}"})):
            lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
                                Code={"ZipFile": _zip(source)}, MemorySize=256, Timeout=60,
                                Environment={"Variables": env})
            while lam.get_function_configuration(FunctionName=name)["State"] != "Active":
                time.sleep(0.05)
        lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=sink, BatchSize=10)
        lam.create_event_source_mapping(EventSourceArn=stream_arn, FunctionName=sink, BatchSize=100,
                                        StartingPosition="TRIM_HORIZON")
        threads = [threading.Thread(target=_sync_worker, args=(endpoint, echo, stop, counts), daemon=True)
                   for _ in range(SYNC_CONCURRENCY)]
        threads += _producers(endpoint, sink, queue_url, stream, stop, counts)
        threads.append(threading.Thread(target=_collector, args=(endpoint, results_url, stop, seen), daemon=True))
        for t in threads:
            t.start()
        started = time.monotonic()
        restart_at = started + total_s / 2
        restarted = False
        restart_window = (0.0, 0.0)
        advance = progress.phase(f"soak: mixed load for {minutes:g} min, kill -9 and restart half-way",
                                 int(total_s))
        last = started
        while (now := time.monotonic()) < started + total_s:
            if not restarted and now >= restart_at:
                killed = time.monotonic()
                server.kill9()
                server.start()
                restart_window = (killed, time.monotonic() + SETTLE_S)
                restarted = True
            figures = _proc_figures(server.pid)
            try:
                figures["tasks"] = float(_health(endpoint).get("process", {}).get("asyncio_tasks", 0))
            except OSError:
                figures["tasks"] = 0.0
            samples.append({**figures, "t_s": now - started, "life": float(server.life),
                            "age_s": time.monotonic() - server.started_at})
            advance(int(time.monotonic() - last))
            last = time.monotonic()
            time.sleep(SAMPLE_S)
        producing_s = time.monotonic() - started
        stop.set()
        for t in threads[:-1]:
            t.join(60)
        # Drain: everything acknowledged must reach the sink.
        collector_stop = threading.Event()
        drain = threading.Thread(target=_collector, args=(endpoint, results_url, collector_stop, seen), daemon=True)
        threads[-1].join(5)
        drain.start()
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline and not counts.acked <= set(seen):
            time.sleep(1)
        collector_stop.set()
        drain.join(10)
        in_window = [t for t in counts.error_times if restart_window[0] <= t <= restart_window[1]]
        warmup_s = min(60.0, total_s / 10)
        health = _health(endpoint)
        return {
            "minutes": producing_s / 60, "restart_at_s": restart_at - started,
            **{k: int(counts.calls[k]) for k in ("sync_invokes", "async_invokes", "messages_sent", "records_put")},
            "errors": len(counts.error_times) - len(in_window), "errors_in_restart": len(in_window),
            "acknowledged": len(counts.acked), "lost": len(counts.acked - set(seen)),
            "duplicates": sum(1 for n in seen.values() if n > 1),
            "rss_growth_mib": growth(samples, "rss_mib", warmup_s), "fd_growth": growth(samples, "fds", warmup_s),
            "thread_growth": growth(samples, "threads", warmup_s), "task_growth": growth(samples, "tasks", warmup_s),
            "samples": samples, "environments": health.get("environments", {}),
            "distributions": [],
        }
    finally:
        stop.set()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
