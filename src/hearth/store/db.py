"""Durable control-plane state: functions, their versions and tags.

It owns the schema, its migrations and every SQL statement. It never interprets a function's
configuration (that is `hearth.functions`): a version's configuration is an opaque JSON document
here, beside the few columns queries and recovery need (revision, state, update status, code hash).

`Store` is the small interface a PostgreSQL backend could implement later; `SqliteStore` is the
default. SQLite runs in WAL mode with `synchronous=FULL`, so a write that returned has reached the
disk and survives `kill -9` or a power cut. Calls are synchronous and short (one indexed statement
or one small transaction): Hearth calls them directly from its asyncio loop, which costs
microseconds and keeps every read-modify-write atomic with respect to other coroutines. Never put
a slow query here; bulk work belongs in a thread with its own connection.

Every write is one transaction: a failed operation leaves no partial state.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

DB_NAME = "hearth.db"

# Each entry is one migration, applied once, in order, in its own transaction. Never edit an
# entry that has shipped: append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE functions (
        account_id  TEXT NOT NULL,
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        created_at  REAL NOT NULL,
        PRIMARY KEY (account_id, region, name)
    );
    CREATE TABLE function_versions (
        account_id          TEXT NOT NULL,
        region              TEXT NOT NULL,
        name                TEXT NOT NULL,
        version             TEXT NOT NULL,      -- '$LATEST' now, '1', '2', ... once versions exist
        config              TEXT NOT NULL,      -- JSON owned by hearth.functions
        revision_id         TEXT NOT NULL,
        state               TEXT NOT NULL,
        last_update_status  TEXT,
        code_sha256         TEXT NOT NULL,      -- hex; the blob holding the code
        code_size           INTEGER NOT NULL,
        updated_at          REAL NOT NULL,
        PRIMARY KEY (account_id, region, name, version),
        FOREIGN KEY (account_id, region, name) REFERENCES functions (account_id, region, name)
            ON DELETE CASCADE
    );
    CREATE INDEX function_versions_unfinished ON function_versions (state, last_update_status);
    CREATE TABLE tags (
        account_id  TEXT NOT NULL,
        region      TEXT NOT NULL,
        name        TEXT NOT NULL,
        key         TEXT NOT NULL,
        value       TEXT NOT NULL,
        PRIMARY KEY (account_id, region, name, key),
        FOREIGN KEY (account_id, region, name) REFERENCES functions (account_id, region, name)
            ON DELETE CASCADE
    );
    """,
)


class StoreError(Exception):
    """Base of the store's own errors (never shown to API callers as such)."""


class AlreadyExists(StoreError):
    """The function (or version) being created exists already."""


class RevisionMismatch(StoreError):
    """A conditional write found another revision than the one it expected (or no row at all)."""


@dataclass(frozen=True)
class VersionRow:
    """One stored function version. `config` is the domain's JSON document, unparsed here."""

    account_id: str
    region: str
    name: str
    version: str
    config: dict[str, Any]
    revision_id: str
    state: str
    last_update_status: str | None
    code_sha256: str
    code_size: int
    updated_at: float = field(default_factory=time.time)


