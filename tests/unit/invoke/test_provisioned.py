"""Provisioned concurrency: the pool serves provisioned environments first and never reclaims them,
the manager reaches READY or FAILED and follows its alias, the limiter counts slots per version,
and configurations are durable."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests import pgcluster
from tests.unit.invoke.test_pool import make_pool

from hearth.functions.errors import NotFound
from hearth.functions.model import FunctionVersion
from hearth.invoke.environment import InitFailure
from hearth.invoke.errors import ThrottleReason
from hearth.invoke.limiter import ConcurrencyLimiter
from hearth.invoke.pool import pool_key
from hearth.invoke.provisioned import ProvisionedManager, ProvisionedStore
from hearth.observability.metrics import Registry
from hearth.store.engine import use_engine
from hearth.store.postgres import PostgresEngine


def fv(version: str = "1") -> FunctionVersion:
    return FunctionVersion(
        account_id="000000000000", region="us-east-1", name="f", version=version,
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f", runtime="python3.11",
        handler="app.handler", memory_mb=128, timeout_s=3, ephemeral_mb=512, environment={},
        code_dir=Path("/nonexistent"), code_sha256="0" * 64, revision_id=f"r{version}", state="Active",
    )


async def test_pool_serves_provisioned_first_and_keeps_them() -> None:
    pool, created = make_pool(4)
    pool.gate.set()  # type: ignore[attr-defined]
    f = fv()
    prov = await pool.create_provisioned(f)
    assert prov.init_duration_ms is None
    env, cold = await pool.acquire(f)
    assert env is prov and not cold
    assert pool.provisioned_in_use(prov)
    spill, cold = await pool.acquire(f)  # the provisioned one is busy: on demand
    assert spill is not prov and cold
    pool.release(f, prov)
    pool.release(f, spill)
    assert not pool.provisioned_in_use(prov)
    prov.last_used = spill.last_used = -1e9
    assert await pool.reclaim_idle() == 1  # only the on-demand environment
    spill.shutdown.assert_awaited()
    prov.shutdown.assert_not_awaited()
    await pool.retire(f.function_arn, keep_revision="other")  # a $LATEST change leaves them alone
    prov.shutdown.assert_not_awaited()
    assert pool.statistics()["provisioned"] == 1
    pool.discard_provisioned(prov)
    await asyncio.sleep(0)
    prov.shutdown.assert_awaited()
    assert len(created) == 2


async def test_busy_provisioned_env_is_shut_down_when_released_after_discard() -> None:
    pool, _ = make_pool(4)
    pool.gate.set()  # type: ignore[attr-defined]
    f = fv()
    prov = await pool.create_provisioned(f)
    env, _ = await pool.acquire(f)
    pool.discard_provisioned(env)
    pool.release(f, env)
    await asyncio.sleep(0)
    prov.shutdown.assert_awaited()


def manager_for(pool: Any, versions: dict[str, FunctionVersion], aliases: dict[str, str],
                limiter: ConcurrencyLimiter | None = None, store: ProvisionedStore | None = None,
                max_env_age_s: float | None = None) -> ProvisionedManager:
    def resolve(account: str, region: str, name: str, qualifier: str) -> FunctionVersion:
        version = aliases.get(qualifier, qualifier)
        if version not in versions:
            raise NotFound("gone")
        return versions[version]

    return ProvisionedManager(pool, resolve, limiter, store, registry=Registry(), max_env_age_s=max_env_age_s)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_manager_reaches_ready_and_follows_alias() -> None:
    pool, created = make_pool(8)
    pool.gate.set()  # type: ignore[attr-defined]
    v1, v2 = fv("1"), fv("2")
    aliases = {"live": "1"}
    limiter = ConcurrencyLimiter(1000)
    manager = manager_for(pool, {"1": v1, "2": v2}, aliases, limiter)
    status = manager.put("000000000000", "us-east-1", "f", "live", 2)
    assert status.status == "IN_PROGRESS" and status.allocated == 0
    assert limiter.provisioned_versions(v1.function_arn) == {"1": 2}
    manager.reconcile()
    await settle()
    status = manager.status(("000000000000", "us-east-1", "f", "live"))
    assert status is not None and status.status == "READY" and status.allocated == 2
    assert manager.qualifiers_on_version("000000000000", "us-east-1", "f", "1") == ["live"]
    aliases["live"] = "2"
    manager.reconcile()
    await settle()
    assert all(env.shutdown.await_count for env in created[:2])  # v1's environments went
    assert {pool._keys[e.env_id] for e in created[2:]} == {pool_key(v2)}
    assert limiter.provisioned_versions(v1.function_arn) == {"2": 2}
    assert manager.delete(("000000000000", "us-east-1", "f", "live"))
    await settle()
    assert all(env.shutdown.await_count for env in created)
    assert limiter.provisioned(v1.function_arn) == 0


async def test_aged_environments_are_replaced_one_at_a_time_before_they_go() -> None:
    # A provisioned environment's role session must be renewed before it ends: past the age limit a new
    # environment is started first, and only then does the old one go, so READY never drops below the request.
    pool, created = make_pool(8)
    pool.gate.set()  # type: ignore[attr-defined]
    manager = manager_for(pool, {"1": fv()}, {}, max_env_age_s=3600.0)
    key = ("000000000000", "us-east-1", "f", "1")
    manager.put(*key, 2)
    manager.reconcile()
    await settle()
    assert len(created) == 2
    manager.reconcile()
    await settle()
    assert len(created) == 2  # young: nothing to renew
    created[0].created_at -= 7200.0
    manager.reconcile()  # starts the replacement; the aged one still serves
    await settle()
    assert len(created) == 3 and not created[0].shutdown.await_count
    status = manager.status(key)
    assert status is not None and status.allocated >= 2
    manager.reconcile()  # the replacement is up: the aged one goes
    await settle()
    assert created[0].shutdown.await_count == 1 and not created[1].shutdown.await_count
    status = manager.status(key)
    assert status is not None and status.status == "READY" and status.allocated == 2
    manager.reconcile()
    await settle()
    assert len(created) == 3  # nothing aged any more


async def test_manager_marks_init_failure() -> None:
    pool, _ = make_pool(4)

    async def failing(f: FunctionVersion) -> Any:
        raise InitFailure("Runtime.ImportModuleError", b"{}", [])

    pool.create_provisioned = failing  # type: ignore[method-assign]
    manager = manager_for(pool, {"1": fv()}, {})
    manager.put("000000000000", "us-east-1", "f", "1", 1)
    manager.reconcile()
    await settle()
    status = manager.status(("000000000000", "us-east-1", "f", "1"))
    assert status is not None and status.status == "FAILED"
    assert status.reason == "FUNCTION_ERROR_INIT_FAILURE"  # AWS names no error type here
    manager.reconcile()  # no retry loop until the next Put
    await settle()
    assert manager.init_failures == 1


async def test_configs_are_durable_and_vanish_with_their_version(tmp_path: Path) -> None:
    pool, _ = make_pool(4)
    pool.gate.set()  # type: ignore[attr-defined]
    versions = {"1": fv()}
    first = manager_for(pool, versions, {}, store=ProvisionedStore(tmp_path))
    first.put("000000000000", "us-east-1", "f", "1", 3)
    await first.close()
    second = manager_for(pool, versions, {}, store=ProvisionedStore(tmp_path))
    listed = second.list_configs("000000000000", "us-east-1", "f")
    assert [(c.qualifier, c.requested) for c in listed] == [("1", 3)]
    del versions["1"]
    second.reconcile()
    assert second.list_configs("000000000000", "us-east-1", "f") == []
    await second.close()
    third = manager_for(pool, versions, {}, store=ProvisionedStore(tmp_path))
    assert third.list_configs("000000000000", "us-east-1", "f") == []
    await third.close()


def test_limiter_provisioned_slots_are_per_version_and_inside_reserved() -> None:
    limiter = ConcurrencyLimiter(1000)
    v1, latest = fv("1"), replace(fv("1"), version="$LATEST")
    limiter.set_reserved(v1.function_arn, v1.account_id, v1.region, 1)
    limiter.set_provisioned(v1.function_arn, v1.account_id, v1.region, 1, {"1": 1})
    assert limiter.throttle_reason(latest) is ThrottleReason.RESERVED  # AWS (recorded)
    lease = limiter.try_acquire(v1)
    assert lease is not None
    assert limiter.throttle_reason(v1) is ThrottleReason.RESERVED
    lease.release()
    limiter.set_reserved(v1.function_arn, v1.account_id, v1.region, 2)
    leases = [limiter.try_acquire(v1), limiter.try_acquire(latest)]
    assert all(leases)
    assert limiter.try_acquire(v1) is None


def test_provisioned_without_reservation_spills_into_shared_pool() -> None:
    limiter = ConcurrencyLimiter(3, min_unreserved=0)
    v1 = fv("1")
    limiter.set_provisioned(v1.function_arn, v1.account_id, v1.region, 1, {"1": 1})
    assert limiter.unreserved_capacity(v1.account_id, v1.region) == 2
    leases = [limiter.try_acquire(v1) for _ in range(3)]
    assert all(leases)
    assert limiter.try_acquire(v1) is None
    assert limiter.throttle_reason(v1) is ThrottleReason.ACCOUNT


async def test_a_cluster_node_takes_up_configurations_put_through_another(tmp_path: Path) -> None:
    """Two nodes on one PostgreSQL database: a configuration put (and deleted) through one is followed
    by the other, which then keeps its own provisioned environments."""
    if not pgcluster.available():
        pytest.skip("no PostgreSQL server binaries")
    use_engine(tmp_path, PostgresEngine(pgcluster.cluster().new_database("provisioned")))
    versions = {"1": fv("1")}
    (pool_a, _), (pool_b, _) = make_pool(4), make_pool(4)
    here = manager_for(pool_a, versions, {}, store=ProvisionedStore(tmp_path))
    there = manager_for(pool_b, versions, {}, store=ProvisionedStore(tmp_path))
    key = ("000000000000", "us-east-1", "f", "1")
    try:
        there.put(*key, 2)
        assert here.get(key) is None
        here.follow_store()
        config = here.get(key)
        assert config is not None and config.requested == 2
        there.delete(key)
        here.follow_store()
        assert here.get(key) is None
    finally:
        await here.close()
        await there.close()


async def test_in_a_cluster_only_the_lease_holder_keeps_the_environments(tmp_path: Path) -> None:
    """Provisioned concurrency is work that runs once: the holder of its lease keeps the environments and
    publishes each configuration's status; another node keeps none and answers with that status; a node
    losing the lease lets its environments go."""
    if not pgcluster.available():
        pytest.skip("no PostgreSQL server binaries")
    use_engine(tmp_path, PostgresEngine(pgcluster.cluster().new_database("provisioned-lease")))
    versions = {"1": fv("1")}
    (pool_a, created_a), (pool_b, created_b) = make_pool(4), make_pool(4)
    pool_a.gate.set()  # type: ignore[attr-defined]
    pool_b.gate.set()  # type: ignore[attr-defined]
    holds = {"a": True, "b": False}

    def manager(pool: Any, node: str) -> ProvisionedManager:
        def resolve(account: str, region: str, name: str, qualifier: str) -> FunctionVersion:
            return versions[qualifier]
        return ProvisionedManager(pool, resolve, None, ProvisionedStore(tmp_path), registry=Registry(),
                                  reconcile_interval_s=0.01, gate=lambda: holds[node])

    a, b = manager(pool_a, "a"), manager(pool_b, "b")
    key = ("000000000000", "us-east-1", "f", "1")
    a.start()
    b.start()
    try:
        b.put(*key, 2)  # through the node without the lease
        for _ in range(500):
            status = b.status(key)
            if status is not None and status.status == "READY":
                break
            await asyncio.sleep(0.01)
        assert status is not None and (status.status, status.allocated) == ("READY", 2)
        assert len(created_a) == 2 and created_b == []
        holds.update(a=False, b=True)  # the lease moves
        for _ in range(500):
            if len(created_b) == 2 and all(env.shutdown.await_count for env in created_a):
                break
            await asyncio.sleep(0.01)
        assert len(created_b) == 2 and all(env.shutdown.await_count for env in created_a)
    finally:
        await a.close()
        await b.close()
