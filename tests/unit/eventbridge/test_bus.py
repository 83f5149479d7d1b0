"""Buses, rules, targets and PutEvents through the provider, with a recording fake router."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from hearth.aws.context import Principal, RequestContext
from hearth.aws.errors import AwsError
from hearth.events.delivery import DeliveryError, DeliveryRouter, Message
from hearth.services.events.component import EventBridge
from hearth.services.events.schedules import ManualClock
from hearth.services.events.transform import render_template

ACCOUNT = "000000000000"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"
FN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f"


class Recorder:
    def __init__(self) -> None:
        self.got: list[tuple[str, Message]] = []
        self.fail = 0

    async def __call__(self, arn: str, message: Message) -> None:
        if self.fail:
            self.fail -= 1
            raise DeliveryError("boom", "ServiceUnavailable")
        self.got.append((arn, message))

    def bodies(self, arn: str | None = None) -> list[Any]:
        return [json.loads(m.body) for a, m in self.got if arn is None or a == arn]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[EventBridge, Recorder, ManualClock]]:
    router = DeliveryRouter()
    rec = Recorder()
    router.register("sqs", rec)
    router.register("lambda", rec)
    clock = ManualClock(datetime(2024, 1, 1, tzinfo=UTC))
    eb = EventBridge(tmp_path, router, clock)
    yield eb, rec, clock
    eb.store.close()


def ctx(op: str = "X") -> RequestContext:
    return RequestContext("events", op, "us-east-1", Principal("AK", ACCOUNT), "rid")


def call(eb: EventBridge, op: str, **params: Any) -> Any:
    return getattr(eb.provider, op)(ctx(), params)


def put(eb: EventBridge, detail: dict[str, Any], **extra: Any) -> dict[str, Any]:
    entry = {"Source": "com.shop", "DetailType": "Order", "Detail": json.dumps(detail), **extra}
    result: dict[str, Any] = call(eb, "put_events", Entries=[entry])
    return result


async def test_rule_routes_matching_events_with_aws_envelope(env: Any) -> None:
    eb, rec, _ = env
    arn = call(eb, "put_rule", Name="big", EventPattern=json.dumps({"detail": {"n": [{"numeric": [">", 10]}]}}))
    assert arn["RuleArn"] == f"arn:aws:events:us-east-1:{ACCOUNT}:rule/big"
    call(eb, "put_targets", Rule="big", Targets=[{"Id": "q", "Arn": QUEUE}])
    first = put(eb, {"n": 50})
    put(eb, {"n": 5})
    assert first["FailedEntryCount"] == 0 and "EventId" in first["Entries"][0]
    assert await eb.dispatcher.run_once() == 1
    (event,) = rec.bodies()
    assert event["id"] == first["Entries"][0]["EventId"]
    assert event["detail"] == {"n": 50} and event["account"] == ACCOUNT and event["resources"] == []
    EventBridgeModel.model_validate(event)
    assert rec.got[0][1].source_arn == arn["RuleArn"]


async def test_disabled_rule_and_removed_target_do_not_receive(env: Any) -> None:
    eb, _, _ = env
    call(eb, "put_rule", Name="r", EventPattern='{"source": ["com.shop"]}')
    call(eb, "put_targets", Rule="r", Targets=[{"Id": "q", "Arn": QUEUE}])
    call(eb, "disable_rule", Name="r")
    assert call(eb, "describe_rule", Name="r")["State"] == "DISABLED"
    put(eb, {})
    assert await eb.dispatcher.run_once() == 0
    call(eb, "enable_rule", Name="r")
    put(eb, {})
    assert await eb.dispatcher.run_once() == 1
    call(eb, "remove_targets", Rule="r", Ids=["q"])
    put(eb, {})
    assert await eb.dispatcher.run_once() == 0


def test_put_events_entry_errors(env: Any) -> None:
    eb, _, _ = env
    result = call(eb, "put_events", Entries=[
        {"DetailType": "t", "Detail": "{}"},
        {"Source": "s", "Detail": "{}"},
        {"Source": "s", "DetailType": "t"},
        {"Source": "s", "DetailType": "t", "Detail": "not json"},
        {"Source": "s", "DetailType": "t", "Detail": "{}", "EventBusName": "nope"},
        {"Source": "s", "DetailType": "t", "Detail": "{}"},
    ])
    assert result["FailedEntryCount"] == 4
    # An event for a bus that does not exist is accepted (and dropped), as AWS does (recorded by LocalStack's
    # AWS-validated test_put_events_nonexistent_event_bus).
    assert [e.get("ErrorCode") for e in result["Entries"]] == [
        "InvalidArgument", "InvalidArgument", "InvalidArgument", "MalformedDetail", None, None]
    assert result["Entries"][0]["ErrorMessage"] == (
        "Parameter Source is not valid. Reason: Source is a required argument.")
    assert result["Entries"][4]["EventId"]
    with pytest.raises(AwsError) as info:
        call(eb, "put_events", Entries=[{"Source": "s", "DetailType": "t", "Detail": json.dumps({"x": "a" * 262144})}])
    assert info.value.code == "ValidationException"


def test_rule_and_bus_errors(env: Any) -> None:
    eb, _, _ = env
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("put_rule", {"Name": "r"}, "ValidationException",
         "Parameter(s) EventPattern or ScheduleExpression must be specified."),
        ("put_rule", {"Name": "r", "EventPattern": '{"a": 1}'}, "InvalidEventPatternException",
         'Event pattern is not valid. Reason: "a" must be an object or an array'),
        ("put_rule", {"Name": "r", "ScheduleExpression": "rate(1 minutes)"}, "ValidationException",
         "Parameter ScheduleExpression is not valid."),
        ("put_rule", {"Name": "r", "EventPattern": "{}", "EventBusName": "nope"}, "ResourceNotFoundException",
         "Event bus nope does not exist."),
        ("describe_rule", {"Name": "nope"}, "ResourceNotFoundException",
         "Rule nope does not exist on EventBus default."),
        ("put_targets", {"Rule": "nope", "Targets": [{"Id": "a", "Arn": QUEUE}]}, "ResourceNotFoundException",
         "Rule nope does not exist on EventBus default."),
        ("describe_event_bus", {"Name": "nope"}, "ResourceNotFoundException", "Event bus nope does not exist."),
        ("delete_event_bus", {"Name": "default"}, "ValidationException", "Cannot delete event bus default."),
    ]
    for op, params, code, message in cases:
        with pytest.raises(AwsError) as info:
            call(eb, op, **params)
        assert (info.value.code, info.value.message) == (code, message), op
    call(eb, "create_event_bus", Name="custom")
    with pytest.raises(AwsError) as info:
        call(eb, "create_event_bus", Name="custom")
    assert (info.value.code, info.value.message) == (
        "ResourceAlreadyExistsException", "Event bus custom already exists.")
    with pytest.raises(AwsError) as info:
        call(eb, "put_rule", Name="s", ScheduleExpression="rate(5 minutes)", EventBusName="custom")
    assert info.value.message == "ScheduleExpression is supported only on the default event bus."
    call(eb, "put_rule", Name="r", EventPattern="{}")
    call(eb, "put_targets", Rule="r", Targets=[{"Id": "a", "Arn": QUEUE}])
    with pytest.raises(AwsError) as info:
        call(eb, "delete_rule", Name="r")
    assert info.value.message == "Rule can't be deleted since it has targets."
    with pytest.raises(AwsError) as info:
        call(eb, "put_targets", Rule="r", Targets=[{"Id": str(i), "Arn": QUEUE} for i in range(5)])
    assert info.value.code == "LimitExceededException"


def test_buses_rules_listing(env: Any) -> None:
    eb, _, _ = env
    created = call(eb, "create_event_bus", Name="orders", Description="d")
    assert created == {"EventBusArn": f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/orders", "Description": "d"}
    assert [b["Name"] for b in call(eb, "list_event_buses")["EventBuses"]] == ["default", "orders"]
    rule = call(eb, "put_rule", Name="on-orders", EventPattern="{}", EventBusName=created["EventBusArn"])
    assert rule["RuleArn"] == f"arn:aws:events:us-east-1:{ACCOUNT}:rule/orders/on-orders"
    for name in ("a1", "a2", "b1"):
        call(eb, "put_rule", Name=name, EventPattern="{}")
    assert [r["Name"] for r in call(eb, "list_rules", NamePrefix="a")["Rules"]] == ["a1", "a2"]
    page = call(eb, "list_rules", Limit=2)
    assert len(page["Rules"]) == 2 and page["NextToken"]
    assert [r["Name"] for r in call(eb, "list_rules", Limit=2, NextToken=page["NextToken"])["Rules"]] == ["b1"]
    assert call(eb, "list_rules", EventBusName="orders")["Rules"][0]["EventBusName"] == "orders"
    call(eb, "delete_event_bus", Name="orders")
    assert [b["Name"] for b in call(eb, "list_event_buses")["EventBuses"]] == ["default"]


async def test_input_path_input_and_transformer(env: Any) -> None:
    eb, rec, _ = env
    call(eb, "put_rule", Name="r", EventPattern='{"source": ["com.shop"]}')
    call(eb, "put_targets", Rule="r", Targets=[
        {"Id": "const", "Arn": QUEUE + "1", "Input": '{"fixed": true}'},
        {"Id": "path", "Arn": QUEUE + "2", "InputPath": "$.detail.order"},
        {"Id": "tpl", "Arn": QUEUE + "3", "InputTransformer": {
            "InputPathsMap": {"id": "$.detail.order.id", "n": "$.detail.order.n", "none": "$.detail.missing"},
            "InputTemplate": '{"order": <id>, "text": "order <id> has <n> items", "n": <n>, "x": <none>, '
                             '"rule": "<aws.events.rule-name>"}'}},
        {"Id": "plain", "Arn": QUEUE + "4", "InputTransformer": {
            "InputPathsMap": {"id": "$.detail.order.id"}, "InputTemplate": "<id> is placed"}},
    ])
    put(eb, {"order": {"id": "o-1", "n": 3}})
    await eb.dispatcher.run_once()
    by_arn = {arn: m.body for arn, m in rec.got}
    assert json.loads(by_arn[QUEUE + "1"]) == {"fixed": True}
    assert json.loads(by_arn[QUEUE + "2"]) == {"id": "o-1", "n": 3}
    # A path that selects nothing is "" (recorded by AWS: test_put_events_with_input_transformer_input_template_json).
    assert json.loads(by_arn[QUEUE + "3"]) == {"order": "o-1", "text": "order o-1 has 3 items", "n": 3, "x": "",
                                               "rule": "r"}
    assert by_arn[QUEUE + "4"] == "o-1 is placed"


def test_template_escapes_quoted_values() -> None:
    assert render_template('{"a": "<v>"}', {"v": 'say "hi"'}) == '{"a": "say \\"hi\\""}'
    assert render_template('{"a": <v>}', {"v": {"k": [1]}}) == '{"a": {"k":[1]}}'
    assert render_template('{"a": "<unknown>"}', {}) == '{"a": "<unknown>"}'


async def test_transformer_placeholders_and_json_validity(env: Any) -> None:
    eb, rec, _ = env
    call(eb, "put_rule", Name="r", EventPattern='{"source": ["com.shop"]}')
    with pytest.raises(AwsError) as info:  # a placeholder neither mapped nor predefined (recorded by AWS)
        call(eb, "put_targets", Rule="r", Targets=[{"Id": "t", "Arn": QUEUE, "InputTransformer": {
            "InputPathsMap": {"id": "$.detail.order.id"}, "InputTemplate": '"<id> and <nope>"'}}])
    assert info.value.message == "InputTemplate for target t contains invalid placeholder nope."
    call(eb, "put_targets", Rule="r", Targets=[
        # An object inside a JSON string would be invalid JSON: AWS sends that target nothing.
        {"Id": "bad", "Arn": QUEUE + "1", "InputTransformer": {
            "InputPathsMap": {"o": "$.detail.order"}, "InputTemplate": '{"order": "<o>"}'}},
        {"Id": "event", "Arn": QUEUE + "2", "InputTransformer": {"InputTemplate": '{"e": <aws.events.event>}'}},
    ])
    put(eb, {"order": {"id": "o-1"}})
    await eb.dispatcher.run_once()
    assert [arn for arn, _ in rec.got] == [QUEUE + "2"]
    event = json.loads(rec.got[0][1].body)["e"]  # without detail, its detail-type as detailType (recorded)
    assert "detail" not in event and "detail-type" not in event and event["detailType"]


def test_invalid_targets(env: Any) -> None:
    eb, _, _ = env
    call(eb, "put_rule", Name="r", EventPattern="{}")
    for target in ({"Id": "a", "Arn": "not-an-arn"}, {"Id": "a", "Arn": QUEUE, "Input": "{bad"},
                   {"Id": "a", "Arn": QUEUE, "Input": "{}", "InputPath": "$.detail"},
                   {"Id": "a", "Arn": QUEUE, "InputPath": "detail"}):
        with pytest.raises(AwsError) as info:
            call(eb, "put_targets", Rule="r", Targets=[target])
        assert info.value.code == "ValidationException"


async def test_failed_delivery_is_retried_then_dead_lettered(env: Any) -> None:
    eb, rec, _ = env
    now = [1000.0]
    eb.dispatcher._clock = lambda: now[0]
    call(eb, "put_rule", Name="r", EventPattern="{}")
    dlq = QUEUE + "-dlq"
    call(eb, "put_targets", Rule="r", Targets=[{"Id": "f", "Arn": FN, "RetryPolicy": {"MaximumRetryAttempts": 1},
                                                "DeadLetterConfig": {"Arn": dlq}}])
    rec.fail = 1
    put(eb, {"k": 1})
    await eb.dispatcher.run_once()
    assert rec.got == [] and eb.store.pending() == 1
    assert await eb.dispatcher.run_once() == 0  # backing off
    now[0] += 5
    await eb.dispatcher.run_once()
    assert [a for a, _ in rec.got] == [FN]  # the retry succeeded
    rec.got.clear()
    rec.fail = 2
    put(eb, {"k": 2})
    await eb.dispatcher.run_once()
    now[0] += 5
    await eb.dispatcher.run_once()
    ((arn, message),) = rec.got
    assert arn == dlq and json.loads(message.body)["detail"] == {"k": 2}
    assert message.attributes["ERROR_CODE"]["StringValue"] == "ServiceUnavailable"
    assert eb.store.pending() == 0


async def test_scheduled_rule_fires_scheduled_event(env: Any) -> None:
    eb, rec, clock = env
    call(eb, "put_rule", Name="tick", ScheduleExpression="cron(0/5 * * * ? *)")
    call(eb, "put_targets", Rule="tick", Targets=[{"Id": "f", "Arn": FN}])
    engine = eb.bus.schedules
    clock.advance(timedelta(minutes=5))
    assert await engine.run_due() == [f"{ACCOUNT}|us-east-1|default|tick"]
    await eb.dispatcher.run_once()
    (event,) = rec.bodies()
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == [f"arn:aws:events:us-east-1:{ACCOUNT}:rule/tick"]
    assert event["time"] == "2024-01-01T00:05:00Z" and event["detail"] == {}
    EventBridgeModel.model_validate(event)
    call(eb, "disable_rule", Name="tick")
    clock.advance(timedelta(minutes=5))
    assert await engine.run_due() == []


async def test_bus_as_destination_and_as_target(env: Any) -> None:
    eb, rec, _ = env
    call(eb, "create_event_bus", Name="results")
    call(eb, "put_rule", Name="ok", EventBusName="results",
         EventPattern='{"source": ["lambda"], "detail-type": ["Lambda Function Invocation Result - Success"]}')
    call(eb, "put_targets", Rule="ok", EventBusName="results", Targets=[{"Id": "q", "Arn": QUEUE}])
    bus_arn = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/results"
    record = {"version": "1.0", "requestContext": {"condition": "Success", "functionArn": FN + ":$LATEST"},
              "responsePayload": {"ok": 1}}
    await eb.bus.deliver_to_bus(bus_arn, Message(body=json.dumps(record), source_arn=FN + ":$LATEST"))
    await eb.dispatcher.run_once()
    (event,) = rec.bodies()
    assert event["detail"] == record and FN + ":$LATEST" in event["resources"]
    with pytest.raises(DeliveryError):
        await eb.bus.deliver_to_bus(f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/nope", Message(body="{}"))


def test_test_event_pattern(env: Any) -> None:
    eb, _, _ = env
    event = {"id": "1", "account": ACCOUNT, "source": "com.shop", "time": "2024-01-01T00:00:00Z",
             "region": "us-east-1", "detail-type": "x", "detail": {"a": 1}}
    assert call(eb, "test_event_pattern", EventPattern='{"source": ["com.shop"]}', Event=json.dumps(event)) == {
        "Result": True}
    assert call(eb, "test_event_pattern", EventPattern='{"detail": {"a": [2]}}', Event=json.dumps(event)) == {
        "Result": False}
    with pytest.raises(AwsError) as info:
        call(eb, "test_event_pattern", EventPattern="{}", Event="plain string")
    assert (info.value.code, info.value.message) == ("ValidationException", "Parameter Event is not valid.")


async def test_rules_targets_and_outbox_survive_restart(tmp_path: Path) -> None:
    router = DeliveryRouter()
    eb = EventBridge(tmp_path, router, ManualClock(datetime(2024, 1, 1, tzinfo=UTC)))
    call(eb, "put_rule", Name="r", EventPattern="{}")
    call(eb, "put_targets", Rule="r", Targets=[{"Id": "q", "Arn": QUEUE}])
    put(eb, {"k": 1})  # no sqs handler yet: stays in the outbox
    await eb.dispatcher.run_once()
    eb.store.close()
    router2 = DeliveryRouter()
    rec = Recorder()
    router2.register("sqs", rec)
    eb2 = EventBridge(tmp_path, router2, ManualClock(datetime(2024, 1, 1, tzinfo=UTC)))
    try:
        assert call(eb2, "list_targets_by_rule", Rule="r")["Targets"] == [{"Id": "q", "Arn": QUEUE}]
        eb2.dispatcher._clock = lambda: 10**10
        await eb2.dispatcher.run_once()
        assert rec.bodies()[0]["detail"] == {"k": 1}
    finally:
        eb2.store.close()


async def test_the_senders_trace_header_reaches_the_targets(env: Any) -> None:
    eb, rec, _ = env
    call(eb, "put_rule", Name="all", EventPattern=json.dumps({"source": ["com.shop"]}))
    call(eb, "put_targets", Rule="all", Targets=[{"Id": "q", "Arn": QUEUE}, {"Id": "f", "Arn": FN}])
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    traced = ctx("PutEvents")
    traced.headers["x-amzn-trace-id"] = trace
    entry = {"Source": "com.shop", "DetailType": "Order", "Detail": "{}"}
    eb.provider.put_events(traced, {"Entries": [entry]})
    put(eb, {})  # no header: no trace
    assert await eb.dispatcher.run_once() == 4
    assert sorted((arn, m.trace_header or "") for arn, m in rec.got) == [(FN, ""), (FN, trace), (QUEUE, ""),
                                                                         (QUEUE, trace)]


def test_a_cluster_node_follows_scheduled_rules_changed_through_another(tmp_path: Path) -> None:
    """Two nodes' EventBridge on one store: the node that fires schedules registers a rule put through
    the other when it reloads, and drops it once deleted there."""
    clock = ManualClock(datetime(2024, 1, 1, tzinfo=UTC))
    here, there = EventBridge(tmp_path, DeliveryRouter(), clock), EventBridge(tmp_path, DeliveryRouter(), clock)
    try:
        call(there, "put_rule", Name="tick", ScheduleExpression="rate(5 minutes)")
        [key] = [r.key for r in here.store.scheduled_rules()]
        assert here.bus.schedules.next_fire(key) is None
        here.bus.reload_schedules()
        assert here.bus.schedules.next_fire(key) is not None
        call(there, "delete_rule", Name="tick")
        here.bus.reload_schedules()
        assert here.bus.schedules.next_fire(key) is None
    finally:
        here.store.close()
        there.store.close()


def test_tags_permissions_and_rules_by_target(env: Any) -> None:
    eb, _, _ = env
    bus_arn = call(eb, "create_event_bus", Name="b", Tags=[{"Key": "k1", "Value": "v1"}])["EventBusArn"]
    rule_arn = call(eb, "put_rule", Name="r", EventBusName="b", EventPattern='{"source": ["s"]}',
                    Tags=[{"Key": "k", "Value": "v"}])["RuleArn"]
    call(eb, "tag_resource", ResourceARN=bus_arn, Tags=[{"Key": "k2", "Value": "v2"}])
    assert call(eb, "list_tags_for_resource", ResourceARN=bus_arn)["Tags"] == [
        {"Key": "k1", "Value": "v1"}, {"Key": "k2", "Value": "v2"}]
    call(eb, "untag_resource", ResourceARN=bus_arn, TagKeys=["k1", "absent"])
    assert call(eb, "list_tags_for_resource", ResourceARN=rule_arn)["Tags"] == [{"Key": "k", "Value": "v"}]
    with pytest.raises(AwsError) as info:
        call(eb, "list_tags_for_resource", ResourceARN=rule_arn.replace("/r", "/nope"))
    assert info.value.message == "Rule nope does not exist on EventBus b."
    call(eb, "put_permission", EventBusName="b", StatementId="s1", Action="events:PutEvents", Principal="222222222222")
    call(eb, "put_permission", EventBusName="b", StatementId="s2", Action="events:PutEvents", Principal="*")
    policy = json.loads(call(eb, "describe_event_bus", Name="b")["Policy"])
    assert [(s["Sid"], s["Principal"]) for s in policy["Statement"]] == [
        ("s1", {"AWS": "arn:aws:iam::222222222222:root"}), ("s2", "*")]
    with pytest.raises(AwsError) as info:
        call(eb, "remove_permission", EventBusName="b", StatementId="nope")
    assert info.value.message == "Statement with the provided id does not exist."
    call(eb, "remove_permission", EventBusName="b", RemoveAllPermissions=True)
    assert "Policy" not in call(eb, "describe_event_bus", Name="b")
    queue = "arn:aws:sqs:us-east-1:000000000000:q"
    for name in ("r1", "r2", "r3"):
        call(eb, "put_rule", Name=name, EventPattern='{"source": ["s"]}')
        call(eb, "put_targets", Rule=name, Targets=[{"Id": "t", "Arn": queue}])
    first = call(eb, "list_rule_names_by_target", TargetArn=queue, Limit=2)
    assert first["RuleNames"] == ["r1", "r2"]
    assert call(eb, "list_rule_names_by_target", TargetArn=queue, NextToken=first["NextToken"]) == {"RuleNames": ["r3"]}
    call(eb, "delete_event_bus", Name="b")
    call(eb, "create_event_bus", Name="b")
    assert call(eb, "list_tags_for_resource", ResourceARN=bus_arn)["Tags"] == []


async def test_archives_keep_matching_events_and_replays_send_them_back(env: Any) -> None:
    eb, rec, _ = env
    bus_arn = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"
    call(eb, "create_archive", ArchiveName="a", EventSourceArn=bus_arn, EventPattern='{"source": ["keep"]}',
         RetentionDays=1)
    with pytest.raises(AwsError) as info:
        call(eb, "create_archive", ArchiveName="a", EventSourceArn=bus_arn)
    assert info.value.message == "Archive a already exists."
    before = datetime.now(UTC) - timedelta(minutes=1)
    call(eb, "put_events", Entries=[{"Source": source, "DetailType": "t", "Detail": "{}"}
                                    for source in ("keep", "drop", "keep")])
    described = call(eb, "describe_archive", ArchiveName="a")
    assert described["EventCount"] == 2 and described["EventSourceArn"] == bus_arn
    call(eb, "put_rule", Name="r", EventPattern='{"source": ["keep"]}')
    call(eb, "put_targets", Rule="r", Targets=[{"Id": "t", "Arn": QUEUE}])
    started = call(eb, "start_replay", ReplayName="p", EventSourceArn=described["ArchiveArn"],
                   EventStartTime=before, EventEndTime=datetime.now(UTC) + timedelta(minutes=1),
                   Destination={"Arn": bus_arn})
    assert started["State"] == "STARTING"
    await eb.dispatcher.run_once()
    replayed = rec.bodies(QUEUE)
    assert len(replayed) == 2 and all(b["replay-name"] == "p" for b in replayed)
    assert list(replayed[0])[:8] == ["version", "id", "detail-type", "source", "account", "time", "region",
                                     "replay-name"]
    assert call(eb, "describe_archive", ArchiveName="a")["EventCount"] == 2  # replays are not archived again
    assert call(eb, "describe_replay", ReplayName="p")["State"] == "COMPLETED"
    listed = call(eb, "list_replays", NamePrefix="p")["Replays"]
    assert [r["ReplayName"] for r in listed] == ["p"] and "EventLastReplayedTime" not in listed[0]
    call(eb, "create_event_bus", Name="other")
    with pytest.raises(AwsError) as info:
        call(eb, "start_replay", ReplayName="o", EventSourceArn=described["ArchiveArn"], EventStartTime=before,
             EventEndTime=datetime.now(UTC), Destination={"Arn": bus_arn.replace("/default", "/other")})
    assert info.value.code == "ValidationException"
    with pytest.raises(AwsError) as info:
        call(eb, "start_replay", ReplayName="q", EventSourceArn=described["ArchiveArn"].replace("/a", "/x"),
             EventStartTime=before, EventEndTime=datetime.now(UTC), Destination={"Arn": bus_arn})
    assert info.value.message == "Parameter EventSourceArn is not valid. Reason: Archive x does not exist."
    call(eb, "delete_archive", ArchiveName="a")
    assert call(eb, "list_archives") == {"Archives": []}


async def test_events_to_other_regions_and_accounts(env: Any) -> None:
    eb, rec, _ = env
    other = "222233334444"

    def as_(account: str, region: str, op: str, **params: Any) -> Any:
        context = RequestContext("events", op, region, Principal("AK", account), "rid")
        return getattr(eb.provider, op)(context, params)

    as_(other, "us-east-1", "create_event_bus", Name="shared")
    as_(other, "us-east-1", "put_rule", Name="r", EventBusName="shared", EventPattern='{"source": ["com.shop"]}')
    as_(other, "us-east-1", "put_targets", Rule="r", EventBusName="shared", Targets=[{"Id": "q", "Arn": QUEUE}])
    shared = f"arn:aws:events:us-east-1:{other}:event-bus/shared"
    refused = put(eb, {"n": 1}, EventBusName=shared)  # another account's bus, no permission yet
    assert refused["FailedEntryCount"] == 1 and refused["Entries"][0]["ErrorCode"] == "AccessDeniedException"
    as_(other, "us-east-1", "put_permission", EventBusName="shared", StatementId="all", Action="events:PutEvents",
        Principal="*")
    put(eb, {"n": 2}, EventBusName=shared)
    await eb.dispatcher.run_once()
    (body,) = rec.bodies(QUEUE)
    assert (body["account"], body["detail"]) == (ACCOUNT, {"n": 2})  # the sender's account (recorded by AWS)
    # Forwarded bus to bus: the same id into another account of the region, a new one into another region.
    event = {**body, "region": "us-east-1"}
    as_(ACCOUNT, "eu-west-1", "put_rule", Name="r", EventPattern='{"source": ["com.shop"]}')
    as_(ACCOUNT, "eu-west-1", "put_targets", Rule="r", Targets=[{"Id": "q", "Arn": QUEUE + "-eu"}])
    await eb.bus.deliver_to_bus(f"arn:aws:events:eu-west-1:{ACCOUNT}:event-bus/default",
                                Message(body=json.dumps(event)))
    await eb.bus.deliver_to_bus(shared, Message(body=json.dumps(event)))
    await eb.dispatcher.run_once()
    assert rec.bodies(QUEUE + "-eu")[0]["id"] != event["id"]
    assert rec.bodies(QUEUE)[-1]["id"] == event["id"]
