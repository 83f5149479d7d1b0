"""Fakes for the async queue: functions, an invoker that follows a script, a recording router."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hearth.events.delivery import DeliveryError, DeliveryRouter, Message
from hearth.functions import errors
from hearth.functions.model import FunctionVersion
from hearth.functions.names import function_arn, parse_function_ref
from hearth.invoke.async_queue import AsyncPolicy, AsyncQueue, AsyncQueueConfig, ManualClock
from hearth.invoke.errors import Throttled, ThrottleReason
from hearth.invoke.request import InvokeOutcome, InvokeRequest

ACCOUNT = "000000000000"
REGION = "us-east-1"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:records"
DLQ_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:dlq"


def fv(name: str, state: str = "Active") -> FunctionVersion:
    return FunctionVersion(
        account_id=ACCOUNT, region=REGION, name=name, version="$LATEST",
        function_arn=function_arn(REGION, ACCOUNT, name), runtime="python3.11", handler="app.handler",
        memory_mb=128, timeout_s=3, ephemeral_mb=512, environment={}, code_dir=Path("/nonexistent"),
        code_sha256="0" * 64, revision_id="r", state=state,
    )


@dataclass
class FakeConfig:
    dead_letter_target: str | None = None


@dataclass
class FakeFunctions:
    versions: dict[str, FunctionVersion] = field(default_factory=dict)
    dead_letters: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, state: str = "Active") -> FunctionVersion:
        self.versions[name] = fv(name, state)
        return self.versions[name]

    def resolve(self, account: str, region: str, name: str, qualifier: str | None) -> FunctionVersion:
        name = parse_function_ref(name).name
        if name not in self.versions:
            raise errors.not_found(function_arn(region, account, name, qualifier or "$LATEST"))
        return self.versions[name]

    def get_qualified(self, account: str, region: str, name: str, qualifier: str | None) -> FakeConfig:
        if name not in self.versions:
            raise errors.not_found(function_arn(region, account, name))
        return FakeConfig(self.dead_letters.get(name))


def ok(payload: object = None) -> Callable[[], InvokeOutcome]:
    return lambda: InvokeOutcome("", json.dumps(payload).encode(), None, None, "$LATEST", None, 1.0, False)


def fails(message: str = "boom") -> Callable[[], InvokeOutcome]:
    body = json.dumps({"errorMessage": message, "errorType": "Exception"}).encode()
    return lambda: InvokeOutcome("", body, "Unhandled", "Exception", "$LATEST", None, 1.0, False)


def throttled() -> Callable[[], InvokeOutcome]:
    def raise_() -> InvokeOutcome:
        raise Throttled(ThrottleReason.ACCOUNT)
    return raise_


@dataclass
class Call:
    name: str
    payload: bytes
    request_id: str | None
    trace_id: str | None


class ScriptedInvoker:
    """Each call takes the next step of the script (the last step repeats)."""

    def __init__(self, *steps: Callable[[], InvokeOutcome]) -> None:
        self.steps = list(steps) or [ok()]
        self.calls: list[Call] = []

    async def invoke(self, request: InvokeRequest) -> InvokeOutcome:
        self.calls.append(Call(request.version.name, request.payload, request.request_id, request.trace_id))
        step = self.steps[min(len(self.calls) - 1, len(self.steps) - 1)]
        return step()


class Recorder:
    """A router handler that keeps what it receives; `fail` makes it refuse."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Message]] = []
        self.fail = False

    async def __call__(self, arn: str, message: Message) -> None:
        if self.fail:
            raise DeliveryError("no such queue", "AWS.SimpleQueueService.NonExistentQueue")
        self.received.append((arn, message))

    def bodies(self, arn: str) -> list[dict[str, object]]:
        return [json.loads(m.body) for a, m in self.received if a == arn]


class Policies:
    def __init__(self) -> None:
        self.policy = AsyncPolicy()
        self.allow_recursion = False

    def async_policy(self, account: str, region: str, name: str, qualifier: str | None) -> AsyncPolicy:
        return self.policy

    def recursion_allowed(self, account: str, region: str, name: str) -> bool:
        return self.allow_recursion


@dataclass
class Rig:
    queue: AsyncQueue
    clock: ManualClock
    invoker: ScriptedInvoker
    functions: FakeFunctions
    sqs: Recorder
    router: DeliveryRouter
    policies: Policies

    def enqueue(self, name: str = "fn", payload: bytes = b'{"n": 1}', trace: str | None = None,
                request_id: str | None = None) -> str:
        return self.queue.enqueue(account=ACCOUNT, region=REGION, function_name=name, qualifier=None,
                                  payload=payload, request_id=request_id, trace_header=trace)

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.queue.wait_idle()


def make_rig(data_dir: Path, invoker: ScriptedInvoker, *, clock: ManualClock | None = None,
             functions: FakeFunctions | None = None, policies: Policies | None = None) -> Rig:
    clock = clock or ManualClock()
    functions = functions or FakeFunctions()
    if not functions.versions:
        functions.add("fn")
    router = DeliveryRouter()
    sqs = Recorder()
    router.register("sqs", sqs)
    policies = policies or Policies()
    queue = AsyncQueue(data_dir, invoker, functions, router, policies=policies, clock=clock,
                       config=AsyncQueueConfig())
    router.register("lambda", queue.deliver_to_function)
    return Rig(queue, clock, invoker, functions, sqs, router, policies)
