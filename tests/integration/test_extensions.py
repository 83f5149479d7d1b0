"""Extensions inside an environment, as a user's layer brings them: a small external extension written
here registers, subscribes to the Telemetry API, takes INVOKE and SHUTDOWN events and, at SHUTDOWN,
sends everything it saw to an SQS queue; its Telemetry batches validate against the telemetry schema
(tests/integration/fixtures/telemetry_schema.json, written from AWS's schema reference). A crashing
extension fails INIT with Extension.Crash; AWS_LAMBDA_EXEC_WRAPPER wraps the Python runtime; an
internal extension (a thread of the function's own process) takes INVOKE events. The same extension
beside a SnapStart version gets the restore's Telemetry records (restoreStart, restoreRuntimeDone,
restoreReport) instead of INIT's."""

from __future__ import annotations

import base64
import contextlib
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hearth.runtimes.registry import installed_runtimes
from tests.integration.harness import HearthServer, create_function, invoke_json, make_zip

pytestmark = pytest.mark.integration

SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "telemetry_schema.json").read_text())

EXTENSION = '''#!{python}
import http.server, json, os, sys, threading, urllib.request
import boto3  # during INIT, at full CPU: SHUTDOWN leaves 2 s at the function's CPU share

sqs = boto3.client("sqs")

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"]
NAME = os.path.basename(__file__)
batches = []


def call(method, path, body=None, headers=None):
    req = urllib.request.Request(API + path, data=None if body is None else json.dumps(body).encode(),
                                 headers=headers or {{}}, method=method)
    return urllib.request.urlopen(req, timeout=None)


class Listener(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        batches.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


resp = call("POST", "/2020-01-01/extension/register", {{"events": ["INVOKE", "SHUTDOWN"]}},
            {{"Lambda-Extension-Name": NAME, "Lambda-Extension-Accept-Feature": "accountId"}})
ext_id = resp.headers["Lambda-Extension-Identifier"]
registered = json.load(resp)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Listener)
threading.Thread(target=server.serve_forever, daemon=True).start()
subscription = {{"schemaVersion": "2022-12-13", "types": ["platform", "function", "extension"],
                 "buffering": {{"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25}},
                 "destination": {{"protocol": "HTTP", "URI": "http://sandbox.localdomain:%d" % server.server_port}}}}
call("PUT", "/2022-07-01/telemetry", subscription, {{"Lambda-Extension-Identifier": ext_id}}).read()
print("extension says hello", flush=True)
events = []
while True:
    event = json.load(call("GET", "/2020-01-01/extension/event/next", None, {{"Lambda-Extension-Identifier": ext_id}}))
    events.append(event)
    if event["eventType"] == "SHUTDOWN":
        print("extension shutting down:", event["shutdownReason"], flush=True)
        break
sqs.send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=json.dumps(
    {{"registered": registered, "events": events, "batches": batches,
      "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}}))
'''

FUNCTION = """
import os
def handler(event, context):
    print("function says hello", context.aws_request_id)
    return {"wrapped": os.environ.get("WRAPPED"), "args": os.environ.get("WRAPPER_ARGS")}
"""

CRASHING = "#!/bin/sh\necho about to crash\nexit 3\n"
WRAPPER = '#!/bin/sh\nexport WRAPPED=yes\nexport WRAPPER_ARGS="$*"\nexec "$@"\n'


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    server = HearthServer(tmp_path_factory.mktemp("extensions") / "data")
    server.start()
    yield server
    server.stop()


def _layer(lam: Any, name: str, files: dict[str, str]) -> str:
    content = make_zip(files, executable=tuple(files))
    return str(lam.publish_layer_version(LayerName=name, Content={"ZipFile": content})["LayerVersionArn"])


