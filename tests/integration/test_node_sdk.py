"""The AWS SDK for JavaScript v3 inside Node.js environments, as AWS bundles it: importable from ES
modules and CommonJS handlers, reaching Hearth through AWS_ENDPOINT_URL, read-only, and never in the way
of a function's own packages or a layer's. And the same SDK as a client of every service Hearth serves
(node_sdk_tour.js), from outside and from inside a function: its Kinesis client speaks only HTTP/2
(cleartext with prior knowledge on the API port, h2 by ALPN on the HTTPS port)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hearth.runtimes.registry import NODE_SDK_ENV, installed_runtimes, node_sdk_dir
from tests.integration.harness import (
    ACCESS_KEY,
    SECRET_KEY,
    HearthServer,
    create_function,
    free_port,
    invoke_json,
)

pytestmark = pytest.mark.integration

RUNTIME = "nodejs20.x"

# The SDK finds Hearth through AWS_ENDPOINT_URL (honoured by SDK v3 since late 2023): no endpoint here.
# The SQS client sends to the queue URL's own host, so the test's URL (the host's port) is rebased on
# the endpoint the sandbox sees.
ESM_SQS = """
import { SQSClient, SendMessageCommand } from "@aws-sdk/client-sqs";
const sqs = new SQSClient({});
export const handler = async (event) => {
  const queue = process.env.AWS_ENDPOINT_URL + new URL(event.queue).pathname;
  const out = await sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: "from esm" }));
  return { id: out.MessageId };
};
"""

# The default client, as a user writes it: the queue URL comes from GetQueueUrl inside the function, so
# it names the endpoint the function used (its sandbox's own), and the client may send to its origin.
LOOKUP_SQS = """
import { SQSClient, GetQueueUrlCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
const sqs = new SQSClient({});
export const handler = async (event) => {
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: event.name }));
  const out = await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: "looked up" }));
  return { id: out.MessageId, url: QueueUrl, endpoint: process.env.AWS_ENDPOINT_URL };
};
"""

CJS_SQS_STS = """
const { SQSClient, SendMessageCommand } = require("@aws-sdk/client-sqs");
const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");
const fs = require("fs");
const path = require("path");
exports.handler = async (event) => {
  const me = await new STSClient({}).send(new GetCallerIdentityCommand({}));
  const queue = process.env.AWS_ENDPOINT_URL + new URL(event.queue).pathname;
  const out = await new SQSClient({}).send(
    new SendMessageCommand({ QueueUrl: queue, MessageBody: "from cjs " + me.Account }));
  const sdkDir = path.dirname(require.resolve("@aws-sdk/client-sqs/package.json"));
  let write;
  try {
    fs.writeFileSync(path.join(sdkDir, "planted.js"), "module.exports = 1;");
    write = "written";
  } catch (err) {
    write = err.code;
  }
  return { id: out.MessageId, account: me.Account, sdkDir, write };
};
"""

# A function bringing its own @aws-sdk/client-sns (in its zip) and a layer bringing @aws-sdk/client-sts:
# both must win over the bundled SDK, as on AWS.
OVERRIDE_ESM = """
import { createRequire } from "node:module";
import { marker } from "@aws-sdk/client-sns";
const require = createRequire(import.meta.url);
export const handler = async () => ({ own: marker, layer: require("@aws-sdk/client-sts").marker });
"""


TOUR = Path(__file__).with_name("node_sdk_tour.js")
# What each service's calls in node_sdk_tour.js answer, `{tag}` being the run's tag.
EXPECTED = {
    "sts": {"account": "000000000000"},
    "iam": {"arn": "arn:aws:iam::000000000000:role/tour-{tag}"},
    "ssm": {"value": "v-{tag}"},
    "s3": {"body": "body-{tag}"},
    "dynamodb": {"item": {"pk": "a", "n": 7}},
    "sqs": {"body": "m-{tag}"},
    "sns": {"arn": "arn:aws:sns:us-east-1:000000000000:tour-{tag}", "published": True},
    "kinesis": {"data": "r-{tag}", "handler": "NodeHttp2Handler"},
    "eventbridge": {"failed": 0, "id": True},
    "logs": {"message": "line-{tag}"},
    "lambda": {"state": "Active"},
    "apigateway": {"rest": "tour-{tag}", "http": "tour-{tag}"},
    "cloudformation": {"status": "CREATE_COMPLETE"},
}
TOUR_HANDLER = """
const { tour } = require("./tour.js");
exports.handler = async () => tour("inside", process.env.AWS_LAMBDA_FUNCTION_NAME);
"""

# A response-streaming function URL read with Node's own http2 client (prior knowledge, cleartext).
STREAM_APP = """
def handler(event, context):
    yield {"statusCode": 201, "headers": {"content-type": "text/plain", "x-streamed": "yes"}}
    yield "first,"
    yield "second"
