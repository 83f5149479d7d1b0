"""Cluster membership and leases: which Hearth nodes share this installation's database, which of them
are alive, and which node owns each piece of work that must run once.

It owns the `cluster` component's tables: `cluster_nodes` (one row per node: id, address, capacity,
load, heartbeat), `cluster_leases` (one row per named piece of work: holder, fencing token, expiry),
`cluster_once` (keys of things done once cluster-wide, e.g. a schedule's firing at one moment),
`cluster_warm` (which versions each node holds environments of) and `cluster_config` (the token
nodes forward invocations with). It keeps the last heartbeat's picture of the cluster (`view`) for
placement to read without a query per invocation. It never decides what a lease protects: the owners
of the work ask `Membership.holds(name)` before acting.

Clocks. Expiry times are the database's clock on PostgreSQL (`clock_timestamp()`), so nodes' clocks
need not agree; on SQLite (one node) it is the node's own. A node also keeps its own deadline for each
lease it holds, measured on its monotonic clock from *before* the renewal was sent: it stops acting
when that passes (`holds()` turns false), which is never later than the database's expiry — so a node
cut off from the database stops acting on a lease before any other node can take it (fencing), and
the fencing token (incremented at every change of holder) lets a write refuse a stale holder.

Liveness: a node heartbeats every `heartbeat_s`; one whose last heartbeat is older than `dead_after_s`
is dead (its leases have expired by then too: `lease_s` ≤ `dead_after_s`). A node stopping cleanly
marks itself `left` and hands its leases back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from hearth.store.component import ComponentDb
from hearth.store.engine import Connection

log = logging.getLogger(__name__)

COMPONENT = "cluster"
MIGRATIONS = (
    """
    CREATE TABLE cluster_nodes (
        node_id TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        capacity INTEGER NOT NULL,
        load INTEGER NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL,
        state TEXT NOT NULL
    );
    CREATE TABLE cluster_leases (
        name TEXT PRIMARY KEY,
        holder TEXT,
        token INTEGER NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE TABLE cluster_once (
        key TEXT PRIMARY KEY,
        node_id TEXT NOT NULL,
        done_at REAL NOT NULL
    );
    CREATE INDEX cluster_once_by_time ON cluster_once (done_at)
    """,
    # Reserved-concurrency slots each node holds (cluster-wide reserved concurrency).
    """
    CREATE TABLE cluster_slots (
        node_id TEXT NOT NULL,
        function_arn TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (node_id, function_arn)
    );
    CREATE INDEX cluster_slots_by_function ON cluster_slots (function_arn)
    """,
    # Forwarded invocations (hearth.cluster.forwarding): the token nodes present to one another, and the
    # versions each node has environments of, idle or busy (published with its heartbeat).
    """
    CREATE TABLE cluster_config (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE cluster_warm (
        node_id TEXT NOT NULL,
        function_arn TEXT NOT NULL,
        version TEXT NOT NULL,
        idle INTEGER NOT NULL,
        PRIMARY KEY (node_id, function_arn, version)
    )
    """,
)

# The work a node takes a lease on to run it alone in the cluster (the rest runs on every node; see
# docs/design.md, "Scale-out").
ONCE_ONLY_LEASES = ("schedules", "s3-lifecycle", "dynamodb-ttl", "dynamodb-kinesis", "event-source-mappings",
                    "provisioned-concurrency")

HEARTBEAT_S = 2.0
LEASE_S = 10.0
DEAD_AFTER_S = 15.0
ONCE_KEPT_S = 7 * 86400.0  # how long a done-once key is remembered


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    address: str
    capacity: int
    load: int
    started_at: float
    heartbeat_at: float
    state: str  # "alive", "draining" (stopping), "dead" (missed its heartbeats), "left" (stopped cleanly)
    heartbeat_age_s: float  # on the database's clock

    def as_json(self) -> dict[str, Any]:
        return {"id": self.node_id, "address": self.address, "capacity": self.capacity, "load": self.load,
                "state": self.state, "heartbeat_age_s": round(self.heartbeat_age_s, 3),
                "started_at": self.started_at}


@dataclass(frozen=True)
class ClusterView:
    """The cluster as the last heartbeat saw it: what placement decides on (seconds old at most)."""

    nodes: tuple[NodeInfo, ...] = ()  # alive nodes other than this one
    warm: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)  # (ARN, version) -> node ids
    share: float = 1.0  # this node's part of the account concurrency limit (its capacity / all capacity)


@dataclass(frozen=True)
class Lease:
    name: str
    token: int  # the fencing token: grows at every change of holder
    local_deadline: float  # monotonic: stop acting after this unless renewed


def default_node_id(host: str, port: int) -> str:
    name = socket.gethostname() if host in ("0.0.0.0", "::", "127.0.0.1", "localhost") else host
    return f"{name}:{port}"


class Membership:
    """This node's membership and its leases. `start()` registers and starts heartbeating (and renewing
    what it holds); `want(names)` says which leases it tries to hold; `holds(name)` answers whether it
    may act on one now."""

    def __init__(self, data_dir: Path, node_id: str, address: str, capacity: int, *,
                 heartbeat_s: float = HEARTBEAT_S, lease_s: float = LEASE_S,
                 dead_after_s: float = DEAD_AFTER_S, load: Callable[[], int] | None = None,
                 warm: Callable[[], dict[tuple[str, str], int]] | None = None) -> None:
        if lease_s > dead_after_s:
            raise ValueError("a lease must expire before its holder is declared dead")
        self._db = ComponentDb(data_dir, COMPONENT, MIGRATIONS)
        self._shared_clock = self._db.engine.dialect.name != "sqlite"
        self.node_id = node_id
        self.address = address
        self.capacity = capacity
        self.heartbeat_s = heartbeat_s
        self.lease_s = lease_s
        self.dead_after_s = dead_after_s
        self._load = load or (lambda: 0)  # invocations running on this node now, sent with each heartbeat
        self.load = 0
        self._warm = warm or dict  # environments by (ARN, version), published with each heartbeat
        self._warm_now: dict[tuple[str, str], int] = {}
        self._warm_published: dict[tuple[str, str], int] | None = None
        self.view = ClusterView()
        self.forward_token = ""  # set at register: shared by every node through the database
        self._state = "alive"  # "draining" from a SIGTERM on: the others send this node no more work
        self._wanted: set[str] = set()
        self._held: dict[str, Lease] = {}
        self._task: asyncio.Task[None] | None = None
        self._once_pruned = 0.0
        self._departure_listeners: list[Callable[[list[str]], object]] = []
        self._departed: set[str] = set()  # nodes already reported dead or left

    # -- the database's clock ----------------------------------------------------------------------

    def _now(self, db: Connection) -> float:
        if self._shared_clock:
            return float(db.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())").fetchone()[0])
        return time.time()

    # -- life ----------------------------------------------------------------------------------------

    def register(self) -> None:
        with self._db.tx() as db:
            now = self._now(db)
            db.execute(
                "INSERT INTO cluster_nodes (node_id, address, capacity, load, pid, started_at, heartbeat_at, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'alive') ON CONFLICT (node_id) DO UPDATE SET "
                "address = excluded.address, capacity = excluded.capacity, load = excluded.load, "
                "pid = excluded.pid, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, "
                "state = 'alive'",
                (self.node_id, self.address, self.capacity, self.load, os.getpid(), now, now))
            # Slots this node held before a crash are not in flight any more, nor its environments warm.
            db.execute("DELETE FROM cluster_slots WHERE node_id = ?", (self.node_id,))
            db.execute("DELETE FROM cluster_warm WHERE node_id = ?", (self.node_id,))
            # The first node makes the forwarding token; the others read it (anyone who can read the
            # database is inside the cluster's trust already).
            db.execute("INSERT INTO cluster_config (name, value) VALUES ('forward-token', ?) "
                       "ON CONFLICT (name) DO NOTHING", (secrets.token_hex(32),))
            self.forward_token = str(db.execute(
                "SELECT value FROM cluster_config WHERE name = 'forward-token'").fetchone()[0])
        self._warm_published = {}

    def start(self) -> None:
        self.register()
        self.tick()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop heartbeating, hand every lease back and mark this node `left` (a clean stop)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            with self._db.tx() as db:
                for name in list(self._held):
                    db.execute("UPDATE cluster_leases SET holder = NULL, expires_at = 0 "
                               "WHERE name = ? AND holder = ?", (name, self.node_id))
                db.execute("UPDATE cluster_nodes SET state = 'left', load = 0 WHERE node_id = ?", (self.node_id,))
                db.execute("DELETE FROM cluster_warm WHERE node_id = ?", (self.node_id,))
        except Exception:  # the database is gone: the leases expire on their own
            log.warning("could not hand the leases back at stop", exc_info=True)
        self._held.clear()

    def close(self) -> None:
        self._db.close()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                self.load = self._load()  # read on the event loop, where the counts change
                self._warm_now = self._warm()
                await asyncio.to_thread(self.tick)
                self.report_departures()  # on the event loop: listeners may touch their own loop state
            except Exception:  # an outage: holds() turns false by itself as the local deadlines pass
                log.warning("cluster heartbeat failed", exc_info=True)

    def drain(self) -> None:
        """A SIGTERM: from now on the other nodes forward no invocation here (they see `draining` at their
        next heartbeat); this node finishes what it has, then `stop` hands its leases back."""
        self._state = "draining"
        try:
            with self._db.tx(flush=False) as db:
                db.execute("UPDATE cluster_nodes SET state = 'draining' WHERE node_id = ?", (self.node_id,))
        except Exception:  # the database is away: the others find this node dead or left soon enough
            log.warning("could not mark this node draining", exc_info=True)

    def on_departure(self, listener: Callable[[list[str]], object]) -> None:
        """Call `listener(node_ids)` on the event loop for nodes that died or left (each once per
        departure; at start, for every node already gone), so that their work is taken over."""
        self._departure_listeners.append(listener)

    def report_departures(self) -> None:
        gone = {n.node_id for n in self.nodes() if n.state in ("dead", "left") and n.node_id != self.node_id}
        new = sorted(gone - self._departed)
        self._departed = gone  # a node that came back and goes again is reported again
        if new:
            log.info("cluster: %s no longer running", ", ".join(new))
            for listener in self._departure_listeners:
                try:
                    listener(new)
                except Exception:
                    log.exception("taking over the work of %s failed", ", ".join(new))

    def tick(self) -> None:
        """One heartbeat: refresh this node's row, renew (or try to take) every wanted lease."""
        with self._db.tx(flush=False) as db:
            now = self._now(db)
            db.execute("UPDATE cluster_nodes SET heartbeat_at = ?, load = ?, state = ? WHERE node_id = ?",
                       (now, self.load, self._state, self.node_id))
        self._publish_warm()
        self.view = self._read_view()
        for name in sorted(self._wanted):
            self.acquire(name)
        if time.monotonic() - self._once_pruned > 3600:
            self._once_pruned = time.monotonic()
            with self._db.tx() as db:
                db.execute("DELETE FROM cluster_once WHERE done_at < ?", (self._now(db) - ONCE_KEPT_S,))

    def _publish_warm(self) -> None:
        """This node's warm versions, written only when they changed since the last heartbeat."""
        warm = dict(self._warm_now)
        if warm == self._warm_published:
            return
        with self._db.tx(flush=False) as db:  # a hint: lost in a power cut, re-published at start
            db.execute("DELETE FROM cluster_warm WHERE node_id = ?", (self.node_id,))
            for (arn, version), idle in sorted(warm.items()):
                db.execute("INSERT INTO cluster_warm (node_id, function_arn, version, idle) VALUES (?, ?, ?, ?)",
                           (self.node_id, arn, version, idle))
        self._warm_published = warm

    def _read_view(self) -> ClusterView:
        nodes = self.nodes()
        alive = {n.node_id: n for n in nodes if n.state == "alive"}
        warm: dict[tuple[str, str], set[str]] = {}
        for r in self._db.query("SELECT node_id, function_arn, version FROM cluster_warm WHERE idle > 0"):
            if r["node_id"] in alive and r["node_id"] != self.node_id:
                warm.setdefault((r["function_arn"], r["version"]), set()).add(r["node_id"])
        # A draining node still runs what it has: its capacity still counts against the account's limit.
        running = [n for n in nodes if n.state in ("alive", "draining") and n.node_id != self.node_id]
        total = sum(n.capacity for n in running) + self.capacity
        return ClusterView(nodes=tuple(n for n in alive.values() if n.node_id != self.node_id),
                           warm={k: frozenset(v) for k, v in warm.items()},
                           share=self.capacity / total if total > 0 else 1.0)

    # -- leases --------------------------------------------------------------------------------------

    def want(self, names: Iterable[str]) -> None:
        """Leases this node tries to hold (taken at the next heartbeat, or now with `acquire`)."""
        self._wanted.update(names)

    def acquire(self, name: str) -> Lease | None:
        """Take or renew the lease `name` for `lease_s`: the lease, or None while another node holds it."""
        sent = time.monotonic()
        with self._db.tx() as db:
            now = self._now(db)
            row = db.execute("SELECT holder, token, expires_at FROM cluster_leases WHERE name = ?",
                             (name,)).fetchone()
            if row is None:
                token = 1
                db.execute("INSERT INTO cluster_leases (name, holder, token, expires_at) VALUES (?, ?, ?, ?)",
                           (name, self.node_id, token, now + self.lease_s))
            elif row["holder"] == self.node_id and row["expires_at"] > now:
                token = int(row["token"])
                db.execute("UPDATE cluster_leases SET expires_at = ? WHERE name = ?", (now + self.lease_s, name))
            elif row["holder"] is None or row["expires_at"] <= now:
                token = int(row["token"]) + 1
                db.execute("UPDATE cluster_leases SET holder = ?, token = ?, expires_at = ? WHERE name = ?",
                           (self.node_id, token, now + self.lease_s, name))
            else:
                self._held.pop(name, None)
                return None
        lease = Lease(name, token, sent + self.lease_s)
        self._held[name] = lease
        return lease

    def holds(self, name: str) -> Lease | None:
        """The lease if this node may act on `name` now (held and not past its local deadline)."""
        lease = self._held.get(name)
        # A heartbeat's margin before the local deadline: work that checks once per turn (pollers
        # follow the lease every second) has stopped before another node can take the lease over.
        if lease is None or time.monotonic() >= lease.local_deadline - self.heartbeat_s:
            return None
        return lease

    def still_holder(self, lease: Lease) -> bool:
        """Whether `lease`'s token is still the current one in the database (a fenced write's check)."""
        rows = self._db.query("SELECT token, holder FROM cluster_leases WHERE name = ?", (lease.name,))
        return bool(rows) and int(rows[0]["token"]) == lease.token and rows[0]["holder"] == self.node_id

    def gate(self, name: str) -> Callable[[], bool]:
        """Whether this node may do the work of lease `name` now: for a component's background loop."""
        return lambda: self.holds(name) is not None

    def fires_schedule(self, key: str, moment: datetime) -> bool:
        """A schedule fires on the holder of the schedules lease only, and once per moment cluster-wide:
        a node taking the lease over never fires a moment the old holder fired."""
        return self.holds("schedules") is not None and self.once(f"schedule:{key}:{moment.isoformat()}")

    def once(self, key: str) -> bool:
        """True exactly once cluster-wide for `key` (remembered for a week): for work that must not be
        repeated by a node taking over, such as a schedule's firing at one moment."""
        with self._db.tx() as db:
            done = db.execute("INSERT INTO cluster_once (key, node_id, done_at) VALUES (?, ?, ?) "
                              "ON CONFLICT (key) DO NOTHING", (key, self.node_id, self._now(db)))
            return done.rowcount == 1

    # -- cluster-wide concurrency ------------------------------------------------------------------------

    def take_slot(self, function_arn: str, limit: int) -> bool:
        """One of a function's `limit` cluster-wide slots for this node, or False when every one is in
        flight somewhere. Slots of nodes that are dead (silent longer than `dead_after_s`) or left do
        not count: a crashed node's invocations are over."""
        with self._db.tx() as db:
            now = self._now(db)
            used = db.execute(
                "SELECT COALESCE(SUM(s.n), 0) FROM cluster_slots s JOIN cluster_nodes c ON c.node_id = s.node_id "
                "WHERE s.function_arn = ? AND c.state IN ('alive', 'draining') AND c.heartbeat_at > ?",
                (function_arn, now - self.dead_after_s)).fetchone()[0]
            if int(used) >= limit:
                return False
            db.execute("INSERT INTO cluster_slots (node_id, function_arn, n) VALUES (?, ?, 1) "
                       "ON CONFLICT (node_id, function_arn) DO UPDATE SET n = cluster_slots.n + 1",
                       (self.node_id, function_arn))
        return True

    def account_share(self) -> float:
        """This node's part of an account's unreserved concurrency: its capacity over the alive nodes'."""
        return self.view.share

    def give_slot(self, function_arn: str) -> None:
        with self._db.tx(flush=False) as db:  # lost in a power cut: the node restarts and clears its slots
            db.execute("UPDATE cluster_slots SET n = n - 1 WHERE node_id = ? AND function_arn = ? AND n > 0",
                       (self.node_id, function_arn))

    # -- what the cluster looks like -------------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        with self._db.tx(flush=False) as db:  # the database's clock and the rows at one moment
            now = self._now(db)
            rows = db.execute("SELECT node_id, address, capacity, load, started_at, heartbeat_at, state "
                              "FROM cluster_nodes ORDER BY node_id").fetchall()
        out = []
        for r in rows:
            state = r["state"]
            if state in ("alive", "draining") and now - r["heartbeat_at"] > self.dead_after_s:
                state = "dead"
            out.append(NodeInfo(r["node_id"], r["address"], int(r["capacity"]), int(r["load"]),
                                float(r["started_at"]), float(r["heartbeat_at"]), state,
                                max(0.0, now - float(r["heartbeat_at"]))))
        return out

    def leases(self) -> list[dict[str, Any]]:
        with self._db.tx(flush=False) as db:
            now = self._now(db)
            rows = db.execute("SELECT name, holder, token, expires_at FROM cluster_leases ORDER BY name").fetchall()
        return [{"name": r["name"], "holder": r["holder"] if r["expires_at"] > now else None,
                 "token": int(r["token"]), "expires_in_s": round(max(0.0, r["expires_at"] - now), 3)}
                for r in rows]

    def held(self) -> list[str]:
        """The leases this node may act on now."""
        return sorted(name for name in self._held if self.holds(name))

    def status(self) -> dict[str, Any]:
        """The cluster as `GET /_hearth/health` shows it."""
        try:
            nodes = self.nodes()
            leases = self.leases()
        except Exception as exc:  # the database is unreachable: say so rather than fail the health check
            return {"node": self.node_id, "error": f"{type(exc).__name__}: {exc}"}
        return {"node": self.node_id, "database": self._db.location,
                "nodes": [n.as_json() for n in nodes],
                "leases": leases,
                "held": self.held()}