def test_an_external_extension_gets_invoke_shutdown_and_telemetry(srv: HearthServer) -> None:
    lam, sqs = srv.client("lambda"), srv.client("sqs")
    queue = sqs.create_queue(QueueName="extension-report")["QueueUrl"]
    python = installed_runtimes()["python3.11"].executable
    layer = _layer(lam, "telemetry-ext", {"extensions/telemetry-ext": EXTENSION.format(python=python)})
    create_function(lam, "with-extension", {"app.py": FUNCTION}, Layers=[layer], Timeout=10, MemorySize=1024,
                    Environment={"Variables": {"QUEUE_URL": queue}})
    request_ids = []
    for _ in range(2):
        resp, body = invoke_json(lam, "with-extension")
        assert "FunctionError" not in resp, body
        request_ids.append(resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])
        # The invocation ends (REPORT) once the extension asked for its next event: the next one then
        # finds this environment free instead of starting another.
        _wait_report(srv.client("logs"), "with-extension", request_ids[-1])
    with urllib.request.urlopen(f"{srv.endpoint}/_hearth/metrics", timeout=5) as metrics:
        counts = [line for line in metrics.read().decode().splitlines()
                  if line.startswith("hearth_post_runtime_extensions_duration_seconds_count")
                  and 'function="with-extension"' in line]
    assert counts and counts[0].endswith(" 2"), counts  # AWS's PostRuntimeExtensionsDuration, per invocation
    lam.delete_function(FunctionName="with-extension")  # its environment shuts down: SHUTDOWN, spindown

    _wait_log(srv.client("logs"), "with-extension", '"Name: telemetry-ext"')
    report = _receive(sqs, queue)
    # What the extension wrote during SHUTDOWN reaches the function's log stream too.
    _wait_log(srv.client("logs"), "with-extension", '"extension shutting down: spindown"')
    assert report["registered"]["functionName"] == "with-extension"
    assert report["registered"]["functionVersion"] == "$LATEST"
    assert report["registered"]["handler"] == "app.handler"
    assert report["registered"]["accountId"] == "000000000000"
    invokes = [e for e in report["events"] if e["eventType"] == "INVOKE"]
    assert [e["requestId"] for e in invokes] == request_ids
    assert invokes[0]["invokedFunctionArn"].endswith(":function:with-extension")
    assert invokes[0]["deadlineMs"] > 0 and invokes[0]["tracing"]["type"] == "X-Amzn-Trace-Id"
    assert report["events"][-1]["eventType"] == "SHUTDOWN"
    assert report["events"][-1]["shutdownReason"] == "spindown"

    for batch in report["batches"]:
        jsonschema.validate(batch, SCHEMA)
    records = [record for batch in report["batches"] for record in batch]
    types = {record["type"] for record in records}
    assert {"platform.initStart", "platform.initRuntimeDone", "platform.initReport", "platform.start",
            "platform.runtimeDone", "platform.report", "platform.extension",
            "platform.telemetrySubscription", "function", "extension"} <= types, types
    reports = [r["record"] for r in records if r["type"] == "platform.report"]
    assert [r["requestId"] for r in reports] == request_ids
    assert all(r["status"] == "success" and r["metrics"]["memorySizeMB"] == 1024 for r in reports)
    function_lines = [r["record"] for r in records if r["type"] == "function"]
    assert any(f"function says hello {request_ids[0]}" in line for line in function_lines)
    assert "extension says hello" in [r["record"] for r in records if r["type"] == "extension"]


SNAP_FUNCTION = """
import snapshot_restore_py

HOOKS = []
snapshot_restore_py.register_after_restore(lambda: HOOKS.append("after-restore"))


def handler(event, context):
    print("function says hello", context.aws_request_id)
    return {"hooks": HOOKS}
"""


