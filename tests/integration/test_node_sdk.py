"""The AWS SDK for JavaScript v3 inside Node.js environments, as AWS bundles it: importable from ES
modules and CommonJS handlers, reaching Hearth through AWS_ENDPOINT_URL, read-only, and never in the way
of a function's own packages or a layer's."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from hearth.runtimes.registry import installed_runtimes, node_sdk_dir
from tests.integration.harness import HearthServer, create_function, invoke_json

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
