"""The database engine under every component's store: how a connection is opened, how a write
transaction begins, and the dialect facts a component's SQL may depend on.

It owns the connection settings that make an acknowledged write durable (SQLite: WAL with
synchronous=FULL, so what returned survives `kill -9` and a power cut) and the choice of engine for a
data directory. It never knows a component's tables: `hearth.store.component.ComponentDb` runs the
migrations and transactions, the components write their own SQL.

Components never name an engine. They open `ComponentDb(data_dir, component, migrations)`, which asks
`engine_for(data_dir)`; the server may `use_engine(data_dir, engine)` once at start to put another
engine (`hearth.store.postgres.PostgresEngine`, for `hearth serve --database postgresql://...`) under
every component without touching them.

The SQL every component writes is the portable subset both engines run unchanged:
- `?` placeholders (an engine with another paramstyle rewrites them: `Dialect.placeholder`);
- upserts as `INSERT ... ON CONFLICT (...) DO UPDATE SET ... = excluded....` or `DO NOTHING`, never
  `INSERT OR REPLACE` / `OR IGNORE`;
- a key the database assigns is declared `INTEGER PRIMARY KEY` (optionally `AUTOINCREMENT`) and read
  back with `RETURNING id`, never `rowid` or `cursor.lastrowid` (the PostgreSQL engine spells the
  column as an identity column: `Dialect.identity_key`);
- no engine-only functions (`json_extract`, `instr`, two-argument `min`/`max`, `length` of a BLOB
  cast, `printf`, ...): use `CASE`, `substr`, `lower`, `LIKE`, aggregates, or do it in Python;
- NULL-safe comparison with a parameter (`IS ?`) is SQLite's: spell the NULL case on its own;
- a constraint violation inside a transaction is never caught and continued from (PostgreSQL aborts
  the transaction): ask with `ON CONFLICT DO NOTHING` and look at `rowcount` or `RETURNING` instead;
- migrations are statements separated by `;`, run one by one in one transaction (never
  `executescript`, which commits on its own); `--` comments are allowed.
`tests/unit/store/test_portability.py` checks every component's SQL for the forbidden spellings and
parses every migration and whole statement in the PostgreSQL spelling (`POSTGRESQL`) with PostgreSQL's
own parser.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeAlias

# The database every component shares unless it has a reason for its own (the log store has: its
# writes are many and small, and must not queue behind the control plane's on SQLite's one writer).
MAIN_DATABASE = "hearth"


# The DB-API shapes components write against: `execute`/`executemany` with `?` placeholders,
# `fetchone`/`fetchall`, `rowcount`, rows readable by column name and by position. SQLite's classes
# have exactly that shape; another engine hands out adapters with it.
Connection: TypeAlias = sqlite3.Connection
Row: TypeAlias = sqlite3.Row


@dataclass(frozen=True)
class Dialect:
    """What differs between engines that a component or `ComponentDb` must know."""

    name: str
    placeholder: str  # the engine's parameter marker ('{}': its number); components always write '?'
    begin_write: str  # the statement that starts a write transaction holding the write lock
    # How this engine spells a key it assigns, written `INTEGER PRIMARY KEY [AUTOINCREMENT]` in
    # migrations; None: as written.
    identity_key: str | None = None
    # Column types whose portable spelling (TEXT, INTEGER, REAL, BLOB) means something else here:
    # (portable, this engine's). SQLite's INTEGER and REAL are 64-bit; PostgreSQL's are 32-bit; SQLite's
    # TEXT compares bytewise, PostgreSQL's by the database's locale.
    type_names: tuple[tuple[str, str], ...] = ()
    # Around a write whose loss in a power failure is harmless by design (`ComponentDb.tx(flush=False)`):
    # statements that let its commit return before the disk has it, and restore the default after.
    # It still survives `kill -9` (the write is in the OS's cache, and the next flushed commit syncs it).
    relaxed_commit: tuple[str, str] = ("", "")

    def ddl(self, statement: str) -> str:
        """A migration statement in this engine's spelling."""
        if self.identity_key is not None:
            for spelling in ("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER PRIMARY KEY"):
                statement = statement.replace(spelling, self.identity_key)
        for portable, native in self.type_names:
            statement = re.sub(rf"\b{portable}\b", native, statement)
        return statement

    def sql(self, statement: str) -> str:
        """A statement with this engine's parameter markers (components always write '?')."""
        if self.placeholder == "?":
            return statement
        count = iter(range(1, statement.count("?") + 1))
        return re.sub(r"\?", lambda _: self.placeholder.format(next(count)), statement)


