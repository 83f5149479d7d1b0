"""The Invoke operation: checks an invocation request as AWS does, then hands it to the invoker.

It owns the caller-facing rules of Invoke (payload limits and encoding, invocation types, function
states) and the shape of its answer. It never runs code itself (`hearth.invoke` does).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Protocol

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.events import lineage
from hearth.functions.model import FunctionVersion
from hearth.functions.names import InvalidFunctionRef, parse_function_ref
from hearth.invoke.async_queue import ASYNC_PAYLOAD_LIMIT, AsyncQueue
from hearth.invoke.invoker import Invoker
from hearth.invoke.request import InvokeRequest
from hearth.services.lambda_.errors import maps_domain_errors

SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024  # 6,291,456 bytes, request and response
__all__ = ["ASYNC_PAYLOAD_LIMIT", "SYNC_PAYLOAD_LIMIT", "LambdaInvokeProvider"]
CLIENT_CONTEXT_LIMIT = 3583  # bytes of the base64 X-Amz-Client-Context header, as AWS


class FunctionResolver(Protocol):
    def resolve(self, account: str, region: str, name: str, qualifier: str | None) -> FunctionVersion: ...


def _user_error(code: str, message: str, status: int = 400, *, key: str = "message") -> AwsError:
    return AwsError(code, message, status, fields={"Type": "User"}, message_key=key)


@maps_domain_errors
class LambdaInvokeProvider:
    def __init__(self, functions: FunctionResolver, invoker: Invoker, queue: AsyncQueue | None = None) -> None:
        self._functions = functions
        self._invoker = invoker
        self._queue = queue  # None: events run once in the background, not durably (unit tests)

    async def invoke(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        invocation_type = params.get("InvocationType") or "RequestResponse"
        payload: bytes = params.get("Payload") or b""
        limit = ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT
        if len(payload) > limit:
            operation = "InvokeAsyncFunction" if invocation_type == "Event" else "InvokeFunction"
            raise AwsError("RequestEntityTooLargeException",
                           f"Request must be smaller than {limit} bytes for the {operation} operation", 413)
        check_json(payload)
        client_context = decode_client_context(params.get("ClientContext"))
        fv = self._functions.resolve(ctx.account_id, ctx.region, params["FunctionName"], params.get("Qualifier"))
        check_state(fv)
        if invocation_type == "DryRun":
            return {"StatusCode": 204, "Payload": b""}
        # The caller's X-Amzn-Trace-Id carries the chain's lineage (a function calling Hearth sends
        # its own trace id), so loops through Hearth's services are counted.
        incoming_trace = ctx.headers.get("x-amzn-trace-id")
        if invocation_type == "Event":
            return self._enqueue(ctx, params, fv, payload or b"{}", incoming_trace)
        outcome = await self._invoker.invoke(InvokeRequest(
            fv, payload or b"{}", tail=params.get("LogType") == "Tail", client_context=client_context,
            request_id=ctx.request_id,
            trace_id=lineage.next_hop(incoming_trace, fv.function_arn, active=fv.tracing_mode == "Active"),
            invoked_arn=invoked_arn(fv, params.get("Qualifier"), params["FunctionName"]),
        ))
        result: dict[str, Any] = {
            "StatusCode": 200,
            "ExecutedVersion": outcome.executed_version,
            "Payload": outcome.payload,
        }
        if outcome.function_error:
            result["FunctionError"] = outcome.function_error
        if outcome.log_tail is not None:
            result["LogResult"] = outcome.log_tail
        return result

    def _enqueue(self, ctx: RequestContext, params: dict[str, Any], fv: FunctionVersion, payload: bytes,
                 trace: str | None) -> dict[str, Any]:
        """202 only once the event is committed; its request id is this request's (x-amzn-RequestId),
        which the function later sees as context.aws_request_id."""
        if self._queue is None:
            self._invoker.invoke_in_background(InvokeRequest(
                fv, payload, request_id=ctx.request_id,
                trace_id=lineage.next_hop(trace, fv.function_arn, active=fv.tracing_mode == "Active")))
            return {"StatusCode": 202, "Payload": b""}
        qualifier = params.get("Qualifier")
        if qualifier is None:
            try:
                qualifier = parse_function_ref(params["FunctionName"]).qualifier
            except InvalidFunctionRef:
                qualifier = None
        self._queue.enqueue(account=fv.account_id, region=fv.region, function_name=fv.name, qualifier=qualifier,
                            payload=payload, request_id=ctx.request_id, trace_header=trace)
        return {"StatusCode": 202, "Payload": b""}


def invoked_arn(fv: FunctionVersion, qualifier: str | None, name: str) -> str:
    """What the runtime reports as `invoked_function_arn`: the function's ARN with the qualifier the
    caller used (an alias stays an alias; none means the unqualified ARN), as AWS does."""
    if qualifier is None:
        parts = name.split(":")
        # "arn:aws:lambda:region:account:function:name:q", "account:function:name:q" or "name:q"
        if (parts[0] == "arn" and len(parts) == 8) or (parts[0] != "arn" and len(parts) in (2, 4)):
            qualifier = parts[-1]
    return f"{fv.function_arn}:{qualifier}" if qualifier else fv.function_arn


def check_json(payload: bytes) -> None:
    """AWS refuses payloads that are not JSON before it runs anything."""
    if not payload:
        return
    try:
        json.loads(payload)
    except UnicodeDecodeError as exc:
        bad = payload[exc.start] if exc.start < len(payload) else 0
        raise _user_error(
            "InvalidRequestContentException",
            "Could not parse request body into json: Could not parse payload into json: "
            f"Invalid UTF-8 start byte 0x{bad:02x}",
        ) from None
    except ValueError as exc:
        raise _user_error(
            "InvalidRequestContentException",
            f"Could not parse request body into json: Could not parse payload into json: {exc}",
        ) from None


def decode_client_context(value: str | None) -> str | None:
    """X-Amz-Client-Context is base64 of a JSON document; the runtime receives the JSON."""
    if not value:
        return None
    if len(value) > CLIENT_CONTEXT_LIMIT:
        raise _user_error("InvalidRequestContentException",
                          "Client context must be smaller than 3583 bytes.")
    try:
        decoded = base64.b64decode(value, validate=True).decode()
        json.loads(decoded)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _user_error("InvalidRequestContentException",
                          "Client context must be a valid Base64-encoded JSON object.") from None
    return decoded


def check_state(fv: FunctionVersion) -> None:
    if fv.state == "Active":
        return
    if fv.state == "Inactive":
        raise AwsError("ResourceNotReadyException",
                       "The function is inactive and its environment is being recreated. Retry shortly.",
                       502, fields={"Type": "User"}, message_key="message")
    raise _user_error(
        "ResourceConflictException",
        f"The operation cannot be performed at this time. The function is currently in the following state: "
        f"{fv.state}",
        409,
    )
