"""EventInvokeConfig and recursion-config operations, with AWS's recorded texts (05_event_invoke_config)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.unit.lambda_.helpers import ACCOUNT, Env, build, ctx

from hearth.aws.errors import AwsError
from hearth.services.lambda_.event_invoke_config import EventInvokeConfigProvider, EventInvokeConfigStore

ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function"


class Rig:
    def __init__(self, env: Env, store: EventInvokeConfigStore) -> None:
        self.env = env
        self.store = store
        self.p = EventInvokeConfigProvider(env.functions, store)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    env = build(tmp_path / "data")
    await env.functions.recover()
    store = EventInvokeConfigStore(tmp_path / "data")
    await env.create("fn")
    await env.create("other")
    await env.settle()
    yield Rig(env, store)
    store.close()
    await env.functions.close()
    env.store.close()


def err(exc: pytest.ExceptionInfo[AwsError]) -> tuple[str, str, int]:
    return exc.value.code, exc.value.message, exc.value.status


def put(rig: Rig, **params: Any) -> dict[str, Any]:
    params.setdefault("FunctionName", "fn")
    return rig.p.put_function_event_invoke_config(ctx(), params)


async def test_put_get_list_delete_lifecycle(rig: Rig) -> None:
    out = put(rig, MaximumRetryAttempts=1)
    assert out["FunctionArn"] == f"{ARN}:fn:$LATEST"
    assert out["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    assert out["MaximumRetryAttempts"] == 1
    assert "MaximumEventAgeInSeconds" not in out
    assert isinstance(out["LastModified"], float)
    got = rig.p.get_function_event_invoke_config(ctx(), {"FunctionName": "fn"})
    assert got == out
    listed = rig.p.list_function_event_invoke_configs(ctx(), {"FunctionName": "fn"})
    assert listed["FunctionEventInvokeConfigs"] == [out]
    assert "NextMarker" not in listed
    assert rig.p.delete_function_event_invoke_config(ctx(), {"FunctionName": "fn"}) == {}
    with pytest.raises(AwsError) as exc:
        rig.p.get_function_event_invoke_config(ctx(), {"FunctionName": "fn"})
    assert err(exc) == ("ResourceNotFoundException",
                        f"The function {ARN}:fn:$LATEST doesn't have an EventInvokeConfig", 404)
    assert exc.value.message_key == "Message"


async def test_put_replaces_and_update_merges(rig: Rig) -> None:
    put(rig, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=60)
    out = put(rig, MaximumRetryAttempts=0)
    assert out["MaximumRetryAttempts"] == 0 and "MaximumEventAgeInSeconds" not in out
    put(rig, MaximumEventAgeInSeconds=60)
    upd = rig.p.update_function_event_invoke_config(ctx(), {"FunctionName": "fn", "MaximumRetryAttempts": 1})
    assert (upd["MaximumEventAgeInSeconds"], upd["MaximumRetryAttempts"]) == (60, 1)
    upd = rig.p.update_function_event_invoke_config(ctx(), {
        "FunctionName": "fn", "DestinationConfig": {"OnFailure": {"Destination": f"{ARN}:other"}}})
    assert upd["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {"Destination": f"{ARN}:other"}}
    assert upd["MaximumRetryAttempts"] == 1


async def test_policy_for_the_queue(rig: Rig) -> None:
    assert rig.store.async_policy(ACCOUNT, "us-east-1", "fn", None).max_retries == 2
    put(rig, MaximumRetryAttempts=0, MaximumEventAgeInSeconds=120,
        DestinationConfig={"OnSuccess": {"Destination": "arn:aws:sqs:us-east-1:000000000000:q"}})
    policy = rig.store.async_policy(ACCOUNT, "us-east-1", "fn", "$LATEST")
    assert (policy.max_retries, policy.max_age_s, policy.on_success, policy.on_failure) == (
        0, 120, "arn:aws:sqs:us-east-1:000000000000:q", None)


async def test_errors_as_aws_words_them(rig: Rig) -> None:
    cases: list[tuple[dict[str, Any], tuple[str, str, int]]] = [
        ({"FunctionName": "doesnotexist", "MaximumRetryAttempts": 1},
         ("ResourceNotFoundException", "The function doesn't exist.", 404)),
        ({"FunctionName": f"{ARN}:doesnotexist", "MaximumRetryAttempts": 1},
         ("ResourceNotFoundException", "The function doesn't exist.", 404)),
        ({}, ("InvalidParameterValueException",
              "You must specify at least one of error handling or destination setting.", 400)),
        ({"DestinationConfig": {"OnSuccess": {"Destination": f"{ARN}:doesnotexist"}}},
         ("InvalidParameterValueException", f"The destination ARN {ARN}:doesnotexist is invalid.", 400)),
        ({"DestinationConfig": {"OnSuccess": {"Destination": f"{ARN}:fn"}}},
         ("InvalidParameterValueException", "You can't specify the function as a destination for itself.", 400)),
        ({"DestinationConfig": {"OnSuccess": {"Destination": "arn:aws:iam:us-east-1:000000000000:function:fn"}}},
         ("InvalidParameterValueException",
          "The provided destination config DestinationConfig(onSuccess=OnSuccess(destination="
          "arn:aws:iam:us-east-1:000000000000:function:fn), onFailure=null) is invalid.", 400)),
        ({"FunctionName": "fn:$LATEST", "Qualifier": "1", "MaximumRetryAttempts": 1},
         ("InvalidParameterValueException",
          "The derived qualifier from the function name does not match the specified qualifier.", 400)),
    ]
    for params, expected in cases:
        with pytest.raises(AwsError) as exc:
            put(rig, **params)
        assert err(exc) == expected, params


async def test_empty_destinations_are_accepted(rig: Rig) -> None:
    out = put(rig, DestinationConfig={"OnSuccess": {}})
    assert out["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    out = put(rig, FunctionName="fn:$LATEST", Qualifier="$LATEST", MaximumRetryAttempts=1)
    assert out["FunctionArn"] == f"{ARN}:fn:$LATEST"


async def test_get_delete_update_list_not_found(rig: Rig) -> None:
    with pytest.raises(AwsError) as exc:
        rig.p.get_function_event_invoke_config(ctx(), {"FunctionName": "doesnotexist"})
    assert err(exc) == ("ResourceNotFoundException",
                        f"The function {ARN}:doesnotexist:$LATEST doesn't have an EventInvokeConfig", 404)
    with pytest.raises(AwsError) as exc:
        rig.p.delete_function_event_invoke_config(ctx(), {"FunctionName": "fn"})
    assert err(exc)[2] == 404
    with pytest.raises(AwsError) as exc:
        rig.p.update_function_event_invoke_config(ctx(), {"FunctionName": "doesnotexist", "MaximumRetryAttempts": 1})
    assert err(exc) == ("ResourceNotFoundException", "The function doesn't exist.", 404)
    with pytest.raises(AwsError) as exc:
        rig.p.update_function_event_invoke_config(ctx(), {"FunctionName": "fn", "MaximumRetryAttempts": 1})
    assert err(exc) == ("ResourceNotFoundException",
                        f"The function {ARN}:fn:$LATEST doesn't have an EventInvokeConfig", 404)
    with pytest.raises(AwsError) as exc:
        rig.p.list_function_event_invoke_configs(ctx(), {"FunctionName": "doesnotexist"})
    assert err(exc) == ("ResourceNotFoundException", "The function doesn't exist.", 404)


async def test_list_pages(rig: Rig) -> None:
    put(rig, MaximumRetryAttempts=1)
    rig.store.put(ACCOUNT, "us-east-1", "fn", "1", {"max_retries": 0})  # a version's config
    page = rig.p.list_function_event_invoke_configs(ctx(), {"FunctionName": "fn", "MaxItems": 1})
    assert [c["FunctionArn"] for c in page["FunctionEventInvokeConfigs"]] == [f"{ARN}:fn:$LATEST"]
    nxt = rig.p.list_function_event_invoke_configs(ctx(), {"FunctionName": "fn", "Marker": page["NextMarker"]})
    assert [c["FunctionArn"] for c in nxt["FunctionEventInvokeConfigs"]] == [f"{ARN}:fn:1"]
    assert "NextMarker" not in nxt


async def test_recursion_config(rig: Rig) -> None:
    assert rig.p.get_function_recursion_config(ctx(), {"FunctionName": "fn"}) == {"RecursiveLoop": "Terminate"}
    assert rig.p.put_function_recursion_config(ctx(), {"FunctionName": "fn", "RecursiveLoop": "Allow"}) == {
        "RecursiveLoop": "Allow"}
    assert rig.p.get_function_recursion_config(ctx(), {"FunctionName": f"{ARN}:fn"}) == {"RecursiveLoop": "Allow"}
    assert rig.store.recursion_allowed(ACCOUNT, "us-east-1", "fn")
    with pytest.raises(AwsError) as exc:
        rig.p.get_function_recursion_config(ctx(), {"FunctionName": "doesnotexist"})
    assert err(exc)[0::2] == ("ResourceNotFoundException", 404)


async def test_forget_function_drops_its_configs(rig: Rig) -> None:
    put(rig, MaximumRetryAttempts=1)
    rig.p.put_function_recursion_config(ctx(), {"FunctionName": "fn", "RecursiveLoop": "Allow"})
    rig.store.forget_function(ACCOUNT, "us-east-1", "fn")
    assert rig.store.get(ACCOUNT, "us-east-1", "fn", "$LATEST") is None
    assert not rig.store.recursion_allowed(ACCOUNT, "us-east-1", "fn")
