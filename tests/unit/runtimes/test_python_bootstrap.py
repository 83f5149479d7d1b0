"""Hearth's Python bootstrap as a subprocess against a real Runtime API server."""

from __future__ import annotations

import base64
import glob
import json
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from tests.unit.runtimes.harness import PY_BOOTSTRAP, RuntimeProcess, base_env, write_files

from hearth.runtime_api.channel import InitError

APP = """
import logging, os, sys
STATE = {"n": 0}
log = logging.getLogger("app.sub")
def handler(event, context):
    STATE["n"] += 1
    print("hello from the handler")
    logging.warning("warned %s", STATE["n"])
    log.info("info from a child logger")
    if event.get("fail"):
        raise ValueError("boom")
    if event.get("set"):
        return {1, 2}
    if event.get("bytes"):
        return b"raw-bytes"
    cc = context.client_context
    return {
        "event": event, "n": STATE["n"], "rid": context.aws_request_id,
        "name": context.function_name, "version": context.function_version,
        "arn": context.invoked_function_arn, "memory": context.memory_limit_in_mb,
        "group": context.log_group_name, "stream": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "custom": cc.custom if cc else None, "cc_env": cc.env if cc else None,
        "installation": cc.client.installation_id if cc and cc.client else None,
        "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "path0": sys.path[0], "cwd": os.getcwd(),
    }
"""

Start = Callable[..., Awaitable[RuntimeProcess]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    procs: list[RuntimeProcess] = []

    async def _start(handler: str = "app.handler", files: dict[str, str] | None = None,
                     python: str = sys.executable, **env: str) -> RuntimeProcess:
        root = tmp_path / f"task{len(procs)}"
        root.mkdir()
        write_files(root, files if files is not None else {"app.py": APP})
        proc = RuntimeProcess([python, "-I", str(PY_BOOTSTRAP)], base_env(root, handler, **env), root)
        procs.append(proc)
        await proc.start()
        return proc

    try:
        yield _start
    finally:
        for proc in procs:
            await proc.stop()


async def test_result_and_context(start: Start) -> None:
    rt = await start()
    await rt.wait_initialized()
    cc = json.dumps({"custom": {"k": "v"}, "env": {"e": 1}, "client": {"installation_id": "inst"}})
    result = await rt.invoke({"x": 1}, request_id="rid-a", client_context=cc,
                             cognito_identity='{"cognitoIdentityId":"id1","cognitoIdentityPoolId":"pool1"}')
    assert result.error_type is None
    body = json.loads(result.payload)
    assert body["event"] == {"x": 1} and body["rid"] == "rid-a" and body["n"] == 1
    assert body["name"] == "fn" and body["version"] == "$LATEST" and body["arn"].endswith(":function:fn")
    assert body["memory"] == "256" and body["group"] == "/aws/lambda/fn"
    assert body["stream"] == "2024/01/01/[$LATEST]abc"
    assert 0 < body["remaining"] <= 30000
    assert body["custom"] == {"k": "v"} and body["cc_env"] == {"e": 1} and body["installation"] == "inst"
    assert body["identity"] == ["id1", "pool1"]
    assert body["trace"].startswith("Root=1-") and body["trace"].endswith("Parent=rid-a")
    assert Path(body["path0"]) == Path(body["cwd"])  # LAMBDA_TASK_ROOT first on sys.path, and the cwd
    second = json.loads((await rt.invoke({})).payload)
    assert second["n"] == 2 and second["custom"] is None and second["identity"] == [None, None]


async def test_handler_exception(start: Start) -> None:
    rt = await start()
    await rt.wait_initialized()
    result = await rt.invoke({"fail": True}, request_id="rid-err")
    assert result.error_type == "ValueError"
    body = json.loads(result.payload)
    assert list(body) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert body["errorMessage"] == "boom" and body["errorType"] == "ValueError" and body["requestId"] == "rid-err"
    assert len(body["stackTrace"]) == 1  # the runtime's own frames are hidden
    frame = body["stackTrace"][0]
    assert frame.startswith('  File "') and '/app.py", line 11, in handler\n' in frame
    assert frame.endswith('    raise ValueError("boom")\n')
    out = await rt.settle_output()
    # one log event: lines joined by carriage returns, indentation with no-break spaces
    assert "[ERROR] ValueError: boom\rTraceback (most recent call last):\r\u00a0\u00a0File " in out
    # the environment lives on
    assert (await rt.invoke({})).error_type is None


async def test_marshal_error_and_bytes(start: Start) -> None:
    rt = await start()
    await rt.wait_initialized()
    result = await rt.invoke({"set": True})
    assert result.error_type == "Runtime.MarshalError"
    assert json.loads(result.payload)["errorMessage"] == (
        "Unable to marshal response: Object of type set is not JSON serializable")
    assert (await rt.invoke({"bytes": True})).payload == b"raw-bytes"


async def test_text_log_format(start: Start) -> None:
    rt = await start()
    await rt.wait_initialized()
    await rt.invoke({}, request_id="rid-log")
    out = await rt.settle_output()
    assert "hello from the handler\n" in out
    assert re.search(r"^\[WARNING\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\trid-log\twarned 1$", out, re.M), out
    assert "info from a child logger" not in out  # root logger level is WARNING unless configured


async def test_json_log_format_and_level(start: Start) -> None:
    rt = await start(AWS_LAMBDA_LOG_FORMAT="JSON", AWS_LAMBDA_LOG_LEVEL="DEBUG")
    await rt.wait_initialized()
    await rt.invoke({}, request_id="rid-json")
    await rt.invoke({"fail": True}, request_id="rid-json-err")
    out = await rt.settle_output()
    assert "hello from the handler\n" in out  # print() output stays raw
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    info = next(r for r in records if r.get("message") == "info from a child logger")
    assert list(info) == ["timestamp", "level", "message", "logger", "requestId"]
    assert info["level"] == "INFO" and info["logger"] == "app.sub" and info["requestId"] == "rid-json"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["timestamp"])
    err = next(r for r in records if r.get("level") == "ERROR")
    assert err["errorType"] == "ValueError" and err["requestId"] == "rid-json-err"


