"""The Runtime API server and its channel, driven over a real loopback socket."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from tests.unit.runtime_api.conftest import Api, RawClient

from hearth.runtime_api.channel import (
    MAX_RESPONSE_BYTES,
    InitError,
    Invocation,
    InvocationResult,
    RuntimeExited,
)

NEXT = "/2018-06-01/runtime/invocation/next"


def _inv(rid: str = "rid-1", payload: bytes = b'{"x":1}', **kw: str) -> Invocation:
    return Invocation(request_id=rid, payload=payload, deadline_ms=int(time.time() * 1000) + 3000,
                      invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:f",
                      trace_id="Root=1-abc;Sampled=0", **kw)


async def _start(api: Api, client: RawClient, inv: Invocation) -> asyncio.Task[InvocationResult]:
    """Runtime asks for /next, the environment invokes: returns the invoke task after /next answered."""
    await client.send(f"GET {NEXT} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await asyncio.wait_for(api.channel.wait_initialized(), 5)
    return asyncio.create_task(api.channel.invoke(inv))


async def test_next_then_response(api: Api, client: RawClient) -> None:
    task = await _start(api, client, _inv(client_context='{"custom":{"k":"v"}}', cognito_identity='{"a":1}'))
    resp = await client.read_response()
    assert resp.status == 200 and resp.body == b'{"x":1}'
    assert resp.headers["lambda-runtime-aws-request-id"] == "rid-1"
    assert resp.headers["lambda-runtime-invoked-function-arn"].endswith(":function:f")
    assert resp.headers["lambda-runtime-trace-id"] == "Root=1-abc;Sampled=0"
    assert int(resp.headers["lambda-runtime-deadline-ms"]) > time.time() * 1000
    assert resp.headers["lambda-runtime-client-context"] == '{"custom":{"k":"v"}}'
    assert resp.headers["lambda-runtime-cognito-identity"] == '{"a":1}'
    assert resp.headers["content-type"] == "application/json"
    answer = await client.request("POST", "/2018-06-01/runtime/invocation/rid-1/response", b'{"ok":true}')
    assert answer.status == 202 and json.loads(answer.body) == {"status": "OK"}
    assert await asyncio.wait_for(task, 5) == InvocationResult(b'{"ok":true}', None)


async def test_optional_headers_absent(api: Api, client: RawClient) -> None:
    task = await _start(api, client, _inv())
    resp = await client.read_response()
    assert "lambda-runtime-client-context" not in resp.headers
    assert "lambda-runtime-cognito-identity" not in resp.headers
    await client.request("POST", "/2018-06-01/runtime/invocation/rid-1/response", b"1")
    await asyncio.wait_for(task, 5)


async def test_invocation_queued_before_next(api: Api, client: RawClient) -> None:
    # The first /next completes INIT; the invocation then waits for the second /next.
    first = await _start(api, client, _inv("a"))
    assert (await client.read_response()).headers["lambda-runtime-aws-request-id"] == "a"
    await client.request("POST", "/2018-06-01/runtime/invocation/a/response", b"1")
    await asyncio.wait_for(first, 5)
    second = asyncio.create_task(api.channel.invoke(_inv("b", b"2")))
    await asyncio.sleep(0.01)
    resp = await client.request("GET", NEXT)
    assert resp.headers["lambda-runtime-aws-request-id"] == "b" and resp.body == b"2"
    await client.request("POST", "/2018-06-01/runtime/invocation/b/response", b"3")
    assert (await asyncio.wait_for(second, 5)).payload == b"3"


async def test_chunked_response_body(api: Api, client: RawClient) -> None:
    task = await _start(api, client, _inv())
    await client.read_response()
    body = json.dumps({"k": "v" * 100}).encode()
    answer = await client.request("POST", "/2018-06-01/runtime/invocation/rid-1/response", body, chunked=True,
                                  headers={"Expect": "100-continue"})
    if answer.status == 100:
        answer = await client.read_response()
    assert answer.status == 202
    assert (await asyncio.wait_for(task, 5)).payload == body


async def test_function_error_uses_header_then_body(api: Api, client: RawClient) -> None:
    task = await _start(api, client, _inv())
    await client.read_response()
    err = b'{"errorMessage":"boom","errorType":"ValueError"}'
    answer = await client.request("POST", "/2018-06-01/runtime/invocation/rid-1/error", err,
                                  headers={"Lambda-Runtime-Function-Error-Type": "Custom.Kind"})
    assert answer.status == 202
    assert await asyncio.wait_for(task, 5) == InvocationResult(err, "Custom.Kind")

    task = asyncio.create_task(api.channel.invoke(_inv("rid-2")))
    await client.request("GET", NEXT)
    await client.request("POST", "/2018-06-01/runtime/invocation/rid-2/error", err)
    assert (await asyncio.wait_for(task, 5)).error_type == "ValueError"

    task = asyncio.create_task(api.channel.invoke(_inv("rid-3")))
    await client.request("GET", NEXT)
    await client.request("POST", "/2018-06-01/runtime/invocation/rid-3/error", b"not json")
    assert await asyncio.wait_for(task, 5) == InvocationResult(b"not json", "Unhandled")


async def test_wrong_and_repeated_request_id(api: Api, client: RawClient) -> None:
    task = await _start(api, client, _inv())
    await client.read_response()
    wrong = await client.request("POST", "/2018-06-01/runtime/invocation/someone-else/response", b"1")
    assert wrong.status == 400
    assert json.loads(wrong.body) == {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}
    assert not task.done()
    assert (await client.request("POST", "/2018-06-01/runtime/invocation/rid-1/response", b"1")).status == 202
    again = await client.request("POST", "/2018-06-01/runtime/invocation/rid-1/response", b"2")
    assert again.status == 403 and json.loads(again.body)["errorType"] == "InvalidStateTransition"
    assert (await asyncio.wait_for(task, 5)).payload == b"1"
    # after the next /next the old id is stale
    nxt = asyncio.create_task(client.request("GET", NEXT))
    await asyncio.sleep(0.01)
    other = await RawClient.connect(api.port)
    try:
        stale = await other.request("POST", "/2018-06-01/runtime/invocation/rid-1/error", b"{}")
        assert stale.status == 400
    finally:
        await other.close()
    nxt.cancel()


async def test_oversized_response(api: Api, client: RawClient) -> None:
    task = await _start(api, client, _inv())
    await client.read_response()
    big = b'"' + b"x" * MAX_RESPONSE_BYTES + b'"'
    answer = await client.request("POST", "/2018-06-01/runtime/invocation/rid-1/response", big)
    assert answer.status == 413
    assert json.loads(answer.body)["errorType"] == "RequestEntityTooLarge"
    result = await asyncio.wait_for(task, 5)
    assert result.error_type == "Function.ResponseSizeTooLarge"
    assert json.loads(result.payload) == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge"}


async def test_exactly_max_size_is_accepted(api: Api, client: RawClient) -> None:
    task = await _start(api, client, _inv())
    await client.read_response()
    body = b"x" * MAX_RESPONSE_BYTES
    answer = await client.request("POST", "/2018-06-01/runtime/invocation/rid-1/response", body, chunked=False)
    assert answer.status == 202
    assert len((await asyncio.wait_for(task, 5)).payload) == MAX_RESPONSE_BYTES


async def test_init_error(api: Api, client: RawClient) -> None:
    waiter = asyncio.create_task(api.channel.wait_initialized())
    body = b'{"errorMessage":"Unable to import module \'app\'","errorType":"Runtime.ImportModuleError"}'
    resp = await client.request("POST", "/2018-06-01/runtime/init/error", body,
                                headers={"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
    assert resp.status == 202
    with pytest.raises(InitError) as exc:
        await asyncio.wait_for(waiter, 5)
    assert exc.value.error_type == "Runtime.ImportModuleError" and exc.value.payload == body
    # nothing else is allowed after a failed INIT
    assert (await client.request("GET", NEXT)).status == 403


async def test_init_error_after_init_is_refused(api: Api, client: RawClient) -> None:
    task = await _start(api, client, _inv())
    await client.read_response()
    resp = await client.request("POST", "/2018-06-01/runtime/init/error", b"{}")
    assert resp.status == 403 and json.loads(resp.body)["errorType"] == "InvalidStateTransition"
    await client.request("POST", "/2018-06-01/runtime/invocation/rid-1/response", b"1")
    await asyncio.wait_for(task, 5)


async def test_next_while_invoking_is_refused(api: Api, client: RawClient) -> None:
    task = await _start(api, client, _inv())
    await client.read_response()
    resp = await client.request("GET", NEXT)
    assert resp.status == 403
    await client.request("POST", "/2018-06-01/runtime/invocation/rid-1/response", b"1")
    await asyncio.wait_for(task, 5)


async def test_unknown_path_wrong_method_and_garbage(api: Api, client: RawClient) -> None:
    assert (await client.request("GET", "/2018-06-01/runtime/nope")).status == 404
    assert (await client.request("GET", "/")).status == 404
    assert (await client.request("POST", NEXT, b"")).status == 405
    assert (await client.request("GET", "/2018-06-01/runtime/invocation/x/response")).status == 405
    assert (await client.request("GET", "/2018-06-01/runtime/init/error")).status == 405
    await client.send(b"NONSENSE\r\n\r\n")
    resp = await client.read_response()
    assert resp.status == 400 and resp.headers.get("connection") == "close"


async def test_runtime_exit_while_waiting(api: Api, client: RawClient) -> None:
    task = await _start(api, client, _inv())
    await client.read_response()
    api.channel.runtime_exited(-9)
    with pytest.raises(RuntimeExited) as exc:
        await asyncio.wait_for(task, 5)
    assert exc.value.status == -9
    with pytest.raises(RuntimeExited):
        await api.channel.invoke(_inv("later"))


async def test_runtime_exit_during_init(api: Api) -> None:
    waiter = asyncio.create_task(api.channel.wait_initialized())
    await asyncio.sleep(0)
    api.channel.runtime_exited(1)
    with pytest.raises(RuntimeExited):
        await asyncio.wait_for(waiter, 5)


async def test_cancelled_invoke_leaves_nothing_behind(api: Api, client: RawClient) -> None:
    task = await _start(api, client, _inv())
    await client.read_response()
    await client.request("POST", "/2018-06-01/runtime/invocation/rid-1/response", b"1")
    await asyncio.wait_for(task, 5)
    # queued invocation that nobody takes, then a timeout
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(api.channel.invoke(_inv("lost")), 0.05)
    stats = api.channel.statistics()
    assert stats["queued"] is False
    assert api.channel._results == {}
    # the runtime's next /next does not get the abandoned invocation: it waits for the next one
    nxt = asyncio.create_task(client.request("GET", NEXT))
    follow = asyncio.create_task(api.channel.invoke(_inv("fresh")))
    resp = await asyncio.wait_for(nxt, 5)
    assert resp.headers["lambda-runtime-aws-request-id"] == "fresh"
    await client.request("POST", "/2018-06-01/runtime/invocation/fresh/response", b"2")
    assert (await asyncio.wait_for(follow, 5)).payload == b"2"


async def test_late_answer_after_timeout_is_accepted_and_dropped(api: Api, client: RawClient) -> None:
    await client.send(f"GET {NEXT} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await asyncio.wait_for(api.channel.wait_initialized(), 5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(api.channel.invoke(_inv("slow")), 0.05)
    await client.read_response()
    late = await client.request("POST", "/2018-06-01/runtime/invocation/slow/response", b"1")
    assert late.status == 202
    assert api.channel._results == {}


async def test_dropped_connection_gives_invocation_to_the_next_one(api: Api) -> None:
    first = await RawClient.connect(api.port)
    await first.send(f"GET {NEXT} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await asyncio.wait_for(api.channel.wait_initialized(), 5)
    await first.close()
    await asyncio.sleep(0.02)  # let the server see the close
    task = asyncio.create_task(api.channel.invoke(_inv()))
    second = await RawClient.connect(api.port)
    try:
        resp = await second.request("GET", NEXT)
        assert resp.headers["lambda-runtime-aws-request-id"] == "rid-1"
        await second.request("POST", "/2018-06-01/runtime/invocation/rid-1/response", b"ok")
        assert (await asyncio.wait_for(task, 5)).payload == b"ok"
    finally:
        await second.close()


async def test_pipelined_requests_on_one_connection(api: Api, client: RawClient) -> None:
    task = await _start(api, client, _inv())
    await client.read_response()
    # a response and the following /next sent in one write
    await client.send(b"POST /2018-06-01/runtime/invocation/rid-1/response HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"
                      + f"GET {NEXT} HTTP/1.1\r\n\r\n".encode())
    assert (await client.read_response()).status == 202
    assert (await asyncio.wait_for(task, 5)).payload == b"ok"
    task = asyncio.create_task(api.channel.invoke(_inv("two")))
    assert (await client.read_response()).headers["lambda-runtime-aws-request-id"] == "two"
    await client.request("POST", "/2018-06-01/runtime/invocation/two/response", b"2")
    await asyncio.wait_for(task, 5)


async def test_close_stops_serving(api: Api) -> None:
    c = await RawClient.connect(api.port)
    await api.server.close()
    data = await asyncio.wait_for(c.reader.read(), 5)
    assert data == b""
    await c.close()
    with pytest.raises(OSError):
        await RawClient.connect(api.port)


def test_serves_under_uvloop() -> None:
    """Hearth runs on uvloop, whose transports are not asyncio.Transport subclasses."""
    uvloop = pytest.importorskip("uvloop")
    import socket

    from hearth.runtime_api.channel import EnvironmentChannel
    from hearth.runtime_api.server import RuntimeApiServer

    async def scenario() -> bytes:
        channel = EnvironmentChannel("uv")
        server = RuntimeApiServer(channel)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        serving = asyncio.create_task(server.serve(listener))
        client = await RawClient.connect(listener.getsockname()[1])
        try:
            await client.send(f"GET {NEXT} HTTP/1.1\r\n\r\n".encode())
            await asyncio.wait_for(channel.wait_initialized(), 5)
            task = asyncio.create_task(channel.invoke(_inv()))
            await client.read_response()
            await client.request("POST", "/2018-06-01/runtime/invocation/rid-1/response", b"uv")
            return (await asyncio.wait_for(task, 5)).payload
        finally:
            await client.close()
            await server.close()
            await asyncio.wait_for(serving, 5)
            listener.close()

    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(scenario()) == b"uv"
    finally:
        loop.close()
