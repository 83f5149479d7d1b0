"""Environment pools: which environment serves the next invocation of a function version.

The pool is the one owner of environments. It starts them (cold start), hands out idle ones (warm,
most recently used first so surplus environments age out), freezes them between invocations,
reclaims them after the keep-alive, and retires them when their function changes or is deleted.
It never decides whether an invocation may run (concurrency is the limiter's job).

Scale-out: cold starts run in parallel, at most `max_parallel_inits` at once (a burst of hundreds of
forks and INITs at once on two cores only makes every one of them slower). A caller that finds no idle
environment and no free INIT slot waits for whichever comes first: an environment released by
another invocation (handed over directly, never frozen in between) or a free INIT slot (handed over
too, so a waiting caller is not overtaken).

CPU follows memory: sandboxes start with full CPU for INIT (AWS boosts INIT as well); once INIT is
done the pool drops them to their proportional share (`Sandbox.set_cpu`, where the backend has it).

Keep-alive: a `KeepAlivePolicy` (fixed, or adaptive from each function's inter-arrival history) says
for how long an idle environment stays warm and when one should be pre-warmed.

Provisioned environments (`create_provisioned`, asked for by `hearth.invoke.provisioned`) are
started with AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency, served before any on-demand
environment of their version, never reclaimed by keep-alive nor retired by a change of $LATEST, and
report no Init Duration. Only `discard_provisioned` (or their death) ends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearth.functions.model import FunctionVersion
from hearth.functions.snapstart import SnapshotFailed
from hearth.invoke import launch, logs
from hearth.invoke.environment import INIT_TIMEOUT_S, Environment, EnvState, InitFailure, Launcher, ReadyWaiter
from hearth.invoke.keepalive import FixedKeepAlive, KeepAlivePolicy, Window
from hearth.invoke.launch import LaunchError
from hearth.invoke.platform_log import LogStyle
from hearth.invoke.snapshot import LogWriter, SnapshotTemplates
from hearth.observability.metrics import InvokeMetrics
from hearth.sandbox.types import CpuShares, IsolationBackend, Sandbox, SandboxStartError, Snapshots

log = logging.getLogger(__name__)

# An environment belongs to one function version as it was configured: new code or configuration
# (a new RevisionId) means new environments, and the old ones are retired.
PoolKey = tuple[str, str, str]  # (function ARN, version, revision id)


def pool_key(fv: FunctionVersion) -> PoolKey:
    return (fv.function_arn, fv.version, fv.revision_id)


def default_parallel_inits() -> int:
    # INIT is mostly CPU (fork, mounts, interpreter start, imports): a few per core keeps the cores
    # busy while some wait on I/O, without making hundreds of them crawl together.
    return max(8, 8 * (os.cpu_count() or 1))


@dataclass
class PoolConfig:
    keep_alive_s: float = 600.0
    reclaim_interval_s: float = 1.0
    freeze_idle: bool = True
    freeze_after_s: float = 0.02  # idle time before an environment is frozen
    max_parallel_inits: int = 0  # 0: default_parallel_inits()
    cpu_after_init: bool = True  # full CPU during INIT, then the proportional share
    snapstart_latest: bool = False  # restore $LATEST environments from a snapshot too (dev loop)
    # Environments older than this are not kept for reuse: their role session (in their variables) would
    # expire soon. None: no limit. Provisioned environments are kept regardless.
    max_env_age_s: float | None = None


_SLOT = object()  # handed to a waiter: "an INIT slot is yours"


@dataclass(eq=False)
class _Waiter:
    key: PoolKey
    future: asyncio.Future[Environment | object]


@dataclass
class _Prewarm:
    fv: FunctionVersion
    due: float
    until: float


class EnvironmentPool:
    def __init__(
        self,
        backend: IsolationBackend,
        config: PoolConfig,
        *,
        credentials: Callable[[FunctionVersion], launch.Credentials],
        endpoint_url: str,
        start_aws_proxy: Callable[[Sandbox], asyncio.Task[None] | None] | None = None,
        api_ca_dir: Path | None = None,
        policy: KeepAlivePolicy | None = None,
        metrics: InvokeMetrics | None = None,
        init_logs: LogWriter | None = None,  # where snapshot templates' INIT logs go
        # Makes sure a version's code (and layers) exist on this host before an environment starts: in
        # a cluster, a function created through another node is fetched and extracted here first.
        prepare_code: Callable[[FunctionVersion], Awaitable[None]] | None = None,
    ) -> None:
        self._backend = backend
        self._prepare_code = prepare_code
        self._config = config
        self._init_logs = init_logs
        self.policy: KeepAlivePolicy = policy or FixedKeepAlive(config.keep_alive_s)
        self._metrics = metrics
        self._max_inits = config.max_parallel_inits or default_parallel_inits()
        self._creating = 0  # INIT slots in use (including slots handed to a waiter that has not run yet)
        self._waiters: deque[_Waiter] = deque()
        self._prewarm: dict[PoolKey, _Prewarm] = {}
        self._keep_until: dict[str, float] = {}  # pre-warmed environments: reclaim deadline
        self._fvs: dict[PoolKey, FunctionVersion] = {}  # the version each key was last started for
        self.prewarmed = 0
        self.parallel_inits_peak = 0
        self._credentials = credentials
        self._endpoint_url = endpoint_url
        # Set when functions reach Hearth over HTTPS: the local CA they must trust.
        self._api_ca_dir = api_ca_dir
        self._start_aws_proxy = start_aws_proxy
        self._idle: dict[PoolKey, list[Environment]] = {}
        self._all: dict[str, Environment] = {}
        self._keys: dict[str, PoolKey] = {}
        self._reclaimer: asyncio.Task[None] | None = None
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.cold_starts = 0
        self.warm_starts = 0
        self.provisioned_starts = 0  # invocations served by a provisioned environment
        self._provisioned_idle: dict[PoolKey, list[Environment]] = {}
        self._provisioned_ids: set[str] = set()
        self.snapshots = SnapshotTemplates(backend if isinstance(backend, Snapshots) else None, self._new_env,
                                           write_logs=init_logs, latest=config.snapstart_latest,
                                           max_age_s=config.max_env_age_s)
        self.restored_starts = 0  # cold starts restored from a snapshot

    @property
    def isolated(self) -> bool:
        return self._backend.name != "process"

    def start(self) -> None:
        self._reclaimer = asyncio.create_task(self._reclaim_loop())

    async def acquire(self, fv: FunctionVersion) -> tuple[Environment, bool]:
        """An environment for `fv` owned by the caller until `release`: (env, cold)."""
        if self._closing:
            raise RuntimeError("the environment pool is shutting down")
        key = pool_key(fv)
        self.policy.record(_policy_key(key), time.monotonic())
        while True:
            env = self._pop_idle(key, self._provisioned_idle)
            if env is not None:
                self.provisioned_starts += 1
                return env, False
            env = self._pop_idle(key)
            if env is not None:
                self.warm_starts += 1
                return env, False
            if self._creating < self._max_inits:
                self._creating += 1
                return await self._cold(fv), True
            got = await self._wait(key)
            if got is _SLOT:
                return await self._cold(fv), True
            if isinstance(got, Environment) and got.alive:
                if got.env_id in self._provisioned_ids:
                    self.provisioned_starts += 1
                else:
                    self.warm_starts += 1
                return got, False

    def _pop_idle(self, key: PoolKey, source: dict[PoolKey, list[Environment]] | None = None) -> Environment | None:
        pools = self._idle if source is None else source
        idle = pools.get(key)
        while idle:
            env = idle.pop()
            self._keep_until.pop(env.env_id, None)
            if not idle:
                del pools[key]
            if env.alive and self._too_old(env):
                self._spawn(env.shutdown())
                continue
            if env.alive:
                return env
        return None

    def _too_old(self, env: Environment) -> bool:
        limit = self._config.max_env_age_s
        return (limit is not None and env.env_id not in self._provisioned_ids
                and time.monotonic() - env.created_at > limit)

    async def _wait(self, key: PoolKey) -> Environment | object | None:
        """Wait for a released environment of `key` or a free INIT slot (both handed over)."""
        waiter = _Waiter(key, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                got = waiter.future.result()
                if got is _SLOT:
                    self._slot_free()
                elif isinstance(got, Environment):
                    self._park(key, got)
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    async def _cold(self, fv: FunctionVersion) -> Environment:
        """Run a cold start in an INIT slot the caller already holds."""
        self.cold_starts += 1
        self.parallel_inits_peak = max(self.parallel_inits_peak, self._creating)
        try:
            return await self._create(fv)
        finally:
            self._slot_free()

    def _slot_free(self) -> None:
        """An INIT slot is free: hand it to the oldest waiter, or give it back."""
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_result(_SLOT)
                return  # the slot stays counted: the waiter owns it now
        self._creating -= 1

    def sandbox_endpoint(self) -> str:
        """The API's URL as an environment sees it (custom resources' response URLs use it)."""
        return self._sandbox_endpoint()

    def _sandbox_endpoint(self) -> str:
        """The API's URL as an environment sees it: isolated ones reach it through their own loopback proxy."""
        if not self.isolated:
            return self._endpoint_url
        return f"{'https' if self._api_ca_dir is not None else 'http'}://127.0.0.1:4566"

    def _new_env(self, fv: FunctionVersion, initialization_type: str, launcher: Launcher | None = None,
                 until_ready: ReadyWaiter | None = None, restored: bool = False,
                 init_timeout_s: float = INIT_TIMEOUT_S) -> Environment:
        """An environment of `fv`, not started yet (also how snapshot templates are made)."""
        env_id = uuid.uuid4().hex
        stream = logs.log_stream_name(fv.version, env_id)
        spec = launch.build_spec(
            fv, env_id=env_id, log_stream=stream, credentials=self._credentials(fv),
            endpoint_url=self._sandbox_endpoint(), isolated=self.isolated, initialization_type=initialization_type,
            ca_dir=self._api_ca_dir,
        )
        return Environment(
            env_id=env_id, spec=spec, backend=self._backend, version=fv.version, memory_mb=fv.memory_mb,
            log_stream=stream, start_aws_proxy=self._start_aws_proxy, on_dead=self._forget,
            launcher=launcher, until_ready=until_ready, restored=restored, init_timeout_s=init_timeout_s,
            log_style=LogStyle.of(fv),
            account_id=fv.account_id,
            write_logs=functools.partial(self._init_logs, fv, stream) if self._init_logs is not None else None,
        )

    async def _create(self, fv: FunctionVersion, initialization_type: str = "on-demand") -> Environment:
        key = pool_key(fv)
        if self._prepare_code is not None:
            await self._prepare_code(fv)
        restore = initialization_type == "on-demand" and self.snapshots.applies(fv)
        for attempt in (1, 2):
            if restore:
                template = await self.snapshots.template(fv, key)  # raises InitFailure
                env = self._new_env(fv, "snap-start", self.snapshots.launcher(template), restored=True)
                self.snapshots.clone_started(template, env.env_id)
                self.restored_starts += 1
            else:
                env = self._new_env(fv, initialization_type)
            self._all[env.env_id] = env
            self._keys[env.env_id] = key
            self._fvs[key] = fv
            try:
                await env.start()  # raises InitFailure; the environment is then dead and forgotten
                break
            except SandboxStartError:
                if not restore or attempt == 2:
                    raise
                # The snapshot could not be cloned (its template died): take a new one, once.
                log.warning("restoring %s from its snapshot failed; taking a new snapshot", fv.qualified_arn,
                            exc_info=True)
                self.snapshots.discard(template)
        if self._metrics is not None and env.init_duration_ms is not None:
            self._metrics.init_duration.observe(env.init_duration_ms / 1000,
                                                self._metrics.labels(fv.name, fv.version))
        if self._metrics is not None and env.restore_ms is not None:
            self._metrics.restore_duration.observe(env.restore_ms[0] / 1000,
                                                   self._metrics.labels(fv.name, fv.version))
        if self._config.cpu_after_init:
            _set_cpu(env, env.spec.cpu_fraction)
        return env

    def snapshot_applies(self, fv: FunctionVersion) -> bool:
        """Whether new environments of `fv` are restored from a snapshot (SnapStart)."""
        return self.snapshots.applies(fv)

    async def prepare_snapshot(self, fv: FunctionVersion) -> None:
        """Take `fv`'s snapshot now (PublishVersion of a SnapStart version). Raises SnapshotFailed."""
        if not self.snapshots.applies(fv):
            return
        try:
            await self.snapshots.template(fv, pool_key(fv))
        except InitFailure as failure:
            raise SnapshotFailed(failure.error_type, failure.payload) from failure
        except LaunchError as exc:
            raise SnapshotFailed(exc.error_type, b"") from exc

    def release(self, fv: FunctionVersion, env: Environment) -> None:
        """Give an environment back after an invocation: kept warm (frozen) if it is healthy."""
        key = pool_key(fv)
        if not env.alive or self._closing or self._keys.get(env.env_id) != key:
            if env.alive:
                self._spawn(env.shutdown())
            return
        for waiter in self._waiters:  # someone is waiting for exactly this: hand it over warm
            if waiter.key == key and not waiter.future.done():
                waiter.future.set_result(env)
                return
        if self._too_old(env):  # renewal: the next invocation gets a new environment, with a new session
            self._spawn(env.shutdown())
            return
        self._park(key, env)

    def _park(self, key: PoolKey, env: Environment) -> None:
        """Keep a healthy environment idle (frozen) for later."""
        if not env.alive:
            return
        target = self._provisioned_idle if env.env_id in self._provisioned_ids else self._idle
        if self._config.freeze_idle:
            # Decision: an environment is frozen once it has been idle for FREEZE_AFTER_S, not at the
            # instant it answers. Back-to-back invocations then pay no freeze/thaw (a few hundred
            # microseconds of kernel work each), while an idle environment's background threads stop
            # within milliseconds. If it is busy again when the timer fires, freeze() does nothing.
            asyncio.get_running_loop().call_later(self._config.freeze_after_s, self._freeze_idle, env)
        target.setdefault(key, []).append(env)

    def _freeze_idle(self, env: Environment) -> None:
        if not env.alive or time.monotonic() - env.last_used < self._config.freeze_after_s * 0.5:
            return  # used again since (its own release scheduled a later freeze)
        try:
            env.freeze()
        except OSError:
            log.exception("freezing environment %s failed; discarding it", env.env_id)
            self._spawn(env.kill())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        # Keep a reference: the loop holds tasks only weakly.
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forget(self, env: Environment) -> None:
        self.snapshots.clone_gone(env.env_id)
        self._all.pop(env.env_id, None)
        self._keep_until.pop(env.env_id, None)
        self._provisioned_ids.discard(env.env_id)
        key = self._keys.pop(env.env_id, None)
        if key is not None:
            for pools in (self._idle, self._provisioned_idle):
                idle = pools.get(key)
                if idle and env in idle:
                    idle.remove(env)
                    if not idle:
                        del pools[key]

    # -- provisioned environments ---------------------------------------------------------------

    async def create_provisioned(self, fv: FunctionVersion) -> Environment:
        """Start and INIT one provisioned environment of `fv` and keep it for `fv`'s invocations.
        Raises what a cold start raises (InitFailure, LaunchError); the environment is then gone."""
        if self._closing:
            raise RuntimeError("the environment pool is shutting down")
        env = await self._create(fv, "provisioned-concurrency")
        # INIT happened ahead of any invocation: AWS's REPORT lines carry no Init Duration for it.
        env.init_duration_ms = None
        self._provisioned_ids.add(env.env_id)
        self.release(fv, env)  # to a waiting invocation of its version, or idle among the provisioned
        return env

    def discard_provisioned(self, env: Environment) -> None:
        """Stop keeping `env`: shut down now if idle, when released if busy."""
        self._provisioned_ids.discard(env.env_id)
        key = self._keys.get(env.env_id)
        idle = self._provisioned_idle.get(key) if key is not None else None
        if key is not None and idle and env in idle:
            idle.remove(env)
            if not idle:
                del self._provisioned_idle[key]
            self._spawn(env.shutdown())
        elif key is not None:
            self._keys[env.env_id] = (key[0], key[1], "retired")

    def provisioned_in_use(self, env: Environment) -> bool:
        """Whether a provisioned environment is serving an invocation (not idle) right now."""
        key = self._keys.get(env.env_id)
        return env.alive and not (key is not None and env in self._provisioned_idle.get(key, ()))

    async def retire(self, function_arn: str, *, version: str | None = None,
                     keep_revision: str | None = None) -> None:
        """Shut down idle environments of a function (or of one of its versions) whose code or
        configuration changed, or that was deleted. Busy ones are shut down when they are released."""

        def doomed_key(key: PoolKey) -> bool:
            return key[0] == function_arn and (version is None or key[1] == version) and key[2] != keep_revision

        doomed = [env for key, envs in self._idle.items() if doomed_key(key) for env in envs]
        for key in [k for k in self._idle if doomed_key(k)]:
            del self._idle[key]
        for key in [k for k in self._prewarm if doomed_key(k)]:
            del self._prewarm[key]
        self.snapshots.retire(doomed_key)
        if keep_revision is None and version is None:
            for key in {k for k in self._keys.values() if k[0] == function_arn}:
                self.policy.forget(_policy_key(key))
        for env_id, key in list(self._keys.items()):
            if doomed_key(key) and env_id not in self._provisioned_ids:  # those end with their config
                self._keys[env_id] = (key[0], key[1], "retired")
        await asyncio.gather(*(env.shutdown() for env in doomed), return_exceptions=True)

    async def _reclaim_loop(self) -> None:
        while True:
            await asyncio.sleep(self._config.reclaim_interval_s)
            await self.reclaim_idle()

    async def reclaim_idle(self, now: float | None = None) -> int:
        """Shut down idle environments outside their keep-alive window, start the pre-warms that are
        due; returns how many environments were shut down."""
        now = time.monotonic() if now is None else now
        doomed: list[Environment] = []
        for key, envs in list(self._idle.items()):
            window = self.policy.window(_policy_key(key))
            keep = [env for env in envs if self._keeps(env, window, now)]
            for env in envs:
                if env in keep:
                    continue
                doomed.append(env)
                self._keep_until.pop(env.env_id, None)
                if window.prewarm_s > 0 and now - env.last_used < window.prewarm_s:
                    # Unloaded early because the next call is expected later: come back before it.
                    fv = self._fv_of(env, key)
                    if fv is not None:
                        due = env.last_used + window.prewarm_s
                        self._prewarm[key] = _Prewarm(fv, due, due + window.keep_alive_s)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
        await asyncio.gather(*(env.shutdown() for env in doomed), return_exceptions=True)
        self._start_prewarms(now)
        return len(doomed)

    def _keeps(self, env: Environment, window: Window, now: float) -> bool:
        until = self._keep_until.get(env.env_id)
        if until is not None:
            return now < until
        return window.keeps(now - env.last_used)

    def _fv_of(self, env: Environment, key: PoolKey) -> FunctionVersion | None:
        return self._fvs.get(key)

    def _start_prewarms(self, now: float) -> None:
        for key, plan in list(self._prewarm.items()):
            if now >= plan.until:
                del self._prewarm[key]
            elif now >= plan.due and not self._closing:
                del self._prewarm[key]
                if not self._idle.get(key) and self._creating < self._max_inits:
                    self._creating += 1
                    self._spawn(self._prewarm_one(plan, key))

    async def _prewarm_one(self, plan: _Prewarm, key: PoolKey) -> None:
        try:
            env = await self._create(plan.fv)
        except Exception:
            log.info("pre-warming an environment of %s failed", plan.fv.function_arn, exc_info=True)
            return
        finally:
            self._slot_free()
        self.prewarmed += 1
        self._keep_until[env.env_id] = plan.until
        self._park(key, env)

    async def close(self) -> None:
        """Server stop: SHUTDOWN for every environment, then the backend."""
        self._closing = True
        if self._reclaimer is not None:
            self._reclaimer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reclaimer
        await asyncio.gather(*(env.shutdown() for env in list(self._all.values())), return_exceptions=True)
        await self.snapshots.close()
        self._idle.clear()
        self._provisioned_idle.clear()

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
            "initializing": self._creating,
            "waiting": len(self._waiters),
            "parallel_inits_peak": self.parallel_inits_peak,
            "max_parallel_inits": self._max_inits,
            "prewarmed": self.prewarmed,
            "provisioned": len(self._provisioned_ids),
            "provisioned_idle": sum(len(v) for v in self._provisioned_idle.values()),
            "provisioned_starts": self.provisioned_starts,
            "keep_alive_policy": self.policy.name,
            "restored_starts": self.restored_starts,
            "snapshots": self.snapshots.statistics(),
        }

    def has_idle(self, fv: FunctionVersion) -> bool:
        """Whether an invocation of `fv` would find a warm (or provisioned) environment here now."""
        key = pool_key(fv)
        return bool(self._idle.get(key) or self._provisioned_idle.get(key))

    def warm_versions(self) -> dict[tuple[str, str], int]:
        """(function ARN, version) -> environments here, idle or busy: what a cluster node tells the
        others, so that a version's invocations go where its environments are (hearth.cluster.placement).
        Busy ones count: a heartbeat that caught the only environment mid-invocation must not send the
        next invocation elsewhere into a cold start."""
        out: dict[tuple[str, str], int] = {}
        for env_id, env in self._all.items():
            key = self._keys.get(env_id)
            if key is not None and env.alive:
                out[(key[0], key[1])] = out.get((key[0], key[1]), 0) + 1
        return out

    def environments(self) -> list[Environment]:
        return list(self._all.values())


def _policy_key(key: PoolKey) -> str:
    return f"{key[0]}:{key[1]}"


def _set_cpu(env: Environment, fraction: float) -> None:
    """Drop a freshly initialized environment to its proportional CPU share, if its backend can (the
    process backend has no CPU control)."""
    sandbox = env.sandbox
    if not isinstance(sandbox, CpuShares):
        return
    try:
        sandbox.set_cpu(fraction)
    except OSError:
        log.warning("setting the CPU share of environment %s failed", env.env_id, exc_info=True)


__all__ = ["EnvState", "EnvironmentPool", "PoolConfig", "pool_key"]
