"""A durable SQLite database of one Hearth component (queues, topics, async events, …) with its own
versioned migrations, inside Hearth's one database file.

It owns the plumbing every component shares: the connection and its pragmas (WAL, synchronous=FULL,
so what returned survives `kill -9`), one-transaction writes, and per-component schema versions in
the `component_schema` table. It never knows a component's tables: each component passes its own
migrations and writes its own SQL.

Components open their own connection to `<data_dir>/hearth.db`; SQLite serializes writers, and every
transaction is short. Calls are synchronous and meant for the event loop thread (microseconds for an
indexed statement; one fsync per committed write).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hearth.store.db import DB_NAME, _split_sql, immediate_tx, open_durable


class ComponentDbError(Exception):
    pass


class ComponentDb:
    """One component's view of the database: `tx()` to write, `query()` to read."""

    def __init__(self, data_dir: Path, component: str, migrations: Sequence[str]) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_NAME
        self.component = component
        self._conn = open_durable(self.path)
        self._lock = threading.RLock()
        self._closed = False
        try:
            self._migrate(migrations)
        except BaseException:
            self.close()
            raise

    @contextmanager
    def tx(self, *, flush: bool = True) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: all of it is committed, or none of it.

        `flush=False` (perf, issue 17) commits without waiting for the disk: for state whose loss in a
        power failure is harmless by design (a queue receive: the message only becomes visible again
        early, which at-least-once delivery allows). It still survives `kill -9` (the write is in the
        OS's cache), and the next flushed commit makes it durable too (the WAL is synced in order).
        PostgreSQL's counterpart is `SET LOCAL synchronous_commit = off`."""
        with self._lock:
            if self._closed:
                raise ComponentDbError(f"the {self.component} database is closed")
            if flush:
                with immediate_tx(self._conn) as conn:
                    yield conn
                return
            self._conn.execute("PRAGMA synchronous=NORMAL")
            try:
                with immediate_tx(self._conn) as conn:
                    yield conn
            finally:
                self._conn.execute("PRAGMA synchronous=FULL")

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            if self._closed:
                raise ComponentDbError(f"the {self.component} database is closed")
            return list(self._conn.execute(sql, args))

    def schema_version(self) -> int:
        rows = self.query("SELECT version FROM component_schema WHERE component = ?", (self.component,))
        return int(rows[0]["version"]) if rows else 0

    def _migrate(self, migrations: Sequence[str]) -> None:
        with self.tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS component_schema "
                       "(component TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_at REAL NOT NULL)")
        current = self.schema_version()
        if current > len(migrations):
            raise ComponentDbError(f"{self.path}: the {self.component} schema is at version {current}, newer "
                                   f"than this Hearth ({len(migrations)}); upgrade Hearth")
        for number, script in enumerate(migrations[current:], start=current + 1):
            with self.tx() as db:
                for statement in _split_sql(script):
                    db.execute(statement)
                db.execute("INSERT INTO component_schema (component, version, applied_at) VALUES (?, ?, ?) "
                           "ON CONFLICT (component) DO UPDATE SET version = excluded.version, "
                           "applied_at = excluded.applied_at", (self.component, number, time.time()))

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()
