"""Logging controls and traces on a real server (issue 16, deliverables 5 and 6).

One server, exporting spans to a tiny OTLP/HTTP receiver run by this module: JSON logs (platform
records, level filtering, Python logging, Node console, Powertools Logger untouched) and the trace
header continued through Invoke, Event invokes, SQS (AWSTraceHeader, event source mappings), SNS and
EventBridge, with the platform spans of each invocation exported under the caller's trace.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from hearth.events import lineage
from tests.integration.harness import HearthServer, create_function, invoke_json

pytestmark = pytest.mark.integration

trace_pb2 = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")

CALLER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
ROOT = "1-5759e988-bd862e3fe1be46a994272793"


class OtlpReceiver:
    """Accepts OTLP/HTTP protobuf trace exports and keeps every span (name, ids, attributes)."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = trace_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                got = [{"name": span.name, "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                        "parent_id": span.parent_span_id.hex(),
                        "attributes": {kv.key: _value(kv.value) for kv in span.attributes}}
                       for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
                with receiver.changed:
                    receiver.spans.extend(got)
                    receiver.changed.notify_all()
                answer = trace_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, request_id: str, names: set[str], timeout: float = 30.0) -> dict[str, dict[str, Any]]:
        """The spans of one invocation, by name, once all of `names` arrived."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                mine = {s["name"]: s for s in self.spans if s["attributes"].get("faas.invocation_id") == request_id}
                if names <= mine.keys():
                    return mine
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"spans of {request_id}: {sorted(mine)}, wanted {sorted(names)}")
                self.changed.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    rec = OtlpReceiver()
    yield rec
    rec.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver) -> Iterator[HearthServer]:
    server = HearthServer(tmp_path_factory.mktemp("logtrace") / "data",
                          extra_env={"HEARTH_OTLP_ENDPOINT": receiver.endpoint})
    server.start()
    yield server
    server.stop()


def _traced(client: Any, operation: str, header: str = CALLER) -> Any:
    def add(request: Any, **_: Any) -> None:
        request.headers["X-Amzn-Trace-Id"] = header

    client.meta.events.register(f"before-sign.{client.meta.service_model.service_id.hyphenize()}.{operation}", add)
    return client


def _tail(resp: dict[str, Any]) -> list[str]:
    return base64.b64decode(resp["LogResult"]).decode().splitlines()


PYTHON_LOGS = """
import io, json, logging
from aws_lambda_powertools import Logger

plain = logging.getLogger("app")
powertools = Logger(service="shop")

def handler(event, context):
    plain.info("left out")
    plain.warning("kept %s", 1)
    print("a plain print is INFO")
    print(json.dumps({"level": "ERROR", "msg": "own JSON"}))
    powertools.warning("from powertools")
    buffer = io.StringIO()
    Logger(service="shop-copy", stream=buffer).warning("from powertools")  # one service name, one handler
    return buffer.getvalue()
