"""An environment with an extension, against the fake backend: INIT waits for the extension's first
`next`, the caller's answer does not wait for the extension, and the invocation (its REPORT) ends only
when the extension asks for its next event; SHUTDOWN reaches it before the sandbox goes."""

from __future__ import annotations

import asyncio
import json

from tests.unit.invoke.test_fake_backend import echo, invocation, started_env

from hearth.invoke.environment import EnvState
from hearth.sandbox.fake import FakeBackend, FakeFunction


class Extension:
    """A test-side external extension speaking HTTP/1.1 to the environment's Runtime API listener."""

    def __init__(self) -> None:
        self.port = 0
        self.ext_id = ""
        self.events: asyncio.Queue[dict[str, object]] = asyncio.Queue()

    async def register(self, port: int) -> None:
        self.port = port
        # As the extensions launcher does: an external extension (only those may take SHUTDOWN).
        names = b'{"extensions":["ext"]}'
        await self._call("POST", "/2020-01-01/hearth/launching", names, {})
        launched = asyncio.ensure_future(self._call("POST", "/2020-01-01/hearth/launched", names, {}))
        headers, _ = await self._call("POST", "/2020-01-01/extension/register", b'{"events":["INVOKE","SHUTDOWN"]}',
                                      {"Lambda-Extension-Name": "ext"})
        self.ext_id = headers["lambda-extension-identifier"]
        assert (await launched)[1] == b'{"status":"OK"}'  # the runtime may start now
        self.ask_next()

    def ask_next(self) -> None:
        async def wait() -> None:
            _, body = await self._call("GET", "/2020-01-01/extension/event/next", b"",
                                       {"Lambda-Extension-Identifier": self.ext_id})
            self.events.put_nowait(json.loads(body))

        self._task = asyncio.ensure_future(wait())

    async def _call(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[dict[str, str], bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
                     + body)
        raw = await reader.readuntil(b"\r\n\r\n")
        got = {}
        for line in raw.decode().split("\r\n")[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                got[name.strip().lower()] = value.strip()
        data = await reader.readexactly(int(got.get("content-length", "0")))
        writer.close()
        return got, data


async def test_the_invocation_ends_when_the_extension_asks_for_its_next_event() -> None:
    ext = Extension()
    backend = FakeBackend(FakeFunction(echo, before_init=ext.register))
    pool, env = await started_env(backend)  # INIT is over only once the extension waits in next
    run = await env.invoke(invocation(), 3.0)
    assert run.result.payload == b'{"x": 1}'  # the caller has its answer ...
    assert run.after is not None and env.state is EnvState.INVOKING  # ... the invocation goes on
    event = await ext.events.get()
    assert event["eventType"] == "INVOKE" and event["requestId"] == "req-1"
    for _ in range(3):
        await asyncio.sleep(0)
    assert not run.after.done()
    ext.ask_next()
    events = await run.after
    assert events[-1][1].startswith("REPORT RequestId: req-1")
    assert any(line.startswith("EXTENSION\tName: ext\tState: Ready\tEvents: [INVOKE,SHUTDOWN]") for _, line in events)
    assert env.state is EnvState.READY
    shutdown = asyncio.ensure_future(env.shutdown())
    event = await ext.events.get()
    assert event["eventType"] == "SHUTDOWN" and event["shutdownReason"] == "spindown"
    ext.ask_next()
    await shutdown
    assert env.state is EnvState.DEAD
    await pool.close()
