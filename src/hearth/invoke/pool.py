"""Environment pools: which environment serves the next invocation of a function version.

The pool is the one owner of environments. It starts them (cold start), hands out idle ones (warm,
most recently used first so surplus environments age out), freezes them between invocations,
reclaims them after the keep-alive, and retires them when their function changes or is deleted.
It never decides whether an invocation may run (concurrency is the limiter's job).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from hearth.functions.model import FunctionVersion
from hearth.invoke import launch, logs
from hearth.invoke.environment import Environment, EnvState
from hearth.sandbox.types import IsolationBackend, Sandbox

log = logging.getLogger(__name__)

# An environment belongs to one function version as it was configured: new code or configuration
# (a new RevisionId) means new environments, and the old ones are retired.
PoolKey = tuple[str, str, str]  # (function ARN, version, revision id)


def pool_key(fv: FunctionVersion) -> PoolKey:
    return (fv.function_arn, fv.version, fv.revision_id)


@dataclass
class PoolConfig:
    keep_alive_s: float = 600.0
    reclaim_interval_s: float = 1.0
    freeze_idle: bool = True


class EnvironmentPool:
    def __init__(
        self,
        backend: IsolationBackend,
        config: PoolConfig,
        *,
        credentials: Callable[[str], launch.Credentials],
        endpoint_url: str,
        start_aws_proxy: Callable[[Sandbox], asyncio.Task[None] | None] | None = None,
    ) -> None:
        self._backend = backend
        self._config = config
        self._credentials = credentials
        self._endpoint_url = endpoint_url
        self._start_aws_proxy = start_aws_proxy
        self._idle: dict[PoolKey, list[Environment]] = {}
        self._all: dict[str, Environment] = {}
        self._keys: dict[str, PoolKey] = {}
        self._reclaimer: asyncio.Task[None] | None = None
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.cold_starts = 0
        self.warm_starts = 0

    @property
    def isolated(self) -> bool:
        return self._backend.name != "process"

    def start(self) -> None:
        self._reclaimer = asyncio.create_task(self._reclaim_loop())

    async def acquire(self, fv: FunctionVersion) -> tuple[Environment, bool]:
        """An environment for `fv` owned by the caller until `release`: (env, cold)."""
        if self._closing:
            raise RuntimeError("the environment pool is shutting down")
        idle = self._idle.get(pool_key(fv))
        while idle:
            env = idle.pop()
            if env.alive:
                self.warm_starts += 1
                return env, False
        self.cold_starts += 1
        return await self._create(fv), True

    async def _create(self, fv: FunctionVersion, initialization_type: str = "on-demand") -> Environment:
        env_id = uuid.uuid4().hex
        stream = logs.log_stream_name(fv.version, env_id)
        spec = launch.build_spec(
            fv, env_id=env_id, log_stream=stream, credentials=self._credentials(fv.account_id),
            endpoint_url=self._endpoint_url if not self.isolated else "http://127.0.0.1:4566",
            isolated=self.isolated, initialization_type=initialization_type,
        )
        env = Environment(
            env_id=env_id, spec=spec, backend=self._backend, version=fv.version, memory_mb=fv.memory_mb,
            log_stream=stream, start_aws_proxy=self._start_aws_proxy, on_dead=self._forget,
        )
        self._all[env_id] = env
        self._keys[env_id] = pool_key(fv)
        await env.start()  # raises InitFailure; the environment is then dead and forgotten
        return env

    def release(self, fv: FunctionVersion, env: Environment) -> None:
        """Give an environment back after an invocation: kept warm (frozen) if it is healthy."""
        if not env.alive or self._closing or self._keys.get(env.env_id) != pool_key(fv):
            if env.alive:
                self._spawn(env.shutdown())
            return
        if self._config.freeze_idle:
            try:
                env.freeze()
            except OSError:
                log.exception("freezing environment %s failed; discarding it", env.env_id)
                self._spawn(env.kill())
                return
        self._idle.setdefault(pool_key(fv), []).append(env)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        # Keep a reference: the loop holds tasks only weakly.
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forget(self, env: Environment) -> None:
        self._all.pop(env.env_id, None)
        key = self._keys.pop(env.env_id, None)
        if key is not None:
            idle = self._idle.get(key)
            if idle and env in idle:
                idle.remove(env)
                if not idle:
                    del self._idle[key]

    async def retire(self, function_arn: str, *, keep_revision: str | None = None) -> None:
        """Shut down idle environments of a function whose code or configuration changed (or that
        was deleted). Busy ones are shut down when they are released."""
        doomed = [env for key, envs in self._idle.items() if key[0] == function_arn and key[2] != keep_revision
                  for env in envs]
        for key in [k for k in self._idle if k[0] == function_arn and k[2] != keep_revision]:
            del self._idle[key]
        for env_id, key in list(self._keys.items()):
            if key[0] == function_arn and key[2] != keep_revision:
                self._keys[env_id] = (key[0], key[1], "retired")
        await asyncio.gather(*(env.shutdown() for env in doomed), return_exceptions=True)

    async def _reclaim_loop(self) -> None:
        while True:
            await asyncio.sleep(self._config.reclaim_interval_s)
            await self.reclaim_idle()

    async def reclaim_idle(self, now: float | None = None) -> int:
        """Shut down environments idle for longer than the keep-alive; returns how many."""
        now = time.monotonic() if now is None else now
        doomed: list[Environment] = []
        for key, envs in list(self._idle.items()):
            keep = [env for env in envs if now - env.last_used < self._config.keep_alive_s]
            doomed.extend(env for env in envs if env not in keep)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
        await asyncio.gather(*(env.shutdown() for env in doomed), return_exceptions=True)
        return len(doomed)

    async def close(self) -> None:
        """Server stop: SHUTDOWN for every environment, then the backend."""
        self._closing = True
        if self._reclaimer is not None:
            self._reclaimer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reclaimer
        await asyncio.gather(*(env.shutdown() for env in list(self._all.values())), return_exceptions=True)
        self._idle.clear()

    def statistics(self) -> dict[str, object]:
        by_state: dict[str, int] = {}
        for env in self._all.values():
            by_state[env.state.value] = by_state.get(env.state.value, 0) + 1
        return {
            "environments": len(self._all),
            "by_state": by_state,
            "idle": sum(len(v) for v in self._idle.values()),
            "cold_starts": self.cold_starts,
            "warm_starts": self.warm_starts,
        }

    def environments(self) -> list[Environment]:
        return list(self._all.values())


__all__ = ["EnvState", "EnvironmentPool", "PoolConfig", "pool_key"]
