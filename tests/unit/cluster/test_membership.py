"""Membership and leases (hearth.cluster.membership), on SQLite (one node) and on PostgreSQL (the
database's clock): one holder per lease, takeover only after expiry with a new fencing token, the
old holder fenced, work done once per key, a silent node declared dead, a clean stop handing back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests import pgcluster
from tests.unit.async_.helpers import fv

from hearth.cluster.membership import Membership
from hearth.invoke.limiter import ConcurrencyLimiter, ConcurrencyStore
from hearth.store.engine import use_engine
from hearth.store.postgres import PostgresEngine

Make = Callable[..., Membership]


@pytest.fixture(params=["sqlite", "postgresql"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Make]:
    if request.param == "postgresql":
        if not pgcluster.available():
            pytest.skip("no PostgreSQL server binaries")
        use_engine(tmp_path, PostgresEngine(pgcluster.cluster().new_database("membership")))
    made: list[Membership] = []

    def make(node_id: str, **kwargs: float) -> Membership:
        member = Membership(tmp_path, node_id, f"http://{node_id}", 10, **kwargs)
        member.register()
        made.append(member)
        return member

    yield make
    for member in made:
        member.close()


def _until(condition: Callable[[], object]) -> None:
    """Wait for an event (a lease's expiry, a heartbeat's age), never assert on time itself."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "the awaited state never came"
        time.sleep(0.02)


def test_one_holder_and_a_fenced_takeover_after_expiry(make: Make) -> None:
    a = make("a", heartbeat_s=0.05, lease_s=0.3, dead_after_s=5)
    b = make("b", heartbeat_s=0.05, lease_s=0.3, dead_after_s=5)
    first = a.acquire("schedules")
    assert first is not None and first.token == 1
    assert b.acquire("schedules") is None  # held by a
    renewed = a.acquire("schedules")
    assert renewed is not None and renewed.token == 1  # a renewal keeps the token
    _until(lambda: b.acquire("schedules") is not None)
    taken = b.holds("schedules")
    assert taken is not None and taken.token == 2
    # a (cut off, say) stopped acting before b could take over, and its token no longer writes.
    assert a.holds("schedules") is None
    assert not a.still_holder(renewed)
    assert b.still_holder(taken)


def test_work_is_done_once_per_key_across_nodes(make: Make) -> None:
    a, b = make("a"), make("b")
    assert a.once("schedule:r:2026-01-01T00:00:00")
    assert not b.once("schedule:r:2026-01-01T00:00:00")
    assert not a.once("schedule:r:2026-01-01T00:00:00")
    assert b.once("schedule:r:2026-01-01T00:01:00")


def test_a_silent_node_is_dead_and_a_stopped_one_has_left(make: Make) -> None:
    a = make("a", heartbeat_s=0.05, lease_s=0.1, dead_after_s=0.2)
    b = make("b", heartbeat_s=0.05, lease_s=0.1, dead_after_s=0.2)
    assert {n.node_id: n.state for n in a.nodes()} == {"a": "alive", "b": "alive"}
    _until(lambda: {n.node_id: n.state for n in a.nodes()}.get("b") == "dead")  # b stopped heartbeating
    b.tick()  # it is back
    assert {n.node_id: n.state for n in a.nodes()}["b"] == "alive"


async def test_a_clean_stop_hands_the_leases_back_at_once(make: Make) -> None:
    a = make("a", lease_s=60, dead_after_s=60)
    b = make("b", lease_s=60, dead_after_s=60)
    a.want(["schedules"])
    a.start()
    assert a.holds("schedules") is not None and b.acquire("schedules") is None
    await a.stop()
    taken = b.acquire("schedules")
    assert taken is not None and taken.token == 2
    assert {n.node_id: n.state for n in b.nodes()}["a"] == "left"
    status = b.status()
    assert [(lease["name"], lease["holder"]) for lease in status["leases"]] == [("schedules", "b")]


def test_reserved_concurrency_holds_across_nodes(make: Make, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Two nodes' limiters on one database: a reservation of 2 set through one node admits two
    invocations in the whole cluster; a slot freed on one node admits one on the other; a dead node's
    slots stop counting."""
    if request.node.callspec.params["make"] != "postgresql":
        pytest.skip("a reservation set through one node reaches the other through a shared engine")
    a, b = (make(n, heartbeat_s=0.05, lease_s=0.5, dead_after_s=1.0) for n in ("a", "b"))
    on_a = ConcurrencyLimiter(100, ConcurrencyStore(tmp_path), cluster=a, min_unreserved=0)
    on_b = ConcurrencyLimiter(100, ConcurrencyStore(tmp_path), cluster=b, min_unreserved=0)
    function = fv("reserved")
    on_a.set_reserved(function.function_arn, function.account_id, function.region, 2)
    _until(lambda: on_b.reserved(function.function_arn) == 2)  # within the reload period
    a.tick()
    b.tick()  # both alive (a node silent for dead_after_s is not counted)
    first, second = on_a.try_acquire(function), on_b.try_acquire(function)
    assert first is not None and second is not None
    assert on_a.try_acquire(function) is None and on_b.try_acquire(function) is None
    assert on_b.throttle_reason(function) is None  # b's own count is 1: only the cluster says no
    first.release()
    assert on_b.try_acquire(function) is not None
    assert on_a.try_acquire(function) is None
    _until(lambda: {n.node_id: n.state for n in a.nodes()}["b"] == "dead")  # b stopped heartbeating
    a.tick()
    assert on_a.try_acquire(function) is not None  # b's two slots died with it


def test_a_draining_node_gets_no_work_but_its_slots_and_capacity_count(make: Make) -> None:
    a = make("a", heartbeat_s=0.05, lease_s=0.3, dead_after_s=5)
    b = make("b", heartbeat_s=0.05, lease_s=0.3, dead_after_s=5)
    a.tick()
    assert [n.node_id for n in a.view.nodes] == ["b"] and a.view.share == 0.5
    assert b.take_slot("arn:fn", 1)
    b.drain()
    b.tick()  # its heartbeats keep saying so
    a.tick()
    assert a.view.nodes == ()  # nothing is forwarded to it any more
    assert a.view.share == 0.5  # what it still runs counts against the account's limit
    assert {n.node_id: n.state for n in a.nodes()}["b"] == "draining"
    assert not a.take_slot("arn:fn", 1)  # its reserved slot is still in flight
