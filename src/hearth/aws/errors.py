"""AWS API errors raised by providers and rendered by the protocol layer.

Every error a caller can see is an `AwsError`: the protocol layer renders it per the service's
protocol (rest-json: `X-Amzn-ErrorType` header and a JSON body; json: `__type`; query: XML). Anything
else that escapes a provider is a bug and is rendered as a 500 `ServiceException` without a trace.

Exception tree::

    AwsError                      code, message, status, extra body fields
    ├── ValidationError           400 ValidationException (framework-level model validation)
    └── (any code)                e.g. AwsError("ResourceNotFoundException", "Function not found: …", 404)
"""

from __future__ import annotations

from typing import Any


class AwsError(Exception):
    """An error answered to an AWS API caller.

    `fields` are extra members of the error body (for Lambda: `Type`, `Reason`; a member set to None is
    left out, for the errors whose body AWS sends without the usual `Type`); `message_key`
    chooses how the message member is spelled in the body, because AWS is not consistent: Lambda's
    ResourceNotFoundException carries `Message`, its InvalidParameterValueException `message`.
    `headers` are extra response headers.
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        *,
        fields: dict[str, Any] | None = None,
        message_key: str = "message",
        headers: dict[str, str] | None = None,
        sender_fault: bool = True,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.fields = dict(fields or {})
        self.message_key = message_key
        self.headers = dict(headers or {})
        self.sender_fault = sender_fault


class ValidationError(AwsError):
    """The framework's model validation failure, before a provider runs."""

    def __init__(self, message: str) -> None:
        super().__init__("ValidationException", message, 400, message_key="message")
