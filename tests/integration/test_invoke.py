"""Invoking Python, Node.js and custom-runtime functions through boto3 and the AWS CLI."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.harness import HearthServer, create_function, invoke_json, wait_active

pytestmark = pytest.mark.integration

PY_APP = """
import os, time
COUNTER = {"n": 0}
def handler(event, context):
    COUNTER["n"] += 1
    path = "/tmp/state.txt"
    prev = open(path).read() if os.path.exists(path) else ""
    open(path, "w").write(prev + "x")
    print("hello from the handler")
    return {
        "event": event, "n": COUNTER["n"], "tmp": len(prev) + 1,
        "request_id": context.aws_request_id, "function_name": context.function_name,
        "function_version": context.function_version, "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb, "log_group": context.log_group_name,
        "log_stream": context.log_stream_name, "remaining": context.get_remaining_time_in_millis(),
        "client_context": getattr(context.client_context, "custom", None),
        "env": {k: os.environ.get(k) for k in ["_HANDLER", "AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME",
            "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_LOG_GROUP_NAME",
            "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_INITIALIZATION_TYPE", "LAMBDA_TASK_ROOT",
            "LAMBDA_RUNTIME_DIR", "TZ", "_X_AMZN_TRACE_ID", "AWS_LAMBDA_RUNTIME_API", "MY_VAR",
            "AWS_ACCESS_KEY_ID"]},
    }