"""


def test_json_logs_of_a_python_function(srv: HearthServer) -> None:
    lam = srv.client("lambda")
    create_function(lam, "jsonlogs", {"app.py": PYTHON_LOGS}, Timeout=10, MemorySize=256,
                    LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN", "SystemLogLevel": "DEBUG"})
    resp, powertools_alone = invoke_json(lam, "jsonlogs", {}, LogType="Tail")
    assert "FunctionError" not in resp, powertools_alone
    request_id = resp["ResponseMetadata"]["RequestId"]
    lines = [json.loads(line) for line in _tail(resp)]  # every line is JSON: nothing plain was kept
    platform = [line for line in lines if str(line.get("type", "")).startswith("platform.")]
    assert [p["type"] for p in platform] == ["platform.initStart", "platform.initRuntimeDone", "platform.start",
                                             "platform.runtimeDone", "platform.report"]
    assert platform[0]["record"]["functionName"] == "jsonlogs" and platform[0]["record"]["phase"] == "init"
    report = platform[-1]["record"]
    assert report["requestId"] == request_id and report["status"] == "success"
    assert report["metrics"]["memorySizeMB"] == 256 and report["metrics"]["initDurationMs"] > 0
    assert platform[3]["record"]["status"] == "success"
    app = [line for line in lines if "type" not in line]
    assert app[0] == {"timestamp": app[0]["timestamp"], "level": "WARNING", "message": "kept 1", "logger": "app",
                      "requestId": request_id}
    assert app[1] == {"level": "ERROR", "msg": "own JSON"}
    # Powertools Logger writes its own JSON, which reaches the log exactly as it wrote it.
    expected = json.loads(powertools_alone)
    assert app[2].keys() == expected.keys() and app[2]["service"] == "shop" and app[2]["level"] == "WARNING"
    for key in set(expected) - {"timestamp", "location", "service"}:
        assert app[2][key] == expected[key], key
    assert len(app) == 3  # the INFO record and the plain print were filtered out

    # SystemLogLevel WARN: no platform records at all; ApplicationLogLevel ERROR keeps only errors.
    lam.update_function_configuration(FunctionName="jsonlogs", LoggingConfig={
        "LogFormat": "JSON", "ApplicationLogLevel": "ERROR", "SystemLogLevel": "WARN"})
    _wait_updated(lam, "jsonlogs")
    resp, _ = invoke_json(lam, "jsonlogs", {}, LogType="Tail")
    assert [json.loads(line) for line in _tail(resp)] == [{"level": "ERROR", "msg": "own JSON"}]


NODE_LOGS = """
exports.handler = async () => {
  console.debug("debug");
  console.info("info");
  console.warn("warned", 2);
  console.error(new TypeError("bad"));
  return "done";
};
"""


def test_json_logs_of_a_node_function(srv: HearthServer) -> None:
    lam = srv.client("lambda")
    create_function(lam, "nodelogs", {"index.js": NODE_LOGS}, runtime="nodejs20.x", handler="index.handler",
                    LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN"})
    resp, body = invoke_json(lam, "nodelogs", {}, LogType="Tail")
    assert body == "done"
    request_id = resp["ResponseMetadata"]["RequestId"]
    lines = [json.loads(line) for line in _tail(resp)]
    assert [line["type"] for line in lines if "type" in line] == ["platform.initStart", "platform.start",
                                                                 "platform.report"]
    app = [line for line in lines if "type" not in line]
    assert [(a["level"], a["requestId"]) for a in app] == [("WARN", request_id), ("ERROR", request_id)]
    assert app[0]["message"] == "warned 2"
    assert app[1]["errorType"] == "TypeError" and app[1]["errorMessage"] == "bad"


def _wait_updated(lam: Any, name: str) -> None:
    for _ in range(200):
        if lam.get_function_configuration(FunctionName=name)["LastUpdateStatus"] != "InProgress":
            return
        time.sleep(0.05)


TRACER = """
import json, os, boto3

sqs = boto3.client("sqs")

def handler(event, context):
    trace = os.environ.get("_X_AMZN_TRACE_ID")
    records = event.get("Records") if isinstance(event, dict) else None
    if records and records[0].get("eventSource") == "aws:sqs":
        seen = records[0]["attributes"].get("AWSTraceHeader")
        sqs.send_message(QueueUrl=os.environ["OUT"], MessageBody=json.dumps({"trace": trace, "seen": seen}))
    elif os.environ.get("OUT"):
        sqs.send_message(QueueUrl=os.environ["OUT"], MessageBody=json.dumps({"trace": trace}))
    return trace