class Store(Protocol):
    """What the control plane needs from durable storage. Implementations must make each call
    atomic and durable once it returns."""

    def create_function(self, row: VersionRow, tags: dict[str, str]) -> None:
        """Insert a function with its $LATEST row and tags. Raises AlreadyExists."""

    def get_version(
        self, account_id: str, region: str, name: str, version: str = "$LATEST"
    ) -> VersionRow | None:
        """One version, or None."""

    def list_versions(
        self, account_id: str, region: str, *, after: str | None, limit: int, version: str | None = "$LATEST"
    ) -> list[VersionRow]:
        """Versions ordered by (name, version), names strictly after `after`; `version=None`: all."""

    def put_version(self, row: VersionRow, *, expected_revision: str | None) -> None:
        """Replace a version row. With `expected_revision`, only if the stored row has it
        (compare-and-swap); raises RevisionMismatch otherwise or when the row does not exist."""

    def delete_function(self, account_id: str, region: str, name: str) -> bool:
        """Delete a function, all its versions and tags. False when it did not exist."""

    def unfinished_versions(self) -> list[VersionRow]:
        """Versions of every account left Pending or InProgress (for recovery after a crash)."""

    def all_versions(self) -> list[VersionRow]:
        """Every version of every account (recovery and maintenance only, never request paths)."""

    def all_code_hashes(self) -> set[str]:
        """Every code blob referenced by a version, in any account."""

    def usage(self, account_id: str, region: str) -> tuple[int, int]:
        """(sum of code sizes, number of functions) of one account in one region."""

    def get_tags(self, account_id: str, region: str, name: str) -> dict[str, str]: ...

    def set_tags(self, account_id: str, region: str, name: str, tags: dict[str, str]) -> None: ...

    def remove_tags(self, account_id: str, region: str, name: str, keys: Sequence[str]) -> None: ...

    def close(self) -> None: ...


def _row(r: sqlite3.Row) -> VersionRow:
    return VersionRow(
        account_id=r["account_id"],
        region=r["region"],
        name=r["name"],
        version=r["version"],
        config=json.loads(r["config"]),
        revision_id=r["revision_id"],
        state=r["state"],
        last_update_status=r["last_update_status"],
        code_sha256=r["code_sha256"],
        code_size=r["code_size"],
        updated_at=r["updated_at"],
    )


