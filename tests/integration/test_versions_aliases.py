"""Versions and aliases through boto3: publish -> alias -> canary weights -> shift -> rollback."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.harness import HearthServer, create_function, make_zip, wait_active

pytestmark = pytest.mark.integration

APP = """
import os
def handler(event, context):
    return {"release": os.environ["RELEASE"], "version": context.function_version}
"""


def invoke(lam: Any, name: str, qualifier: str | None = None) -> tuple[str, dict[str, Any]]:
    kwargs = {"Qualifier": qualifier} if qualifier else {}
    resp = lam.invoke(FunctionName=name, Payload=b"{}", **kwargs)
    body = json.loads(resp["Payload"].read())
    return resp["ExecutedVersion"], body


def shares(lam: Any, target: str, count: int) -> Counter[str]:
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: invoke(lam, target), range(count)))
    for executed, body in results:  # what ran is what ExecutedVersion names
        assert body["version"] == executed and body["release"] == f"r{executed}"
    return Counter(executed for executed, _ in results)


def test_publish_alias_canary_shift_rollback(server: HearthServer) -> None:
    lam = server.client("lambda")
    name = "canary-fn"
    create_function(lam, name, {"app.py": APP}, Environment={"Variables": {"RELEASE": "r1"}})
    v1 = lam.publish_version(FunctionName=name, Description="first")
    assert v1["ResponseMetadata"]["HTTPStatusCode"] == 201 and v1["Version"] == "1"
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"RELEASE": "r2"}})
    wait_active(lam, name)
    v2 = lam.publish_version(FunctionName=name)
    assert v2["Version"] == "2" and v2["FunctionArn"].endswith(f":{name}:2")
    assert lam.publish_version(FunctionName=name)["Version"] == "2"  # nothing changed
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] == ["$LATEST", "1", "2"]

    assert invoke(lam, name, "1") == ("1", {"release": "r1", "version": "1"})
    assert invoke(lam, name)[0] == "$LATEST"

    alias = lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1",
                             RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
    assert alias["AliasArn"].endswith(f":{name}:live")
    counts = shares(lam, alias["AliasArn"], 2000)
    assert abs(counts["2"] / 2000 - 0.1) <= 0.03, counts
    assert set(counts) == {"1", "2"}

    # Shift: half and half, then all of it to version 2.
    lam.update_alias(FunctionName=name, Name="live", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    half = shares(lam, f"{name}:live", 200)
    assert half["1"] > 40 and half["2"] > 40, half
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2",
                     RoutingConfig={"AdditionalVersionWeights": {}})
    assert shares(lam, name + ":live", 20) == Counter({"2": 20})

    # Rollback: the alias points at version 1 again.
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="1")
    assert invoke(lam, name, "live") == ("1", {"release": "r1", "version": "1"})

    with pytest.raises(ClientError) as exc:
        lam.delete_function(FunctionName=name, Qualifier="1")
    assert exc.value.response["Error"]["Code"] == "ResourceConflictException"
    lam.delete_alias(FunctionName=name, Name="live")
    lam.delete_function(FunctionName=name, Qualifier="1")
    with pytest.raises(ClientError) as exc:
        invoke(lam, name, "1")
    assert exc.value.response["Error"]["Message"].endswith(f":function:{name}:1")
    lam.delete_function(FunctionName=name)


def test_routing_validation_and_update_code_publish(server: HearthServer) -> None:
    lam = server.client("lambda")
    name = "routing-fn"
    create_function(lam, name, {"app.py": APP}, Environment={"Variables": {"RELEASE": "r1"}}, Publish=True)
    for weights, code in (({"2": 2.0}, "ValidationException"), ({"$LATEST": 0.5}, "ValidationException"),
                          ({"1": 0.5}, "InvalidParameterValueException")):
        with pytest.raises(ClientError) as exc:
            lam.create_alias(FunctionName=name, Name="x", FunctionVersion="1",
                             RoutingConfig={"AdditionalVersionWeights": weights})
        assert exc.value.response["Error"]["Code"] == code
    with pytest.raises(ClientError) as exc:
        lam.create_alias(FunctionName=name, Name="2024", FunctionVersion="1")
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    out = lam.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": APP + "\n# 2\n"}), Publish=True)
    assert out["Version"] == "2" and out["FunctionArn"].endswith(":2")
    wait_active(lam, name)
    for _ in range(200):
        if lam.get_function_configuration(FunctionName=name, Qualifier="2")["State"] == "Active":
            break
        time.sleep(0.05)
    assert invoke(lam, name, "2")[0] == "2"
    lam.delete_function(FunctionName=name)


def test_context_names_the_arn_the_caller_used(lam: Any) -> None:
    source = "def handler(event, context):\n    return [context.invoked_function_arn, context.function_version]\n"
    cfg = create_function(lam, "who-called", {"app.py": source})
    arn = cfg["FunctionArn"]
    version = lam.publish_version(FunctionName="who-called")["Version"]
    lam.create_alias(FunctionName="who-called", Name="live", FunctionVersion=version)

    def called(**kwargs: Any) -> list[str]:
        return list(json.loads(lam.invoke(Payload=b"{}", **kwargs)["Payload"].read()))

    assert called(FunctionName="who-called") == [arn, "$LATEST"]
    assert called(FunctionName="who-called", Qualifier="live") == [f"{arn}:live", version]
    assert called(FunctionName=f"{arn}:live") == [f"{arn}:live", version]
    assert called(FunctionName="who-called:live") == [f"{arn}:live", version]
    assert called(FunctionName="who-called", Qualifier=version) == [f"{arn}:{version}", version]
