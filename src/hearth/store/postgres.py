"""The PostgreSQL engine: every component's state in one PostgreSQL database, for several Hearth nodes
(or one that wants a proven server database under it) instead of SQLite files in a data directory.

It owns how Hearth talks to PostgreSQL: the connection URL, one schema per component (its tables,
indexes and `component_schema` row live in `<component>`), the adapter that gives a psycopg 3
connection the DB-API shape components were written against (`?` placeholders, rows by name and by
position, `rowcount`), reconnecting after an outage, and the write lock. It never knows a
component's tables, and it never retries a component's transaction on its own (only the component
knows whether its work may be repeated).

Write transactions. SQLite's `BEGIN IMMEDIATE` lets one writer at a time into a database file, and
every component was written for that: it reads, decides, then writes, and nobody changes its rows in
between. Here a write transaction is `BEGIN` (READ COMMITTED) followed by a transaction-scoped
advisory lock on the component (`pg_advisory_xact_lock(WRITE_LOCK_CLASS, stable_key(schema))`): the
writers of one component queue behind each other across every node, as they queued behind SQLite's
file lock, and a component's reads-then-writes inside `tx()` see no concurrent change. Writers of
different components run in parallel. SERIALIZABLE was the alternative: it would let writers of one
component overlap but abort one of two conflicting transactions, and `ComponentDb.tx()` yields to the
caller's code, which cannot be replayed. Readers (`query()`) never wait for the lock, as with WAL.

Durability: PostgreSQL's default `synchronous_commit = on` and `fsync = on` give what SQLite's
`synchronous=FULL` gives (what returned is on disk); `tx(flush=False)` turns `synchronous_commit` off
for that transaction only.

Outage: a statement that finds the connection broken raises `DatabaseUnavailable` (an unexpected
exception to the API gateway: a 500 ServiceException); the next call reconnects, so the node recovers
when the database returns without a restart. An unreachable database at start-up is the same
exception, with the URL (never its password) in the sentence.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.adapt import Loader
from psycopg.pq import TransactionStatus

from hearth.store.engine import POSTGRESQL, Connection, Dialect

# The advisory-lock class (the first key of the two-key form) of the component write lock; other
# users of advisory locks (leases) take other classes so that their keys never meet.
WRITE_LOCK_CLASS = 0x4845  # "HE"
CONNECT_TIMEOUT_S = 5


class DatabaseUnavailable(Exception):
    """The database cannot be reached (at start-up, or mid-run until it returns)."""


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}" if parts.username else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def schema_name(component: str) -> str:
    """A component's schema: its name in lower case, anything but [a-z0-9_] as '_'."""
    name = re.sub(r"[^a-z0-9_]", "_", component.lower())
    return name if name and not name[0].isdigit() else f"c_{name}"


def stable_key(text: str) -> int:
    """A signed 32-bit key for an advisory lock, the same on every node and every Python."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big", signed=True)


class _NumericLoader(Loader):
    """NUMERIC as int when whole, else float: `SUM()` of BIGINT is NUMERIC in PostgreSQL, an integer in
    SQLite, and components do arithmetic on it."""

    def load(self, data: Any) -> int | float:
        value = Decimal(bytes(data).decode())
        return int(value) if value == value.to_integral_value() else float(value)


class PgRow:
    """A row readable by position, by (case-insensitive) column name, as a tuple and as a mapping, as
    `sqlite3.Row` is."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = tuple(values)
        self._index = index

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._index[key.lower()]]
            except KeyError:
                raise IndexError(f"No item with that key: {key}") from None
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PgRow) and self._values == other._values and self._index == other._index

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return f"PgRow{self._values!r}"


def _row_factory(cursor: Any) -> Any:
    names = [c.name.lower() for c in cursor.description or ()]
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)  # the first of a repeated name wins, as in sqlite3.Row

    def make(values: Sequence[Any]) -> PgRow:
        return PgRow(values, index)
    return make


@lru_cache(maxsize=4096)
def _native(sql: str) -> str:
    return POSTGRESQL.sql(sql)


def _arg(value: Any) -> Any:
    # SQLite stores a bool as 0/1 in an INTEGER column; PostgreSQL refuses a boolean there.
    return int(value) if isinstance(value, bool) else value