SQLITE = Dialect(name="sqlite", placeholder="?", begin_write="BEGIN IMMEDIATE",
                 relaxed_commit=("PRAGMA synchronous=NORMAL", "PRAGMA synchronous=FULL"))
# The PostgreSQL engine's facts (`hearth.store.postgres`; the portability test parses every
# component's SQL and migrations in this spelling with PostgreSQL's own parser). A write transaction is
# READ COMMITTED plus the component's advisory write lock (`Engine.write_lock`), not SERIALIZABLE: the
# lock gives the one-writer-at-a-time reads-then-writes SQLite's IMMEDIATE gives, without aborting a
# transaction that `ComponentDb.tx()` could not replay (hearth.store.postgres explains).
POSTGRESQL = Dialect(
    name="postgresql", placeholder="${}", begin_write="BEGIN",
    identity_key="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    # TEXT compares bytewise, as SQLite's default BINARY collation does (DynamoDB's sort keys, every
    # ORDER BY a listing pages on), whatever the database's own collation is.
    type_names=(("INTEGER", "BIGINT"), ("REAL", "DOUBLE PRECISION"), ("BLOB", "BYTEA"), ("TEXT", 'TEXT COLLATE "C"')),
    relaxed_commit=("SET synchronous_commit = off", "SET synchronous_commit = on"),
)


class Engine(Protocol):
    """Opens connections to the named databases of one Hearth installation.

    A connection is a DB-API 2 connection in autocommit mode (transactions are begun explicitly with
    `dialect.begin_write`) whose rows can be read by column name and by position.
    """

    @property
    def dialect(self) -> Dialect: ...

    def connect(self, database: str, component: str | None = None) -> Connection:
        """A new connection to `database` (created if needed), with the durability settings applied, for
        `component`'s tables (an engine may keep each component apart: PostgreSQL's schemas)."""

    def write_lock(self, component: str) -> tuple[str, tuple[int, int]] | None:
        """A statement (and its arguments) run right after `dialect.begin_write` that makes the
        component's writers wait for each other; None when `begin_write` already does (SQLite)."""

    def location(self, database: str) -> str:
        """Where `database` lives, for messages (a file path, a URL without its password)."""

    @property
    def integrity_error(self) -> type[Exception]:
        """The exception class the engine raises on a constraint violation."""


class SqliteEngine:
    """SQLite files under the data directory: `<data_dir>/<database>.db`."""

    dialect = SQLITE
    integrity_error: type[Exception] = sqlite3.IntegrityError

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def path(self, database: str) -> Path:
        return self.data_dir / f"{database}.db"

    def location(self, database: str) -> str:
        return str(self.path(database))

    def write_lock(self, component: str) -> None:
        return None  # BEGIN IMMEDIATE holds the database file's one write lock

    def connect(self, database: str, component: str | None = None) -> sqlite3.Connection:
        """Explicit transactions only, rows by name, WAL with synchronous=FULL (what returned survives
        `kill -9`), foreign keys, a 10 s busy timeout. check_same_thread=False only so that close() may
        run from a shutdown thread; `ComponentDb` still serializes every use with a lock."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path(database)), isolation_level=None, check_same_thread=False,
                               timeout=10.0)
        conn.row_factory = sqlite3.Row
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000"):
            conn.execute(f"PRAGMA {pragma}")
        return conn


_engines: dict[Path, Engine] = {}
_engines_lock = threading.Lock()
# The engine of a data directory nobody chose one for (the test suite's HEARTH_TEST_DATABASE=postgresql
# replaces it: tests/conftest.py).
_default_engine: Callable[[Path], Engine] = SqliteEngine


def engine_for(data_dir: Path) -> Engine:
    """The engine of a data directory: the one `use_engine` chose, else SQLite files in it."""
    key = data_dir.resolve()
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = _default_engine(data_dir)
        return engine


def use_engine(data_dir: Path, engine: Engine) -> None:
    """Put `engine` under every component opened on `data_dir` from now on (call before opening any)."""
    with _engines_lock:
        _engines[data_dir.resolve()] = engine
