"""Durable control-plane state of Lambda's functions: their versions, aliases, resource policies and
tags (`ComponentDb` component "functions").

It owns the schema, its migrations and every SQL statement. It never interprets a function's
configuration (that is `hearth.functions.service`): a version's configuration is an opaque JSON
document here, beside the few columns queries and recovery need (revision, state, update status, code
hash). It never raises AWS errors: `AlreadyExists` and `RevisionMismatch` are for the service to
interpret.

Calls are synchronous and short (one indexed statement or one small transaction): Hearth calls them
directly from its asyncio loop, which costs microseconds and keeps every read-modify-write atomic with
respect to other coroutines. Never put a slow query here. Every write is one transaction: a failed
operation leaves no partial state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hearth.store.component import ComponentDb, ComponentDbError, table_exists
from hearth.store.engine import Connection, Row

COMPONENT = "functions"

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
    # 2: published versions (numbers never reused while the function exists), aliases, and the
    # resource-based policy of each function qualifier ('' = the unqualified function).
    """
    ALTER TABLE functions ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE aliases (
        account_id   TEXT NOT NULL,
        region       TEXT NOT NULL,
        name         TEXT NOT NULL,
        alias        TEXT NOT NULL,
        document     TEXT NOT NULL,      -- JSON owned by hearth.functions
        revision_id  TEXT NOT NULL,
        PRIMARY KEY (account_id, region, name, alias),
        FOREIGN KEY (account_id, region, name) REFERENCES functions (account_id, region, name)
            ON DELETE CASCADE
    );
    CREATE TABLE function_policies (
        account_id   TEXT NOT NULL,
        region       TEXT NOT NULL,
        name         TEXT NOT NULL,
        qualifier    TEXT NOT NULL,
        statements   TEXT NOT NULL,      -- JSON list of statements, in the order they were added
        revision_id  TEXT NOT NULL,
        PRIMARY KEY (account_id, region, name, qualifier),
        FOREIGN KEY (account_id, region, name) REFERENCES functions (account_id, region, name)
            ON DELETE CASCADE
    );
    """,
)


class StoreError(ComponentDbError):
    """Base of the store's own errors (never shown to API callers as such)."""


class AlreadyExists(StoreError):
    """The function (or version) being created exists already."""


class RevisionMismatch(StoreError):
    """A conditional write found another revision than the one it expected (or no row at all)."""


@dataclass(frozen=True)
class AliasRow:
    """One alias. `document` is the domain's JSON (target version, weights, description)."""

    account_id: str
    region: str
    name: str
    alias: str
    document: dict[str, Any]
    revision_id: str


@dataclass(frozen=True)
class PolicyRow:
    """The resource-based policy of one function or qualifier (`qualifier` '' = unqualified)."""

    account_id: str
    region: str
    name: str
    qualifier: str
    statements: list[dict[str, Any]]
    revision_id: str


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


def _row(r: Row) -> VersionRow:
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