"""


@pytest.fixture(scope="module")
def py_fn(server: HearthServer) -> str:
    lam = server.client("lambda")
    create_function(lam, "py-hello", {"app.py": PY_APP}, Environment={"Variables": {"MY_VAR": "mine"}},
                    MemorySize=256, Timeout=10)
    return "py-hello"


def test_python_result_context_and_env(lam: Any, py_fn: str) -> None:
    ctx = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    resp, body = invoke_json(lam, py_fn, {"x": 1}, ClientContext=ctx)
    assert resp["StatusCode"] == 200 and resp["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in resp
    assert body["event"] == {"x": 1}
    assert body["request_id"] == resp["ResponseMetadata"]["RequestId"]
    assert body["function_name"] == py_fn and body["function_version"] == "$LATEST"
    assert body["arn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{py_fn}"
    assert int(body["memory"]) == 256
    assert body["log_group"] == f"/aws/lambda/{py_fn}"
    assert 0 < body["remaining"] <= 10000
    assert body["client_context"] == {"k": "v"}
    env = body["env"]
    assert env["_HANDLER"] == "app.handler" and env["AWS_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == py_fn and env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["LAMBDA_TASK_ROOT"] and env["TZ"] == ":UTC" and env["MY_VAR"] == "mine"
    assert env["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == body["log_stream"]
    assert env["AWS_ACCESS_KEY_ID"]


def test_warm_reuse_keeps_module_state_and_tmp(lam: Any, py_fn: str) -> None:
    _, first = invoke_json(lam, py_fn)
    _, second = invoke_json(lam, py_fn)
    assert second["n"] == first["n"] + 1
    assert second["tmp"] == first["tmp"] + 1
    assert second["log_stream"] == first["log_stream"]


def test_log_tail_has_aws_lines(lam: Any, py_fn: str) -> None:
    resp, _ = invoke_json(lam, py_fn, LogType="Tail")
    text = base64.b64decode(resp["LogResult"]).decode()
    rid = resp["ResponseMetadata"]["RequestId"]
    assert f"START RequestId: {rid} Version: $LATEST\n" in text
    assert "hello from the handler\n" in text
    assert f"END RequestId: {rid}\n" in text
    report = next(line for line in text.splitlines() if line.startswith("REPORT"))
    assert report.startswith(f"REPORT RequestId: {rid}\tDuration: ")
    assert "\tBilled Duration: " in report and "\tMemory Size: 256 MB\tMax Memory Used: " in report


def test_cold_start_reports_init_duration(lam: Any) -> None:
    create_function(lam, "py-cold", {"app.py": "def handler(e, c):\n    return 1\n"})
    resp, body = invoke_json(lam, "py-cold", LogType="Tail")
    assert body == 1
    assert "Init Duration: " in base64.b64decode(resp["LogResult"]).decode()
    resp, _ = invoke_json(lam, "py-cold", LogType="Tail")
    assert "Init Duration: " not in base64.b64decode(resp["LogResult"]).decode()


def test_max_memory_used_counts_the_whole_runtime(lam: Any) -> None:
    # As AWS does: the interpreter and its modules count, even the pages shared with the zygote the
    # runtime was forked from (a no-op Python function reports tens of MB on AWS, not ~4 MB).
    create_function(lam, "py-noop", {"app.py": "def handler(e, c):\n    return None\n"})
    for _ in range(2):  # the cold invocation, then a warm one
        resp, _ = invoke_json(lam, "py-noop", LogType="Tail")
        report = next(line for line in base64.b64decode(resp["LogResult"]).decode().splitlines()
                      if line.startswith("REPORT"))
        used = int(report.split("Max Memory Used: ")[1].split(" MB")[0])
        assert 10 <= used <= 128, report


def test_invocation_types(lam: Any, py_fn: str) -> None:
    resp = lam.invoke(FunctionName=py_fn, InvocationType="DryRun")
    assert resp["StatusCode"] == 204
    resp = lam.invoke(FunctionName=py_fn, InvocationType="Event", Payload=b'{"async": true}')
    assert resp["StatusCode"] == 202


def test_handler_exception_is_unhandled(lam: Any) -> None:
    create_function(lam, "py-raise", {"app.py": "def handler(e, c):\n    raise ValueError('boom')\n"})
    resp, body = invoke_json(lam, "py-raise")
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "boom"
    assert body["requestId"] == resp["ResponseMetadata"]["RequestId"]
    assert any("raise ValueError('boom')" in frame for frame in body["stackTrace"])


def test_import_error_and_missing_handler(lam: Any) -> None:
    create_function(lam, "py-noimport", {"other.py": "x = 1\n"})
    resp, body = invoke_json(lam, "py-noimport")
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert body["errorMessage"].startswith("Unable to import module 'app': No module named 'app'")
    create_function(lam, "py-nohandler", {"app.py": "x = 1\n"})
    resp, body = invoke_json(lam, "py-nohandler")
    assert body["errorType"] == "Runtime.HandlerNotFound"


def test_timeout_is_reported_and_environment_replaced(lam: Any) -> None:
    source = "import time\ndef handler(e, c):\n    time.sleep(e['s'])\n    return 'done'\n"
    create_function(lam, "py-slow", {"app.py": source}, Timeout=1)
    resp, body = invoke_json(lam, "py-slow", {"s": 5})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    resp, body = invoke_json(lam, "py-slow", {"s": 0})
    assert body == "done"


def test_payload_limits(lam: Any, py_fn: str) -> None:
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=py_fn, Payload=b'"' + b"x" * (6 * 1024 * 1024) + b'"')
    assert exc.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=py_fn, Payload=b"\x87\x00")
    assert exc.value.response["Error"]["Code"] == "InvalidRequestContentException"
    create_function(lam, "py-big", {"app.py": "def handler(e, c):\n    return 'x' * (7 * 1024 * 1024)\n"})
    resp, body = invoke_json(lam, "py-big")
    assert resp["FunctionError"] == "Unhandled"
    assert body == {"errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
                    "errorType": "Function.ResponseSizeTooLarge"}


def test_missing_function(lam: Any) -> None:
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="does-not-exist")
    err = exc.value.response
    assert err["Error"]["Code"] == "ResourceNotFoundException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 404


NODE_APP = """
let count = 0;
exports.handler = async (event, context) => {
  count += 1;
  console.log("node says hi");
  return { event, count, requestId: context.awsRequestId, fn: context.functionName,
           remaining: context.getRemainingTimeInMillis(), memory: context.memoryLimitInMB };
};
exports.callback = (event, context, callback) => { callback(null, { cb: event.v }); };
exports.fail = async () => { throw new TypeError("node boom"); };
"""


def test_nodejs_handlers(lam: Any, server: HearthServer) -> None:
    runtime = next((r for r in ("nodejs20.x", "nodejs22.x", "nodejs18.x") if _has_runtime(r)), None)
    if runtime is None:
        pytest.skip("no Node.js on this host")
    create_function(lam, "node-hello", {"index.js": NODE_APP}, runtime=runtime, handler="index.handler")
    resp, body = invoke_json(lam, "node-hello", {"a": 1}, LogType="Tail")
    assert body["event"] == {"a": 1} and body["count"] == 1 and body["fn"] == "node-hello"
    assert body["requestId"] == resp["ResponseMetadata"]["RequestId"] and body["memory"] == "128"
    assert "\tINFO\tnode says hi" in base64.b64decode(resp["LogResult"]).decode()
    _, body = invoke_json(lam, "node-hello")
    assert body["count"] == 2
    create_function(lam, "node-cb", {"index.js": NODE_APP}, runtime=runtime, handler="index.callback")
    _, body = invoke_json(lam, "node-cb", {"v": 7})
    assert body == {"cb": 7}
    create_function(lam, "node-fail", {"index.js": NODE_APP}, runtime=runtime, handler="index.fail")
    resp, body = invoke_json(lam, "node-fail")
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "TypeError" and body["errorMessage"] == "node boom"
    create_function(lam, "node-esm", {"app.mjs": "export const handler = async (e) => ({esm: true});\n"},
                    runtime=runtime, handler="app.handler")
    _, body = invoke_json(lam, "node-esm")
    assert body == {"esm": True}


def _has_runtime(runtime: str) -> bool:
    from hearth.runtimes.registry import installed_runtimes

    return runtime in installed_runtimes()


@pytest.mark.parametrize("runtime", ["python3.8", "python3.9"])
def test_oldest_python_runtimes_invoke(lam: Any, runtime: str) -> None:
    # The sandbox zygote runs under the function's own interpreter: it must stay Python 3.8 code
    # (a zip(strict=True) broke every 3.8/3.9 function; LocalStack's test_echo_invoke[python3.8]).
    if not _has_runtime(runtime):
        pytest.skip(f"{runtime} is not installed here")
    name = f"old-{runtime.replace('.', '')}"
    create_function(lam, name, {"app.py": "import sys\ndef handler(e, c):\n    return [e, sys.version_info[:2]]\n"},
                    runtime=runtime)
    _, body = invoke_json(lam, name, {"x": 1})
    assert body == [{"x": 1}, [int(n) for n in runtime[len("python"):].split(".")]]


CUSTOM_BOOTSTRAP = """#!/bin/sh
# A custom runtime in POSIX shell + python's http.client would be cheating; use python as a plain program.
exec {python} -I -S "$LAMBDA_TASK_ROOT/runtime.py"
"""

CUSTOM_RUNTIME = """
import http.client, json, os
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
conn = http.client.HTTPConnection(api)
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    resp = conn.getresponse()
    event = json.loads(resp.read())
    rid = resp.getheader("Lambda-Runtime-Aws-Request-Id")
    body = json.dumps({"custom": event, "handler": os.environ["_HANDLER"]})
    conn.request("POST", f"/2018-06-01/runtime/invocation/{rid}/response", body)
    conn.getresponse().read()