"""


def _root(header: str | None) -> str | None:
    return lineage.TraceHeader.parse(header).root


def _receive(sqs: Any, url: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["AWSTraceHeader"], WaitTimeSeconds=2)
        if got.get("Messages"):
            message: dict[str, Any] = got["Messages"][0]
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            return message
    raise TimeoutError(f"nothing arrived on {url}")


def test_the_callers_trace_is_continued_and_its_spans_exported(srv: HearthServer, receiver: OtlpReceiver) -> None:
    lam, sqs = srv.client("lambda"), srv.client("sqs")
    out = sqs.create_queue(QueueName="trace-out")["QueueUrl"]
    create_function(lam, "tracer", {"app.py": TRACER}, Timeout=10, Environment={"Variables": {"OUT": out}})
    resp, seen = invoke_json(_traced(lam, "Invoke"), "tracer", {})
    request_id = resp["ResponseMetadata"]["RequestId"]
    parsed = lineage.TraceHeader.parse(seen)
    assert parsed.root == ROOT and parsed.sampled == "1"
    assert parsed.lineage == {lineage.function_hash("arn:aws:lambda:us-east-1:000000000000:function:tracer"): 1}
    # The function sent to a queue with its SDK: the message carries its trace header.
    sent = _receive(sqs, out)
    assert sent["Attributes"]["AWSTraceHeader"].startswith(f"Root={ROOT};Parent={parsed.parent};Sampled=1")

    # The exported spans: the function span is the function's Parent, a child of the caller's span.
    spans = receiver.wait_for(request_id, {"tracer", "Initialization", "Invocation"})
    function_span = spans["tracer"]
    assert function_span["trace_id"] == ROOT[2:].replace("-", "")
    assert function_span["span_id"] == parsed.parent and function_span["parent_id"] == "53995c3f42cd8ad8"
    assert function_span["attributes"]["faas.coldstart"] is True
    assert function_span["attributes"]["cloud.resource_id"].endswith(":function:tracer")
    for name in ("Initialization", "Invocation"):
        assert spans[name]["parent_id"] == parsed.parent and spans[name]["trace_id"] == function_span["trace_id"]


def test_the_trace_flows_through_event_invokes_sns_eventbridge_and_sqs_mappings(srv: HearthServer) -> None:
    lam, sqs, sns, events = srv.client("lambda"), srv.client("sqs"), srv.client("sns"), srv.client("events")
    out = sqs.create_queue(QueueName="flow-out")["QueueUrl"]
    fn = create_function(lam, "flow", {"app.py": TRACER}, Timeout=10, Environment={"Variables": {"OUT": out}})

    def caller(n: int) -> str:  # a distinct trace per path, so no path can pass on another's message
        return f"Root=1-5759e988-{uuid.uuid4().hex[:24]};Parent=53995c3f42cd8ad{n};Sampled=1"

    # Asynchronous invoke.
    header = caller(1)
    _traced(lam, "Invoke", header).invoke(FunctionName="flow", InvocationType="Event", Payload=b"{}")
    assert _root(json.loads(_receive(sqs, out)["Body"])["trace"]) == _root(header)

    # SNS topic -> function.
    topic = sns.create_topic(Name="flow-topic")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=fn["FunctionArn"])
    header = caller(2)
    _traced(sns, "Publish", header).publish(TopicArn=topic, Message="hi")
    assert _root(json.loads(_receive(sqs, out)["Body"])["trace"]) == _root(header)

    # EventBridge rule -> function.
    events.put_rule(Name="flow-rule", EventPattern=json.dumps({"source": ["flow.test"]}))
    events.put_targets(Rule="flow-rule", Targets=[{"Id": "fn", "Arn": fn["FunctionArn"]}])
    header = caller(3)
    _traced(events, "PutEvents", header).put_events(
        Entries=[{"Source": "flow.test", "DetailType": "t", "Detail": "{}"}])
    assert _root(json.loads(_receive(sqs, out)["Body"])["trace"]) == _root(header)

    # SQS queue -> event source mapping -> function: the record shows AWSTraceHeader, the run continues it.
    source = sqs.create_queue(QueueName="flow-in")["QueueUrl"]
    source_arn = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.create_event_source_mapping(EventSourceArn=source_arn, FunctionName="flow", BatchSize=1)
    header = caller(4)
    _traced(sqs, "SendMessage", header).send_message(QueueUrl=source, MessageBody="go")
    body = json.loads(_receive(sqs, out)["Body"])
    assert body["seen"] == header
    assert _root(body["trace"]) == _root(header)


def test_a_failed_init_is_exported_as_an_initialization_span_in_error(srv: HearthServer,
                                                                      receiver: OtlpReceiver) -> None:
    lam = srv.client("lambda")
    create_function(lam, "broken", {"app.py": "import not_a_module\n"})
    resp, body = invoke_json(_traced(lam, "Invoke"), "broken", {})
    assert resp["FunctionError"] == "Unhandled" and body["errorType"] == "Runtime.ImportModuleError"
    spans = receiver.wait_for(resp["ResponseMetadata"]["RequestId"], {"broken", "Initialization"})
    assert "Invocation" not in spans
    assert spans["broken"]["parent_id"] == "53995c3f42cd8ad8"
    assert spans["broken"]["attributes"]["aws.lambda.error_type"] == "Runtime.ImportModuleError"