class PgCursor:
    """The result of one statement: `fetchone`, `fetchall`, iteration, `rowcount`, `close`."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def fetchone(self) -> PgRow | None:
        if self._cursor.description is None:
            return None
        row: PgRow | None = self._cursor.fetchone()
        return row

    def fetchall(self) -> list[PgRow]:
        if self._cursor.description is None:
            return []
        return list(self._cursor.fetchall())

    def __iter__(self) -> Iterator[PgRow]:
        if self._cursor.description is None:
            return iter(())
        return iter(self._cursor)

    def close(self) -> None:
        self._cursor.close()


class PgConnection:
    """One component's connection, in its own schema, in autocommit mode (transactions are begun
    explicitly, as on SQLite). Reconnects at the next statement after the server went away."""

    def __init__(self, engine: PostgresEngine, schema: str) -> None:
        self._engine = engine
        self._schema = schema
        self._conn: psycopg.Connection[Any] | None = None
        self._in_tx = False
        self._open()

    def _open(self) -> psycopg.Connection[Any]:
        conn = self._engine.raw_connection()
        try:
            conn.adapters.register_loader("numeric", _NumericLoader)
            # The schema is made under the component's write lock: nodes starting together create it once.
            conn.execute("BEGIN")
            conn.execute("SELECT pg_advisory_xact_lock($1, $2)", (WRITE_LOCK_CLASS, stable_key(self._schema)))
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
            conn.execute("COMMIT")
            conn.execute(f'SET search_path TO "{self._schema}"')
        except psycopg.OperationalError as exc:
            conn.close()
            raise DatabaseUnavailable(f"the database at {self._engine.location('')} went away: {exc}") from exc
        self._conn = conn
        return conn

    def _live(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is None or conn.closed:
            if self._in_tx:  # the transaction died with its connection: never continue it on a new one
                raise DatabaseUnavailable("the database connection was lost inside a transaction")
            conn = self._open()
        return conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> PgCursor:
        word = sql.lstrip()[:8].upper()
        if word.startswith(("COMMIT", "ROLLBACK")):
            return self._end(word.startswith("COMMIT"))
        conn = self._live()
        cursor = conn.cursor(row_factory=_row_factory)
        try:
            cursor.execute(_native(sql), [_arg(a) for a in args] if args else None)
        except psycopg.OperationalError as exc:
            if conn.closed or conn.broken:
                self._conn = None
                raise DatabaseUnavailable(f"the database at {self._engine.location('')} went away: {exc}") from exc
            raise
        if word.startswith("BEGIN"):
            self._in_tx = True
        return PgCursor(cursor)

    def _end(self, commit: bool) -> PgCursor:
        conn = self._conn
        self._in_tx = False
        if conn is None or conn.closed or conn.broken:
            if commit:
                self._conn = None
                raise DatabaseUnavailable("the database connection was lost before the commit")
            return PgCursor(_NoResult())  # rolling back a transaction its connection took with it
        cursor = conn.cursor()
        try:
            if commit:
                cursor.execute("COMMIT")
            elif conn.info.transaction_status != TransactionStatus.IDLE:
                cursor.execute("ROLLBACK")
        except psycopg.OperationalError as exc:
            self._conn = None
            if commit:
                raise DatabaseUnavailable(f"the commit did not reach the database: {exc}") from exc
        return PgCursor(cursor)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> PgCursor:
        conn = self._live()
        cursor = conn.cursor()
        try:
            cursor.executemany(_native(sql), [[_arg(a) for a in row] for row in rows])
        except psycopg.OperationalError as exc:
            if conn.closed or conn.broken:
                self._conn = None
                raise DatabaseUnavailable(f"the database at {self._engine.location('')} went away: {exc}") from exc
            raise
        return PgCursor(cursor)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _NoResult:
    rowcount = -1
    description = None

    def close(self) -> None:
        pass


@dataclass
class PostgresEngine:
    """Every component of a Hearth installation in one PostgreSQL database (the URL's), each in its own
    schema. The `database` names components pass (SQLite's files) do not matter here: the schema is
    the component's."""

    url: str
    dialect: Dialect = POSTGRESQL
    integrity_error: type[Exception] = psycopg.IntegrityError

    def raw_connection(self) -> psycopg.Connection[Any]:
        """A plain autocommit connection (for the engine's own adapters and for cluster bookkeeping)."""
        try:
            conn = psycopg.Connection.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                              cursor_factory=psycopg.RawCursor,
                                              application_name="hearth")
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"cannot reach the database at {redact(self.url)}: "
                                      f"{str(exc).strip()}") from exc
        return conn

    def check(self) -> str:
        """Reach the database once (start-up): its server version, or DatabaseUnavailable."""
        with self.raw_connection() as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]

    def connect(self, database: str, component: str | None = None) -> Connection:
        # Components are typed against SQLite's connection; the adapter has the part of its shape they use.
        return cast(Connection, PgConnection(self, schema_name(component or database)))

    def location(self, database: str) -> str:
        return redact(self.url)

    def write_lock(self, component: str) -> tuple[str, tuple[int, int]] | None:
        """The statement (and its arguments) that follows `begin_write` in a component's transaction."""
        return "SELECT pg_advisory_xact_lock(?, ?)", (WRITE_LOCK_CLASS, stable_key(schema_name(component)))
