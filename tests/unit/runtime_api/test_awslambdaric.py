"""Conformance: AWS's own Python runtime interface client (awslambdaric, C++/curl HTTP client with chunked
bodies) runs unmodified against our Runtime API server."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.unit.runtimes.harness import RuntimeProcess, base_env, write_files

pytest.importorskip("awslambdaric")

APP = """
import logging
def handler(event, context):
    print("from ric", context.aws_request_id)
    if event.get("fail"):
        raise KeyError("ric-fail")
    return {"ric": event, "rid": context.aws_request_id, "arn": context.invoked_function_arn,
            "big": "y" * event.get("n", 0)}
"""


@pytest.fixture
async def ric(tmp_path: Path) -> AsyncIterator[RuntimeProcess]:
    write_files(tmp_path, {"app.py": APP})
    env = base_env(tmp_path, "app.handler", PYTHONPATH=str(tmp_path))
    proc = RuntimeProcess([sys.executable, "-m", "awslambdaric", "app.handler"], env, tmp_path)
    await proc.start()
    try:
        yield proc
    finally:
        await proc.stop()


async def test_awslambdaric_results_errors_and_large_bodies(ric: RuntimeProcess) -> None:
    await ric.wait_initialized()
    result = await ric.invoke({"v": 1}, request_id="ric-1")
    assert result.error_type is None
    body = json.loads(result.payload)
    assert body["ric"] == {"v": 1} and body["rid"] == "ric-1" and body["arn"].endswith(":function:fn")

    failed = await ric.invoke({"fail": True}, request_id="ric-2")
    assert failed.error_type is not None
    error = json.loads(failed.payload)
    assert error["errorType"] == "KeyError" and error["requestId"] == "ric-2"

    # a body big enough for curl to send with Expect: 100-continue / in several chunks
    large = await ric.invoke({"n": 3 * 1024 * 1024}, request_id="ric-3")
    assert large.error_type is None and len(json.loads(large.payload)["big"]) == 3 * 1024 * 1024

    for i in range(5):  # keep-alive across many invocations
        again = await ric.invoke({"i": i})
        assert json.loads(again.payload)["ric"] == {"i": i}
    assert "from ric ric-1" in await ric.settle_output()


async def test_awslambdaric_oversized_response(ric: RuntimeProcess) -> None:
    await ric.wait_initialized()
    result = await ric.invoke({"n": 7 * 1024 * 1024})
    assert result.error_type == "Function.ResponseSizeTooLarge"


async def test_awslambdaric_init_error(tmp_path: Path) -> None:
    env = base_env(tmp_path, "missing.handler", PYTHONPATH=str(tmp_path))
    proc = RuntimeProcess([sys.executable, "-m", "awslambdaric", "missing.handler"], env, tmp_path)
    await proc.start()
    try:
        from hearth.runtime_api.channel import InitError, RuntimeExited

        with pytest.raises((InitError, RuntimeExited)) as exc:
            await proc.wait_initialized()
        assert isinstance(exc.value, InitError), await proc.settle_output()
        assert exc.value.error_type == "Runtime.ImportModuleError"
        assert b"Unable to import module 'missing'" in exc.value.payload
    finally:
        await proc.stop()
