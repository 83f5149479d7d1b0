"""Asynchronous invocation through boto3: retries, event age, destinations, DLQ, loop detection, kill -9.

The server runs its async queue's clock 60x faster (HEARTH_ASYNC_TIME_SCALE=60): AWS's retry delays of
1 and 2 minutes take 1 and 2 seconds, and MaximumEventAgeInSeconds=60 expires in one second. Function
timeouts and everything else run in real time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import ACCOUNT, HearthServer, create_function

pytestmark = pytest.mark.integration

SCALE_ENV = {"HEARTH_ASYNC_TIME_SCALE": "60"}

FAILING = """
def handler(event, context):
    raise ValueError("failed " + context.aws_request_id)
"""

SUCCEEDING = """
def handler(event, context):
    return {"got": event, "rid": context.aws_request_id}
"""

LOOPING = """
import json, os
import boto3

lam = boto3.client("lambda")
sqs = boto3.client("sqs")

def handler(event, context):
    n = event.get("n", 0)
    sqs.send_message(QueueUrl=os.environ["COUNT_QUEUE"], MessageBody=json.dumps({"n": n}))
    lam.invoke(FunctionName=context.function_name, InvocationType="Event", Payload=json.dumps({"n": n + 1}))
    return n
"""

SLOW_REPORTER = """
import json, os, time
import boto3

sqs = boto3.client("sqs")

def handler(event, context):
    time.sleep(0.2)
    sqs.send_message(QueueUrl=os.environ["DONE_QUEUE"], MessageBody=json.dumps(event))
    return "ok"
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    server = HearthServer(tmp_path_factory.mktemp("hearth-async") / "data", extra_env=SCALE_ENV)
    server.start()
    yield server
    code = server.stop()
    assert code == 0, f"hearth did not shut down cleanly ({code}):\n{server.log()}"


def queue(server: HearthServer, name: str) -> tuple[str, str]:
    sqs = server.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"


