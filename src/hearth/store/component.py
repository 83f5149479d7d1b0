"""One component's durable store (functions, queues, topics, async events, logs, ...): the one way every
component opens its database, migrates it, writes in a transaction and reads.

It owns what every component shares: its connection (from the data directory's engine,
`hearth.store.engine`), one-transaction writes, and per-component schema versions in the
`component_schema` table of the component's database. It never knows a component's tables: each
component passes its own migrations and writes its own (portable) SQL.

Migrations are a tuple of scripts, append-only: entry N brings the component from version N-1 to N,
in one transaction with its version row. A component whose data predates `component_schema` passes
`adopt`, which reads the old layout and says which version it already is at (run once, in the same
transaction that records the answer).

Components share `<data_dir>/hearth.db` (SQLite serializes writers; every transaction is short),
unless they name their own `database`. Calls are synchronous and meant for the event loop thread
(microseconds for an indexed statement; one fsync per committed write).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hearth.store.engine import MAIN_DATABASE, Connection, Engine, Row, engine_for

# Reads the layout a component had before `component_schema` and returns the version it is at (0: none).
Adopt = Callable[[Connection], int]


class ComponentDbError(Exception):
    pass


class ComponentDb:
    """One component's view of its database: `tx()` to write, `query()` to read."""

    def __init__(self, data_dir: Path, component: str, migrations: Sequence[str], *,
                 database: str = MAIN_DATABASE, adopt: Adopt | None = None,
                 engine: Engine | None = None, track_changes: bool = False) -> None:
        self.engine = engine if engine is not None else engine_for(data_dir)
        self.component = component
        self.database = database
        self.location = self.engine.location(database)
        self._conn = self.engine.connect(database, component)
        self._write_lock = self.engine.write_lock(component)
        self._lock = threading.RLock()
        self._closed = False
        # A component that caches its rows in memory asks for `changed_elsewhere()`: on an engine other
        # nodes write to too (PostgreSQL), every write transaction counts a generation, and a count
        # this connection did not make is another node's write. Never on SQLite (one node).
        self._tracking = False
        self._generation = 0
        self._changed = False
        try:
            self._migrate(migrations, adopt)
            if track_changes and self.engine.dialect.name != "sqlite":
                self._start_tracking()
        except BaseException:
            self.close()
            raise

    @property
    def path(self) -> Path:
        """The database file (SQLite engine): kept for tools and tests that look at the file."""
        return Path(self.location)

    @property
    def integrity_error(self) -> type[Exception]:
        return self.engine.integrity_error

    @contextmanager
    def tx(self, *, flush: bool = True) -> Iterator[Connection]:
        """One write transaction (holding the write lock from its start): all of it is committed, or
        none of it.

        `flush=False` commits without waiting for the disk: for state whose loss in a power failure is
        harmless by design (a queue receive: the message only becomes visible again early, which
        at-least-once delivery allows). It still survives `kill -9`; see `Dialect.relaxed_commit`."""
        with self._lock:
            if self._closed:
                raise ComponentDbError(f"the {self.component} database is closed")
            relax, restore = self.engine.dialect.relaxed_commit if not flush else ("", "")
            if relax:
                self._conn.execute(relax)
            try:
                self._conn.execute(self.engine.dialect.begin_write)
                try:
                    if self._write_lock is not None:
                        self._conn.execute(*self._write_lock)
                    yield self._conn
                    generation = self._count_generation() if self._tracking else None
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
                if generation is not None:
                    if generation != self._generation + 1:
                        self._changed = True  # another node wrote since this connection last looked
                    self._generation = generation
            finally:
                if restore:
                    self._conn.execute(restore)

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        with self._lock:
            if self._closed:
                raise ComponentDbError(f"the {self.component} database is closed")
            return list(self._conn.execute(sql, args))

    @contextmanager
    def scan(self, sql: str, args: Sequence[Any] = ()) -> Iterator[Iterator[Row]]:
        """Rows one at a time, for a read that may stop early without fetching everything (the lock is
        held until the block ends: keep it short)."""
        with self._lock:
            if self._closed:
                raise ComponentDbError(f"the {self.component} database is closed")
            cursor = self._conn.execute(sql, args)
            try:
                yield iter(cursor)
            finally:
                cursor.close()

    def _start_tracking(self) -> None:
        with self.tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS component_generation "
                       "(component TEXT PRIMARY KEY, generation INTEGER NOT NULL)")
            db.execute("INSERT INTO component_generation (component, generation) VALUES (?, 0) "
                       "ON CONFLICT (component) DO NOTHING", (self.component,))
        self._generation = int(self.query("SELECT generation FROM component_generation WHERE component = ?",
                                          (self.component,))[0][0])
        self._tracking = True

    def _count_generation(self) -> int:
        row = self._conn.execute("UPDATE component_generation SET generation = generation + 1 "
                                 "WHERE component = ? RETURNING generation", (self.component,)).fetchone()
        return int(row[0])

    def changed_elsewhere(self) -> bool:
        """Whether another node wrote this component since the last call (or since it was opened):
        time to drop what is cached from it. Always False unless opened with `track_changes` on a shared
        engine. One indexed read."""
        if not self._tracking:
            return False
        generation = int(self.query("SELECT generation FROM component_generation WHERE component = ?",
                                    (self.component,))[0][0])
        with self._lock:
            changed = self._changed or generation != self._generation
            self._changed = False
            self._generation = max(self._generation, generation)
        return changed

    def schema_version(self) -> int:
        rows = self.query("SELECT version FROM component_schema WHERE component = ?", (self.component,))
        return int(rows[0]["version"]) if rows else 0

    def _migrate(self, migrations: Sequence[str], adopt: Adopt | None) -> None:
        with self.tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS component_schema "
                       "(component TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_at REAL NOT NULL)")
            known = db.execute("SELECT version FROM component_schema WHERE component = ?",
                               (self.component,)).fetchone()
            # Only a SQLite file can hold a layout older than `component_schema`.
            if known is None and adopt is not None and self.engine.dialect.name == "sqlite":
                adopted = adopt(db)
                if adopted:
                    _record_version(db, self.component, adopted)
        current = self.schema_version()
        if current > len(migrations):
            raise ComponentDbError(f"{self.location}: the {self.component} schema is at version {current}, "
                                   f"newer than this Hearth ({len(migrations)}); upgrade Hearth")
        for number, script in enumerate(migrations[current:], start=current + 1):
            with self.tx() as db:
                for statement in split_sql(script):
                    db.execute(self.engine.dialect.ddl(statement))
                _record_version(db, self.component, number)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()


def _record_version(db: Connection, component: str, version: int) -> None:
    db.execute("INSERT INTO component_schema (component, version, applied_at) VALUES (?, ?, ?) "
               "ON CONFLICT (component) DO UPDATE SET version = excluded.version, "
               "applied_at = excluded.applied_at", (component, version, time.time()))


def table_exists(db: Connection, table: str) -> bool:
    """For `adopt` functions: whether the old layout has `table` (SQLite's catalogue; a new engine
    never holds a pre-`component_schema` layout, so this needs no other spelling)."""
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None


def split_sql(script: str) -> list[str]:
    """Statements of a migration script. Migrations hold no string literals containing ';' or '--';
    `--` comments are dropped first so that they may say anything."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
