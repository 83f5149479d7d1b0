"""Proved from inside a function: its credentials are a session of its execution role, never a long-term
key; they do what the role's policies allow and nothing else; they stop working when they expire and
when the role is deleted."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration.harness import (
    ACCESS_KEY,
    ACCOUNT,
    LAMBDA_TRUST,
    OTHER_ACCESS_KEY,
    OTHER_ACCOUNT,
    OTHER_SECRET_KEY,
    SECRET_KEY,
    HearthServer,
    create_function,
    invoke_json,
)

pytestmark = [pytest.mark.integration, pytest.mark.security]

# Function sessions last 12 h / SCALE = 18 s on this module's server, so expiry is observable.
SCALE = 2400.0

PROBE = """
import os
import time
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

def handler(event, context):
    if event["op"] == "env":
        return {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    client = boto3.client(event["service"], config=Config(retries={"max_attempts": 1}))
    if event["op"] == "until_error":  # call on and on, within this one invocation, until refused
        while context.get_remaining_time_in_millis() > 2000:
            try:
                client.send_message(**event["args"])
            except ClientError as exc:
                return {"error": exc.response["Error"]["Code"], "message": exc.response["Error"]["Message"],
                        "key": os.environ["AWS_ACCESS_KEY_ID"]}
            time.sleep(0.5)
        return {"ok": "never refused"}
    try:
        result = getattr(client, event["op"])(**event.get("args", {}))
    except ClientError as exc:
        return {"error": exc.response["Error"]["Code"], "message": exc.response["Error"]["Message"]}
    result.pop("ResponseMetadata", None)
    return {"ok": str(result)[:200]}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    srv = HearthServer(tmp_path_factory.mktemp("hearth-creds") / "data",
                       extra_env={"HEARTH_TEST_SESSION_TIME_SCALE": str(SCALE)})
    srv.start()
    yield srv
    assert srv.stop() == 0


@pytest.fixture(scope="module")
def queues(server: HearthServer) -> dict[str, str]:
    sqs = server.client("sqs")
    return {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("allowed-q", "other-q")}


def _probe(server: HearthServer, queues: dict[str, str]) -> str:
    """A function whose role may send to `allowed-q` and read its own configuration, nothing else."""
    iam = server.client("iam")
    name = f"probe-{uuid.uuid4().hex[:8]}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="least", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": f"arn:aws:sqs:us-east-1:{ACCOUNT}:allowed-q"},
            {"Effect": "Allow", "Action": "lambda:GetFunctionConfiguration",
             "Resource": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::allowed-b/*"},
        ]}))
    create_function(server.client("lambda"), name, {"app.py": PROBE}, Role=role, Timeout=60, MemorySize=256)
    return name


def _call(server: HearthServer, fn: str, service: str, op: str, **args: Any) -> dict[str, Any]:
    _, body = invoke_json(server.client("lambda"), fn, {"op": op, "service": service, "args": args})
    assert isinstance(body, dict), body
    return body


def test_no_long_term_key_in_the_environment(server: HearthServer, queues: dict[str, str]) -> None:
    fn = _probe(server, queues)
    env = _call(server, fn, "", "env")
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA") and env["AWS_SESSION_TOKEN"]
    values = set(env.values())
    assert not values & {ACCESS_KEY, SECRET_KEY, OTHER_ACCESS_KEY, OTHER_SECRET_KEY}
    keys = json.loads((server.data_dir / "keys.json").read_text())
    assert not values & ({k["secret_access_key"] for k in keys} | {k["access_key_id"] for k in keys})
    ident = _call(server, fn, "sts", "get_caller_identity")
    assert f"assumed-role/{fn}/{fn}" in ident["ok"]


def test_role_credentials_do_what_the_role_allows_and_nothing_else(server: HearthServer,
                                                                   queues: dict[str, str]) -> None:
    fn = _probe(server, queues)
    assert "ok" in _call(server, fn, "sqs", "send_message", QueueUrl=queues["allowed-q"], MessageBody="hi")
    assert "ok" in _call(server, fn, "lambda", "get_function_configuration", FunctionName=fn)
    denied = _call(server, fn, "sqs", "send_message", QueueUrl=queues["other-q"], MessageBody="hi")
    assert denied["error"] == "AccessDenied"
    assert denied["message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{fn}/{fn} is not authorized to perform: sqs:SendMessage on "
        f"resource: arn:aws:sqs:us-east-1:{ACCOUNT}:other-q because no identity-based policy allows the "
        "sqs:SendMessage action")
    other_account_queue = queues["allowed-q"].replace(f"/{ACCOUNT}/", f"/{OTHER_ACCOUNT}/")
    assert _call(server, fn, "sqs", "send_message", QueueUrl=other_account_queue,
                 MessageBody="hi")["error"] == "AccessDenied"
    create_function(server.client("lambda"), f"victim-{fn}", {"app.py": PROBE}, Timeout=10)
    for op in ("get_function_configuration", "delete_function"):
        assert _call(server, fn, "lambda", op, FunctionName=f"victim-{fn}")["error"] == "AccessDeniedException"
    assert _call(server, fn, "iam", "create_user", UserName="escalate")["error"] == "AccessDenied"
    assert _call(server, fn, "lambda", "list_functions")["error"] == "AccessDeniedException"


def test_role_credentials_reach_only_the_objects_the_role_allows(server: HearthServer,
                                                                 queues: dict[str, str]) -> None:
    s3 = server.client("s3")
    for bucket in ("allowed-b", "other-b"):
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    fn = _probe(server, queues)
    assert "ok" in _call(server, fn, "s3", "put_object", Bucket="allowed-b", Key="mine", Body="x")
    assert "ok" in _call(server, fn, "s3", "get_object", Bucket="allowed-b", Key="k")
    denied = _call(server, fn, "s3", "get_object", Bucket="other-b", Key="k")
    assert denied["error"] == "AccessDenied"
    assert "is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::other-b/k" in denied["message"]
    assert _call(server, fn, "s3", "delete_object", Bucket="allowed-b", Key="k")["error"] == "AccessDenied"
    assert _call(server, fn, "s3", "list_buckets")["error"] == "AccessDenied"


def test_credentials_stop_working_when_the_role_is_deleted(server: HearthServer, queues: dict[str, str]) -> None:
    fn = _probe(server, queues)
    assert "ok" in _call(server, fn, "sqs", "send_message", QueueUrl=queues["allowed-q"], MessageBody="x")
    iam = server.client("iam")
    iam.delete_role_policy(RoleName=fn, PolicyName="least")
    iam.delete_role(RoleName=fn)
    # The warm environment still holds the session's keys in its variables: they are refused now.
    refused = _call(server, fn, "sqs", "send_message", QueueUrl=queues["allowed-q"], MessageBody="x")
    assert refused["error"] in ("InvalidClientTokenId", "UnrecognizedClientException")  # SQS's json spelling


def test_credentials_stop_working_after_expiry_and_environments_are_renewed(server: HearthServer,
                                                                           queues: dict[str, str]) -> None:
    fn = _probe(server, queues)
    # One invocation that outlives its environment's session (18 s on this server): refused from inside.
    refused = _call(server, fn, "sqs", "until_error", QueueUrl=queues["allowed-q"], MessageBody="x")
    assert refused["error"] in ("ExpiredToken", "ExpiredTokenException"), refused  # SQS's json spelling
    assert refused["message"] == "The security token included in the request is expired"
    # That environment is too old to be reused: the next invocation gets a new one with a new session.
    assert "ok" in _call(server, fn, "sqs", "send_message", QueueUrl=queues["allowed-q"], MessageBody="x")
    assert _call(server, fn, "", "env")["AWS_ACCESS_KEY_ID"] != refused["key"]


def test_policy_suggest_prints_what_the_role_used(server: HearthServer, queues: dict[str, str]) -> None:
    fn = _probe(server, queues)
    assert "ok" in _call(server, fn, "sqs", "send_message", QueueUrl=queues["allowed-q"], MessageBody="x")
    assert "error" in _call(server, fn, "sqs", "send_message", QueueUrl=queues["other-q"], MessageBody="x")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HEARTH_"))}
    env.update(HEARTH_ACCESS_KEY_ID=ACCESS_KEY, HEARTH_SECRET_ACCESS_KEY=SECRET_KEY)
    out = subprocess.run([sys.executable, "-m", "hearth", "policy", "suggest", fn, "--endpoint-url", server.endpoint],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    policy = json.loads(out.stdout)
    assert policy == {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sqs:SendMessage",
        "Resource": [f"arn:aws:sqs:us-east-1:{ACCOUNT}:allowed-q", f"arn:aws:sqs:us-east-1:{ACCOUNT}:other-q"]}]}
    env.update(HEARTH_ACCESS_KEY_ID=OTHER_ACCESS_KEY, HEARTH_SECRET_ACCESS_KEY=OTHER_SECRET_KEY)
    other = subprocess.run([sys.executable, "-m", "hearth", "policy", "suggest", fn, "--endpoint-url",
                            server.endpoint], env=env, capture_output=True, text=True, timeout=60)
    assert other.returncode != 0  # another account's root cannot read this account's roles