async def test_import_error_is_an_init_error(start: Start) -> None:
    rt = await start(files={"other.py": "x = 1\n"})
    with pytest.raises(InitError) as exc:
        await rt.wait_initialized()
    assert exc.value.error_type == "Runtime.ImportModuleError"
    body = json.loads(exc.value.payload)
    assert body == {"errorMessage": "Unable to import module 'app': No module named 'app'",
                    "errorType": "Runtime.ImportModuleError", "requestId": "", "stackTrace": []}
    assert await rt.wait_exit() == 1
    out = await rt.settle_output()
    assert "[ERROR] Runtime.ImportModuleError: Unable to import module 'app': No module named 'app'" in out


@pytest.mark.parametrize(("handler", "files", "error_type", "message"), [
    ("app.nope", {"app.py": "x = 1\n"}, "Runtime.HandlerNotFound", "Handler 'nope' missing on module 'app'"),
    ("app", {"app.py": "x = 1\n"}, "Runtime.MalformedHandlerName",
     "Bad handler 'app': not enough values to unpack (expected 2, got 1)"),
    ("app.handler", {"app.py": "def handler(:\n"}, "Runtime.UserCodeSyntaxError", "Syntax error in module 'app'"),
    ("app.handler", {"app.py": "raise RuntimeError('init fails')\n"}, "RuntimeError", "init fails"),
    ("app.handler", {"app.py": "import not_installed_anywhere\n"}, "Runtime.ImportModuleError",
     "Unable to import module 'app': No module named 'not_installed_anywhere'"),
    ("pkg.sub.mod.handler", {"pkg/__init__.py": "", "pkg/sub/__init__.py": "",
                             "pkg/sub/mod.py": "def other(e, c):\n    return 1\n"},
     "Runtime.HandlerNotFound", "Handler 'handler' missing on module 'pkg.sub.mod'"),
])
async def test_init_errors(start: Start, handler: str, files: dict[str, str], error_type: str,
                           message: str) -> None:
    rt = await start(handler, files)
    with pytest.raises(InitError) as exc:
        await rt.wait_initialized()
    assert exc.value.error_type == error_type
    assert json.loads(exc.value.payload)["errorMessage"].startswith(message)


async def test_dotted_module_and_slash_handler(start: Start) -> None:
    files = {"pkg/__init__.py": "", "pkg/mod.py": "def handler(e, c):\n    return 'dotted'\n"}
    rt = await start("pkg.mod.handler", files)
    await rt.wait_initialized()
    assert (await rt.invoke({})).payload == b'"dotted"'
    rt2 = await start("pkg/mod.handler", files)
    await rt2.wait_initialized()
    assert (await rt2.invoke({})).payload == b'"dotted"'


async def test_pythonpath_entries_follow_task_root(start: Start, tmp_path: Path) -> None:
    extra = tmp_path / "sdk"
    write_files(extra, {"shared_mod.py": "VALUE = 'from-sdk'\n", "app.py": "def handler(e, c):\n    return 'shadow'\n"})
    files = {"app.py": "import shared_mod\ndef handler(e, c):\n    return shared_mod.VALUE\n"}
    rt = await start("app.handler", files, PYTHONPATH=str(extra))
    await rt.wait_initialized()
    # PYTHONPATH is honoured although -I ignores it, and the task root wins over it
    assert (await rt.invoke({})).payload == b'"from-sdk"'


async def test_unicode_and_non_json_input(start: Start) -> None:
    files = {"app.py": "def handler(e, c):\n    return e\n"}
    rt = await start("app.handler", files)
    await rt.wait_initialized()
    result = await rt.invoke(raw='{"s":"é"}'.encode())
    assert json.loads(result.payload) == {"s": "é"}
    bad = await rt.invoke(raw=b"not json")
    assert bad.error_type == "Runtime.UnmarshalError"


def _other_pythons() -> list[str]:
    found: dict[str, str] = {}
    for minor in range(8, 15):
        for exe in sorted(glob.glob(f"/root/.pyenv/versions/3.{minor}*/bin/python3.{minor}")) + \
                sorted(glob.glob(f"/usr/bin/python3.{minor}")):
            found.setdefault(f"3.{minor}", exe)
    return [found[k] for k in sorted(found)]


@pytest.mark.parametrize("python", _other_pythons() or [sys.executable])
async def test_runs_on_every_installed_python(start: Start, python: str) -> None:
    files = {"app.py": "import sys\ndef handler(e, c):\n    return {'v': list(sys.version_info[:2]), 'e': e}\n"}
    rt = await start("app.handler", files, python=python)
    await rt.wait_initialized()
    body = json.loads((await rt.invoke({"q": 1})).payload)
    assert body["e"] == {"q": 1}
    error = await rt.invoke(raw=b"[1")
    assert error.error_type == "Runtime.UnmarshalError"


async def test_client_context_is_plain_json_not_base64(start: Start) -> None:
    rt = await start()
    await rt.wait_initialized()
    encoded = base64.b64encode(b'{"custom":{"k":"v"}}').decode()
    result = await rt.invoke({}, client_context=encoded)  # not JSON: AWS's runtime fails the invocation
    assert result.error_type == "Runtime.LambdaContextUnmarshalError"
