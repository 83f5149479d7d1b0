"""What every CloudFormation resource type shares: the request a handler gets, its outcome, names.

A handler turns a resource's (already evaluated) properties into calls of Hearth's own APIs through
`ServiceClient` — the same operations, validation and errors a boto3 caller gets — and says what
`Ref` and `Fn::GetAtt` return. It never touches another service's storage directly.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import string
import time
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from botocore.model import ListShape, MapShape, Shape, StructureShape

from hearth.aws.context import Principal
from hearth.aws.errors import AwsError
from hearth.aws.models import service_api

Call = Callable[[str, str, dict[str, Any]], Awaitable[dict[str, Any]]]


class ResourceFailed(Exception):
    """A resource could not be created, updated or deleted; the text is the event's ResourceStatusReason."""


@dataclass
class ServiceClient:
    """Hearth's APIs, called in-process on behalf of one stack's account and region."""

    call_fn: Callable[..., Awaitable[dict[str, Any]]]
    account: str
    region: str
    principal: Principal | None = None  # who the stack operation acts as (None: the account's root)

    async def __call__(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        api = service_api(service)
        op = api.operation(operation) if api is not None else None
        params = _drop_none(params)
        if op is not None and op.input_shape is not None:
            params = coerce(op.input_shape, params)
        return await self.call_fn(service, operation, params, account_id=self.account, region=self.region,
                                  caller="cloudformation", principal=self.principal)


def _drop_none(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None}


def coerce(shape: Shape, value: Any) -> Any:
    """A template's scalar as the type the API's model wants, as CloudFormation converts them
    (`Variable1: 1234` in a template reaches Lambda as the string "1234"; "true" reaches a boolean)."""
    kind = shape.type_name
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        return {k: coerce(shape.members[k], v) if k in shape.members else v for k, v in value.items()}
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [coerce(shape.member, v) for v in value]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {str(k): coerce(shape.value, v) for k, v in value.items()}
    if kind == "string" and isinstance(value, (bool, int, float)):
        return ("true" if value else "false") if isinstance(value, bool) else str(value)
    if kind in ("integer", "long") and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if kind in ("float", "double") and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if kind == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


@dataclass
class ResourceRequest:
    logical_id: str
    type: str
    properties: dict[str, Any]
    stack_name: str
    stack_id: str
    client: ServiceClient
    physical_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    # Set by a create as soon as the resource exists: if a later step fails, the engine deletes it
    # (a failed create leaves nothing behind, as CloudFormation's handlers promise).
    created: str | None = None

    @property
    def account(self) -> str:
        return self.client.account

    @property
    def region(self) -> str:
        return self.client.region

    def name(self, prop: str, max_length: int, *, lower: bool = False, suffix: str = "") -> str:
        """The `prop` property, or a name CloudFormation-style: `<stack>-<logical id>-<13 random>`."""
        given = self.properties.get(prop)
        if given:
            return str(given)
        return generated_name(self.stack_name, self.logical_id, max_length, lower=lower, suffix=suffix)


@dataclass
class Outcome:
    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    ref: Any = None  # what `Ref` returns when it is not the physical id


def generated_name(stack: str, logical: str, max_length: int, *, lower: bool = False, suffix: str = "") -> str:
    alphabet = (string.ascii_lowercase if lower else string.ascii_uppercase) + string.digits
    tail = "".join(secrets.choice(alphabet) for _ in range(13))
    room = max_length - len(tail) - 2 - len(suffix)
    base = f"{stack}-{logical}"[:room]
    name = f"{base}-{tail}{suffix}"
    return name.lower() if lower else name


class Handler:
    """One resource type. Subclasses set `type`, `attributes`, `replace_on` and the three operations."""

    type: ClassVar[str] = ""
    attributes: ClassVar[tuple[str, ...]] = ()
    # Properties whose change needs a new resource (AWS's "Update requires: Replacement").
    replace_on: ClassVar[frozenset[str]] = frozenset()
    updatable: ClassVar[bool] = True  # False: every change replaces

    async def create(self, r: ResourceRequest) -> Outcome:
        raise NotImplementedError

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        raise NotImplementedError

    async def delete(self, r: ResourceRequest) -> None:
        raise NotImplementedError


def as_json(value: Any) -> str:
    """A policy or pattern property: CloudFormation accepts an object or a JSON string."""
    return value if isinstance(value, str) else json.dumps(value)


def tags_dict(tags: Any) -> dict[str, str]:
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t["Key"]): str(t["Value"]) for t in tags or []}


def tags_list(tags: Any) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags_dict(tags).items()]


async def ignore_missing(call: Awaitable[Any]) -> None:
    """Deleting what is gone already succeeds (CloudFormation's delete is idempotent)."""
    try:
        await call
    except AwsError as err:
        if "NotFound" in err.code or "NoSuch" in err.code or err.code in ("NonExistentQueue",
                                                                            "AWS.SimpleQueueService.NonExistentQueue"):
            return
        raise


async def wait_until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while not await check():
        if time.monotonic() > deadline:
            raise ResourceFailed(f"Timed out waiting for {what}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


async def read_all(body: bytes | AsyncIterable[bytes], limit: int) -> bytes:
    """An object body as S3's GetObject hands it (bytes, or chunks as they are read), at most `limit`
    bytes of it."""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body[:limit])
    chunks: list[bytes] = []
    size = 0
    async for chunk in body:
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)
