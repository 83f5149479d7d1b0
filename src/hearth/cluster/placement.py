"""Where a synchronous invocation runs in a cluster: on this node, or forwarded to another.

It owns the choice, made from the last heartbeat's picture of the cluster (`Membership.view`: alive nodes,
their load and capacity, which versions they hold environments of) and this node's own live state,
without a database query per invocation:

1. an idle (or provisioned) environment here: here;
2. else a node that reported environments of the version and has capacity: the least loaded of them;
3. else the least loaded node, if it is less loaded than this one; else here;
4. an invocation this node's share of the account limit throttles goes to a node with room, if any.

Loads in the view are seconds old, so each node adds what it forwarded and has not had back, and a node
it could not reach is passed over for a while. It never forwards an invocation that was forwarded to it,
and never admits or runs anything (the invoker of the chosen node does).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Protocol

from hearth.cluster.forwarding import Forwarder
from hearth.cluster.membership import Membership, NodeInfo
from hearth.functions.model import FunctionVersion
from hearth.invoke.errors import Throttled
from hearth.invoke.request import InvokeOutcome, InvokeRequest

SUSPECT_S = 5.0  # a node that could not be reached is passed over this long


class LocalState(Protocol):
    def has_idle(self, fv: FunctionVersion) -> bool: ...


class Placement:
    def __init__(self, membership: Membership, local: LocalState, in_flight: Callable[[], int],
                 forwarder: Forwarder) -> None:
        self._membership = membership
        self._local = local
        self._in_flight = in_flight  # invocations running on this node now
        self._forwarder = forwarder
        self._sent: collections.Counter[str] = collections.Counter()  # node id -> forwarded, not yet back
        self._suspect: dict[str, float] = {}  # node id -> monotonic time it is trusted again
        self.forwarded: collections.Counter[str] = collections.Counter()  # node id -> forwarded, ever

    def _load(self, node: NodeInfo) -> float:
        return (node.load + self._sent[node.node_id]) / max(1, node.capacity)

    def _candidates(self) -> list[NodeInfo]:
        now = time.monotonic()
        return [n for n in self._membership.view.nodes if self._suspect.get(n.node_id, 0.0) <= now]

    def choose(self, fv: FunctionVersion, *, throttled: bool = False) -> NodeInfo | None:
        """The node to run `fv`'s invocation on, or None for this one."""
        view = self._membership.view
        if not view.nodes or (not throttled and self._local.has_idle(fv)):
            return None
        candidates = self._candidates()
        if not candidates:
            return None
        warm_on = view.warm.get((fv.function_arn, fv.version), frozenset())
        warm = [n for n in candidates if n.node_id in warm_on and self._load(n) < 1.0]
        if warm:
            return min(warm, key=self._load)
        best = min(candidates, key=self._load)
        if throttled:
            return best if self._load(best) < view.share else None
        here = self._in_flight() / max(1, self._membership.capacity)
        return best if self._load(best) < here else None

    async def run_elsewhere(self, request: InvokeRequest, *, throttled: bool = False) -> InvokeOutcome | None:
        """The outcome of `request` run on another node, or None to run it here (no better node, or the
        chosen one was not reached)."""
        if request.local or request.lease is not None:
            return None
        node = self.choose(request.version, throttled=throttled)
        if node is None:
            return None
        self._sent[node.node_id] += 1
        try:
            outcome = await self._forwarder.forward(node.address, request)
        except Throttled:
            if throttled:
                raise  # no room here either: the caller's 429
            return None  # the chosen node is full: here, under this node's own limits
        finally:
            self._sent[node.node_id] -= 1
            if self._sent[node.node_id] <= 0:
                del self._sent[node.node_id]
        if outcome is None:
            self._suspect[node.node_id] = time.monotonic() + SUSPECT_S
        else:
            self.forwarded[node.node_id] += 1
        return outcome

    def statistics(self) -> dict[str, object]:
        view = self._membership.view
        return {"forwarded": dict(self.forwarded), "in_flight_elsewhere": dict(self._sent),
                "account_share": round(view.share, 4),
                "warm_elsewhere": {f"{arn}:{version}": sorted(nodes) for (arn, version), nodes in view.warm.items()}}
