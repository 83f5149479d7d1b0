"""Recursive loops through Hearth's own services are stopped after 16 runs, as AWS stops them:
function -> topic -> function here (function -> function in test_async.py, function -> queue ->
function in test_esm_sqs.py)."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.harness import ACCOUNT, HearthServer, create_function
from tests.integration.test_async import queue, receive, srv  # noqa: F401  (srv is a fixture)

pytestmark = pytest.mark.integration

PUBLISHING = """
import json, os
import boto3

sns = boto3.client("sns")
sqs = boto3.client("sqs")

def handler(event, context):
    if "Records" in event:  # delivered by the topic
        n = json.loads(event["Records"][0]["Sns"]["Message"])["n"]
    else:
        n = event["n"]
    sqs.send_message(QueueUrl=os.environ["COUNT_QUEUE"], MessageBody=json.dumps({"n": n}))
    sns.publish(TopicArn=os.environ["TOPIC"], Message=json.dumps({"n": n + 1}))
    return n
"""


def test_function_topic_function_loop_is_stopped(srv: HearthServer) -> None:  # noqa: F811
    lam, sns = srv.client("lambda"), srv.client("sns")
    count_url, _ = queue(srv, "sns-loop-count")
    fail_url, fail_arn = queue(srv, "sns-loop-failure")
    topic = sns.create_topic(Name="sns-loop")["TopicArn"]
    fn = create_function(lam, "sns-loop", {"app.py": PUBLISHING}, Timeout=30,
                         Environment={"Variables": {"COUNT_QUEUE": count_url, "TOPIC": topic}})
    lam.add_permission(FunctionName="sns-loop", StatementId="sns", Action="lambda:InvokeFunction",
                       Principal="sns.amazonaws.com", SourceArn=topic)
    lam.put_function_event_invoke_config(FunctionName="sns-loop", MaximumRetryAttempts=0,
                                         DestinationConfig={"OnFailure": {"Destination": fail_arn}})
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=fn["FunctionArn"])
    lam.invoke(FunctionName="sns-loop", InvocationType="Event", Payload=json.dumps({"n": 0}))
    [failure] = receive(srv, fail_url, timeout=60)
    record = json.loads(failure["Body"])
    assert record["requestContext"]["condition"] == "RecursiveInvocationException"
    assert record["requestContext"]["functionArn"].startswith(f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:sns-loop")
    runs = receive(srv, count_url, count=16)
    assert sorted(json.loads(m["Body"])["n"] for m in runs) == list(range(16))
    extra = srv.client("sqs").receive_message(QueueUrl=count_url, WaitTimeSeconds=1).get("Messages", [])
    assert extra == []


QUEUEING = """
import json, os
import boto3

sqs = boto3.client("sqs")

def handler(event, context):
    for record in event["Records"]:
        n = json.loads(record["body"])["n"]
        sqs.send_message(QueueUrl=os.environ["COUNT_QUEUE"], MessageBody=json.dumps({"n": n}))
        sqs.send_message(QueueUrl=os.environ["LOOP_QUEUE"], MessageBody=json.dumps({"n": n + 1}))
"""


def test_function_queue_function_loop_is_stopped(srv: HearthServer) -> None:  # noqa: F811
    lam, sqs = srv.client("lambda"), srv.client("sqs")
    count_url, _ = queue(srv, "sqs-loop-count")
    loop_url, loop_arn = queue(srv, "sqs-loop")
    create_function(lam, "sqs-loop", {"app.py": QUEUEING}, Timeout=30,
                    Environment={"Variables": {"COUNT_QUEUE": count_url, "LOOP_QUEUE": loop_url}})
    lam.create_event_source_mapping(FunctionName="sqs-loop", EventSourceArn=loop_arn, BatchSize=1)
    sqs.send_message(QueueUrl=loop_url, MessageBody=json.dumps({"n": 0}))
    runs = receive(srv, count_url, count=16, timeout=60)
    assert sorted(json.loads(m["Body"])["n"] for m in runs) == list(range(16))
    extra = sqs.receive_message(QueueUrl=count_url, WaitTimeSeconds=2).get("Messages", [])
    assert extra == []
    # The 17th message was not delivered (no dead-letter queue: it was dropped), and the loop is over.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        attrs = sqs.get_queue_attributes(QueueUrl=loop_url, AttributeNames=["All"])["Attributes"]
        if attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0":
            break
        time.sleep(0.2)
    assert attrs["ApproximateNumberOfMessages"] == "0", attrs
