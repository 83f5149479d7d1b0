"""Concurrency as AWS: reserved concurrency API and its rules, synchronous throttles with the right
Reason, the account limit, asynchronous events kept while throttled, a burst of 200, and metrics."""

from __future__ import annotations

import concurrent.futures
import json
import time
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.harness import ACCESS_KEY, ACCOUNT, SECRET_KEY, HearthServer, create_function, invoke_json

pytestmark = pytest.mark.integration

SLEEPER = """
import time
def handler(event, context):
    time.sleep(event.get("sleep", 0.1))
    return {"ok": True}
"""


def wide_client(server: HearthServer, connections: int) -> Any:
    """A client that can hold `connections` requests in flight at once."""
    return boto3.client(
        "lambda", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 1}, read_timeout=120, connect_timeout=10,
                      max_pool_connections=connections),
    )


def invoke_status(client: Any, name: str, payload: dict[str, Any]) -> tuple[int, str | None]:
    """(HTTP status, throttle Reason or None)."""
    try:
        resp = client.invoke(FunctionName=name, Payload=json.dumps(payload))
        resp["Payload"].read()
        return resp["StatusCode"], None
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response.get("Reason")


def metrics_text(server: HearthServer) -> str:
    with urllib.request.urlopen(f"{server.endpoint}/_hearth/metrics", timeout=10) as resp:
        assert resp.headers["content-type"].startswith("text/plain")
        return str(resp.read().decode())


@pytest.fixture(scope="module")
def sleeper(server: HearthServer) -> str:
    lam = server.client("lambda")
    create_function(lam, "conc-sleeper", {"app.py": SLEEPER}, Timeout=30)
    return "conc-sleeper"


def test_reserved_concurrency_api(server: HearthServer, sleeper: str) -> None:
    lam = server.client("lambda")
    before = lam.get_account_settings()["AccountLimit"]
    assert before["ConcurrentExecutions"] == 1000
    assert lam.get_function_concurrency(FunctionName=sleeper).get("ReservedConcurrentExecutions") is None
    assert lam.put_function_concurrency(FunctionName=sleeper, ReservedConcurrentExecutions=5)[
        "ReservedConcurrentExecutions"] == 5
    assert lam.get_function_concurrency(FunctionName=sleeper)["ReservedConcurrentExecutions"] == 5
    assert lam.get_function(FunctionName=sleeper)["Concurrency"] == {"ReservedConcurrentExecutions": 5}
    after = lam.get_account_settings()["AccountLimit"]
    assert after["UnreservedConcurrentExecutions"] == before["UnreservedConcurrentExecutions"] - 5
    resp = lam.delete_function_concurrency(FunctionName=sleeper)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.get_function_concurrency(FunctionName=sleeper).get("ReservedConcurrentExecutions") is None


def test_reserved_concurrency_errors(server: HearthServer, sleeper: str) -> None:
    lam = server.client("lambda")
    with pytest.raises(ClientError) as info:
        lam.put_function_concurrency(FunctionName=sleeper, ReservedConcurrentExecutions=901)
    err = info.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err["Error"]["Code"] == "InvalidParameterValueException"
    assert err["Error"]["Message"] == ("Specified ReservedConcurrentExecutions for function decreases account's "
                                       "UnreservedConcurrentExecution below its minimum value of [100].")
    with pytest.raises(ClientError) as info:
        lam.put_function_concurrency(FunctionName=f"{sleeper}:$LATEST", ReservedConcurrentExecutions=1)
    assert info.value.response["Error"]["Message"].startswith("This operation is permitted on Lambda functions only.")
    with pytest.raises(ClientError) as info:
        lam.put_function_concurrency(FunctionName="conc-doesnotexist", ReservedConcurrentExecutions=1)
    assert info.value.response["Error"]["Message"] == (
        f"Function not found: arn:aws:lambda:us-east-1:{ACCOUNT}:function:conc-doesnotexist:$LATEST")


def test_reserved_zero_throttles_sync_and_fails_async(server: HearthServer) -> None:
    lam = server.client("lambda")
    name = "conc-disabled"
    create_function(lam, name, {"app.py": SLEEPER})
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as info:
        lam.invoke(FunctionName=name, Payload=b"{}")
    err = info.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert err["Error"] == {"Code": "TooManyRequestsException", "Message": "Rate Exceeded."}
    assert err["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert err["Type"] == "User"
    assert 'hearth_throttles_total{function="conc-disabled",qualifier="$LATEST"}' in metrics_text(server)
    # An event sent while the function is reserved at 0 can never run: as AWS (LocalStack's
    # test_reserved_concurrency), it fails at once with ZeroReservedConcurrency, without retries.
    failed = server.health()["async_events"]["failed"].get("ZeroReservedConcurrency", 0)
    assert lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"sleep": 0}')["StatusCode"] == 202
    deadline = time.monotonic() + 30
    while server.health()["async_events"]["failed"].get("ZeroReservedConcurrency", 0) <= failed:
        assert time.monotonic() < deadline, "the event was never failed"
        time.sleep(0.05)
    ran = 'hearth_invocations_total{function="conc-disabled",qualifier="$LATEST"}'
    assert ran not in metrics_text(server)


def test_reserved_one_throttles_the_second_concurrent_invoke(server: HearthServer) -> None:
    lam = server.client("lambda")
    name = "conc-one"
    create_function(lam, name, {"app.py": SLEEPER}, Timeout=30)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    invoke_json(lam, name, {"sleep": 0})  # warm, so that both calls below overlap for sure
    client = wide_client(server, 4)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: invoke_status(client, name, {"sleep": 2}), range(2)))
    assert sorted(results, key=lambda r: r[0]) == [
        (200, None), (429, "ReservedFunctionConcurrentInvocationLimitExceeded")]


def test_burst_of_200(server: HearthServer) -> None:
    lam = server.client("lambda")
    name = "conc-burst"
    create_function(lam, name, {"app.py": SLEEPER}, Timeout=60)
    before = server.health()["environments"]
    client = wide_client(server, 200)
    with concurrent.futures.ThreadPoolExecutor(200) as pool:
        results = list(pool.map(lambda _: invoke_status(client, name, {"sleep": 0.1}), range(200)))
    assert results == [(200, None)] * 200
    stats = server.health()["environments"]
    assert stats["cold_starts"] - before["cold_starts"] > 1
    assert stats["parallel_inits_peak"] > 1  # environments were created in parallel, not one by one
    text = metrics_text(server)
    assert 'hearth_invocations_total{function="conc-burst",qualifier="$LATEST"} 200' in text
    assert "hearth_duration_seconds_bucket{" in text and "hearth_environments{" in text


def test_account_limit(fresh_server: HearthServer) -> None:
    fresh_server.extra_env["HEARTH_ACCOUNT_CONCURRENCY"] = "1"
    fresh_server.start()
    lam = fresh_server.client("lambda")
    assert lam.get_account_settings()["AccountLimit"]["ConcurrentExecutions"] == 1
    create_function(lam, "conc-account", {"app.py": SLEEPER}, Timeout=30)
    invoke_json(lam, "conc-account", {"sleep": 0})
    client = wide_client(fresh_server, 4)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: invoke_status(client, "conc-account", {"sleep": 2}), range(2)))
    assert sorted(results, key=lambda r: r[0]) == [(200, None), (429, "ConcurrentInvocationLimitExceeded")]
