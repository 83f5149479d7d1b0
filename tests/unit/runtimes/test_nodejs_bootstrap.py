"""Hearth's Node.js bootstrap as a subprocess against a real Runtime API server."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from tests.unit.runtimes.harness import NODE_BOOTSTRAP, RuntimeProcess, base_env, write_files

from hearth.runtime_api.channel import InitError, RuntimeExited

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="no Node.js on this host")

APP = r"""
let count = 0;
exports.handler = async (event, context) => {
  count += 1;
  console.log("node says hi", { a: 1 });
  console.warn("two\nlines");
  return { event, count, requestId: context.awsRequestId, fn: context.functionName,
           version: context.functionVersion, arn: context.invokedFunctionArn,
           memory: context.memoryLimitInMB, group: context.logGroupName, stream: context.logStreamName,
           remaining: context.getRemainingTimeInMillis(), cc: context.clientContext ?? null,
           identity: context.identity ?? null, trace: process.env._X_AMZN_TRACE_ID,
           waits: context.callbackWaitsForEmptyEventLoop };
};
exports.fail = async () => { throw new TypeError("node boom"); };
exports.throwString = async () => { throw "just a string"; };
exports.syncThrow = () => { throw new Error("sync boom"); };
exports.callback = (event, context, callback) => {
  setTimeout(() => console.log("timer ran"), 30);
  callback(null, { cb: event.v });
};
exports.callbackError = (event, context, callback) => { callback(new RangeError("cb error")); };
exports.noWait = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => {}, 60000);  // would block the answer if the runtime waited for an empty loop
  callback(null, "fast");
};
exports.returnsNothing = () => {};
exports.legacy = (event, context) => { context.succeed({ legacy: true }); };
exports.rejectLater = async () => {
  Promise.reject(new Error("nobody catches me"));
  await new Promise(r => setTimeout(r, 50));
  return 1;
};
exports.circular = async () => { const o = {}; o.o = o; return o; };
exports.nested = { deeper: { fn: async () => "nested ok" } };
exports.notAFunction = 42;
"""

Start = Callable[..., Awaitable[RuntimeProcess]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    procs: list[RuntimeProcess] = []

    async def _start(handler: str = "index.handler", files: dict[str, str] | None = None,
                     **env: str) -> RuntimeProcess:
        root = tmp_path / f"task{len(procs)}"
        root.mkdir()
        write_files(root, files if files is not None else {"index.js": APP})
        assert NODE is not None
        proc = RuntimeProcess([NODE, str(NODE_BOOTSTRAP)], base_env(root, handler, **env), root)
        procs.append(proc)
        await proc.start()
        return proc

    try:
        yield _start
    finally:
        for proc in procs:
            await proc.stop()


async def test_async_handler_result_context_and_logs(start: Start) -> None:
    rt = await start()
    await rt.wait_initialized()
    result = await rt.invoke({"a": 1}, request_id="rid-n1", client_context='{"custom":{"k":"v"}}',
                             cognito_identity='{"cognitoIdentityId":"x"}')
    assert result.error_type is None
    body = json.loads(result.payload)
    assert body["event"] == {"a": 1} and body["count"] == 1 and body["requestId"] == "rid-n1"
    assert body["fn"] == "fn" and body["version"] == "$LATEST" and body["arn"].endswith(":function:fn")
    assert body["memory"] == "256" and body["group"] == "/aws/lambda/fn"
    assert body["stream"] == "2024/01/01/[$LATEST]abc"
    assert 0 < body["remaining"] <= 30000
    assert body["cc"] == {"custom": {"k": "v"}} and body["identity"] == {"cognitoIdentityId": "x"}
    assert body["trace"].endswith("Parent=rid-n1") and body["waits"] is True
    assert json.loads((await rt.invoke({})).payload)["count"] == 2
    out = await rt.settle_output()
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\trid-n1\tINFO\tnode says hi \{ a: 1 \}$", out, re.M)
    assert "\trid-n1\tWARN\ttwo\rlines\n" in out  # one event per call


async def test_errors(start: Start) -> None:
    rt = await start("index.fail")
    await rt.wait_initialized()
    result = await rt.invoke({}, request_id="rid-f")
    assert result.error_type == "TypeError"
    body = json.loads(result.payload)
    assert list(body) == ["errorType", "errorMessage", "trace"]
    assert body["errorType"] == "TypeError" and body["errorMessage"] == "node boom"
    assert body["trace"][0] == "TypeError: node boom" and "index.js:" in body["trace"][1]
    out = await rt.settle_output()
    line = next(x for x in out.splitlines() if "\tERROR\tInvoke Error \t" in x)
    assert line.split("\t")[1] == "rid-f"
    logged = json.loads(line.split("Invoke Error \t", 1)[1])
    assert logged["errorType"] == "TypeError" and logged["stack"][0] == "TypeError: node boom"
    assert (await rt.invoke({})).error_type == "TypeError"  # still alive


@pytest.mark.parametrize(("handler", "error_type", "message"), [
    ("index.throwString", "string", "just a string"),
    ("index.syncThrow", "Error", "sync boom"),
    ("index.callbackError", "RangeError", "cb error"),
    ("index.circular", "Runtime.MarshalError", "Unable to stringify response body"),
])
async def test_error_shapes(start: Start, handler: str, error_type: str, message: str) -> None:
    rt = await start(handler)
    await rt.wait_initialized()
    result = await rt.invoke({})
    body = json.loads(result.payload)
    assert body["errorType"] == error_type and body["errorMessage"].startswith(message)


async def test_callback_waits_for_empty_event_loop(start: Start) -> None:
    rt = await start("index.callback")
    await rt.wait_initialized()
    assert json.loads((await rt.invoke({"v": 7}, request_id="cb-1")).payload) == {"cb": 7}
    out = await rt.settle_output()
    # the timer ran before the answer, inside the invocation
    assert "\tcb-1\tINFO\ttimer ran" in out


async def test_callback_without_waiting(start: Start) -> None:
    rt = await start("index.noWait")
    await rt.wait_initialized()
    assert (await rt.invoke({}, timeout=10)).payload == b'"fast"'


@pytest.mark.parametrize(("handler", "expected"), [
    ("index.returnsNothing", None), ("index.legacy", {"legacy": True}), ("index.nested.deeper.fn", "nested ok"),
])
async def test_other_handler_styles(start: Start, handler: str, expected: object) -> None:
    rt = await start(handler)
    await rt.wait_initialized()
    assert json.loads((await rt.invoke({})).payload) == expected


async def test_unhandled_rejection_reports_and_exits(start: Start) -> None:
    rt = await start("index.rejectLater")
    await rt.wait_initialized()
    result = await rt.invoke({})
    assert result.error_type == "Runtime.UnhandledPromiseRejection"
    assert json.loads(result.payload)["errorMessage"] == "Error: nobody catches me"
    assert await rt.wait_exit() == 129
    with pytest.raises(RuntimeExited):
        await rt.invoke({})


@pytest.mark.parametrize(("files", "handler", "expected"), [
    ({"app.mjs": "export const handler = async () => ({ esm: 'mjs' });\n"}, "app.handler", {"esm": "mjs"}),
    ({"app.cjs": "module.exports.handler = async () => ({ cjs: true });\n"}, "app.handler", {"cjs": True}),
    ({"package.json": '{"type":"module"}', "src/app.js": "export const handler = async () => 'esm-js';\n"},
     "src/app.handler", "esm-js"),
    ({"lib/fn.js": "exports.go = (e, c, cb) => cb(null, 'in dir');\n"}, "lib/fn.go", "in dir"),
    ({"node_modules/pkgmod/index.js": "exports.handler = async () => 'from node_modules';\n"},
     "pkgmod.handler", "from node_modules"),
])
async def test_module_resolution(start: Start, files: dict[str, str], handler: str, expected: object) -> None:
    rt = await start(handler, files)
    await rt.wait_initialized()
    assert json.loads((await rt.invoke({})).payload) == expected


@pytest.mark.parametrize(("handler", "files", "error_type", "message"), [
    ("index.handler", {"other.js": ""}, "Runtime.ImportModuleError",
     "Error: Cannot find module 'index'\nRequire stack:\n- /var/runtime/index.mjs"),
    ("index.nope", {"index.js": APP}, "Runtime.HandlerNotFound", "index.nope is undefined or not exported"),
    ("index.notAFunction", {"index.js": APP}, "Runtime.HandlerNotFound", "index.notAFunction is not a function"),
    ("index", {"index.js": APP}, "Runtime.MalformedHandlerName", "Bad handler"),
    ("../index.handler", {"index.js": APP}, "Runtime.MalformedHandlerName", "'../index.handler' is not a valid"),
    ("index.handler", {"index.js": "exports.handler = ("}, "Runtime.UserCodeSyntaxError", "SyntaxError: "),
    ("index.handler", {"index.js": "throw new Error('init boom');"}, "Error", "init boom"),
])
async def test_init_errors(start: Start, handler: str, files: dict[str, str], error_type: str, message: str,
                           ) -> None:
    rt = await start(handler, files, LAMBDA_RUNTIME_DIR="/var/runtime")
    with pytest.raises(InitError) as exc:
        await rt.wait_initialized()
    assert exc.value.error_type == error_type
    body = json.loads(exc.value.payload)
    assert body["errorType"] == error_type and body["errorMessage"].startswith(message)
    assert await rt.wait_exit() == 129
    out = await rt.settle_output()
    assert "\tundefined\tERROR\tUncaught Exception \t{" in out


async def test_json_log_format(start: Start) -> None:
    files = {"index.js": "exports.handler = async () => { console.debug('hidden'); console.info('shown', 1); "
                         "return 1; };\n"}
    rt = await start("index.handler", files, AWS_LAMBDA_LOG_FORMAT="JSON", AWS_LAMBDA_LOG_LEVEL="INFO")
    await rt.wait_initialized()
    await rt.invoke({}, request_id="rid-j")
    out = await rt.settle_output()
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["message"] for r in records] == ["shown 1"]
    assert records[0]["level"] == "INFO" and records[0]["requestId"] == "rid-j"
