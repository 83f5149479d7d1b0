"""The pool's scale-out rules: parallel INITs are bounded, waiting callers get released environments
handed over (or a freed INIT slot), and the keep-alive window decides what is reclaimed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from unittest import mock

from hearth.functions.model import FunctionVersion
from hearth.invoke.environment import Environment
from hearth.invoke.keepalive import KeepAlivePolicy, Window
from hearth.invoke.pool import EnvironmentPool, PoolConfig


def fv() -> FunctionVersion:
    return FunctionVersion(
        account_id="000000000000", region="us-east-1", name="f", version="$LATEST",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f", runtime="python3.11",
        handler="app.handler", memory_mb=128, timeout_s=3, ephemeral_mb=512, environment={},
        code_dir=Path("/nonexistent"), code_sha256="0" * 64, revision_id="r", state="Active",
    )


def make_pool(max_inits: int, policy: KeepAlivePolicy | None = None) -> tuple[EnvironmentPool, list[Any]]:
    pool = EnvironmentPool(mock.Mock(name="backend"), PoolConfig(max_parallel_inits=max_inits, freeze_idle=False),
                           credentials=mock.Mock(), endpoint_url="http://x", policy=policy)
    created: list[Any] = []
    gate = asyncio.Event()

    async def create(f: FunctionVersion, initialization_type: str = "on-demand") -> Any:
        env = mock.MagicMock(spec=Environment)
        env.alive = True
        env.env_id = f"e{len(created)}"
        env.last_used = 0.0
        env.created_at = time.monotonic()
        env.shutdown = mock.AsyncMock()
        created.append(env)
        pool._keys[env.env_id] = (f.function_arn, f.version, f.revision_id)
        pool._fvs[pool._keys[env.env_id]] = f
        await pool.gate.wait()  # type: ignore[attr-defined]
        return env

    pool._create = create  # type: ignore[method-assign]
    pool.gate = gate  # type: ignore[attr-defined]
    return pool, created


async def test_parallel_inits_are_bounded_and_released_envs_are_handed_over() -> None:
    pool, created = make_pool(1)
    f = fv()
    pool.gate.set()  # type: ignore[attr-defined]
    first, cold = await pool.acquire(f)
    assert cold
    pool.gate = asyncio.Event()  # type: ignore[attr-defined]
    b = asyncio.create_task(pool.acquire(f))
    c = asyncio.create_task(pool.acquire(f))
    for _ in range(1000):  # until c is waiting (a definite state), not for a while
        if pool.statistics()["waiting"] == 1:
            break
        await asyncio.sleep(0)
    assert len(created) == 2  # one INIT at a time: c waits
    assert pool.statistics()["waiting"] == 1
    pool.release(f, first)  # straight to the waiter, never to the idle list
    got, cold = await c
    assert got is first and not cold
    pool.gate.set()  # type: ignore[attr-defined]
    await b
    assert pool.statistics()["initializing"] == 0
    assert pool.parallel_inits_peak == 1


async def test_cancelled_waiter_gives_its_slot_on() -> None:
    pool, _ = make_pool(1)
    f = fv()
    holder = asyncio.create_task(pool.acquire(f))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(pool.acquire(f))
    await asyncio.sleep(0)
    waiter.cancel()
    pool.gate.set()  # type: ignore[attr-defined]
    await holder
    assert pool.statistics()["initializing"] == 0


class _Prewarming:
    name = "test"

    def record(self, function: str, now: float) -> None:
        return None

    def window(self, function: str) -> Window:
        return Window(100.0, 50.0)

    def forget(self, function: str) -> None:
        return None


async def test_prewarm_window_unloads_then_prewarms() -> None:
    pool, created = make_pool(4, _Prewarming())
    pool.gate.set()  # type: ignore[attr-defined]
    f = fv()
    env, _ = await pool.acquire(f)
    env.last_used = 1000.0
    pool.release(f, env)
    assert await pool.reclaim_idle(now=1010.0) == 1  # the next call is not expected for a while
    env.shutdown.assert_awaited()
    await pool.reclaim_idle(now=1101.0)  # pre-warm time
    await asyncio.sleep(0.01)
    assert pool.prewarmed == 1 and len(created) == 2
    assert await pool.reclaim_idle(now=1140.0) == 0  # inside its keep-alive window
    assert await pool.reclaim_idle(now=1151.0) == 1


async def test_an_environment_past_its_age_is_not_reused() -> None:
    # Renewal of function credentials: an environment whose role session is near its end is replaced.
    pool, created = make_pool(2)
    pool._config = PoolConfig(max_parallel_inits=2, freeze_idle=False, max_env_age_s=60.0)
    f = fv()
    pool.gate.set()  # type: ignore[attr-defined]
    young, _ = await pool.acquire(f)
    young.created_at = time.monotonic()
    pool.release(f, young)
    assert (await pool.acquire(f)) == (young, False)  # young enough: reused warm
    young.created_at -= 61.0
    pool.release(f, young)  # too old: shut down instead of kept
    young.shutdown.assert_called_once()
    fresh, cold = await pool.acquire(f)
    assert cold and fresh is created[1]
