"""Provisioned concurrency as AWS: the API and its recorded errors, READY once INIT ran, provisioned
environments serving without Init Duration, spill-over to on-demand, restart, delete."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import time
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.harness import ACCESS_KEY, ACCOUNT, SECRET_KEY, HearthServer, create_function

pytestmark = pytest.mark.integration

HANDLER = """
import os, time, uuid
TOKEN = uuid.uuid4().hex  # one per environment (pids repeat: every environment has its own pid namespace)
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"init": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"), "env": TOKEN}
"""

BROKEN = """
raise RuntimeError("no INIT for you")
def handler(event, context):
    return {}
"""


def wait_status(lam: Any, name: str, qualifier: str, want: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        cfg: dict[str, Any] = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        if cfg["Status"] == want:
            return cfg
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}:{qualifier} is {cfg}")
        time.sleep(0.05)


def invoke_tail(lam: Any, name: str, qualifier: str, payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
    resp = lam.invoke(FunctionName=name, Qualifier=qualifier, Payload=json.dumps(payload), LogType="Tail")
    body = json.loads(resp["Payload"].read())
    return body, base64.b64decode(resp["LogResult"]).decode()


def error(call: Any, **kwargs: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    err = info.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"], err["Error"]["Message"]


def test_provisioned_lifecycle(server: HearthServer) -> None:
    lam = server.client("lambda")
    name = "pc-life"
    create_function(lam, name, {"app.py": HANDLER}, Timeout=30)
    version = lam.publish_version(FunctionName=name)["Version"]
    put = lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version,
                                                 ProvisionedConcurrentExecutions=2)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["RequestedProvisionedConcurrentExecutions"] == 2
    assert put["Status"] in ("IN_PROGRESS", "READY")
    ready = wait_status(lam, name, version, "READY")
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 2
    assert ready["AvailableProvisionedConcurrentExecutions"] == 2
    assert "StatusReason" not in ready

    body, tail = invoke_tail(lam, name, version, {})
    assert body["init"] == "provisioned-concurrency"
    assert "Init Duration" not in tail and "REPORT RequestId" in tail

    # Three at once: two on the provisioned environments, one spills to a new on-demand environment.
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: invoke_tail(lam, name, version, {"sleep": 1.5}), range(3)))
    kinds = sorted(body["init"] for body, _ in results)
    assert kinds == ["on-demand", "provisioned-concurrency", "provisioned-concurrency"]
    for body, tail in results:
        assert ("Init Duration" in tail) == (body["init"] == "on-demand")

    listed = lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"] for c in listed] == [f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}:{version}"]

    with urllib.request.urlopen(f"{server.endpoint}/_hearth/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert f'hearth_provisioned_concurrency_utilization{{function="{name}",qualifier="{version}"}}' in text

    # Reserved concurrency below the provisioned total: AWS's text.
    status, code, message = error(lam.put_function_concurrency, FunctionName=name, ReservedConcurrentExecutions=1)
    assert (status, code) == (400, "InvalidParameterValueException")
    assert message == " ReservedConcurrentExecutions  1 should not be lower than function's total provisioned " \
                      "concurrency [2]."

    provisioned_envs = {body["env"] for body, _ in results if body["init"] == "provisioned-concurrency"}
    resp = lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    status, code, message = error(lam.get_provisioned_concurrency_config, FunctionName=name, Qualifier=version)
    assert (status, code, message) == (404, "ProvisionedConcurrencyConfigNotFoundException",
                                       "No Provisioned Concurrency Config found for this function")
    body, _ = invoke_tail(lam, name, version, {})
    assert body["init"] == "on-demand" and body["env"] not in provisioned_envs
    assert lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"] == []


def test_provisioned_errors(server: HearthServer) -> None:
    lam = server.client("lambda")
    name = "pc-errors"
    create_function(lam, name, {"app.py": HANDLER})
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function"

    put = lam.put_provisioned_concurrency_config
    assert error(put, FunctionName=name, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1) == (
        400, "InvalidParameterValueException",
        "Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
    for call in (lam.get_provisioned_concurrency_config, lam.delete_provisioned_concurrency_config):
        assert error(call, FunctionName=name, Qualifier="$LATEST") == (
            400, "InvalidParameterValueException",
            "The function resource provided must be an alias or a published version.")
    assert error(put, FunctionName=name, Qualifier="10", ProvisionedConcurrentExecutions=1) == (
        404, "ResourceNotFoundException", f"Function not found: {arn}:{name}:10")
    assert error(put, FunctionName=name, Qualifier="noalias", ProvisionedConcurrentExecutions=1) == (
        404, "ResourceNotFoundException", f"Cannot find alias arn: {arn}:{name}:noalias")
    assert error(lam.get_provisioned_concurrency_config, FunctionName="doesnotexist", Qualifier="noalias") == (
        404, "ResourceNotFoundException", f"Cannot find alias arn: {arn}:doesnotexist:noalias")
    assert error(lam.delete_provisioned_concurrency_config, FunctionName="doesnotexist", Qualifier="1") == (
        404, "ResourceNotFoundException", f"Function not found: {arn}:doesnotexist:1")
    assert error(lam.list_provisioned_concurrency_configs, FunctionName="doesnotexist") == (
        404, "ResourceNotFoundException", f"Function not found: {arn}:doesnotexist")
    unchecked = boto3.client("lambda", endpoint_url=server.endpoint, region_name="us-east-1",
                             aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                             config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    assert error(unchecked.put_provisioned_concurrency_config, FunctionName=name, Qualifier=version,
                 ProvisionedConcurrentExecutions=0) == (
        400, "ValidationException", "1 validation error detected: Value '0' at 'provisionedConcurrentExecutions' "
        "failed to satisfy constraint: Member must have value greater than or equal to 1")
    assert error(lam.get_provisioned_concurrency_config, FunctionName=name, Qualifier=version)[1] == \
        "ProvisionedConcurrencyConfigNotFoundException"
    resp = lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error(put, FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=991) == (
        400, "InvalidParameterValueException", "Specified ConcurrentExecutions for function decreases account's "
        "UnreservedConcurrentExecution below its minimum value of [100].")

    # Alias on a provisioned version, and the other way round.
    put(FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1)
    assert error(put, FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1) == (
        409, "ResourceConflictException", "Version is pointed by a Provisioned Concurrency alias")
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="live")
    put(FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1)
    assert error(put, FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1) == (
        409, "ResourceConflictException",
        "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version")

    # Reserved concurrency: provisioned lives inside it; $LATEST gets only what provisioned leaves.
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    assert error(put, FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2) == (
        400, "InvalidParameterValueException",
        "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function")
    with pytest.raises(ClientError) as info:
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert info.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert info.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert lam.invoke(FunctionName=name, Qualifier=version, Payload=b"{}")["StatusCode"] == 200
    lam.delete_function(FunctionName=name)


def test_alias_config_serves_and_init_failure(server: HearthServer) -> None:
    lam = server.client("lambda")
    name = "pc-alias"
    create_function(lam, name, {"app.py": HANDLER})
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1)
    wait_status(lam, name, "live", "READY")
    body, tail = invoke_tail(lam, name, "live", {})
    assert body["init"] == "provisioned-concurrency" and "Init Duration" not in tail
    # Deleting the alias deletes its configuration (LocalStack's test_lambda_provisioned_lifecycle).
    lam.delete_alias(FunctionName=name, Name="live")
    assert lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"] == []
    lam.delete_function(FunctionName=name)

    broken = "pc-broken"
    create_function(lam, broken, {"app.py": BROKEN})
    version = lam.publish_version(FunctionName=broken)["Version"]
    lam.put_provisioned_concurrency_config(FunctionName=broken, Qualifier=version, ProvisionedConcurrentExecutions=1)
    failed = wait_status(lam, broken, version, "FAILED")
    assert failed["AllocatedProvisionedConcurrentExecutions"] == 0
    assert failed["StatusReason"] == "FUNCTION_ERROR_INIT_FAILURE"  # as AWS: no error type after it
    lam.delete_function(FunctionName=broken)


def test_provisioned_environments_come_back_after_restart(fresh_server: HearthServer) -> None:
    fresh_server.start()
    lam = fresh_server.client("lambda")
    name = "pc-restart"
    create_function(lam, name, {"app.py": HANDLER})
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1)
    wait_status(lam, name, version, "READY")
    assert fresh_server.stop() == 0
    fresh_server.start()
    lam = fresh_server.client("lambda")
    ready = wait_status(lam, name, version, "READY")
    assert ready["RequestedProvisionedConcurrentExecutions"] == 1
    body, tail = invoke_tail(lam, name, version, {})
    assert body["init"] == "provisioned-concurrency" and "Init Duration" not in tail
