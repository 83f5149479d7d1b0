"""Delivery of one message to a target named by its ARN: a queue, a topic, a function, an event bus.

It owns the routing from an ARN's service (`sqs`, `sns`, `lambda`, `events`) to the component that
accepts messages for it. Components register a handler at start; destinations, dead-letter queues,
topic subscriptions, rule targets and failure destinations all deliver through one `DeliveryRouter`,
so none of them imports another service. It never retries: the caller owns its retry policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


class DeliveryError(Exception):
    """The target refused or does not exist; `code` is the AWS error code when there is one."""

    def __init__(self, message: str, code: str = "DeliveryFailed") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Message:
    """What is delivered. `body` is the text the target receives (JSON for functions and buses).

    `attributes` are message attributes in SQS's shape ({name: {"DataType": ..., "StringValue": ...}});
    `trace_header` is the X-Amzn-Trace-Id of the chain that produced the message (its `Lineage`
    carries the loop-detection hop count); `source_arn` is who sends (a function, a topic, a rule).
    """

    body: str
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    trace_header: str | None = None
    source_arn: str | None = None
    group_id: str | None = None  # FIFO targets
    deduplication_id: str | None = None
    data: bytes | None = None  # bytes for targets that take bytes rather than text (a Kinesis record's data)


Handler = Callable[[str, Message], Awaitable[None]]  # (target ARN, message)


def arn_service(arn: str) -> str:
    """`arn:aws:sqs:us-east-1:000000000000:q` -> `sqs`."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        raise DeliveryError(f"not an ARN: {arn}", "InvalidParameterValueException")
    return parts[2]


class DeliveryRouter:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, service: str, handler: Handler) -> None:
        self._handlers[service] = handler

    def supports(self, arn: str) -> bool:
        try:
            return arn_service(arn) in self._handlers
        except DeliveryError:
            return False

    async def deliver(self, target_arn: str, message: Message) -> None:
        service = arn_service(target_arn)
        handler = self._handlers.get(service)
        if handler is None:
            raise DeliveryError(f"Hearth cannot deliver to {service} targets ({target_arn})",
                                "InvalidParameterValueException")
        await handler(target_arn, message)