def receive(server: HearthServer, url: str, count: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Wait for `count` messages (each deleted once received)."""
    sqs = server.client("sqs")
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(got)} of {count} messages arrived:\n{server.log()[-4000:]}")
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   MessageAttributeNames=["All"])
        for msg in resp.get("Messages", []):
            got.append(msg)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    return got


def invoke_event(server: HearthServer, name: str, payload: Any) -> str:
    resp = server.client("lambda").invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(payload))
    assert resp["StatusCode"] == 202
    return str(resp["ResponseMetadata"]["RequestId"])


def test_failing_event_is_retried_twice_then_lands_in_on_failure(srv: HearthServer) -> None:
    lam = srv.client("lambda")
    url, arn = queue(srv, "async-on-failure")
    create_function(lam, "async-fails", {"app.py": FAILING})
    lam.put_function_event_invoke_config(FunctionName="async-fails",
                                         DestinationConfig={"OnFailure": {"Destination": arn}})
    request_id = invoke_event(srv, "async-fails", {"order": 7})
    [msg] = receive(srv, url)
    record = json.loads(msg["Body"])
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:async-fails:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"order": 7}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                         "functionError": "Unhandled"}
    # The function saw the 202's request id as context.aws_request_id.
    assert record["responsePayload"]["errorMessage"] == f"failed {request_id}"
    assert record["responsePayload"]["errorType"] == "ValueError"


def test_expired_event_reports_event_age_exceeded(srv: HearthServer) -> None:
    lam = srv.client("lambda")
    url, arn = queue(srv, "async-expired")
    create_function(lam, "async-expires", {"app.py": FAILING})
    lam.put_function_event_invoke_config(FunctionName="async-expires", MaximumEventAgeInSeconds=60,
                                         DestinationConfig={"OnFailure": {"Destination": arn}})
    invoke_event(srv, "async-expires", {"late": True})
    [msg] = receive(srv, url)
    record = json.loads(msg["Body"])
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 1


def test_success_goes_to_on_success(srv: HearthServer) -> None:
    lam = srv.client("lambda")
    url, arn = queue(srv, "async-on-success")
    create_function(lam, "async-ok", {"app.py": SUCCEEDING})
    lam.put_function_event_invoke_config(FunctionName="async-ok", MaximumRetryAttempts=0,
                                         DestinationConfig={"OnSuccess": {"Destination": arn}})
    request_id = invoke_event(srv, "async-ok", {"hello": "world"})
    [msg] = receive(srv, url)
    record = json.loads(msg["Body"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"got": {"hello": "world"}, "rid": request_id}


def test_dead_letter_queue_receives_the_original_event(srv: HearthServer) -> None:
    lam = srv.client("lambda")
    url, arn = queue(srv, "async-dlq")
    create_function(lam, "async-dlq-fn", {"app.py": FAILING}, DeadLetterConfig={"TargetArn": arn})
    lam.put_function_event_invoke_config(FunctionName="async-dlq-fn", MaximumRetryAttempts=0)
    request_id = invoke_event(srv, "async-dlq-fn", {"keep": "me"})
    [msg] = receive(srv, url)
    assert json.loads(msg["Body"]) == {"keep": "me"}
    attrs = {k: v["StringValue"] for k, v in msg["MessageAttributes"].items()}
    assert attrs == {"RequestID": request_id, "ErrorCode": "200", "ErrorMessage": f"failed {request_id}"}


def test_function_to_function_async_loop_is_stopped_at_16(srv: HearthServer) -> None:
    lam = srv.client("lambda")
    count_url, _ = queue(srv, "async-loop-count")
    fail_url, fail_arn = queue(srv, "async-loop-failure")
    create_function(lam, "async-loop", {"app.py": LOOPING}, Timeout=30,
                    Environment={"Variables": {"COUNT_QUEUE": count_url}})
    lam.put_function_event_invoke_config(FunctionName="async-loop", MaximumRetryAttempts=0,
                                         DestinationConfig={"OnFailure": {"Destination": fail_arn}})
    invoke_event(srv, "async-loop", {"n": 0})
    [failure] = receive(srv, fail_url, timeout=60)
    record = json.loads(failure["Body"])
    assert record["requestContext"]["condition"] == "RecursiveInvocationException"
    assert record["requestPayload"] == {"n": 16}
    runs = receive(srv, count_url, count=16)
    assert sorted(json.loads(m["Body"])["n"] for m in runs) == list(range(16))
    extra = srv.client("sqs").receive_message(QueueUrl=count_url, WaitTimeSeconds=1).get("Messages", [])
    assert extra == []
    assert srv.health()["async_events"]["recursive_stopped"] >= 1


def test_recursion_config_allow_and_validation(srv: HearthServer) -> None:
    lam = srv.client("lambda")
    create_function(lam, "async-recursion-cfg", {"app.py": SUCCEEDING})
    assert lam.get_function_recursion_config(FunctionName="async-recursion-cfg")["RecursiveLoop"] == "Terminate"
    lam.put_function_recursion_config(FunctionName="async-recursion-cfg", RecursiveLoop="Allow")
    assert lam.get_function_recursion_config(FunctionName="async-recursion-cfg")["RecursiveLoop"] == "Allow"
    with pytest.raises(lam.exceptions.ClientError) as exc:
        lam.put_function_event_invoke_config(FunctionName="async-recursion-cfg", MaximumRetryAttempts=3)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    cli = srv.aws("lambda", "get-function-event-invoke-config", "--function-name", "async-recursion-cfg",
                  check=False)
    assert cli.returncode != 0 and "doesn't have an EventInvokeConfig" in cli.stderr
    out = srv.aws("lambda", "put-function-event-invoke-config", "--function-name", "async-recursion-cfg",
                  "--maximum-event-age-in-seconds", "120")
    assert json.loads(out.stdout)["MaximumEventAgeInSeconds"] == 120


def test_acknowledged_events_survive_kill_9(tmp_path: Path) -> None:
    server = HearthServer(tmp_path / "data", extra_env=SCALE_ENV)
    server.start()
    try:
        lam = server.client("lambda")
        done_url, _ = queue(server, "async-done")
        create_function(lam, "async-durable", {"app.py": SLOW_REPORTER}, Timeout=30,
                        Environment={"Variables": {"DONE_QUEUE": done_url}})
        for i in range(20):
            invoke_event(server, "async-durable", {"i": i})
        server.kill9()  # events are in flight or still queued
        server.start()
        # At-least-once: duplicates are allowed, losses are not.
        delivered: set[int] = set()
        deadline = time.monotonic() + 90
        while delivered != set(range(20)):
            assert time.monotonic() < deadline, f"missing {set(range(20)) - delivered}:\n{server.log()[-4000:]}"
            delivered |= {json.loads(m["Body"])["i"] for m in receive(server, done_url, count=1)}
    finally:
        server.stop()
