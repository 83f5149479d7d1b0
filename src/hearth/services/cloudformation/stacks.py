"""Durable CloudFormation state: stacks, their resources and events, change sets and exports.

It owns the `cloudformation` component's schema and every SQL statement. Stack and change set
records are JSON documents owned by the engine and the provider, beside the few columns that queries
need (account, region, name, status). It never evaluates a template and never calls a service.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearth.store.component import ComponentDb

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE cfn_stacks (
        stack_id    TEXT PRIMARY KEY,
        account     TEXT NOT NULL,
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        status      TEXT NOT NULL,
        deleted     INTEGER NOT NULL,      -- 1 once DELETE_COMPLETE: the name is free again
        created_at  REAL NOT NULL,
        document    TEXT NOT NULL          -- JSON: everything else about the stack
    );
    CREATE INDEX cfn_stacks_by_name ON cfn_stacks (account, region, name, deleted);
    CREATE TABLE cfn_resources (
        stack_id    TEXT NOT NULL,
        logical_id  TEXT NOT NULL,
        document    TEXT NOT NULL,         -- JSON: type, physical id, status, properties, attributes
        PRIMARY KEY (stack_id, logical_id)
    );
    CREATE TABLE cfn_events (
        stack_id    TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        document    TEXT NOT NULL,
        PRIMARY KEY (stack_id, seq)
    );
    CREATE TABLE cfn_change_sets (
        change_set_id  TEXT PRIMARY KEY,
        stack_id       TEXT NOT NULL,
        name           TEXT NOT NULL,
        document       TEXT NOT NULL
    );
    CREATE INDEX cfn_change_sets_by_stack ON cfn_change_sets (stack_id, name);
    CREATE TABLE cfn_exports (
        account     TEXT NOT NULL,
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        value       TEXT NOT NULL,
        stack_id    TEXT NOT NULL,
        PRIMARY KEY (account, region, name)
    );
    """,
)


@dataclass
class StackRecord:
    stack_id: str
    account: str
    region: str
    name: str
    status: str
    created_at: float
    deleted: bool = False
    doc: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResourceRecord:
    logical_id: str
    doc: dict[str, Any]


