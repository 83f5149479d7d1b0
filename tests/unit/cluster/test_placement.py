"""Where an invocation runs in a cluster (hearth.cluster.placement) and the forwarding wire's frames
(hearth.cluster.forwarding): a warm environment here wins, then a warm node with room, then the least
loaded node when it is less loaded than this one; a throttled invocation goes where there is room; a node
that could not be reached is passed over; a forwarded invocation is never forwarded again; the account's
unreserved pool is divided between nodes."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.unit.async_.helpers import fv

from hearth.cluster import forwarding
from hearth.cluster.forwarding import NodeLost, _frame, _frames
from hearth.cluster.membership import ClusterView, NodeInfo
from hearth.cluster.placement import Placement
from hearth.functions.model import FunctionVersion
from hearth.invoke.errors import Throttled, ThrottleReason
from hearth.invoke.limiter import ConcurrencyLimiter
from hearth.invoke.request import InvokeOutcome, InvokeRequest


def node(node_id: str, load: int = 0, capacity: int = 10) -> NodeInfo:
    return NodeInfo(node_id, f"http://{node_id}", capacity, load, 0.0, 0.0, "alive", 0.0)


@dataclasses.dataclass
class FakeMembership:
    view: ClusterView
    capacity: int = 10


class FakeLocal:
    def __init__(self, idle: bool = False) -> None:
        self.idle = idle

    def has_idle(self, fv: FunctionVersion) -> bool:
        return self.idle


class FakeForwarder:
    def __init__(self, answer: InvokeOutcome | Exception | None) -> None:
        self.answer = answer
        self.sent: list[str] = []

    async def forward(self, address: str, request: InvokeRequest) -> InvokeOutcome | None:
        self.sent.append(address)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def placement(view: ClusterView, *, idle: bool = False, in_flight: int = 0,
              answer: InvokeOutcome | Exception | None = None) -> tuple[Placement, FakeForwarder]:
    forwarder = FakeForwarder(answer)
    return Placement(FakeMembership(view), FakeLocal(idle), lambda: in_flight, forwarder), forwarder  # type: ignore[arg-type]


FN = fv("fn")
KEY = (FN.function_arn, FN.version)


def test_a_warm_environment_here_wins() -> None:
    p, _ = placement(ClusterView(nodes=(node("b"),), warm={KEY: frozenset({"b"})}), idle=True)
    assert p.choose(FN) is None


def test_a_warm_node_with_room_is_chosen_over_the_least_loaded() -> None:
    view = ClusterView(nodes=(node("b", load=5), node("c", load=0), node("d", load=10)),
                       warm={KEY: frozenset({"b", "d"})})
    p, _ = placement(view)
    chosen = p.choose(FN)
    assert chosen is not None and chosen.node_id == "b"  # d is warm but full


def test_cold_invocations_stay_here_unless_another_node_is_less_loaded() -> None:
    view = ClusterView(nodes=(node("b", load=3), node("c", load=1)))
    assert placement(view, in_flight=0)[0].choose(FN) is None  # an idle node keeps its own work
    chosen = placement(view, in_flight=5)[0].choose(FN)
    assert chosen is not None and chosen.node_id == "c"
    assert placement(ClusterView(), in_flight=10)[0].choose(FN) is None  # alone


def test_a_throttled_invocation_goes_where_the_share_has_room() -> None:
    view = ClusterView(nodes=(node("b", load=4), node("c", load=9)), share=0.5)
    chosen = placement(view, idle=True)[0].choose(FN, throttled=True)
    assert chosen is not None and chosen.node_id == "b"  # even with a warm environment here (it is full)
    full = ClusterView(nodes=(node("b", load=6),), share=0.5)
    assert placement(full)[0].choose(FN, throttled=True) is None


def test_an_unreachable_node_is_passed_over_and_forwarded_requests_stay() -> None:
    view = ClusterView(nodes=(node("b"),), warm={KEY: frozenset({"b"})})
    p, forwarder = placement(view, answer=None)
    request = InvokeRequest(FN, b"{}")
    assert asyncio.run(p.run_elsewhere(request)) is None
    assert forwarder.sent == ["http://b"]
    assert p.choose(FN) is None  # suspect for a while
    assert asyncio.run(p.run_elsewhere(request)) is None and forwarder.sent == ["http://b"]
    p2, forwarder2 = placement(view, answer=None)
    assert asyncio.run(p2.run_elsewhere(dataclasses.replace(request, local=True))) is None
    assert forwarder2.sent == []


def test_a_full_remote_node_means_here_unless_this_node_was_full_too() -> None:
    view = ClusterView(nodes=(node("b"),), warm={KEY: frozenset({"b"})}, share=0.5)
    p, _ = placement(view, answer=Throttled(ThrottleReason.ACCOUNT))
    request = InvokeRequest(FN, b"{}")
    assert asyncio.run(p.run_elsewhere(request)) is None
    with pytest.raises(Throttled):
        asyncio.run(p.run_elsewhere(request, throttled=True))


def test_frames_survive_any_chunking() -> None:
    wire = _frame(b"S", b"text/plain") + _frame(b"D", b"x" * 70_000) + _frame(b"D", b"") + _frame(b"O", b"{}")

    async def read(size: int) -> list[tuple[bytes, bytes]]:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(wire), size):
                yield wire[i:i + size]
        return [f async for f in _frames(chunks())]

    for size in (1, 7, 4096, len(wire)):
        frames = asyncio.run(read(size))
        assert [k for k, _ in frames] == [b"S", b"D", b"D", b"O"]
        assert frames[1][1] == b"x" * 70_000

    async def cut() -> list[Any]:
        async def chunks() -> AsyncIterator[bytes]:
            yield wire[:10]
        return [f async for f in _frames(chunks())]

    with pytest.raises(NodeLost):
        asyncio.run(cut())


def test_a_lost_node_is_a_runtime_exit_error() -> None:
    outcome = forwarding.lost_environment("rid", "3")
    assert outcome.function_error == "Unhandled" and outcome.error_type == "Runtime.ExitError"
    assert b"RequestId: rid Error: Runtime exited without providing a reason" in outcome.payload


class Share:
    def __init__(self, share: float) -> None:
        self.share = share

    def take_slot(self, function_arn: str, limit: int) -> bool:
        return True

    def give_slot(self, function_arn: str) -> None:
        pass

    def account_share(self) -> float:
        return self.share


def test_the_unreserved_pool_is_divided_between_nodes() -> None:
    cluster = Share(0.5)
    limiter = ConcurrencyLimiter(account_limit=10, min_unreserved=0, cluster=cluster)
    leases = [limiter.try_acquire(FN) for _ in range(6)]
    assert sum(lease is not None for lease in leases) == 5  # half of 10 on this node
    assert limiter.unreserved_capacity(FN.account_id, FN.region) == 10  # the account's figure is whole
    cluster.share = 1.0  # the other node left
    assert limiter.try_acquire(FN) is not None


def test_the_address_other_nodes_use() -> None:
    from hearth.config import Settings

    assert Settings(port=4600).cluster_address == "http://127.0.0.1:4600"
    assert Settings(host="10.1.2.3", port=4600).cluster_address == "http://10.1.2.3:4600"
    assert Settings(host="0.0.0.0", node_address="http://node7:4566/").cluster_address == "http://node7:4566"
    wildcard = Settings(host="0.0.0.0", port=4600).cluster_address  # the default route's interface
    assert wildcard.startswith("http://") and wildcard.endswith(":4600") and "0.0.0.0" not in wildcard