"""
H2_GET = """
const http2 = require("node:http2");
const [url, authority] = process.argv.slice(2);
const session = http2.connect(url);
const req = session.request({ ":path": "/", ":authority": authority });
const out = { chunks: [] };
req.on("response", (h) => { out.status = h[":status"]; out.streamed = h["x-streamed"]; });
req.on("data", (d) => out.chunks.push(d.toString()));
req.on("end", () => { session.close(); process.stdout.write(JSON.stringify(out)); });
req.end();
"""


def _expected(tag: str, only: tuple[str, ...] = ()) -> dict[str, Any]:
    text = json.dumps({name: calls for name, calls in EXPECTED.items() if not only or name in only})
    return dict(json.loads(text.replace("{tag}", tag)))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    """This module's own server, with the HTTPS port (h2 by ALPN) beside the API port."""
    extra_env = {NODE_SDK_ENV: os.environ[NODE_SDK_ENV]} if os.environ.get(NODE_SDK_ENV) else {}
    srv = HearthServer(tmp_path_factory.mktemp("node-sdk") / "data",
                       extra_args=("--https-port", str(free_port())), extra_env=extra_env)
    srv.start()
    yield srv
    code = srv.stop()
    assert code == 0, f"hearth did not shut down cleanly ({code}):\n{srv.log()}"


def _node(server: HearthServer, script: Path, *args: str, endpoint: str | None = None,
          **env: str) -> Any:
    """Run `node script args…` outside Hearth, as a user would, with the bundled SDK on its path."""
    sdk = node_sdk_dir()
    node = shutil.which("node")
    if node is None or sdk is None:
        pytest.skip("Node.js or the Node.js AWS SDK is missing: ./run setup installs them")
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update(NODE_PATH=str(sdk), NODE_NO_WARNINGS="1", AWS_ENDPOINT_URL=endpoint or server.endpoint,
                AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION="us-east-1", **env)
    done = subprocess.run([node, str(script), *args], env=base, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


@pytest.fixture(scope="module")
def lam(server: HearthServer) -> Any:
    if RUNTIME not in installed_runtimes():
        pytest.skip(f"{RUNTIME} is not installed on this host")
    assert node_sdk_dir() is not None, "the Node.js AWS SDK is missing: ./run setup installs it in .tools/node-sdk"
    return server.client("lambda")


@pytest.fixture(scope="module")
def queue(server: HearthServer) -> tuple[Any, str]:
    sqs = server.client("sqs")
    return sqs, sqs.create_queue(QueueName="node-sdk")["QueueUrl"]


def _receive(sqs: Any, url: str) -> dict[str, Any]:
    msgs = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10, MaxNumberOfMessages=1)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=msgs[0]["ReceiptHandle"])
    return dict(msgs[0])


def test_es_module_imports_the_sdk_and_sends_to_a_queue(lam: Any, queue: tuple[Any, str]) -> None:
    sqs, url = queue
    create_function(lam, "node-sdk-esm", {"index.mjs": ESM_SQS}, runtime=RUNTIME, handler="index.handler",
                    Timeout=30)
    resp, body = invoke_json(lam, "node-sdk-esm", {"queue": url})
    assert "FunctionError" not in resp, body
    msg = _receive(sqs, url)
    assert msg["Body"] == "from esm" and msg["MessageId"] == body["id"]


def test_a_queue_url_looked_up_inside_a_function_is_reachable_from_it(lam: Any, queue: tuple[Any, str]) -> None:
    sqs, url = queue  # created outside the function: its URL names the host's endpoint
    create_function(lam, "node-sdk-lookup", {"index.mjs": LOOKUP_SQS}, runtime=RUNTIME, handler="index.handler",
                    Timeout=30)
    resp, body = invoke_json(lam, "node-sdk-lookup", {"name": "node-sdk"})
    assert "FunctionError" not in resp, body
    assert body["url"] == body["endpoint"] + "/000000000000/node-sdk"  # built from the endpoint it used
    msg = _receive(sqs, url)
    assert msg["Body"] == "looked up" and msg["MessageId"] == body["id"]


