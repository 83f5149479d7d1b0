"""The Extensions API's phase rules and the Telemetry API's subscriptions and buffering, without a
sandbox: register, INIT/INVOKE/SHUTDOWN completion, crashes; validation, batching by maxItems and
timeoutMs, the frozen environment, the Logs API's shapes, early records, the output splitter."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hearth.runtime_api.extensions import (
    MAX_EXTENSIONS,
    ApiError,
    ExtensionFailure,
    ExtensionsApi,
    FunctionInfo,
)
from hearth.runtime_api.telemetry import MARK, OutputSplitter, SubscribeError, TelemetryHub, parse_subscription

INFO = FunctionInfo("fn", "$LATEST", "app.handler", "123456789012")


def _api(**kwargs: Any) -> ExtensionsApi:
    return ExtensionsApi(INFO, **kwargs)


async def _done_soon(coro: Any) -> bool:
    """Whether `coro` finishes once everything ready to run has run (no timers involved)."""
    task = asyncio.ensure_future(coro)
    for _ in range(5):
        await asyncio.sleep(0)
    if task.done():
        task.result()
        return True
    task.cancel()
    return False


# -- Extensions API --------------------------------------------------------------------------------


async def test_register_answers_the_function_and_the_account_only_when_asked() -> None:
    api = _api()
    ext_id, body = api.register("one", ["INVOKE"], accept_account_id=False)
    assert json.loads(body) == {"functionName": "fn", "functionVersion": "$LATEST", "handler": "app.handler"}
    _, body = api.register("two", [], accept_account_id=True)
    assert json.loads(body)["accountId"] == "123456789012"
    assert api.get(ext_id).name == "one"
    with pytest.raises(ApiError) as exc:
        api.register("one", [], accept_account_id=False)
    assert exc.value.error_type == "Extension.AlreadyRegistered"
    with pytest.raises(ApiError) as exc:
        api.register("three", ["BOGUS"], accept_account_id=False)
    assert exc.value.status == 400
    with pytest.raises(ApiError) as exc:
        api.next_future("nope")
    assert exc.value.error_type == "Extension.UnknownExtensionIdentifier"


async def test_at_most_ten_extensions_and_only_during_init() -> None:
    api = _api()
    api.launched_future([f"e{i}" for i in range(MAX_EXTENSIONS + 1)])
    for i in range(MAX_EXTENSIONS):
        api.register(f"e{i}", ["SHUTDOWN"], accept_account_id=False)
    with pytest.raises(ApiError) as exc:
        api.register("e10", [], accept_account_id=False)
    assert exc.value.error_type == "Extension.TooManyExtensions"
    api.init_done()
    with pytest.raises(ApiError) as exc:
        api.register("late", [], accept_account_id=False)
    assert exc.value.status == 403


async def test_an_internal_extension_cannot_take_shutdown() -> None:
    with pytest.raises(ApiError) as exc:
        _api().register("inside", ["INVOKE", "SHUTDOWN"], accept_account_id=False)
    assert exc.value.error_type == "ShutdownEventNotSupportedForInternalExtension"


async def test_the_launcher_waits_until_every_extension_registered() -> None:
    api = _api()
    launched = api.launched_future(["a", "b"])
    api.register("a", [], accept_account_id=False)
    assert not launched.done()
    api.register("b", [], accept_account_id=False)
    await asyncio.sleep(0)
    assert launched.done() and launched.exception() is None
    assert not api.has_internal() and api.has_external()


async def test_a_restore_waits_for_the_launcher_that_starts_beside_the_runtime() -> None:
    # A SnapStart clone: the runtime may ask for its first invocation before the launcher said anything.
    api = _api(awaiting_launcher=True)
    assert not await _done_soon(api.wait_ready())
    launched = api.launched_future(["a"])
    a, _ = api.register("a", ["INVOKE"], accept_account_id=False)
    await asyncio.sleep(0)
    assert launched.done()
    assert not await _done_soon(api.wait_ready())  # registered, not yet waiting in next
    api.next_future(a)
    assert await _done_soon(api.wait_ready())


async def test_init_ends_when_every_extension_waits_in_next() -> None:
    api = _api()
    a, _ = api.register("a", ["INVOKE"], accept_account_id=False)
    b, _ = api.register("b", [], accept_account_id=False)
    assert not await _done_soon(api.wait_ready())
    api.next_future(a)
    assert api.pending() == ["b"]
    api.next_future(b)
    assert await _done_soon(api.wait_ready())


async def test_an_invocation_ends_when_its_extensions_ask_for_next_again() -> None:
    api = _api()
    a, _ = api.register("a", ["INVOKE"], accept_account_id=False)
    b, _ = api.register("b", [], accept_account_id=False)
    waiting = api.next_future(a)
    api.next_future(b)
    api.init_done()
    assert api.deliver_invoke("rid-1", 1234, "arn:fn", "Root=1-2-3")
    event = json.loads(await waiting)
    assert event == {"eventType": "INVOKE", "deadlineMs": 1234, "requestId": "rid-1", "invokedFunctionArn": "arn:fn",
                     "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-2-3"}}
    assert not await _done_soon(api.wait_ready())  # b took no INVOKE: only a is waited for
    api.next_future(a)
    assert await _done_soon(api.wait_ready())
    api.invoke_done()


async def test_an_event_handed_to_a_connection_that_went_away_is_offered_again() -> None:
    api = _api()
    a, _ = api.register("a", ["INVOKE"], accept_account_id=False)
    first = api.next_future(a)
    api.init_done()
    api.deliver_invoke("rid", 1, "arn", "t")
    api.abandon(a, first)
    again = api.next_future(a)
    assert json.loads(again.result())["requestId"] == "rid"


async def test_shutdown_ends_when_extensions_ask_again_or_exit() -> None:
    api = _api()
    api.launched_future(["a", "b"])
    a, _ = api.register("a", ["SHUTDOWN"], accept_account_id=False)
    b, _ = api.register("b", ["INVOKE", "SHUTDOWN"], accept_account_id=False)
    fa, fb = api.next_future(a), api.next_future(b)
    api.init_done()
    assert api.deliver_shutdown("spindown", 99)
    assert json.loads(fa.result()) == {"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": 99}
    assert json.loads(fb.result())["eventType"] == "SHUTDOWN"
    api.process_exited("a", 0)
    assert not await _done_soon(api.wait_ready())
    api.next_future(b)
    assert await _done_soon(api.wait_ready())


async def test_a_crash_during_init_fails_it_with_extension_crash() -> None:
    failures: list[ExtensionFailure] = []
    api = _api(on_init_failure=failures.append)
    launched = api.launched_future(["a"])
    api.process_exited("a", 3)
    assert [f.error_type for f in failures] == ["Extension.Crash"]
    with pytest.raises(ExtensionFailure) as exc:
        await api.wait_ready()
    assert exc.value.error_type == "Extension.Crash" and exc.value.message == "Error: exit code 3"
    assert isinstance(launched.exception(), ExtensionFailure)


async def test_init_error_and_exit_error_carry_the_extensions_error_type() -> None:
    api = _api()
    a, _ = api.register("a", ["INVOKE"], accept_account_id=False)
    api.init_error(a, "Extension.ConfigInvalid", "bad config")
    with pytest.raises(ExtensionFailure) as exc:
        await api.wait_ready()
    assert (exc.value.error_type, exc.value.message) == ("Extension.ConfigInvalid", "bad config")


# -- Telemetry API ---------------------------------------------------------------------------------


def _subscription(**overrides: Any) -> bytes:
    body: dict[str, Any] = {"schemaVersion": "2022-12-13", "types": ["function"],
                            "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
                            "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:8080/t"}}
    body.update(overrides)
    return json.dumps(body).encode()


@pytest.mark.parametrize("overrides", [
    {"schemaVersion": "1999-01-01"},
    {"types": []},
    {"types": ["platform", "bogus"]},
    {"buffering": {"maxItems": 999}},
    {"buffering": {"maxBytes": 1048577}},
    {"buffering": {"timeoutMs": 24}},
    {"buffering": {"timeoutMs": 30001}},
    {"destination": {"protocol": "HTTP", "URI": "http://example.com:8080"}},
    {"destination": {"protocol": "UDP", "port": 1}},
])
def test_subscriptions_are_validated_as_aws_does(overrides: dict[str, Any]) -> None:
    with pytest.raises(SubscribeError) as exc:
        parse_subscription("ext", "telemetry", _subscription(**overrides))
    assert exc.value.status == 400 and exc.value.error_type == "ValidationError"


def test_subscription_defaults_differ_between_the_two_apis() -> None:
    body = json.dumps({"types": ["platform"], "destination": {"protocol": "HTTP", "URI": "http://sandbox:1"}}).encode()
    logs = parse_subscription("ext", "logs", body)
    assert (logs.max_items, logs.max_bytes, logs.timeout_ms) == (10000, 262144, 1000)
    tele = parse_subscription("ext", "telemetry", _subscription(buffering=None))
    assert (tele.max_items, tele.max_bytes, tele.timeout_ms) == (1000, 262144, 1000)
    assert (tele.host, tele.port, tele.path) == ("sandbox.localdomain", 8080, "/t")


class Receiver:
    """A subscriber's HTTP listener: every batch it receives, in order."""

    def __init__(self) -> None:
        self.batches: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        self.batches.put_nowait(json.loads(await reader.readexactly(length)))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def connect(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    assert r.server is not None
    r.server.close()


async def test_a_full_buffer_is_sent_at_once_and_the_rest_after_timeout_ms(receiver: Receiver) -> None:
    hub = TelemetryHub(receiver.connect)
    hub.init_ended()
    hub.subscribe("ext", "telemetry", _subscription(buffering={"maxItems": 1000, "timeoutMs": 30000}))
    for i in range(1001):
        hub.emit("function", f"line {i}")
    first = await receiver.batches.get()
    assert [r["record"] for r in first] == [f"line {i}" for i in range(1000)]
    assert all(r["type"] == "function" for r in first)
    await hub.flush()
    assert [r["record"] for r in await receiver.batches.get()] == ["line 1000"]
    hub.close()


async def test_a_short_timeout_delivers_a_lone_record(receiver: Receiver) -> None:
    hub = TelemetryHub(receiver.connect)
    hub.init_ended()
    hub.subscribe("ext", "telemetry", _subscription(types=["platform", "extension"]))
    hub.emit("extension", "hello")
    batch = await receiver.batches.get()
    assert [r["type"] for r in batch] == ["platform.telemetrySubscription", "extension"]
    assert batch[0]["record"] == {"name": "ext", "state": "Subscribed", "types": ["extension", "platform"]}
    hub.close()


async def test_nothing_is_sent_while_frozen(receiver: Receiver) -> None:
    hub = TelemetryHub(receiver.connect)
    hub.init_ended()
    hub.subscribe("ext", "telemetry", _subscription())
    hub.freeze()
    for i in range(1000):
        hub.emit("function", str(i))
    for _ in range(3):
        await asyncio.sleep(0)
    sub = next(iter(hub._subs.values()))
    assert sub.sending is None and len(sub.items) == 1000
    hub.thaw()
    assert len(await receiver.batches.get()) == 1000
    hub.close()


async def test_records_from_init_reach_a_subscription_made_during_init(receiver: Receiver) -> None:
    hub = TelemetryHub(receiver.connect)
    hub.emit("platform.initStart", {"initializationType": "on-demand", "phase": "init"})
    hub.emit("function", "imported")
    hub.subscribe("ext", "telemetry", _subscription(types=["platform", "function"]))
    await hub.flush()
    batch = await receiver.batches.get()
    assert [r["type"] for r in batch] == ["platform.initStart", "function", "platform.telemetrySubscription"]
    hub.close()


async def test_the_logs_api_gets_its_own_record_shapes(receiver: Receiver) -> None:
    hub = TelemetryHub(receiver.connect)
    hub.init_ended()
    hub.subscribe("ext", "logs", json.dumps({
        "types": ["platform", "function"], "buffering": {"timeoutMs": 25},
        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:1"}}).encode())
    hub.emit("platform.initStart", {"initializationType": "on-demand", "phase": "init"})  # not in the Logs API
    hub.emit("platform.start", {"requestId": "r", "version": "$LATEST", "tracing": {}})
    hub.emit("function", {"message": "structured"})
    hub.emit("platform.report", {"requestId": "r", "status": "success", "metrics": {
        "durationMs": 1.5, "billedDurationMs": 2, "memorySizeMB": 128, "maxMemoryUsedMB": 20}})
    await hub.flush()
    batch = await receiver.batches.get()
    assert [r["type"] for r in batch] == ["platform.logsSubscription", "platform.start", "function", "platform.end",
                                          "platform.report"]
    assert batch[1]["record"] == {"requestId": "r", "version": "$LATEST"}
    assert batch[2]["record"] == '{"message": "structured"}'
    assert batch[4]["record"]["metrics"]["billedDurationMs"] == 2
    hub.close()


async def test_a_failed_delivery_is_reported_as_logs_dropped(receiver: Receiver) -> None:
    calls = 0

    async def flaky(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionRefusedError("not listening yet")
        return await receiver.connect(host, port)

    hub = TelemetryHub(flaky)
    hub.init_ended()
    hub.subscribe("ext", "telemetry", _subscription())
    hub.emit("function", "lost")
    await hub.flush()
    hub.emit("function", "kept")
    await hub.flush()
    batch = await receiver.batches.get()
    assert batch[0]["type"] == "platform.logsDropped" and batch[0]["record"]["droppedRecords"] == 1
    assert batch[1]["record"] == "kept"
    hub.close()


def test_the_splitter_tells_extension_lines_from_function_lines() -> None:
    seen: list[tuple[str, Any]] = []

    class Hub:
        def emit(self, event_type: str, record: Any, when: str | None = None) -> None:
            seen.append((event_type, record))

    splitter = OutputSplitter(Hub(), json_format=True)  # type: ignore[arg-type]
    out = splitter.feed(b"plain\n" + MARK + b"my-ext\x00from the extension\n{\"level\": \"INFO\"}\npart")
    assert out == b'plain\nfrom the extension\n{"level": "INFO"}\n'
    assert splitter.close() == b"part\n"
    assert seen == [("function", "plain"), ("extension", "from the extension"), ("function", {"level": "INFO"}),
                    ("function", "part")]


async def test_a_tcp_destination_gets_newline_delimited_records() -> None:
    lines: asyncio.Queue[bytes] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            lines.put_nowait(line)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hub = TelemetryHub(lambda host, p: asyncio.open_connection("127.0.0.1", p))
    hub.init_ended()
    hub.subscribe("ext", "telemetry", _subscription(destination={"protocol": "TCP", "port": port}))
    hub.emit("function", "over tcp")
    await hub.flush()
    record = json.loads(await lines.get())
    assert (record["type"], record["record"]) == ("function", "over tcp")
    hub.close()
    server.close()
