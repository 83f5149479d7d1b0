"""EventBridge through boto3 and the AWS CLI against a real server: rules, targets, schedules."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from botocore.exceptions import ClientError

from tests.integration.harness import ACCOUNT, HearthServer, create_function


def receive(sqs: Any, url: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(bodies) < count and time.monotonic() < deadline:
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for m in resp.get("Messages", []):
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def test_rule_routes_matching_events_to_a_queue(server: HearthServer) -> None:
    events, sqs = server.client("events"), server.client("sqs")
    url, arn = queue(sqs, "eb-orders")
    events.create_event_bus(Name="shop")
    events.put_rule(Name="big-orders", EventBusName="shop", EventPattern=json.dumps(
        {"source": ["com.shop"], "detail": {"amount": [{"numeric": [">=", 100]}], "tags": ["vip"]}}))
    events.put_targets(Rule="big-orders", EventBusName="shop", Targets=[{"Id": "q", "Arn": arn}])
    result = events.put_events(Entries=[
        {"Source": "com.shop", "DetailType": "Order", "EventBusName": "shop",
         "Detail": json.dumps({"amount": 150, "tags": ["new", "vip"]}), "Resources": ["arn:aws:s3:::b"]},
        {"Source": "com.shop", "DetailType": "Order", "EventBusName": "shop", "Detail": json.dumps({"amount": 5})},
        {"Source": "com.shop", "DetailType": "Order", "Detail": json.dumps({"amount": 500, "tags": ["vip"]})},
    ])
    assert result["FailedEntryCount"] == 0
    (event,) = receive(sqs, url, 1)
    assert event["id"] == result["Entries"][0]["EventId"] and event["account"] == ACCOUNT
    assert event["resources"] == ["arn:aws:s3:::b"] and event["detail"]["amount"] == 150
    EventBridgeModel.model_validate(event)
    assert receive(sqs, url, 1, timeout=1.5) == []  # neither the small order nor the default-bus one


def test_lambda_target_is_invoked_asynchronously(server: HearthServer) -> None:
    events, sqs, lam = server.client("events"), server.client("sqs"), server.client("lambda")
    url, _ = queue(sqs, "eb-from-lambda")
    code = (
        "import json, os, boto3\n"
        "def handler(event, context):\n"
        "    boto3.client('sqs').send_message(QueueUrl=os.environ['OUT'], MessageBody=json.dumps(event))\n"
    )
    fn = create_function(lam, "eb-target", {"app.py": code}, Environment={"Variables": {"OUT": url}})
    events.put_rule(Name="to-lambda", EventPattern=json.dumps({"detail-type": [{"prefix": "Thing "}]}))
    events.put_targets(Rule="to-lambda", Targets=[{"Id": "fn", "Arn": fn["FunctionArn"]}])
    events.put_events(Entries=[{"Source": "app", "DetailType": "Thing Happened", "Detail": '{"n": 1}'}])
    (event,) = receive(sqs, url, 1, timeout=60)
    assert event["detail-type"] == "Thing Happened" and event["detail"] == {"n": 1}
    EventBridgeModel.model_validate(event)


def test_api_errors_as_aws(server: HearthServer) -> None:
    events = server.client("events")
    cases: list[tuple[Any, dict[str, Any], str, str]] = [
        (events.put_rule, {"Name": "bad", "EventPattern": '{"a": "b"}'}, "InvalidEventPatternException",
         'Event pattern is not valid. Reason: "a" must be an object or an array'),
        (events.put_rule, {"Name": "bad", "ScheduleExpression": "cron(0 12 * * * *)"}, "ValidationException",
         "Parameter ScheduleExpression is not valid."),
        (events.describe_rule, {"Name": "nope"}, "ResourceNotFoundException",
         "Rule nope does not exist on EventBus default."),
        (events.describe_event_bus, {"Name": "nope"}, "ResourceNotFoundException", "Event bus nope does not exist."),
    ]
    for method, params, code, message in cases:
        with pytest.raises(ClientError) as info:
            method(**params)
        assert (info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]) == (code, message)
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_cli_test_event_pattern(server: HearthServer) -> None:
    event = json.dumps({"id": "1", "source": "com.mycompany.myapp", "detail-type": "t", "account": ACCOUNT,
                        "region": "us-east-1", "time": "2017-04-11T20:11:04Z"})
    out = server.aws("events", "test-event-pattern", "--event-pattern", '{"source":["com.mycompany.myapp"]}',
                     "--event", event)
    assert json.loads(out.stdout) == {"Result": True}


def test_rate_schedule_fires(fresh_server: HearthServer) -> None:
    # HEARTH_TEST_TIME_SCALE=60: one schedule minute is one real second on this server.
    fresh_server.extra_env["HEARTH_TEST_TIME_SCALE"] = "60"
    fresh_server.start()
    events, sqs = fresh_server.client("events"), fresh_server.client("sqs")
    url, arn = queue(sqs, "ticks")
    rule_arn = events.put_rule(Name="every-minute", ScheduleExpression="rate(1 minute)")["RuleArn"]
    events.put_targets(Rule="every-minute", Targets=[{"Id": "q", "Arn": arn}])
    ticks = receive(sqs, url, 2, timeout=30)
    assert len(ticks) == 2
    for tick in ticks:
        assert tick["detail-type"] == "Scheduled Event" and tick["source"] == "aws.events"
        assert tick["resources"] == [rule_arn] and tick["detail"] == {}
        EventBridgeModel.model_validate(tick)