def test_a_snapstart_version_restores_with_its_extension(srv: HearthServer) -> None:
    if srv.health().get("isolation") == "process":
        pytest.skip("snapshots need the namespace backend (the process fallback starts on demand)")
    lam, sqs = srv.client("lambda"), srv.client("sqs")
    queue = sqs.create_queue(QueueName="snap-extension-report")["QueueUrl"]
    python = installed_runtimes()["python3.12"].executable
    layer = _layer(lam, "snap-telemetry-ext", {"extensions/telemetry-ext": EXTENSION.format(python=python)})
    create_function(lam, "snap-extension", {"app.py": SNAP_FUNCTION}, runtime="python3.12", Layers=[layer],
                    Timeout=10, MemorySize=1024, Environment={"Variables": {"QUEUE_URL": queue}},
                    SnapStart={"ApplyOn": "PublishedVersions"})
    version = lam.publish_version(FunctionName="snap-extension")["Version"]
    _wait_version(lam, "snap-extension", version)
    assert lam.get_function_configuration(FunctionName="snap-extension", Qualifier=version)["SnapStart"] == {
        "ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    request_ids = []
    for _ in range(2):
        resp, body = invoke_json(lam, "snap-extension", Qualifier=version)
        assert "FunctionError" not in resp, body
        assert body == {"hooks": ["after-restore"]}
        request_ids.append(resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])
        _wait_report(srv.client("logs"), "snap-extension", request_ids[-1])
    lam.delete_function(FunctionName="snap-extension")  # SHUTDOWN (spindown) for the restored environment

    report = _receive(sqs, queue)
    assert report["init_type"] == "snap-start"
    assert report["registered"]["functionVersion"] == version
    invokes = [e for e in report["events"] if e["eventType"] == "INVOKE"]
    assert [e["requestId"] for e in invokes] == request_ids
    assert report["events"][-1] == {**report["events"][-1], "eventType": "SHUTDOWN", "shutdownReason": "spindown"}
    for batch in report["batches"]:
        jsonschema.validate(batch, SCHEMA)
    records = [record for batch in report["batches"] for record in batch]
    types = [record["type"] for record in records]
    assert {"platform.restoreStart", "platform.restoreRuntimeDone", "platform.restoreReport",
            "platform.start", "platform.report", "platform.extension", "function"} <= set(types), types
    assert not {"platform.initStart", "platform.initRuntimeDone", "platform.initReport"} & set(types), types
    assert types.index("platform.restoreStart") < types.index("platform.restoreReport") < types.index("platform.start")
    restore_start = next(r["record"] for r in records if r["type"] == "platform.restoreStart")
    assert restore_start["functionName"] == "snap-extension" and restore_start["functionVersion"] == version
    restore_report = next(r["record"] for r in records if r["type"] == "platform.restoreReport")
    assert restore_report["status"] == "success" and restore_report["metrics"]["durationMs"] > 0
    assert [r["record"]["requestId"] for r in records if r["type"] == "platform.report"] == request_ids


SNAP_WRAPPED = """
import os
import snapshot_restore_py

HOOKS = []
snapshot_restore_py.register_after_restore(lambda: HOOKS.append("after-restore"))


def handler(event, context):
    return {"wrapped": os.environ.get("WRAPPED"), "args": os.environ.get("WRAPPER_ARGS"), "hooks": HOOKS,
            "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}
"""


def test_a_snapstart_version_with_an_exec_wrapper_is_restored(srv: HearthServer) -> None:
    if srv.health().get("isolation") == "process":
        pytest.skip("snapshots need the namespace backend (the process fallback starts on demand)")
    lam = srv.client("lambda")
    layer = _layer(lam, "snap-wrapper", {"wrapper": WRAPPER})
    create_function(lam, "snap-wrapped", {"app.py": SNAP_WRAPPED}, runtime="python3.12", Layers=[layer],
                    Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrapper"}},
                    SnapStart={"ApplyOn": "PublishedVersions"})
    version = lam.publish_version(FunctionName="snap-wrapped")["Version"]
    _wait_version(lam, "snap-wrapped", version)
    assert lam.get_function_configuration(FunctionName="snap-wrapped", Qualifier=version)["State"] == "Active"
    resp, body = invoke_json(lam, "snap-wrapped", Qualifier=version, LogType="Tail")
    assert "FunctionError" not in resp, body
    # The wrapper ran once, before the snapshot; what it exported is in the restored environment.
    assert body["wrapped"] == "yes" and "bootstrap" in body["args"]
    assert body["hooks"] == ["after-restore"] and body["init_type"] == "snap-start"
    assert "Restore Duration" in base64.b64decode(resp["LogResult"]).decode()


