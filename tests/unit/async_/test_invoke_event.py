"""Invoke with InvocationType=Event: 202 after a durable enqueue, the request id, the trace header."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.unit.async_.helpers import ScriptedInvoker, make_rig, ok

from hearth.aws.context import Principal, RequestContext
from hearth.aws.errors import AwsError
from hearth.invoke.async_queue import ASYNC_PAYLOAD_LIMIT
from hearth.services.lambda_.invoke_api import LambdaInvokeProvider


def ctx(request_id: str, headers: dict[str, str] | None = None) -> RequestContext:
    return RequestContext("lambda", "Invoke", "us-east-1", Principal("AKID", "000000000000"), request_id,
                          headers=headers or {})


async def test_event_is_queued_with_the_request_id_and_trace(tmp_path: Path) -> None:
    rig = make_rig(tmp_path / "data", ScriptedInvoker(ok()))
    provider = LambdaInvokeProvider(rig.functions, rig.invoker, rig.queue)  # type: ignore[arg-type]
    params: dict[str, Any] = {"FunctionName": "fn:$LATEST", "InvocationType": "Event", "Payload": b'{"a": 1}'}
    out = await provider.invoke(ctx("rid-1", {"x-amzn-trace-id": "Root=1-abc-def;Sampled=0"}), params)
    assert out == {"StatusCode": 202, "Payload": b""}
    assert rig.queue.pending() == 1  # stored before the 202
    rows = rig.queue._db.query("SELECT id, qualifier, trace_header, payload FROM async_events")
    assert [tuple(r) for r in rows] == [("rid-1", "$LATEST", "Root=1-abc-def;Sampled=0", b'{"a": 1}')]
    rig.queue.start()
    await rig.queue.wait_idle()
    assert rig.invoker.calls[0].request_id == "rid-1"
    await rig.queue.close()


async def test_async_payload_limit(tmp_path: Path) -> None:
    rig = make_rig(tmp_path / "data", ScriptedInvoker(ok()))
    provider = LambdaInvokeProvider(rig.functions, rig.invoker, rig.queue)  # type: ignore[arg-type]
    big = b'"' + b"x" * ASYNC_PAYLOAD_LIMIT + b'"'
    with pytest.raises(AwsError) as exc:
        await provider.invoke(ctx("rid-2"), {"FunctionName": "fn", "InvocationType": "Event", "Payload": big})
    assert (exc.value.code, exc.value.status) == ("RequestEntityTooLargeException", 413)
    assert exc.value.message == "Request must be smaller than 1048576 bytes for the InvokeAsyncFunction operation"
    assert rig.queue.pending() == 0
    await rig.queue.close()