class SqliteStore:
    """The SQLite implementation of `Store` (one connection, used from the event loop thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # check_same_thread=False only so that close() may run from a shutdown thread; a lock
        # still serializes every use.
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10.0)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._closed = False
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000"):
            self._conn.execute(f"PRAGMA {pragma}")
        self._migrate()

    # -- plumbing ----------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: all of it is committed, or none of it."""
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            return list(self._conn.execute(sql, args))

    def schema_version(self) -> int:
        rows = self._query("SELECT MAX(version) AS v FROM schema_version")
        return int(rows[0]["v"] or 0)

    def _migrate(self) -> None:
        with self._tx() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at REAL)"
            )
        current = self.schema_version()
        if current > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} has schema version {current}, newer than this Hearth "
                f"({len(MIGRATIONS)}); upgrade Hearth"
            )
        for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
            with self._tx() as db:
                # executescript() would commit on its own; run statement by statement instead so
                # the migration and its version row share one transaction.
                for statement in _split_sql(script):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (number, time.time())
                )

    # -- functions ---------------------------------------------------------------------------------

    def create_function(self, row: VersionRow, tags: dict[str, str]) -> None:
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO functions (account_id, region, name, created_at) VALUES (?, ?, ?, ?)",
                    (row.account_id, row.region, row.name, time.time()),
                )
                self._insert_version(db, row)
                db.executemany(
                    "INSERT INTO tags (account_id, region, name, key, value) VALUES (?, ?, ?, ?, ?)",
                    [(row.account_id, row.region, row.name, k, v) for k, v in tags.items()],
                )
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(row.name) from exc

    @staticmethod
    def _insert_version(db: sqlite3.Connection, row: VersionRow) -> None:
        db.execute(
            "INSERT INTO function_versions (account_id, region, name, version, config, revision_id, state, "
            "last_update_status, code_sha256, code_size, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.account_id,
                row.region,
                row.name,
                row.version,
                json.dumps(row.config),
                row.revision_id,
                row.state,
                row.last_update_status,
                row.code_sha256,
                row.code_size,
                row.updated_at,
            ),
        )

    def get_version(
        self, account_id: str, region: str, name: str, version: str = "$LATEST"
    ) -> VersionRow | None:
        rows = self._query(
            "SELECT * FROM function_versions "
            "WHERE account_id = ? AND region = ? AND name = ? AND version = ?",
            (account_id, region, name, version),
        )
        return _row(rows[0]) if rows else None

    def list_versions(
        self, account_id: str, region: str, *, after: str | None, limit: int, version: str | None = "$LATEST"
    ) -> list[VersionRow]:
        sql = "SELECT * FROM function_versions WHERE account_id = ? AND region = ? AND name > ?"
        args: list[Any] = [account_id, region, after or ""]
        if version is not None:
            sql += " AND version = ?"
            args.append(version)
        sql += " ORDER BY name, version LIMIT ?"
        args.append(limit)
        return [_row(r) for r in self._query(sql, args)]

    def put_version(self, row: VersionRow, *, expected_revision: str | None) -> None:
        row = replace(row, updated_at=time.time())
        with self._tx() as db:
            current = db.execute(
                "SELECT revision_id FROM function_versions WHERE account_id = ? AND region = ? AND name = ? "
                "AND version = ?",
                (row.account_id, row.region, row.name, row.version),
            ).fetchone()
            if current is None or (
                expected_revision is not None and current["revision_id"] != expected_revision
            ):
                raise RevisionMismatch(row.name)
            db.execute(
                "UPDATE function_versions SET config = ?, revision_id = ?, state = ?, "
                "last_update_status = ?, "
                "code_sha256 = ?, code_size = ?, updated_at = ? "
                "WHERE account_id = ? AND region = ? AND name = ? AND version = ?",
                (
                    json.dumps(row.config),
                    row.revision_id,
                    row.state,
                    row.last_update_status,
                    row.code_sha256,
                    row.code_size,
                    row.updated_at,
                    row.account_id,
                    row.region,
                    row.name,
                    row.version,
                ),
            )

    def delete_function(self, account_id: str, region: str, name: str) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM functions WHERE account_id = ? AND region = ? AND name = ?",
                (account_id, region, name),
            )
            return cur.rowcount > 0

    def unfinished_versions(self) -> list[VersionRow]:
        rows = self._query(
            "SELECT * FROM function_versions WHERE state = 'Pending' "
            "OR last_update_status = 'InProgress' ORDER BY account_id, region, name, version"
        )
        return [_row(r) for r in rows]

    def all_versions(self) -> list[VersionRow]:
        """Every version of every account (recovery and maintenance only: not for request paths)."""
        return [_row(r) for r in self._query("SELECT * FROM function_versions")]

    def all_code_hashes(self) -> set[str]:
        return {r["code_sha256"] for r in self._query("SELECT DISTINCT code_sha256 FROM function_versions")}

    def usage(self, account_id: str, region: str) -> tuple[int, int]:
        size = self._query(
            "SELECT COALESCE(SUM(code_size), 0) AS s FROM function_versions "
            "WHERE account_id = ? AND region = ?",
            (account_id, region),
        )[0]["s"]
        count = self._query(
            "SELECT COUNT(*) AS c FROM functions WHERE account_id = ? AND region = ?", (account_id, region)
        )[0]["c"]
        return int(size), int(count)

    # -- tags --------------------------------------------------------------------------------------

    def get_tags(self, account_id: str, region: str, name: str) -> dict[str, str]:
        rows = self._query(
            "SELECT key, value FROM tags WHERE account_id = ? AND region = ? AND name = ? ORDER BY key",
            (account_id, region, name),
        )
        return {r["key"]: r["value"] for r in rows}

    def set_tags(self, account_id: str, region: str, name: str, tags: dict[str, str]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT INTO tags (account_id, region, name, key, value) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (account_id, region, name, key) DO UPDATE SET value = excluded.value",
                [(account_id, region, name, k, v) for k, v in tags.items()],
            )

    def remove_tags(self, account_id: str, region: str, name: str, keys: Sequence[str]) -> None:
        with self._tx() as db:
            db.executemany(
                "DELETE FROM tags WHERE account_id = ? AND region = ? AND name = ? AND key = ?",
                [(account_id, region, name, k) for k in keys],
            )

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()


def _split_sql(script: str) -> list[str]:
    """Statements of a migration script. Migrations hold no string literals containing ';' or '--';
    `--` comments are dropped first so that they may say anything."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def open_store(data_dir: Path) -> SqliteStore:
    """Open (creating and migrating as needed) the store at <data_dir>/hearth.db."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteStore(data_dir / DB_NAME)