"""


def test_provided_runtime(lam: Any) -> None:
    python = _system_python()
    create_function(lam, "custom", {"bootstrap": CUSTOM_BOOTSTRAP.format(python=python), "runtime.py": CUSTOM_RUNTIME},
                    runtime="provided.al2023", handler="whatever", executable=("bootstrap",))
    _, body = invoke_json(lam, "custom", {"q": 2})
    assert body == {"custom": {"q": 2}, "handler": "whatever"}


AWSLAMBDARIC_BOOTSTRAP = """#!/bin/sh
cd "$LAMBDA_TASK_ROOT"
PYTHONPATH="$LAMBDA_TASK_ROOT" exec {python} -m awslambdaric "$_HANDLER"
"""


def _system_python() -> str:
    """A Python that exists inside an isolated environment too (the host's /usr is mounted there)."""
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


def _vendored(*names: str) -> dict[str, str | bytes]:
    """Packages copied from this venv into a function's zip, as a user packages dependencies."""
    site = Path(sysconfig.get_paths()["purelib"])
    files: dict[str, str | bytes] = {}
    for name in names:
        for top in sorted(site.glob(name)):
            for item in sorted(top.rglob("*")) if top.is_dir() else [top]:
                if item.is_file() and "__pycache__" not in item.parts:
                    files[str(item.relative_to(site))] = item.read_bytes()
    return files


def test_awslambdaric_runs_unmodified(lam: Any, server: HearthServer) -> None:
    """AWS's own runtime interface client is the conformance test of our Runtime API."""
    python = _system_python()
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                             text=True, check=True).stdout.strip()
    if version != str(sys.version_info[:2]):
        pytest.skip(f"awslambdaric's compiled module is built for {sys.version_info[:2]}; {python} is {version}")
    files = _vendored("awslambdaric", "simplejson", "snapshot_restore_py.py", "runtime_client.*.so")
    files.update({
        "bootstrap": AWSLAMBDARIC_BOOTSTRAP.format(python=python),
        "app.py": "def handler(e, c):\n    return {'ric': e, 'rid': c.aws_request_id}\n",
        "bad.py": "def handler(e, c):\n    raise KeyError('ric-fail')\n",
    })
    create_function(lam, "ric", files, runtime="provided.al2023", handler="app.handler", executable=("bootstrap",),
                    MemorySize=512)
    resp, body = invoke_json(lam, "ric", {"v": 1})
    assert body == {"ric": {"v": 1}, "rid": resp["ResponseMetadata"]["RequestId"]}
    lam.update_function_configuration(FunctionName="ric", Handler="bad.handler")
    wait_active(lam, "ric")
    resp, body = invoke_json(lam, "ric")
    assert resp["FunctionError"] == "Unhandled" and body["errorType"] == "KeyError"


def test_aws_cli_invoke(server: HearthServer, py_fn: str, tmp_path: Path) -> None:
    out_file = tmp_path / "out.json"
    out = server.aws("lambda", "invoke", "--function-name", py_fn, "--payload", '{"x":1}',
                     "--log-type", "Tail", str(out_file))
    meta = json.loads(out.stdout)
    assert meta["StatusCode"] == 200 and meta["ExecutedVersion"] == "$LATEST"
    assert "START RequestId" in base64.b64decode(meta["LogResult"]).decode()
    assert json.loads(out_file.read_text())["event"] == {"x": 1}


def test_function_can_call_hearth_with_boto3(lam: Any) -> None:
    create_function(lam, "py-sdk", {"app.py": (
        "import boto3\n"
        "def handler(e, c):\n"
        "    names = [f['FunctionName'] for f in boto3.client('lambda').list_functions()['Functions']]\n"
        "    return {'sees_itself': 'py-sdk' in names}\n")}, Timeout=30, MemorySize=512)
    _resp, body = invoke_json(lam, "py-sdk")
    assert body == {"sees_itself": True}, body
