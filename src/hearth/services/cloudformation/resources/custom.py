"""Lambda-backed custom resources (`Custom::*`, `AWS::CloudFormation::CustomResource`): the cfn-response
protocol.

CloudFormation invokes the function named by `ServiceToken` asynchronously with a request
(`RequestType` Create/Update/Delete, `ResponseURL`, `ResourceProperties`, …) and waits until the
function PUTs its answer (`Status` SUCCESS or FAILED, `PhysicalResourceId`, `Data`, `Reason`) to the
response URL. It owns the pending requests and their answers; it never speaks HTTP itself (the
server's `/_hearth/cfn-response/<token>` route hands answers to `Responses.answer`).

Decision: the response URL is a route of Hearth's own endpoint, as a function in an environment
reaches it (its loopback proxy), not a presigned URL into a bucket of the stack's account: such a
bucket would appear in every account's ListBuckets. The function's side of the protocol is
unchanged: an HTTP PUT of the JSON answer to `ResponseURL`, as the `cfn-response` modules send it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from hearth.services.cloudformation.resources.base import Handler, Outcome, ResourceFailed, ResourceRequest

RESPONSE_TIMEOUT_S = 3600.0  # CloudFormation waits an hour for a custom resource's answer
ROUTE = "/_hearth/cfn-response/"


class Responses:
    """Answers awaited by token; a token is answered once, and only while it is awaited."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    def expect(self) -> tuple[str, asyncio.Future[dict[str, Any]]]:
        token = secrets.token_urlsafe(24)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[token] = future
        return token, future

    def forget(self, token: str) -> None:
        self._waiting.pop(token, None)

    def answer(self, token: str, body: bytes) -> tuple[int, str]:
        """(HTTP status, message) for a PUT to the response URL."""
        future = self._waiting.pop(token, None)
        if future is None or future.done():
            return 404, "no custom resource request is waiting for this response"
        try:
            document = json.loads(body)
        except ValueError:
            self._waiting[token] = future  # a malformed answer does not end the wait
            return 400, "the response is not JSON"
        if not isinstance(document, dict) or document.get("Status") not in ("SUCCESS", "FAILED"):
            self._waiting[token] = future
            return 400, "the response needs a Status of SUCCESS or FAILED"
        future.set_result(document)
        return 200, ""


class CustomResource(Handler):
    type = "AWS::CloudFormation::CustomResource"
    updatable = True

    def __init__(self, responses: Responses, response_base: Callable[[], str],
                 timeout_s: float = RESPONSE_TIMEOUT_S) -> None:
        self._responses = responses
        self._response_base = response_base  # the endpoint as functions see it
        self._timeout_s = timeout_s

    async def _send(self, r: ResourceRequest, request_type: str, old: dict[str, Any] | None = None) -> dict[str, Any]:
        token_arn = r.properties.get("ServiceToken")
        if not isinstance(token_arn, str) or not token_arn:
            raise ResourceFailed("ServiceToken is required for a custom resource")
        if ":sns:" in token_arn:
            raise ResourceFailed("SNS-backed custom resources are not supported by Hearth")
        token, future = self._responses.expect()
        request: dict[str, Any] = {
            "RequestType": request_type, "ServiceToken": token_arn,
            "ResponseURL": f"{self._response_base().rstrip('/')}{ROUTE}{token}",
            "StackId": r.stack_id, "RequestId": str(uuid.uuid4()), "LogicalResourceId": r.logical_id,
            "ResourceType": r.type, "ResourceProperties": r.properties}
        if r.physical_id is not None:
            request["PhysicalResourceId"] = r.physical_id
        if old is not None:
            request["OldResourceProperties"] = old
        try:
            await r.client("lambda", "Invoke", {"FunctionName": token_arn, "InvocationType": "Event",
                                                "Payload": json.dumps(request).encode()})
            try:
                answer = await asyncio.wait_for(future, self._timeout_s)
            except TimeoutError:
                raise ResourceFailed("CloudFormation did not receive a response from your Custom Resource. "
                                     "Please check your logs for requestId "
                                     f"[{request['RequestId']}].") from None
        finally:
            self._responses.forget(token)
        if answer.get("Status") != "SUCCESS":
            raise ResourceFailed(str(answer.get("Reason") or "Failed to create resource."))
        return answer

    async def create(self, r: ResourceRequest) -> Outcome:
        answer = await self._send(r, "Create")
        physical = str(answer.get("PhysicalResourceId") or f"{r.stack_name}-{r.logical_id}-{uuid.uuid4().hex[:12]}")
        return Outcome(physical, _data(answer))

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        answer = await self._send(r, "Update", old)
        return Outcome(str(answer.get("PhysicalResourceId") or r.physical_id), _data(answer))

    async def delete(self, r: ResourceRequest) -> None:
        await self._send(r, "Delete")


def _data(answer: dict[str, Any]) -> dict[str, Any]:
    data = answer.get("Data")
    return {str(k): v for k, v in data.items()} if isinstance(data, dict) else {}
