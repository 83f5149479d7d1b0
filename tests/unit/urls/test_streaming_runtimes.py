"""Response streaming through the real Runtime API server, from Hearth's Python and Node.js runtimes."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.unit.runtimes.harness import NODE_BOOTSTRAP, PY_BOOTSTRAP, RuntimeProcess, base_env, write_files

from hearth.runtime_api.channel import Invocation, InvocationResult, ResponseStream

PY_APP = '''
def handler(event, context):
    if event.get("mode") == "plain":
        return {"not": "streamed"}
    return gen(event)

def gen(event):
    yield {"statusCode": 201, "headers": {"x-a": "b"}}
    yield "one,"
    yield b"two"
    if event.get("fail"):
        raise RuntimeError("midway")
'''

NODE_APP = '''
exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.setContentType("text/plain");
  responseStream.write("one,");
  responseStream.write("two");
  if (event.fail) throw new Error("midway");
  responseStream.end();
});
'''


async def _start(tmp_path: Path, runtime: str) -> RuntimeProcess:
    if runtime == "python":
        write_files(tmp_path, {"app.py": PY_APP})
        proc = RuntimeProcess([sys.executable, "-I", str(PY_BOOTSTRAP)], base_env(tmp_path, "app.handler"), tmp_path)
    else:
        if shutil.which("node") is None:
            pytest.skip("node is not installed")
        write_files(tmp_path, {"index.js": NODE_APP})
        proc = RuntimeProcess(["node", str(NODE_BOOTSTRAP)], base_env(tmp_path, "index.handler"), tmp_path)
    await proc.start()
    await proc.wait_initialized()
    return proc


@pytest.fixture(params=["python", "node"])
async def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RuntimeProcess]:
    proc = await _start(tmp_path, request.param)
    try:
        yield proc
    finally:
        await proc.stop()


async def _invoke(proc: RuntimeProcess, payload: dict[str, object], sink: ResponseStream | None,
                  rid: str) -> InvocationResult:
    inv = Invocation(request_id=rid, payload=json.dumps(payload).encode(), deadline_ms=2**41,
                     invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:fn", trace_id="t",
                     sink=sink)
    return await asyncio.wait_for(proc.channel.invoke(inv), 20)


async def _drain(sink: ResponseStream) -> bytes:
    return b"".join([c async for c in sink.chunks()])


async def test_stream_to_sink(runtime: RuntimeProcess) -> None:
    sink = ResponseStream()
    result, data = await asyncio.gather(_invoke(runtime, {}, sink, "r1"), _drain(sink))
    assert result.streamed and result.error_type is None
    if sink.content_type == "text/plain":  # node
        assert data == b"one,two"
    else:
        assert sink.content_type == "application/vnd.awslambda.http-integration-response"
        assert data == b'{"statusCode": 201, "headers": {"x-a": "b"}}' + b"\0" * 8 + b"one,two"


async def test_stream_error_in_trailers(runtime: RuntimeProcess) -> None:
    sink = ResponseStream()
    result, data = await asyncio.gather(_invoke(runtime, {"fail": True}, sink, "r2"), _drain(sink))
    assert data.endswith(b"one,two")
    assert result.error_type == sink.error_type
    assert sink.error_type in ("RuntimeError", "Error")
    assert sink.error_body is not None and json.loads(sink.error_body)["errorMessage"] == "midway"
    # the runtime is still usable afterwards
    again = ResponseStream()
    result, data = await asyncio.gather(_invoke(runtime, {}, again, "r3"), _drain(again))
    assert result.error_type is None and data.endswith(b"one,two")


async def test_stream_collected_without_sink(runtime: RuntimeProcess) -> None:
    result = await _invoke(runtime, {}, None, "r4")
    assert result.streamed and result.payload.endswith(b"one,two")


async def test_python_plain_result_is_not_streamed(tmp_path: Path) -> None:
    proc = await _start(tmp_path, "python")
    try:
        sink = ResponseStream()
        result = await _invoke(proc, {"mode": "plain"}, sink, "r5")
        assert not result.streamed and json.loads(result.payload) == {"not": "streamed"}
        assert not sink.is_started
    finally:
        await proc.stop()
