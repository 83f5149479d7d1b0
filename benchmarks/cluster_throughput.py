"""Cluster throughput: warm invocations per second at concurrency 32 through one, two and three nodes on
one PostgreSQL database, against one node on SQLite, the clients spread evenly over the nodes.

Run: `.venv/bin/python benchmarks/cluster_throughput.py --database postgresql://USER@HOST/DB [--seconds 10]`
against an empty PostgreSQL database you own. Each client is a raw signed keep-alive connection
(hearth.bench.rawclient) in its own thread. On one shared machine every node, PostgreSQL and the clients
share the same cores, so the ratios measure the cluster's overhead (forwarding, heartbeats, the shared
database), not scale: more nodes cannot add cores that are not there.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from hearth.bench.cluster import Node
from hearth.bench.rawclient import SignedClient
from hearth.bench.servers import BENCH_KEY

CONCURRENCY = 32
PATH = "/2015-03-31/functions/throughput/invocations"



def _drive(nodes: list[Node], seconds: float) -> float:
    """Invocations per second with CONCURRENCY clients, client i on node i % len(nodes)."""
    stop = threading.Event()
    counts = [0] * CONCURRENCY
    failures: list[str] = []

    def client(i: int) -> None:
        conn = SignedClient(nodes[i % len(nodes)].endpoint, "lambda", BENCH_KEY[0], BENCH_KEY[1])
        while not stop.is_set():
            status, _, body = conn.request("POST", PATH, b"{}")
            if status == 200:
                counts[i] += 1
            elif len(failures) < 5:
                failures.append(f"{status}: {body[:200]!r}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    time.sleep(seconds / 3)  # warm-up: every client's environment exists
    start_count, started = sum(counts), time.monotonic()
    time.sleep(seconds)
    rate = (sum(counts) - start_count) / (time.monotonic() - started)
    stop.set()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"failed invocations: {failures}")
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="an empty PostgreSQL database URL")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hearth-throughput-") as tmp:
        root = Path(tmp)
        baseline = Node(None, "sqlite", "2,10,15", root)
        try:
            baseline.make_echo_function("throughput")
            single = _drive([baseline], args.seconds)
        finally:
            baseline.stop()
        print(f"one node on SQLite: {single:.0f} invocations/s at concurrency {CONCURRENCY}")
        nodes: list[Node] = []
        try:
            for count in (1, 2, 3):
                nodes.append(Node(args.database, f"node-{count}", "2,10,15", root))
                if count == 1:
                    nodes[0].make_echo_function("throughput")
                rate = _drive(nodes, args.seconds)
                print(f"{count} node(s) on PostgreSQL: {rate:.0f} invocations/s "
                      f"= {rate / single:.2f} x one SQLite node")
        finally:
            for node in nodes:
                node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
