"""Durable EventBridge state: event buses, rules, targets, tags, bus policies, archives (with their
events) and replays, and the delivery outbox.

It owns the `eventbridge` component's tables in hearth.db and their SQL. It never validates business
rules (the provider does) and never delivers (the dispatcher does). Every write is one transaction,
so a rule and its targets, or an accepted event's deliveries, are stored whole or not at all.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearth.store.component import ComponentDb

MIGRATIONS = [
    """
    CREATE TABLE eb_buses (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
        description TEXT, created REAL NOT NULL, modified REAL NOT NULL,
        PRIMARY KEY (account, region, name));
    CREATE TABLE eb_rules (
        account TEXT NOT NULL, region TEXT NOT NULL, bus TEXT NOT NULL, name TEXT NOT NULL,
        pattern TEXT, schedule TEXT, state TEXT NOT NULL, description TEXT, role_arn TEXT,
        created REAL NOT NULL,
        PRIMARY KEY (account, region, bus, name));
    CREATE TABLE eb_targets (
        account TEXT NOT NULL, region TEXT NOT NULL, bus TEXT NOT NULL, rule TEXT NOT NULL, id TEXT NOT NULL,
        target TEXT NOT NULL, position INTEGER NOT NULL,
        PRIMARY KEY (account, region, bus, rule, id));
    CREATE TABLE eb_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        target_arn TEXT NOT NULL, body TEXT NOT NULL, source_arn TEXT, group_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,
        expires_at REAL NOT NULL, next_at REAL NOT NULL, dlq_arn TEXT);
    CREATE INDEX eb_outbox_next ON eb_outbox (next_at);
    """,
    # The X-Amzn-Trace-Id of the PutEvents call (or delivery) that produced the event: targets continue
    # its trace (and its loop-detection lineage), as AWS's EventBridge propagates it.
    """
    ALTER TABLE eb_outbox ADD COLUMN trace_header TEXT;
    """,
    # Tags, bus policies, archives and replays.
    """
    CREATE TABLE eb_tags (
        account TEXT NOT NULL, region TEXT NOT NULL, arn TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (account, region, arn, key));
    CREATE TABLE eb_bus_policies (
        account TEXT NOT NULL, region TEXT NOT NULL, bus TEXT NOT NULL, policy TEXT NOT NULL,
        PRIMARY KEY (account, region, bus));
    CREATE TABLE eb_archives (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, bus TEXT NOT NULL, pattern TEXT,
        description TEXT, retention_days INTEGER NOT NULL, created REAL NOT NULL,
        PRIMARY KEY (account, region, name));
    CREATE TABLE eb_archived (
        account TEXT NOT NULL, region TEXT NOT NULL, archive TEXT NOT NULL, seq INTEGER NOT NULL,
        at REAL NOT NULL, event TEXT NOT NULL,
        PRIMARY KEY (account, region, archive, seq));
    CREATE TABLE eb_replays (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, started REAL NOT NULL,
        PRIMARY KEY (account, region, name));
    """,
    # Connections and API destinations (their bodies as JSON: what Describe answers, plus a connection's
    # secret authorization values, which it never answers).
    """
    CREATE TABLE eb_connections (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (account, region, name));
    CREATE TABLE eb_api_destinations (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (account, region, name));
    """,
]

# The tables of the resources stored as JSON documents by name (connections, API destinations).
_DOCUMENT_TABLES = {"connection": "eb_connections", "api-destination": "eb_api_destinations"}


@dataclass(frozen=True)
class Bus:
    account: str
    region: str
    name: str
    description: str | None
    created: float
    modified: float

    @property
    def arn(self) -> str:
        return f"arn:aws:events:{self.region}:{self.account}:event-bus/{self.name}"


@dataclass(frozen=True)
class Rule:
    account: str
    region: str
    bus: str
    name: str
    pattern: str | None
    schedule: str | None
    state: str
    description: str | None
    role_arn: str | None
    created: float

    @property
    def arn(self) -> str:
        path = self.name if self.bus == "default" else f"{self.bus}/{self.name}"
        return f"arn:aws:events:{self.region}:{self.account}:rule/{path}"

    @property
    def key(self) -> str:
        return f"{self.account}|{self.region}|{self.bus}|{self.name}"


@dataclass(frozen=True)
class Archive:
    account: str
    region: str
    name: str
    bus: str
    pattern: str | None
    description: str | None
    retention_days: int  # 0: kept indefinitely
    created: float

    @property
    def arn(self) -> str:
        return f"arn:aws:events:{self.region}:{self.account}:archive/{self.name}"

    @property
    def bus_arn(self) -> str:
        return f"arn:aws:events:{self.region}:{self.account}:event-bus/{self.bus}"


@dataclass(frozen=True)
class Delivery:
    """One pending delivery of a rendered event to one target."""

    target_arn: str
    body: str
    source_arn: str | None
    group_id: str | None
    max_attempts: int
    expires_at: float
    dlq_arn: str | None
    id: int = 0
    attempts: int = 0
    trace_header: str | None = None


class EventStore:
    def __init__(self, data_dir: Path) -> None:
        # track_changes: in a cluster, the schedules' lease holder learns of rules changed through other nodes.
        self.db = ComponentDb(data_dir, "eventbridge", MIGRATIONS, track_changes=True)

    def changed_elsewhere(self) -> bool:
        return self.db.changed_elsewhere()

    def close(self) -> None:
        self.db.close()

    # -- buses --------------------------------------------------------------------------------------

    def ensure_default_bus(self, account: str, region: str) -> None:
        now = time.time()
        with self.db.tx() as db:
            db.execute("INSERT INTO eb_buses VALUES (?, ?, 'default', NULL, ?, ?) "
                       "ON CONFLICT (account, region, name) DO NOTHING",
                       (account, region, now, now))

    def create_bus(self, account: str, region: str, name: str, description: str | None) -> bool:
        now = time.time()
        with self.db.tx() as db:
            cur = db.execute("INSERT INTO eb_buses VALUES (?, ?, ?, ?, ?, ?) "
                             "ON CONFLICT (account, region, name) DO NOTHING",
                             (account, region, name, description, now, now))
            return cur.rowcount == 1

    def get_bus(self, account: str, region: str, name: str) -> Bus | None:
        if name == "default":
            self.ensure_default_bus(account, region)
        rows = self.db.query("SELECT * FROM eb_buses WHERE account = ? AND region = ? AND name = ?",
                             (account, region, name))
        return _bus(rows[0]) if rows else None

    def list_buses(self, account: str, region: str, prefix: str | None) -> list[Bus]:
        self.ensure_default_bus(account, region)
        rows = self.db.query("SELECT * FROM eb_buses WHERE account = ? AND region = ? ORDER BY name != 'default', name",
                             (account, region))
        return [_bus(r) for r in rows if not prefix or r["name"].startswith(prefix)]

    def delete_bus(self, account: str, region: str, name: str) -> None:
        with self.db.tx() as db:
            key = (account, region, name)
            db.execute("DELETE FROM eb_targets WHERE account = ? AND region = ? AND bus = ?", key)
            db.execute("DELETE FROM eb_rules WHERE account = ? AND region = ? AND bus = ?", key)
            db.execute("DELETE FROM eb_buses WHERE account = ? AND region = ? AND name = ?", key)
            db.execute("DELETE FROM eb_bus_policies WHERE account = ? AND region = ? AND bus = ?", key)
            # The bus's tags and its rules' tags go with it.
            bus_arn = f"arn:aws:events:{region}:{account}:event-bus/{name}"
            rules_prefix = f"arn:aws:events:{region}:{account}:rule/{name}/"
            for (arn,) in db.execute("SELECT DISTINCT arn FROM eb_tags WHERE account = ? AND region = ?",
                                     (account, region)).fetchall():
                if arn == bus_arn or str(arn).startswith(rules_prefix):
                    db.execute("DELETE FROM eb_tags WHERE account = ? AND region = ? AND arn = ?",
                               (account, region, arn))

    # -- archives and replays -----------------------------------------------------------------------

    def create_archive(self, archive: Archive) -> bool:
        with self.db.tx() as db:
            return db.execute(
                "INSERT INTO eb_archives (account, region, name, bus, pattern, description, retention_days, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, region, name) DO NOTHING",
                (archive.account, archive.region, archive.name, archive.bus, archive.pattern, archive.description,
                 archive.retention_days, archive.created)).rowcount == 1

    def update_archive(self, archive: Archive) -> None:
        with self.db.tx() as db:
            db.execute("UPDATE eb_archives SET pattern = ?, description = ?, retention_days = ? "
                       "WHERE account = ? AND region = ? AND name = ?",
                       (archive.pattern, archive.description, archive.retention_days, archive.account,
                        archive.region, archive.name))

    def archives(self, account: str, region: str, bus: str | None = None) -> list[Archive]:
        rows = self.db.query("SELECT * FROM eb_archives WHERE account = ? AND region = ? ORDER BY name",
                             (account, region))
        found = [Archive(account=r["account"], region=r["region"], name=r["name"], bus=r["bus"],
                         pattern=r["pattern"], description=r["description"], retention_days=int(r["retention_days"]),
                         created=float(r["created"])) for r in rows]
        return [a for a in found if bus is None or a.bus == bus]

    def delete_archive(self, account: str, region: str, name: str) -> None:
        with self.db.tx() as db:
            db.execute("DELETE FROM eb_archives WHERE account = ? AND region = ? AND name = ?", (account, region, name))
            db.execute("DELETE FROM eb_archived WHERE account = ? AND region = ? AND archive = ?",
                       (account, region, name))

    def archive_events(self, archive: Archive, events: list[dict[str, Any]], now: float) -> None:
        with self.db.tx() as db:
            (last,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM eb_archived WHERE account = ? AND region = ? "
                                 "AND archive = ?", (archive.account, archive.region, archive.name)).fetchone()
            for offset, event in enumerate(events, start=1):
                db.execute("INSERT INTO eb_archived (account, region, archive, seq, at, event) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           (archive.account, archive.region, archive.name, int(last) + offset, now, json.dumps(event)))

    def archived(self, archive: Archive, start: float = 0.0, end: float = float("inf")) -> list[dict[str, Any]]:
        """The archive's events received in [start, end], oldest first (expired ones are left out)."""
        horizon = time.time() - archive.retention_days * 86_400 if archive.retention_days else 0.0
        rows = self.db.query("SELECT at, event FROM eb_archived WHERE account = ? AND region = ? AND archive = ? "
                             "ORDER BY seq", (archive.account, archive.region, archive.name))
        return [json.loads(r["event"]) for r in rows if max(start, horizon) <= float(r["at"]) <= end]

    def put_replay(self, account: str, region: str, name: str, body: dict[str, Any], started: float) -> bool:
        """Store a new replay; False when one of that name exists."""
        with self.db.tx() as db:
            return db.execute("INSERT INTO eb_replays (account, region, name, body, started) VALUES (?, ?, ?, ?, ?) "
                              "ON CONFLICT (account, region, name) DO NOTHING",
                              (account, region, name, json.dumps(body), started)).rowcount == 1

    def replays(self, account: str, region: str) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT body FROM eb_replays WHERE account = ? AND region = ? ORDER BY started, name",
                             (account, region))
        return [json.loads(r["body"]) for r in rows]

    # -- connections and API destinations -----------------------------------------------------------

    def create_document(self, kind: str, account: str, region: str, name: str, body: dict[str, Any]) -> bool:
        """Store a new connection or API destination (`kind`); False when one of that name exists."""
        with self.db.tx() as db:
            return db.execute(f"INSERT INTO {_DOCUMENT_TABLES[kind]} (account, region, name, body) "
                              "VALUES (?, ?, ?, ?) ON CONFLICT (account, region, name) DO NOTHING",
                              (account, region, name, json.dumps(body))).rowcount == 1

    def update_document(self, kind: str, account: str, region: str, name: str, body: dict[str, Any]) -> None:
        with self.db.tx() as db:
            db.execute(f"UPDATE {_DOCUMENT_TABLES[kind]} SET body = ? "
                       "WHERE account = ? AND region = ? AND name = ?", (json.dumps(body), account, region, name))

    def document(self, kind: str, account: str, region: str, name: str) -> dict[str, Any] | None:
        rows = self.db.query(f"SELECT body FROM {_DOCUMENT_TABLES[kind]} "
                             "WHERE account = ? AND region = ? AND name = ?", (account, region, name))
        return json.loads(rows[0]["body"]) if rows else None

    def documents(self, kind: str, account: str, region: str) -> list[dict[str, Any]]:
        rows = self.db.query(f"SELECT body FROM {_DOCUMENT_TABLES[kind]} "
                             "WHERE account = ? AND region = ? ORDER BY name", (account, region))
        return [json.loads(r["body"]) for r in rows]

    def delete_document(self, kind: str, account: str, region: str, name: str) -> None:
        with self.db.tx() as db:
            db.execute(f"DELETE FROM {_DOCUMENT_TABLES[kind]} "
                       "WHERE account = ? AND region = ? AND name = ?", (account, region, name))

    # -- tags and bus policies ----------------------------------------------------------------------

    def tags(self, account: str, region: str, arn: str) -> dict[str, str]:
        rows = self.db.query("SELECT key, value FROM eb_tags WHERE account = ? AND region = ? AND arn = ? "
                             "ORDER BY key", (account, region, arn))
        return {str(r["key"]): str(r["value"]) for r in rows}

    def tag(self, account: str, region: str, arn: str, tags: dict[str, str]) -> None:
        with self.db.tx() as db:
            for key, value in tags.items():
                db.execute("INSERT INTO eb_tags (account, region, arn, key, value) VALUES (?, ?, ?, ?, ?) "
                           "ON CONFLICT (account, region, arn, key) DO UPDATE SET value = excluded.value",
                           (account, region, arn, key, value))

    def untag(self, account: str, region: str, arn: str, keys: list[str] | None = None) -> None:
        """Remove some tags of a resource, or (keys None) all of them."""
        with self.db.tx() as db:
            if keys is None:
                db.execute("DELETE FROM eb_tags WHERE account = ? AND region = ? AND arn = ?", (account, region, arn))
            for key in keys or []:
                db.execute("DELETE FROM eb_tags WHERE account = ? AND region = ? AND arn = ? AND key = ?",
                           (account, region, arn, key))

    def bus_policy(self, account: str, region: str, bus: str) -> str | None:
        rows = self.db.query("SELECT policy FROM eb_bus_policies WHERE account = ? AND region = ? AND bus = ?",
                             (account, region, bus))
        return str(rows[0]["policy"]) if rows else None

    def set_bus_policy(self, account: str, region: str, bus: str, policy: str | None) -> None:
        with self.db.tx() as db:
            if policy is None:
                db.execute("DELETE FROM eb_bus_policies WHERE account = ? AND region = ? AND bus = ?",
                           (account, region, bus))
            else:
                db.execute("INSERT INTO eb_bus_policies (account, region, bus, policy) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT (account, region, bus) DO UPDATE SET policy = excluded.policy",
                           (account, region, bus, policy))

    # -- rules --------------------------------------------------------------------------------------

    def put_rule(self, rule: Rule) -> Rule:
        """Create or replace a rule's settings (its targets stay); the creation time is kept."""
        with self.db.tx() as db:
            db.execute(
                "INSERT INTO eb_rules VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (account, region, bus, name) DO UPDATE SET pattern = excluded.pattern, "
                "schedule = excluded.schedule, state = excluded.state, description = excluded.description, "
                "role_arn = excluded.role_arn",
                (rule.account, rule.region, rule.bus, rule.name, rule.pattern, rule.schedule, rule.state,
                 rule.description, rule.role_arn, rule.created))
        stored = self.get_rule(rule.account, rule.region, rule.bus, rule.name)
        assert stored is not None
        return stored

    def get_rule(self, account: str, region: str, bus: str, name: str) -> Rule | None:
        rows = self.db.query("SELECT * FROM eb_rules WHERE account = ? AND region = ? AND bus = ? AND name = ?",
                             (account, region, bus, name))
        return _rule(rows[0]) if rows else None

    def list_rules(self, account: str, region: str, bus: str) -> list[Rule]:
        rows = self.db.query("SELECT * FROM eb_rules WHERE account = ? AND region = ? AND bus = ? ORDER BY name",
                             (account, region, bus))
        return [_rule(r) for r in rows]

    def scheduled_rules(self) -> list[Rule]:
        return [_rule(r) for r in self.db.query("SELECT * FROM eb_rules WHERE schedule IS NOT NULL")]

    def set_state(self, account: str, region: str, bus: str, name: str, state: str) -> None:
        with self.db.tx() as db:
            db.execute("UPDATE eb_rules SET state = ? WHERE account = ? AND region = ? AND bus = ? AND name = ?",
                       (state, account, region, bus, name))

    def delete_rule(self, account: str, region: str, bus: str, name: str) -> None:
        with self.db.tx() as db:
            db.execute("DELETE FROM eb_rules WHERE account = ? AND region = ? AND bus = ? AND name = ?",
                       (account, region, bus, name))
            path = name if bus == "default" else f"{bus}/{name}"
            db.execute("DELETE FROM eb_tags WHERE account = ? AND region = ? AND arn = ?",
                       (account, region, f"arn:aws:events:{region}:{account}:rule/{path}"))

    # -- targets ------------------------------------------------------------------------------------

    def targets(self, account: str, region: str, bus: str, rule: str) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT target FROM eb_targets WHERE account = ? AND region = ? AND bus = ? "
                             "AND rule = ? ORDER BY position, id", (account, region, bus, rule))
        return [json.loads(r["target"]) for r in rows]

    def put_targets(self, account: str, region: str, bus: str, rule: str, targets: list[dict[str, Any]]) -> None:
        with self.db.tx() as db:
            (position,) = db.execute("SELECT COALESCE(MAX(position), 0) FROM eb_targets WHERE account = ? AND "
                                     "region = ? AND bus = ? AND rule = ?", (account, region, bus, rule)).fetchone()
            for target in targets:
                position += 1
                db.execute(
                    "INSERT INTO eb_targets VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, region, bus, rule, id) "
                    "DO UPDATE SET target = excluded.target",
                    (account, region, bus, rule, target["Id"], json.dumps(target), position))

    def remove_targets(self, account: str, region: str, bus: str, rule: str, ids: list[str]) -> None:
        with self.db.tx() as db:
            for target_id in ids:
                db.execute("DELETE FROM eb_targets WHERE account = ? AND region = ? AND bus = ? AND rule = ? "
                           "AND id = ?", (account, region, bus, rule, target_id))

    # -- outbox -------------------------------------------------------------------------------------

    def enqueue(self, deliveries: list[Delivery], now: float) -> None:
        if not deliveries:
            return
        with self.db.tx() as db:
            db.executemany(
                "INSERT INTO eb_outbox (target_arn, body, source_arn, group_id, max_attempts, expires_at, next_at, "
                "dlq_arn, trace_header) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(d.target_arn, d.body, d.source_arn, d.group_id, d.max_attempts, d.expires_at, now, d.dlq_arn,
                  d.trace_header) for d in deliveries])

    def due(self, now: float, limit: int = 100) -> list[Delivery]:
        rows = self.db.query("SELECT * FROM eb_outbox WHERE next_at <= ? ORDER BY next_at, id LIMIT ?", (now, limit))
        return [Delivery(r["target_arn"], r["body"], r["source_arn"], r["group_id"], r["max_attempts"],
                         r["expires_at"], r["dlq_arn"], r["id"], r["attempts"], r["trace_header"]) for r in rows]

    def next_due(self) -> float | None:
        rows = self.db.query("SELECT MIN(next_at) AS t FROM eb_outbox")
        value = rows[0]["t"] if rows else None
        return float(value) if value is not None else None

    def delivered(self, delivery_id: int) -> None:
        with self.db.tx() as db:
            db.execute("DELETE FROM eb_outbox WHERE id = ?", (delivery_id,))

    def retry_at(self, delivery_id: int, next_at: float) -> None:
        with self.db.tx() as db:
            db.execute("UPDATE eb_outbox SET attempts = attempts + 1, next_at = ? WHERE id = ?", (next_at, delivery_id))

    def pending(self) -> int:
        return int(self.db.query("SELECT COUNT(*) AS n FROM eb_outbox")[0]["n"])


def _bus(row: Any) -> Bus:
    return Bus(row["account"], row["region"], row["name"], row["description"], row["created"], row["modified"])


def _rule(row: Any) -> Rule:
    return Rule(row["account"], row["region"], row["bus"], row["name"], row["pattern"], row["schedule"],
                row["state"], row["description"], row["role_arn"], row["created"])