class FunctionStore:
    """Functions, versions, aliases, policies and tags (used from the event loop thread)."""

    def __init__(self, data_dir: Path) -> None:
        # track_changes: in a cluster, FunctionService's resolve cache learns of other nodes' writes.
        self._db = ComponentDb(data_dir, COMPONENT, MIGRATIONS, adopt=_adopt_schema_version, track_changes=True)
        self.path = self._db.path

    def changed_elsewhere(self) -> bool:
        """Whether another node (same database) changed any function since the last call."""
        return self._db.changed_elsewhere()

    # -- plumbing ----------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._db.tx() as db:
            yield db

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        return self._db.query(sql, args)

    def schema_version(self) -> int:
        return self._db.schema_version()

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
        except self._db.integrity_error as exc:
            raise AlreadyExists(row.name) from exc

    @staticmethod
    def _insert_version(db: Connection, row: VersionRow) -> None:
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

    # -- published versions ------------------------------------------------------------------------

    def last_version_number(self, account_id: str, region: str, name: str) -> int | None:
        rows = self._query(
            "SELECT last_version FROM functions WHERE account_id = ? AND region = ? AND name = ?",
            (account_id, region, name),
        )
        return int(rows[0]["last_version"]) if rows else None

    def insert_version(self, row: VersionRow, *, previous_number: int, latest: VersionRow | None = None) -> None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE functions SET last_version = ? WHERE account_id = ? AND region = ? AND name = ? "
                "AND last_version = ?",
                (previous_number + 1, row.account_id, row.region, row.name, previous_number),
            )
            if cur.rowcount != 1:
                raise RevisionMismatch(row.name)
            self._insert_version(db, replace(row, updated_at=time.time()))
            if latest is not None:
                cur = db.execute(
                    "UPDATE function_versions SET config = ?, revision_id = ?, updated_at = ? "
                    "WHERE account_id = ? AND region = ? AND name = ? AND version = '$LATEST'",
                    (json.dumps(latest.config), latest.revision_id, time.time(), latest.account_id,
                     latest.region, latest.name),
                )
                if cur.rowcount != 1:
                    raise RevisionMismatch(row.name)

    def list_function_versions(self, account_id: str, region: str, name: str) -> list[VersionRow]:
        rows = self._query(
            "SELECT * FROM function_versions WHERE account_id = ? AND region = ? AND name = ?",
            (account_id, region, name),
        )
        return [_row(r) for r in rows]

    def delete_version(self, account_id: str, region: str, name: str, version: str) -> bool:
        if version == "$LATEST":
            raise StoreError("$LATEST goes only with its function")
        return self._delete_qualified("function_versions", "version", account_id, region, name, version)

    def _delete_qualified(self, table: str, column: str, account_id: str, region: str, name: str,
                          qualifier: str) -> bool:
        """Delete a version or alias row and the resource policy of that qualifier, in one transaction."""
        with self._tx() as db:
            cur = db.execute(
                f"DELETE FROM {table} WHERE account_id = ? AND region = ? AND name = ? AND {column} = ?",
                (account_id, region, name, qualifier),
            )
            db.execute(
                "DELETE FROM function_policies WHERE account_id = ? AND region = ? AND name = ? AND qualifier = ?",
                (account_id, region, name, qualifier),
            )
            return cur.rowcount > 0

    # -- aliases -----------------------------------------------------------------------------------

    @staticmethod
    def _alias(r: Row) -> AliasRow:
        return AliasRow(r["account_id"], r["region"], r["name"], r["alias"], json.loads(r["document"]),
                        r["revision_id"])

    def get_alias(self, account_id: str, region: str, name: str, alias: str) -> AliasRow | None:
        rows = self._query(
            "SELECT * FROM aliases WHERE account_id = ? AND region = ? AND name = ? AND alias = ?",
            (account_id, region, name, alias),
        )
        return self._alias(rows[0]) if rows else None

    def list_aliases(self, account_id: str, region: str, name: str) -> list[AliasRow]:
        rows = self._query(
            "SELECT * FROM aliases WHERE account_id = ? AND region = ? AND name = ? ORDER BY alias",
            (account_id, region, name),
        )
        return [self._alias(r) for r in rows]

    def put_alias(self, row: AliasRow, *, expected_revision: str | None, create: bool) -> None:
        args = (json.dumps(row.document), row.revision_id, row.account_id, row.region, row.name, row.alias)
        with self._tx() as db:
            if create:
                try:
                    db.execute(
                        "INSERT INTO aliases (document, revision_id, account_id, region, name, alias) "
                        "VALUES (?, ?, ?, ?, ?, ?)", args,
                    )
                except self._db.integrity_error as exc:
                    raise AlreadyExists(row.alias) from exc
                return
            sql = ("UPDATE aliases SET document = ?, revision_id = ? "
                   "WHERE account_id = ? AND region = ? AND name = ? AND alias = ?")
            extra: tuple[str, ...] = ()
            if expected_revision is not None:
                sql += " AND revision_id = ?"
                extra = (expected_revision,)
            if db.execute(sql, args + extra).rowcount != 1:
                raise RevisionMismatch(row.alias)

    def delete_alias(self, account_id: str, region: str, name: str, alias: str) -> bool:
        return self._delete_qualified("aliases", "alias", account_id, region, name, alias)

    # -- resource-based policies -------------------------------------------------------------------

    def get_policy(self, account_id: str, region: str, name: str, qualifier: str) -> PolicyRow | None:
        rows = self._query(
            "SELECT * FROM function_policies WHERE account_id = ? AND region = ? AND name = ? AND qualifier = ?",
            (account_id, region, name, qualifier),
        )
        if not rows:
            return None
        r = rows[0]
        return PolicyRow(r["account_id"], r["region"], r["name"], r["qualifier"], json.loads(r["statements"]),
                         r["revision_id"])

    def put_policy(self, row: PolicyRow, *, expected_revision: str | None) -> None:
        key = (row.account_id, row.region, row.name, row.qualifier)
        where = "WHERE account_id = ? AND region = ? AND name = ? AND qualifier = ?"
        with self._tx() as db:
            current = db.execute(f"SELECT revision_id FROM function_policies {where}", key).fetchone()
            found = None if current is None else current["revision_id"]
            if found != expected_revision:
                raise RevisionMismatch(row.name)
            if not row.statements:
                db.execute(f"DELETE FROM function_policies {where}", key)
            elif current is None:
                db.execute(
                    "INSERT INTO function_policies (account_id, region, name, qualifier, statements, revision_id) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (*key, json.dumps(row.statements), row.revision_id),
                )
            else:
                db.execute(f"UPDATE function_policies SET statements = ?, revision_id = ? {where}",
                           (json.dumps(row.statements), row.revision_id, *key))

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
        self._db.close()


def _adopt_schema_version(db: Connection) -> int:
    """Data directories from before `component_schema` kept the functions' version in a table of its
    own, `schema_version` (one row per applied migration): carry its highest version forward."""
    if not table_exists(db, "schema_version"):
        return 0
    row = db.execute("SELECT MAX(version) AS v FROM schema_version").fetchone()
    return int(row["v"] or 0)


def open_store(data_dir: Path) -> FunctionStore:
    """Open (creating and migrating as needed) the functions' store of a data directory."""
    return FunctionStore(data_dir)
