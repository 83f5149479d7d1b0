"""Provisioned concurrency: keeps N initialized environments for each configured version or alias.

It owns the provisioned-concurrency configurations (durable, component "provisioned" of hearth.db),
their allocation state (IN_PROGRESS → READY, or FAILED when INIT fails), and the reconciliation that
makes the pool hold exactly the requested number of provisioned environments for the version each
configuration resolves to (an alias's target may move; a dead environment is replaced; a restart
re-creates them all). It tells the concurrency limiter how many provisioned slots each version has.

It never decides AWS's caller-facing rules (`hearth.services.lambda_.provisioned` does), never runs an
invocation, and never reclaims on-demand environments. Environments themselves belong to the pool:
this module only asks for them (`create_provisioned`) and lets them go (`discard_provisioned`).

Reconciliation runs on every change and once a second (cheap: dictionary work), at most
`max_parallel` INITs at a time so a large configuration cannot starve on-demand cold starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hearth.functions.config import aws_timestamp
from hearth.functions.errors import FunctionsError, NotFound
from hearth.functions.model import FunctionVersion
from hearth.functions.names import function_arn
from hearth.invoke.environment import Environment, InitFailure
from hearth.invoke.launch import LaunchError
from hearth.invoke.limiter import ConcurrencyLimiter
from hearth.invoke.pool import EnvironmentPool, PoolKey, pool_key
from hearth.observability import metrics
from hearth.store.component import ComponentDb

log = logging.getLogger(__name__)

IN_PROGRESS = "IN_PROGRESS"
READY = "READY"
FAILED = "FAILED"
# AWS's StatusReason when the function's INIT fails: these words alone (recorded; the error type is in
# the function's logs, not here).
INIT_FAILED_REASON = "FUNCTION_ERROR_INIT_FAILURE"

ConfigKey = tuple[str, str, str, str]  # (account, region, function name, qualifier)
# (account, region, function name, qualifier) -> the version an invocation of that qualifier runs.
Resolver = Callable[[str, str, str, str], FunctionVersion]


@dataclass(frozen=True)
class ProvisionedConfig:
    account: str
    region: str
    function_name: str
    qualifier: str  # a version number or an alias name, never $LATEST
    requested: int
    last_modified: str

    @property
    def key(self) -> ConfigKey:
        return (self.account, self.region, self.function_name, self.qualifier)

    @property
    def function_arn(self) -> str:
        return function_arn(self.region, self.account, self.function_name)

    @property
    def qualified_arn(self) -> str:
        return f"{self.function_arn}:{self.qualifier}"


@dataclass(frozen=True)
class AllocationStatus:
    requested: int
    allocated: int
    available: int
    status: str
    reason: str | None
    last_modified: str


class ProvisionedStore:
    """The configurations, durable: they outlive the server (environments are re-created at start)."""

    MIGRATIONS = (
        """
        CREATE TABLE provisioned_config (
            account TEXT NOT NULL,
            region TEXT NOT NULL,
            function_name TEXT NOT NULL,
            qualifier TEXT NOT NULL,
            requested INTEGER NOT NULL,
            last_modified TEXT NOT NULL,
            PRIMARY KEY (account, region, function_name, qualifier)
        );
        """,
        # Scale-out: the node holding the provisioned-concurrency lease keeps the environments and
        # publishes each configuration's status here, for every other node to answer with.
        """
        CREATE TABLE provisioned_status (
            account TEXT NOT NULL,
            region TEXT NOT NULL,
            function_name TEXT NOT NULL,
            qualifier TEXT NOT NULL,
            allocated INTEGER NOT NULL,
            status TEXT NOT NULL,
            reason TEXT,
            PRIMARY KEY (account, region, function_name, qualifier)
        );
        """,
    )

    def __init__(self, data_dir: Path) -> None:
        # track_changes: in a cluster, a configuration put through another node reaches this node.
        self._db = ComponentDb(data_dir, "provisioned", self.MIGRATIONS, track_changes=True)

    def changed_elsewhere(self) -> bool:
        return self._db.changed_elsewhere()

    def load(self) -> list[ProvisionedConfig]:
        rows = self._db.query("SELECT account, region, function_name, qualifier, requested, last_modified "
                              "FROM provisioned_config")
        return [ProvisionedConfig(r["account"], r["region"], r["function_name"], r["qualifier"],
                                  int(r["requested"]), r["last_modified"]) for r in rows]

    def put(self, config: ProvisionedConfig) -> None:
        with self._db.tx() as db:
            db.execute(
                "INSERT INTO provisioned_config (account, region, function_name, qualifier, requested, last_modified) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account, region, function_name, qualifier) DO UPDATE SET "
                "requested = excluded.requested, last_modified = excluded.last_modified",
                (*config.key, config.requested, config.last_modified))

    def delete(self, key: ConfigKey) -> None:
        with self._db.tx() as db:
            db.execute("DELETE FROM provisioned_config WHERE account = ? AND region = ? AND function_name = ? "
                       "AND qualifier = ?", key)
            db.execute("DELETE FROM provisioned_status WHERE account = ? AND region = ? AND function_name = ? "
                       "AND qualifier = ?", key)

    def publish(self, statuses: dict[ConfigKey, tuple[int, str, str | None]]) -> None:
        """The lease holder's allocations: (allocated, status, reason) per configuration."""
        with self._db.tx(flush=False) as db:  # derived from the environments: re-published after a crash
            db.execute("DELETE FROM provisioned_status")
            for key, (allocated, status, reason) in statuses.items():
                db.execute("INSERT INTO provisioned_status (account, region, function_name, qualifier, allocated, "
                           "status, reason) VALUES (?, ?, ?, ?, ?, ?, ?)", (*key, allocated, status, reason))

    def published(self, key: ConfigKey) -> tuple[int, str, str | None] | None:
        rows = self._db.query("SELECT allocated, status, reason FROM provisioned_status WHERE account = ? AND "
                              "region = ? AND function_name = ? AND qualifier = ?", key)
        return (int(rows[0]["allocated"]), str(rows[0]["status"]), rows[0]["reason"]) if rows else None

    def close(self) -> None:
        self._db.close()


