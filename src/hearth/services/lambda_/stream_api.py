"""The InvokeWithResponseStream operation and AWS's event-stream encoding of its answer.

It owns the operation's answer: HTTP 200 with the function's stream content type and
`X-Amz-Executed-Version`, then `PayloadChunk` events as the runtime writes (one chunk holding the whole
payload when the function answered without streaming) and a final `InvokeComplete` event with
`ErrorCode`/`ErrorDetails` for a function error and `LogResult` when the caller asked for the log tail.
Request checks are Invoke's (payload size and JSON, client context, function state). It never runs
code itself (the invoker does).

Its events are framed by `hearth.aws.eventstream` (application/vnd.amazon.eventstream).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.aws.eventstream import encode_message
from hearth.events import lineage
from hearth.invoke.invoker import Invoker
from hearth.invoke.request import InvokeOutcome, InvokeRequest
from hearth.runtime_api.channel import ResponseStream
from hearth.services.base import RawResponse
from hearth.services.lambda_.errors import maps_domain_errors
from hearth.services.lambda_.invoke_api import (
    SYNC_PAYLOAD_LIMIT,
    FunctionResolver,
    check_json,
    check_state,
    decode_client_context,
)


def payload_chunk(data: bytes) -> bytes:
    return encode_message([(":event-type", "PayloadChunk"), (":content-type", "application/octet-stream"),
                           (":message-type", "event")], data)


def invoke_complete(error_code: str | None, error_details: str | None, log_result: str | None) -> bytes:
    body: dict[str, str] = {}
    if error_code is not None:
        body["ErrorCode"] = error_code
    if error_details is not None:
        body["ErrorDetails"] = error_details
    if log_result is not None:
        body["LogResult"] = log_result
    return encode_message([(":event-type", "InvokeComplete"), (":content-type", "application/json"),
                           (":message-type", "event")], json.dumps(body).encode())


def _details(payload: bytes | None) -> str:
    return (payload or b"").decode("utf-8", "replace")


@maps_domain_errors
class LambdaStreamProvider:
    def __init__(self, functions: FunctionResolver, invoker: Invoker) -> None:
        self._functions = functions
        self._invoker = invoker

    async def invoke_with_response_stream(self, ctx: RequestContext, params: dict[str, Any]) -> RawResponse:
        payload: bytes = params.get("Payload") or b""
        if len(payload) > SYNC_PAYLOAD_LIMIT:
            raise AwsError("RequestEntityTooLargeException",
                           f"Request must be smaller than {SYNC_PAYLOAD_LIMIT} bytes for the "
                           "InvokeWithResponseStream operation", 413)
        check_json(payload)
        client_context = decode_client_context(params.get("ClientContext"))
        fv = self._functions.resolve(ctx.account_id, ctx.region, params["FunctionName"], params.get("Qualifier"))
        check_state(fv)
        headers = {"X-Amz-Executed-Version": fv.version}
        if params.get("InvocationType") == "DryRun":
            return RawResponse(204, headers, b"")
        tail = params.get("LogType") == "Tail"
        sink = ResponseStream()
        task = asyncio.create_task(self._invoker.invoke(InvokeRequest(
            fv, payload or b"{}", tail=tail, client_context=client_context, request_id=ctx.request_id, stream=sink,
            trace_id=lineage.next_hop(ctx.headers.get("x-amzn-trace-id"), fv.function_arn,
                                      active=fv.tracing_mode == "Active"))))
        if not await sink.started_or_done(task):
            outcome = task.result()  # an AwsError (throttling) is the operation's error
            headers["Content-Type"] = "application/json"
            return RawResponse(200, headers, _buffered(outcome))
        headers["Content-Type"] = sink.content_type or "application/octet-stream"
        return RawResponse(200, headers, _streamed(sink, task))


async def _buffered(outcome: InvokeOutcome) -> AsyncIterator[bytes]:
    if outcome.function_error:
        yield invoke_complete(outcome.error_type or outcome.function_error, _details(outcome.payload),
                              outcome.log_tail)
        return
    if outcome.payload:
        yield payload_chunk(outcome.payload)
    yield invoke_complete(None, None, outcome.log_tail)


async def _streamed(sink: ResponseStream, task: asyncio.Task[InvokeOutcome]) -> AsyncIterator[bytes]:
    async for chunk in sink.chunks():
        yield payload_chunk(chunk)
    results = await asyncio.gather(task, return_exceptions=True)
    outcome = results[0] if isinstance(results[0], InvokeOutcome) else None
    log_tail = outcome.log_tail if outcome is not None else None
    if sink.error_type is not None:
        yield invoke_complete(sink.error_type, _details(sink.error_body), log_tail)
    else:
        yield invoke_complete(None, None, log_tail)