def _wait_version(lam: Any, name: str, version: str) -> None:
    deadline = time.monotonic() + 60
    while lam.get_function_configuration(FunctionName=name, Qualifier=version)["State"] == "Pending":
        assert time.monotonic() < deadline, f"{name}:{version} is still Pending"
        time.sleep(0.05)


def _wait_report(logs: Any, function: str, request_id: str) -> None:
    _wait_log(logs, function, f'"REPORT RequestId: {request_id}"')


def _wait_log(logs: Any, function: str, pattern: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(logs.exceptions.ResourceNotFoundException):
            if logs.filter_log_events(logGroupName=f"/aws/lambda/{function}", filterPattern=pattern)["events"]:
                return
        time.sleep(0.05)
    raise AssertionError(f"no log event {pattern} in {function}'s log")


def _receive(sqs: Any, queue: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5).get("Messages", [])
        if messages:
            return dict(json.loads(messages[0]["Body"]))
    raise AssertionError("the extension reported nothing")


def test_a_crashing_extension_fails_init_with_extension_crash(srv: HearthServer) -> None:
    lam = srv.client("lambda")
    layer = _layer(lam, "crashing-ext", {"extensions/crasher": CRASHING})
    create_function(lam, "crashing-extension", {"app.py": FUNCTION}, Layers=[layer])
    resp, body = invoke_json(lam, "crashing-extension")
    assert resp.get("FunctionError") == "Unhandled"
    assert body == {"errorType": "Extension.Crash", "errorMessage": "Error: exit code 3"}, body


def test_exec_wrapper_runs_the_python_runtime(srv: HearthServer) -> None:
    lam = srv.client("lambda")
    layer = _layer(lam, "wrapper", {"wrapper": WRAPPER})
    create_function(lam, "wrapped", {"app.py": FUNCTION}, Layers=[layer],
                    Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrapper"}})
    resp, body = invoke_json(lam, "wrapped")
    assert "FunctionError" not in resp, body
    assert body["wrapped"] == "yes"
    assert "bootstrap" in body["args"]  # the runtime's own command came as the wrapper's arguments


NODE_FUNCTION = """
exports.handler = async () => ({wrapped: process.env.WRAPPED, args: process.env.WRAPPER_ARGS});
"""


def test_exec_wrapper_runs_the_node_runtime(srv: HearthServer) -> None:
    lam = srv.client("lambda")
    layer = _layer(lam, "node-wrapper", {"wrapper": WRAPPER})
    create_function(lam, "node-wrapped", {"index.js": NODE_FUNCTION}, runtime="nodejs20.x", handler="index.handler",
                    Layers=[layer], Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrapper"}})
    resp, body = invoke_json(lam, "node-wrapped")
    assert "FunctionError" not in resp, body
    assert body["wrapped"] == "yes" and body["args"]  # the Node runtime's command, as the wrapper's arguments


INTERNAL = """
import json, os, threading, urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2020-01-01/extension"
seen = []


def call(method, path, body=None, headers=None):
    req = urllib.request.Request(API + path, data=body, headers=headers or {}, method=method)
    return urllib.request.urlopen(req, timeout=None)


resp = call("POST", "/register", json.dumps({"events": ["INVOKE"]}).encode(), {"Lambda-Extension-Name": "inside"})
ext_id = resp.headers["Lambda-Extension-Identifier"]


def loop():
    while True:
        event = json.load(call("GET", "/event/next", None, {"Lambda-Extension-Identifier": ext_id}))
        seen.append(event["requestId"])


threading.Thread(target=loop, daemon=True).start()


def handler(event, context):
    return {"seen": list(seen), "me": context.aws_request_id}
"""


def test_an_internal_extension_registers_from_the_runtime_process(srv: HearthServer) -> None:
    lam = srv.client("lambda")
    create_function(lam, "internal-extension", {"app.py": INTERNAL}, MemorySize=512)
    _, first = invoke_json(lam, "internal-extension")
    _wait_report(srv.client("logs"), "internal-extension", first["me"])
    _, second = invoke_json(lam, "internal-extension")
    # The second invocation ran in the same environment, after the extension took the first one's INVOKE.
    assert first["me"] in second["seen"], (first, second)
