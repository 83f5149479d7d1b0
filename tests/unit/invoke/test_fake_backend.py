"""The environment's and the pool's state machines against the fake isolation backend (no root, no
processes): INIT, invoke, errors, freeze, shutdown, warm reuse, retirement, and the optional sandbox
abilities the pool uses."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hearth.functions.model import FunctionVersion
from hearth.invoke import environment as environment_mod
from hearth.invoke.environment import Environment, EnvState, InitFailure, InvalidTransition
from hearth.invoke.invoker import Invoker
from hearth.invoke.launch import Credentials
from hearth.invoke.logs import FunctionLogs
from hearth.invoke.pool import EnvironmentPool, PoolConfig
from hearth.invoke.request import InvokeRequest
from hearth.runtime_api.channel import Invocation
from hearth.sandbox.fake import FakeBackend, FakeExit, FakeFunction, FakeSandbox


def fv(memory_mb: int = 128, revision: str = "r1") -> FunctionVersion:
    return FunctionVersion(
        account_id="000000000000", region="us-east-1", name="f", version="$LATEST",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f", runtime="python3.11",
        handler="app.handler", memory_mb=memory_mb, timeout_s=3, ephemeral_mb=512, environment={},
        code_dir=Path("/nonexistent"), code_sha256="0" * 64, revision_id=revision, state="Active",
    )


async def echo(payload: bytes) -> bytes:
    return payload


async def fails(payload: bytes) -> bytes:
    raise ValueError("bad input")


async def crashes(payload: bytes) -> bytes:
    raise FakeExit(3)


async def sleeps(payload: bytes) -> bytes:
    await asyncio.sleep(30)
    return b""


def make_pool(backend: FakeBackend, **config: object) -> EnvironmentPool:
    return EnvironmentPool(backend, PoolConfig(**config),  # type: ignore[arg-type]
                           credentials=lambda account: Credentials("AKID", "secret"), endpoint_url="http://x")


def invocation(payload: bytes = b'{"x": 1}', request_id: str = "req-1") -> Invocation:
    return Invocation(request_id=request_id, payload=payload, deadline_ms=0,
                      invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:f", trace_id="t")


async def started_env(backend: FakeBackend) -> tuple[EnvironmentPool, Environment]:
    pool = make_pool(backend, freeze_idle=False)
    env, cold = await pool.acquire(fv())
    assert cold and env.state is EnvState.READY
    return pool, env


async def flush_freezer() -> None:
    # Freeze and thaw run in order on one worker thread: a no-op queued behind them marks their end.
    await asyncio.get_running_loop().run_in_executor(environment_mod._FREEZER, lambda: None)


async def test_an_environment_initializes_invokes_freezes_and_shuts_down() -> None:
    backend = FakeBackend(FakeFunction(echo))
    pool, env = await started_env(backend)
    assert env.init_duration_ms is not None
    run = await env.invoke(invocation(), 1.0)
    assert run.result.payload == b'{"x": 1}' and run.result.error_type is None
    lines = [line for _, line in run.events]
    assert lines[0] == "INIT\n"  # INIT output belongs to the first invocation's log
    assert any(line.startswith("START RequestId: req-1") for line in lines)
    assert "handling req-1\n" in lines
    assert lines[-1].startswith("REPORT RequestId: req-1") and "Init Duration" in lines[-1]
    assert env.state is EnvState.READY
    sandbox = env.sandbox
    assert isinstance(sandbox, FakeSandbox)
    env.freeze()
    await flush_freezer()
    assert env.state is EnvState.FROZEN and sandbox.frozen
    again = await env.invoke(invocation(request_id="req-2"), 1.0)  # thawed on the way in
    await flush_freezer()
    assert not sandbox.frozen and "Init Duration" not in again.events[-1][1]
    await env.shutdown()
    assert env.state is EnvState.DEAD and sandbox.terminated
    with pytest.raises(InvalidTransition):
        await env.invoke(invocation(), 1.0)
    await pool.close()


async def test_function_errors_keep_the_environment_crashes_and_timeouts_end_it() -> None:
    backend = FakeBackend(FakeFunction(fails), {"crash": FakeFunction(crashes), "slow": FakeFunction(sleeps)})
    pool, env = await started_env(backend)
    run = await env.invoke(invocation(), 1.0)
    assert run.result.error_type == "ValueError" and env.state is EnvState.READY

    crash_pool = make_pool(backend, freeze_idle=False)
    crashing, _ = await crash_pool.acquire(FunctionVersion(**{**fv().__dict__, "handler": "crash"}))
    run = await crashing.invoke(invocation(), 1.0)
    assert run.result.error_type == "Runtime.ExitError" and run.env_dead
    assert b"exit status 3" in run.result.payload and crashing.state is EnvState.DEAD

    slow, _ = await crash_pool.acquire(FunctionVersion(**{**fv().__dict__, "handler": "slow"}))
    run = await slow.invoke(invocation(), 0.05)
    assert run.result.error_type == "Sandbox.Timedout" and slow.state is EnvState.DEAD
    for p in (pool, crash_pool):
        await p.close()


async def test_an_init_failure_is_reported_and_the_environment_is_dead() -> None:
    backend = FakeBackend(FakeFunction(echo, init_error="Runtime.ImportModuleError"))
    pool = make_pool(backend, freeze_idle=False)
    with pytest.raises(InitFailure) as failure:
        await pool.acquire(fv())
    assert failure.value.error_type == "Runtime.ImportModuleError"
    assert json.loads(failure.value.payload)["errorType"] == "Runtime.ImportModuleError"
    assert [line for _, line in failure.value.init_log] == ["INIT\n"]
    assert pool.statistics()["environments"] == 0 and backend.sandboxes[0].killed
    await pool.close()


async def test_the_pool_reuses_warm_environments_and_drops_cpu_after_init() -> None:
    backend = FakeBackend(FakeFunction(echo))
    pool = make_pool(backend, freeze_idle=True, freeze_after_s=0.0)
    f = fv(memory_mb=256)
    env, cold = await pool.acquire(f)
    sandbox = env.sandbox
    assert isinstance(sandbox, FakeSandbox)
    assert cold and sandbox.cpu_changes == [env.spec.cpu_fraction]  # CpuShares: INIT at full CPU, then its share
    await env.invoke(invocation(), 1.0)
    pool.release(f, env)
    await asyncio.sleep(0)  # the freeze timer (0 s) fires
    await flush_freezer()
    assert env.state is EnvState.FROZEN
    again, cold = await pool.acquire(f)
    assert again is env and not cold
    pool.release(f, again)
    stats = pool.statistics()
    assert (stats["cold_starts"], stats["warm_starts"], stats["idle"]) == (1, 1, 1)
    await pool.close()
    assert env.state is EnvState.DEAD and not backend.closed  # the backend is the server's to close


async def test_a_changed_function_retires_idle_environments_of_the_old_revision() -> None:
    backend = FakeBackend(FakeFunction(echo))
    pool = make_pool(backend, freeze_idle=False)
    old = fv(revision="r1")
    env, _ = await pool.acquire(old)
    pool.release(old, env)
    await pool.retire(old.function_arn, version="$LATEST", keep_revision="r2")
    assert env.state is EnvState.DEAD
    new_env, cold = await pool.acquire(fv(revision="r2"))
    assert cold and new_env is not env
    await pool.close()


async def test_the_invoker_writes_each_invocation_to_the_function_log_group() -> None:
    written: list[tuple[str, str, list[str]]] = []

    class Sink:
        def ensure_group(self, account: str, region: str, group: str) -> None: ...
        def ensure_stream(self, account: str, region: str, group: str, stream: str) -> None: ...

        def append(self, account: str, region: str, group: str, stream: str,
                   events: list[tuple[int, str]]) -> None:
            written.append((group, stream, [line for _, line in events]))

    pool = make_pool(FakeBackend(FakeFunction(echo)), freeze_idle=False)
    invoker = Invoker(pool, FunctionLogs(Sink()))
    outcome = await invoker.invoke(InvokeRequest(fv(), b'"hi"', tail=True))
    assert outcome.payload == b'"hi"' and outcome.cold and outcome.log_tail
    (group, stream, lines), = written
    assert group == "/aws/lambda/f" and "]" in stream and lines[-1].startswith("REPORT")
    await invoker.close()
    await pool.close()
