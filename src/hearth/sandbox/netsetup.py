"""Opening sandbox networking from Hearth's settings, and publishing its byte counts.

It owns the decision "networking on or off" at server start and the sentence that explains why it is
off. It never fails the server's start: without networking, sandboxes keep their loopback-only
namespace (functions still reach Hearth's AWS API through the proxy inside it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from hearth.config import Settings
from hearth.observability import metrics
from hearth.sandbox.cgroups import instance_key
from hearth.sandbox.network import NetworkPool, NetworkUnavailable

log = logging.getLogger(__name__)


async def open_network(settings: Settings) -> NetworkPool | None:
    try:
        return await NetworkPool.open(instance_key(settings.data_dir), pool_size=settings.network_pool,
                                      conn_limit=settings.network_conn_limit)
    except NetworkUnavailable as exc:
        log.warning("sandbox networking unavailable (%s): functions reach only Hearth's AWS API", exc)
        return None


def network_collector(pool: NetworkPool) -> Callable[[], None]:
    """Bytes each function's environments sent and received through their interfaces (nft counters)."""
    gauge = metrics.gauge("hearth_function_network_bytes",
                          "Bytes sent and received by a function's environments on their network interfaces")

    def collect() -> None:
        gauge.replace({(("function", owner), ("direction", d)): float(n)
                       for (owner, d), n in pool.bytes_by_function().items()})
    return collect