def test_commonjs_requires_the_sdk_which_is_read_only(lam: Any, queue: tuple[Any, str],
                                                      server: HearthServer) -> None:
    sqs, url = queue
    create_function(lam, "node-sdk-cjs", {"index.js": CJS_SQS_STS}, runtime=RUNTIME, handler="index.handler",
                    Timeout=30)
    resp, body = invoke_json(lam, "node-sdk-cjs", {"queue": url})
    assert "FunctionError" not in resp, body
    assert body["account"] == "000000000000"
    msg = _receive(sqs, url)
    assert msg["Body"] == "from cjs 000000000000" and msg["MessageId"] == body["id"]
    if server.health()["isolation"] != "process":
        # Shared by every environment: one function must not plant code in another's SDK.
        assert body["sdkDir"] == "/node_modules/@aws-sdk/client-sqs"
        assert body["write"] == "EROFS"


def test_own_and_layer_packages_win_over_the_bundled_sdk(lam: Any, server: HearthServer) -> None:
    if server.health()["isolation"] == "process":
        pytest.skip("the process backend has no /opt: layers need the namespace backend")
    layer_files = {
        "nodejs/node_modules/@aws-sdk/client-sts/package.json": json.dumps({"name": "@aws-sdk/client-sts",
                                                                            "main": "index.js"}),
        "nodejs/node_modules/@aws-sdk/client-sts/index.js": "exports.marker = 'layer';",
    }
    layer = lam.publish_layer_version(LayerName="node-sdk-override", Content={"ZipFile": _zip(layer_files)},
                                      CompatibleRuntimes=[RUNTIME])
    own = {
        "index.mjs": OVERRIDE_ESM,
        "node_modules/@aws-sdk/client-sns/package.json": json.dumps({"name": "@aws-sdk/client-sns",
                                                                     "type": "module", "main": "index.js"}),
        "node_modules/@aws-sdk/client-sns/index.js": "export const marker = 'own';",
    }
    create_function(lam, "node-sdk-override", own, runtime=RUNTIME, handler="index.handler",
                    Layers=[layer["LayerVersionArn"]])
    resp, body = invoke_json(lam, "node-sdk-override")
    assert "FunctionError" not in resp, body
    assert body == {"own": "own", "layer": "layer"}


def test_sdk_from_outside_reaches_every_service(lam: Any, server: HearthServer) -> None:
    create_function(lam, "node-sdk-target", {"app.py": "def handler(event, context):\n    return event\n"})
    assert _node(server, TOUR, "outside", "node-sdk-target") == _expected("outside")


def test_sdk_inside_a_function_reaches_every_service(lam: Any) -> None:
    create_function(lam, "node-sdk-tour", {"index.js": TOUR_HANDLER, "tour.js": TOUR.read_text()},
                    runtime=RUNTIME, handler="index.handler", Timeout=120, MemorySize=1024)
    resp, body = invoke_json(lam, "node-sdk-tour")
    assert "FunctionError" not in resp, body
    assert body == _expected("inside")


def test_kinesis_client_over_https_negotiates_h2(lam: Any, server: HearthServer) -> None:
    https_port = server.extra_args[server.extra_args.index("--https-port") + 1]
    ca = server.data_dir / "ca" / "ca.pem"
    got = _node(server, TOUR, "tls", "-", "sts,kinesis", endpoint=f"https://localhost:{https_port}",
                NODE_EXTRA_CA_CERTS=str(ca))
    assert got == _expected("tls", ("sts", "kinesis"))


def test_streamed_function_url_over_http2(lam: Any, server: HearthServer, tmp_path: Path) -> None:
    create_function(lam, "node-sdk-h2-stream", {"app.py": STREAM_APP})
    url = lam.create_function_url_config(FunctionName="node-sdk-h2-stream", AuthType="NONE",
                                         InvokeMode="RESPONSE_STREAM")["FunctionUrl"]
    lam.add_permission(FunctionName="node-sdk-h2-stream", StatementId="public", Action="lambda:InvokeFunctionUrl",
                       Principal="*", FunctionUrlAuthType="NONE")
    script = tmp_path / "h2get.js"
    script.write_text(H2_GET)
    got = _node(server, script, server.endpoint, url.split("//", 1)[1].rstrip("/"))
    assert (got["status"], got["streamed"], "".join(got["chunks"])) == (201, "yes", "first,second")