class StackStore:
    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.db = ComponentDb(data_dir, "cloudformation", MIGRATIONS)
        self._clock = clock

    def close(self) -> None:
        self.db.close()

    # -- stacks -------------------------------------------------------------------------------------------

    def save_stack(self, s: StackRecord) -> None:
        with self.db.tx() as db:
            db.execute("INSERT INTO cfn_stacks VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (stack_id) DO UPDATE SET "
                       "status = excluded.status, deleted = excluded.deleted, document = excluded.document",
                       (s.stack_id, s.account, s.region, s.name, s.status, int(s.deleted), s.created_at,
                        json.dumps(s.doc, default=str)))

    def stack(self, account: str, region: str, name_or_id: str) -> StackRecord | None:
        """A live stack by name, or any stack (deleted ones too) by its id."""
        if name_or_id.startswith("arn:"):
            rows = self.db.query("SELECT * FROM cfn_stacks WHERE stack_id = ? AND account = ? AND region = ?",
                                 (name_or_id, account, region))
        else:
            rows = self.db.query("SELECT * FROM cfn_stacks WHERE account = ? AND region = ? AND name = ? AND "
                                 "deleted = 0", (account, region, name_or_id))
        return _stack(rows[0]) if rows else None

    def stacks(self, account: str, region: str, *, include_deleted: bool) -> list[StackRecord]:
        sql = "SELECT * FROM cfn_stacks WHERE account = ? AND region = ?"
        if not include_deleted:
            sql += " AND deleted = 0"
        return [_stack(r) for r in self.db.query(sql + " ORDER BY created_at DESC", (account, region))]

    def unfinished(self) -> list[StackRecord]:
        rows = self.db.query("SELECT * FROM cfn_stacks WHERE status LIKE ? AND deleted = 0", ("%_IN_PROGRESS",))
        return [_stack(r) for r in rows]

    # -- resources ----------------------------------------------------------------------------------------

    def resources(self, stack_id: str) -> dict[str, ResourceRecord]:
        rows = self.db.query("SELECT logical_id, document FROM cfn_resources WHERE stack_id = ? ORDER BY logical_id",
                             (stack_id,))
        return {r["logical_id"]: ResourceRecord(r["logical_id"], json.loads(r["document"])) for r in rows}

    def save_resource(self, stack_id: str, logical_id: str, doc: dict[str, Any]) -> None:
        with self.db.tx() as db:
            db.execute("INSERT INTO cfn_resources VALUES (?, ?, ?) ON CONFLICT (stack_id, logical_id) DO UPDATE SET "
                       "document = excluded.document", (stack_id, logical_id, json.dumps(doc, default=str)))

    def drop_resource(self, stack_id: str, logical_id: str) -> None:
        with self.db.tx() as db:
            db.execute("DELETE FROM cfn_resources WHERE stack_id = ? AND logical_id = ?", (stack_id, logical_id))

    # -- events -------------------------------------------------------------------------------------------

    def add_event(self, stack_id: str, doc: dict[str, Any]) -> None:
        with self.db.tx() as db:
            row = db.execute("SELECT MAX(seq) AS top FROM cfn_events WHERE stack_id = ?", (stack_id,)).fetchone()
            seq = (row["top"] or 0) + 1
            db.execute("INSERT INTO cfn_events VALUES (?, ?, ?)", (stack_id, seq, json.dumps(doc, default=str)))

    def events(self, stack_id: str) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT document FROM cfn_events WHERE stack_id = ? ORDER BY seq DESC", (stack_id,))
        return [json.loads(r["document"]) for r in rows]

    # -- change sets --------------------------------------------------------------------------------------

    def save_change_set(self, change_set_id: str, stack_id: str, name: str, doc: dict[str, Any]) -> None:
        with self.db.tx() as db:
            db.execute("INSERT INTO cfn_change_sets VALUES (?, ?, ?, ?) ON CONFLICT (change_set_id) DO UPDATE SET "
                       "document = excluded.document", (change_set_id, stack_id, name, json.dumps(doc, default=str)))

    def change_set(self, change_set_id: str) -> tuple[str, dict[str, Any]] | None:
        rows = self.db.query("SELECT stack_id, document FROM cfn_change_sets WHERE change_set_id = ?",
                             (change_set_id,))
        return (rows[0]["stack_id"], json.loads(rows[0]["document"])) if rows else None

    def change_set_by_name(self, stack_id: str, name: str) -> tuple[str, dict[str, Any]] | None:
        rows = self.db.query("SELECT change_set_id, document FROM cfn_change_sets WHERE stack_id = ? AND name = ?",
                             (stack_id, name))
        return (rows[0]["change_set_id"], json.loads(rows[0]["document"])) if rows else None

    def change_sets(self, stack_id: str) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT document FROM cfn_change_sets WHERE stack_id = ? ORDER BY change_set_id",
                             (stack_id,))
        return [json.loads(r["document"]) for r in rows]

    def drop_change_set(self, change_set_id: str) -> None:
        with self.db.tx() as db:
            db.execute("DELETE FROM cfn_change_sets WHERE change_set_id = ?", (change_set_id,))

    def drop_change_sets(self, stack_id: str) -> None:
        with self.db.tx() as db:
            db.execute("DELETE FROM cfn_change_sets WHERE stack_id = ?", (stack_id,))

    # -- exports ------------------------------------------------------------------------------------------

    def export(self, account: str, region: str, name: str) -> tuple[str, str] | None:
        rows = self.db.query("SELECT value, stack_id FROM cfn_exports WHERE account = ? AND region = ? AND name = ?",
                             (account, region, name))
        return (rows[0]["value"], rows[0]["stack_id"]) if rows else None

    def exports(self, account: str, region: str) -> list[tuple[str, str, str]]:
        rows = self.db.query("SELECT name, value, stack_id FROM cfn_exports WHERE account = ? AND region = ? "
                             "ORDER BY name", (account, region))
        return [(r["name"], r["value"], r["stack_id"]) for r in rows]

    def set_exports(self, account: str, region: str, stack_id: str, exports: dict[str, str]) -> str | None:
        """Replace the stack's exports; return a name another stack exports already (nothing changes then)."""
        with self.db.tx() as db:
            for name in exports:
                row = db.execute("SELECT stack_id FROM cfn_exports WHERE account = ? AND region = ? AND name = ?",
                                 (account, region, name)).fetchone()
                if row is not None and row["stack_id"] != stack_id:
                    return name
            db.execute("DELETE FROM cfn_exports WHERE stack_id = ?", (stack_id,))
            db.executemany("INSERT INTO cfn_exports VALUES (?, ?, ?, ?, ?)",
                           [(account, region, name, value, stack_id) for name, value in exports.items()])
        return None


def _stack(r: Any) -> StackRecord:
    return StackRecord(stack_id=r["stack_id"], account=r["account"], region=r["region"], name=r["name"],
                       status=r["status"], created_at=float(r["created_at"]), deleted=bool(r["deleted"]),
                       doc=json.loads(r["document"]))
