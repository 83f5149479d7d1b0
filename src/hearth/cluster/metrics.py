"""The cluster's figures in `/_hearth/metrics` (Prometheus text): nodes by state, each node's load and
capacity as its heartbeat reports them, the leases this node holds, its share of the account limit, and
the invocations it forwarded to each node and received from the others.

It owns the metric names and reads them from their owners just before a scrape. It never changes
anything it reads.
"""

from __future__ import annotations

from collections.abc import Callable

from hearth.cluster.membership import Membership
from hearth.cluster.placement import Placement
from hearth.observability import metrics


def cluster_collector(membership: Membership, placement: Placement | None,
                      received: Callable[[], int]) -> Callable[[], None]:
    nodes = metrics.gauge("hearth_cluster_nodes", "Nodes of the cluster by state (alive, draining, dead, left)")
    load = metrics.gauge("hearth_cluster_node_load", "Invocations running on each node, as its last heartbeat said")
    capacity = metrics.gauge("hearth_cluster_node_capacity", "Each node's capacity (its account concurrency)")
    held = metrics.gauge("hearth_cluster_lease_held", "1 for each lease this node holds now")
    share = metrics.gauge("hearth_cluster_account_share",
                          "This node's part of the account's unreserved concurrency (its capacity over all)")
    forwarded = metrics.gauge("hearth_cluster_forwarded_invocations",
                              "Invocations this node forwarded to each other node since it started")
    taken = metrics.gauge("hearth_cluster_received_invocations",
                          "Invocations other nodes forwarded to this node since it started")

    def collect() -> None:
        try:
            seen = membership.nodes()
        except Exception:  # the database is away: the scrape still answers, without the cluster's part
            return
        by_state: dict[str, int] = {}
        for node in seen:
            by_state[node.state] = by_state.get(node.state, 0) + 1
        nodes.replace({(("state", state),): float(n) for state, n in by_state.items()})
        load.replace({(("node", n.node_id),): float(n.load) for n in seen if n.state in ("alive", "draining")})
        capacity.replace({(("node", n.node_id),): float(n.capacity) for n in seen
                          if n.state in ("alive", "draining")})
        held.replace({(("lease", name),): 1.0 for name in membership.held()})
        share.set(membership.view.share)
        if placement is not None:
            forwarded.replace({(("node", node),): float(n) for node, n in placement.forwarded.items()})
        taken.set(float(received()))
    return collect