@dataclass(eq=False)
class _Allocation:
    """What one configuration holds right now."""

    config: ProvisionedConfig
    target: PoolKey | None = None
    fv: FunctionVersion | None = None
    envs: list[Environment] = field(default_factory=list)
    starting: int = 0
    failed: str | None = None  # the StatusReason once INIT failed (no more attempts until the next Put)
    ready_once: bool = False  # READY stays READY while a dead environment is being replaced


class ProvisionedManager:
    def __init__(
        self,
        pool: EnvironmentPool,
        resolve: Resolver,
        limiter: ConcurrencyLimiter | None = None,
        store: ProvisionedStore | None = None,
        *,
        reconcile_interval_s: float = 1.0,
        max_parallel: int = 2,
        registry: metrics.Registry | None = None,
        max_env_age_s: float | None = None,
        gate: Callable[[], bool] | None = None,
    ) -> None:
        self._pool = pool
        # Scale-out: whether this node holds the provisioned-concurrency lease (None: one node). Only the
        # holder keeps environments; the others answer with the status it publishes, and placement sends
        # invocations to its environments.
        self._gate = gate
        self._published: dict[ConfigKey, tuple[int, str, str | None]] | None = None
        # Environments older than this are replaced (a new one first, then the old one goes), so that a
        # provisioned environment's role session is renewed before it ends, as the pool does for
        # on-demand ones; AWS recycles provisioned environments periodically too.
        self._max_age = max_env_age_s
        self._resolve = resolve
        self._limiter = limiter
        self._store = store
        self._interval = reconcile_interval_s
        self._inits = asyncio.Semaphore(max_parallel)
        self._allocations: dict[ConfigKey, _Allocation] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._closing = False
        self.inits = 0
        self.init_failures = 0
        self._registry = registry if registry is not None else metrics.REGISTRY
        self._utilization = self._registry.gauge(
            "hearth_provisioned_concurrency_utilization",
            "Provisioned environments in use / provisioned (Lambda: ProvisionedConcurrencyUtilization).")
        self._in_use = self._registry.gauge("hearth_provisioned_concurrent_executions",
                                            "Invocations running on provisioned environments.")
        self._remove_collector = self._registry.add_collector(self._collect)
        if store is not None:
            for config in store.load():
                self._allocations[config.key] = _Allocation(config)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Re-create the provisioned environments of every stored configuration, and keep them."""
        self._loop_task = asyncio.create_task(self._reconcile_loop())

    async def close(self) -> None:
        self._closing = True
        self._remove_collector()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._store is not None:
            self._store.close()

    # -- configurations -------------------------------------------------------------------------

    def put(self, account: str, region: str, name: str, qualifier: str, requested: int) -> AllocationStatus:
        config = ProvisionedConfig(account, region, name, qualifier, requested, aws_timestamp())
        if self._store is not None:
            self._store.put(config)
        current = self._allocations.get(config.key)
        if current is None:
            self._allocations[config.key] = _Allocation(config)
        else:
            current.config = config
            current.failed = None  # a new Put tries again
            current.ready_once = False
        self._update_limiter(account, region, name)
        self.kick()
        return self.status(config.key)  # type: ignore[return-value]

    def get(self, key: ConfigKey) -> ProvisionedConfig | None:
        allocation = self._allocations.get(key)
        return allocation.config if allocation is not None else None

    def list_configs(self, account: str, region: str, name: str) -> list[ProvisionedConfig]:
        found = [a.config for k, a in self._allocations.items() if k[:3] == (account, region, name)]
        return sorted(found, key=lambda c: (not c.qualifier.isdigit(), c.qualifier.zfill(12)))

    def delete(self, key: ConfigKey) -> bool:
        allocation = self._allocations.pop(key, None)
        if self._store is not None:
            self._store.delete(key)
        if allocation is None:
            return False
        for env in allocation.envs:
            self._pool.discard_provisioned(env)
        allocation.envs.clear()
        self._update_limiter(*key[:3])
        return True

    def forget_function(self, account: str, region: str, name: str) -> None:
        """The function was deleted: its configurations and environments go with it."""
        for key in [k for k in self._allocations if k[:3] == (account, region, name)]:
            self.delete(key)

    def forget_qualifier(self, account: str, region: str, name: str, qualifier: str) -> None:
        """A version or alias was deleted."""
        self.delete((account, region, name, qualifier))

    def total(self, account: str, region: str, name: str, *, excluding: str | None = None) -> int:
        return sum(a.config.requested for k, a in self._allocations.items()
                   if k[:3] == (account, region, name) and k[3] != excluding)

    def qualifiers_on_version(self, account: str, region: str, name: str, version: str) -> list[str]:
        """Configured qualifiers (the version itself or aliases) whose target is `version` now."""
        out = []
        for key, allocation in self._allocations.items():
            if key[:3] != (account, region, name):
                continue
            target = self._target_version(allocation)
            if target == version:
                out.append(key[3])
        return out

    def _target_version(self, allocation: _Allocation) -> str | None:
        if allocation.fv is not None:
            return allocation.fv.version
        config = allocation.config
        if config.qualifier.isdigit():
            return config.qualifier
        try:
            return self._resolve(config.account, config.region, config.function_name, config.qualifier).version
        except Exception:
            return None

    def status(self, key: ConfigKey) -> AllocationStatus | None:
        allocation = self._allocations.get(key)
        if allocation is None:
            return None
        if self._gate is not None and self._store is not None and not self._gate():
            published = self._store.published(key)  # the lease holder's, or nothing yet
            allocated, state, reason = published if published is not None else (0, IN_PROGRESS, None)
            requested = allocation.config.requested
            return AllocationStatus(requested, min(allocated, requested), min(allocated, requested), state, reason,
                                    allocation.config.last_modified)
        return self._local_status(key)

    def _local_status(self, key: ConfigKey) -> AllocationStatus | None:
        allocation = self._allocations.get(key)
        if allocation is None:
            return None
        alive = [env for env in allocation.envs if env.alive]
        requested = allocation.config.requested
        allocated = min(len(alive), requested)
        if allocation.failed is not None:
            state, reason = FAILED, allocation.failed
        elif allocated >= requested or allocation.ready_once:
            state, reason = READY, None
        else:
            state, reason = IN_PROGRESS, None
        return AllocationStatus(requested, allocated, allocated, state, reason, allocation.config.last_modified)

    # -- reconciliation -------------------------------------------------------------------------

    def kick(self) -> None:
        self._kick.set()

    async def _reconcile_loop(self) -> None:
        while not self._closing:
            self._kick.clear()
            try:
                self.follow_store()
                if self._gate is None or self._gate():
                    self.reconcile()
                    self._publish()
                else:
                    self._let_go()
            except Exception:
                log.exception("reconciling provisioned concurrency failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self._interval)

    def follow_store(self) -> None:
        """Cluster: take up configurations put or deleted through other nodes (every node keeps the
        requested environments of each configuration warm for the invocations it receives)."""
        if self._store is None or not self._store.changed_elsewhere():
            return
        stored = {config.key: config for config in self._store.load()}
        for key in [k for k in self._allocations if k not in stored]:
            self.delete(key)
        for key, config in stored.items():
            current = self._allocations.get(key)
            if current is not None and current.config == config:
                continue
            if current is None:
                self._allocations[key] = _Allocation(config)
            else:
                current.config = config
                current.failed = None
                current.ready_once = False
            self._update_limiter(*key[:3])

    def _publish(self) -> None:
        if self._gate is None or self._store is None:
            return
        statuses = {key: (st.allocated, st.status, st.reason) for key in self._allocations
                    if (st := self._local_status(key)) is not None}
        if statuses != self._published:
            self._store.publish(statuses)
            self._published = statuses

    def _let_go(self) -> None:
        """Not (or no longer) the lease holder: this node keeps no provisioned environment."""
        self._published = None
        for allocation in self._allocations.values():
            for env in allocation.envs:
                self._pool.discard_provisioned(env)
            allocation.envs = []
            allocation.target = None
            allocation.ready_once = False

    def reconcile(self) -> None:
        """Move every allocation towards its requested count for its current target version."""
        changed: set[tuple[str, str, str]] = set()
        for allocation in list(self._allocations.values()):
            before = allocation.target
            self._reconcile_one(allocation)
            if allocation.target != before:
                changed.add(allocation.config.key[:3])
        for function in changed:
            self._update_limiter(*function)

    def _reconcile_one(self, allocation: _Allocation) -> None:
        config = allocation.config
        try:
            fv = self._resolve(config.account, config.region, config.function_name, config.qualifier)
        except NotFound as exc:  # the function, version or alias was deleted: so is the configuration
            log.info("provisioned concurrency of %s ends: %s", config.qualified_arn, exc.message)
            self.delete(config.key)
            return
        except FunctionsError:
            return
        except Exception:
            log.exception("resolving %s failed", config.qualified_arn)
            return
        if fv.state != "Active":
            return  # a version still Pending has nothing to start yet
        key = pool_key(fv)
        if allocation.target is not None and allocation.target != key:
            # The alias moved to another version: the old version's environments go, new ones come.
            for env in allocation.envs:
                self._pool.discard_provisioned(env)
            allocation.envs = []
            allocation.ready_once = False
        allocation.target, allocation.fv = key, fv
        allocation.envs = [env for env in allocation.envs if env.alive]
        if allocation.ready_once is False and len(allocation.envs) >= config.requested:
            allocation.ready_once = True
        aged = [env for env in allocation.envs if self._aged(env)]
        if aged and len(allocation.envs) > config.requested:
            # Its replacement is up: the oldest goes now (when released, if it is serving).
            oldest = min(aged, key=lambda env: env.created_at)
            allocation.envs.remove(oldest)
            aged.remove(oldest)
            self._pool.discard_provisioned(oldest)
        surplus = len(allocation.envs) - config.requested
        while surplus > 0:
            self._pool.discard_provisioned(allocation.envs.pop())
            surplus -= 1
        missing = config.requested - len(allocation.envs) - allocation.starting
        if missing <= 0 and aged and allocation.starting == 0:
            missing = 1  # renew one at a time: never fewer ready environments than requested
        if allocation.failed is not None or self._closing:
            return
        for _ in range(max(0, missing)):
            allocation.starting += 1
            task = asyncio.create_task(self._start_one(allocation, fv, key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _aged(self, env: Environment) -> bool:
        return self._max_age is not None and time.monotonic() - env.created_at > self._max_age

    async def _start_one(self, allocation: _Allocation, fv: FunctionVersion, key: PoolKey) -> None:
        try:
            async with self._inits:
                if self._allocations.get(allocation.config.key) is not allocation or allocation.target != key \
                        or allocation.failed is not None or self._closing:
                    return
                try:
                    env = await self._pool.create_provisioned(fv)
                except InitFailure as failure:
                    self.init_failures += 1
                    log.info("provisioned INIT of %s failed: %s", fv.qualified_arn, failure.error_type)
                    allocation.failed = INIT_FAILED_REASON
                    return
                except LaunchError as exc:
                    self.init_failures += 1
                    log.info("provisioned environment of %s did not launch: %s", fv.qualified_arn, exc.error_type)
                    allocation.failed = INIT_FAILED_REASON
                    return
                except Exception:
                    log.exception("starting a provisioned environment of %s failed", fv.qualified_arn)
                    return
                self.inits += 1
        finally:
            allocation.starting -= 1
        if self._allocations.get(allocation.config.key) is not allocation or allocation.target != key:
            self._pool.discard_provisioned(env)  # deleted or moved while INIT ran
            return
        allocation.envs.append(env)
        if len([e for e in allocation.envs if e.alive]) >= allocation.config.requested:
            allocation.ready_once = True

    def _update_limiter(self, account: str, region: str, name: str) -> None:
        if self._limiter is None:
            return
        by_version: dict[str, int] = {}
        for key, allocation in self._allocations.items():
            if key[:3] != (account, region, name):
                continue
            version = self._target_version(allocation)
            if version is not None:
                by_version[version] = by_version.get(version, 0) + allocation.config.requested
        self._limiter.set_provisioned(function_arn(region, account, name), account, region,
                                      self.total(account, region, name), by_version)

    # -- reading --------------------------------------------------------------------------------

    def _collect(self) -> None:
        utilization: dict[metrics.LabelKey, float] = {}
        in_use: dict[metrics.LabelKey, float] = {}
        for key, allocation in self._allocations.items():
            busy = sum(1 for env in allocation.envs if self._pool.provisioned_in_use(env))
            labels = (("function", key[2]), ("qualifier", key[3]))
            utilization[labels] = busy / allocation.config.requested if allocation.config.requested else 0.0
            in_use[labels] = float(busy)
        self._utilization.replace(utilization)
        self._in_use.replace(in_use)

    def statistics(self) -> dict[str, object]:
        configs = {}
        for key, allocation in self._allocations.items():
            st = self.status(key)
            assert st is not None
            configs[":".join(key[2:])] = {
                "requested": st.requested, "allocated": st.allocated, "status": st.status,
                "starting": allocation.starting,
                "in_use": sum(1 for env in allocation.envs if self._pool.provisioned_in_use(env)),
                "version": allocation.fv.version if allocation.fv is not None else None,
            }
        return {"configs": configs, "inits": self.inits, "init_failures": self.init_failures}


__all__ = ["AllocationStatus", "ProvisionedConfig", "ProvisionedManager", "ProvisionedStore"]
