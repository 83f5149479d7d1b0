"""The PostgreSQL engine under `ComponentDb`: the DB-API shape components rely on, a schema per component,
the component write lock, relaxed commits, and what an unreachable or lost database does.

Runs on a throwaway cluster (tests/pgcluster.py); skipped where no PostgreSQL server is installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests import pgcluster

from hearth.store.component import ComponentDb
from hearth.store.postgres import DatabaseUnavailable, PostgresEngine, redact, schema_name

pytestmark = pytest.mark.skipif(not pgcluster.available(), reason="no PostgreSQL server binaries")

ITEMS = ("CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, n INTEGER, "
         "flag INTEGER, body BLOB, score REAL)",)


@pytest.fixture
def engine() -> PostgresEngine:
    return PostgresEngine(pgcluster.cluster().new_database("engine"))


@pytest.fixture
def items(engine: PostgresEngine, tmp_path: Path) -> Iterator[ComponentDb]:
    db = ComponentDb(tmp_path, "items", ITEMS, engine=engine)
    yield db
    db.close()


def test_rows_and_arguments_behave_as_on_sqlite(items: ComponentDb) -> None:
    with items.tx() as db:
        first = db.execute("INSERT INTO items (name, n, flag, body, score) VALUES (?, ?, ?, ?, ?) RETURNING id",
                           ("a", 2, True, b"\x00\xff", 0.5)).fetchone()
        db.executemany("INSERT INTO items (name, n, flag) VALUES (?, ?, ?)", [("b", 3, False), ("c", 4, None)])
        assert db.execute("UPDATE items SET n = n + 1 WHERE n >= ?", (3,)).rowcount == 2
    assert first is not None and first["id"] == first[0] == 1
    row = items.query("SELECT id, name AS Name, n, flag, body, score FROM items WHERE name = ?", ("a",))[0]
    assert row["NAME"] == row["name"] == "a"  # by name, case-insensitively, as sqlite3.Row
    assert tuple(row) == (1, "a", 2, 1, b"\x00\xff", 0.5)
    assert dict(row) == {"id": 1, "name": "a", "n": 2, "flag": 1, "body": b"\x00\xff", "score": 0.5}
    total = items.query("SELECT SUM(n) AS total, COUNT(*) AS k FROM items")[0]
    assert (total["total"], total["k"]) == (11, 3)
    assert isinstance(total["total"], int)  # NUMERIC back as int, as SQLite's integer sum
    # A statement without a result set answers no rows, as sqlite3's cursor does.
    with items.tx() as db:
        assert db.execute("DELETE FROM items WHERE name = ?", ("c",)).fetchall() == []


def test_each_component_has_its_own_schema(engine: PostgresEngine, tmp_path: Path) -> None:
    a = ComponentDb(tmp_path, "alpha", ("CREATE TABLE things (k TEXT PRIMARY KEY)",), engine=engine)
    b = ComponentDb(tmp_path, "beta", ("CREATE TABLE things (k TEXT PRIMARY KEY, v INTEGER)",), engine=engine)
    try:
        with a.tx() as db:
            db.execute("INSERT INTO things (k) VALUES (?)", ("only-a",))
        assert b.query("SELECT COUNT(*) FROM things")[0][0] == 0
        assert (a.schema_version(), b.schema_version()) == (1, 1)
        with psycopg.connect(engine.url) as conn:
            schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}
        assert {schema_name("alpha"), schema_name("beta")} <= schemas
    finally:
        a.close()
        b.close()


def test_a_constraint_violation_is_the_engines_integrity_error(items: ComponentDb) -> None:
    with items.tx() as db:
        db.execute("INSERT INTO items (id, name) VALUES (?, ?)", (7, "x"))
    with pytest.raises(items.integrity_error), items.tx() as db:
        db.execute("INSERT INTO items (id, name) VALUES (?, ?)", (7, "y"))
    assert [r["name"] for r in items.query("SELECT name FROM items")] == ["x"]


def test_writers_of_one_component_wait_for_each_other(engine: PostgresEngine, tmp_path: Path) -> None:
    """Two nodes' connections to one component: the second writer waits for the first one's commit and
    then reads what it wrote (SQLite's BEGIN IMMEDIATE, cluster-wide)."""
    first = ComponentDb(tmp_path, "counter", ("CREATE TABLE c (k TEXT PRIMARY KEY, v INTEGER NOT NULL)",),
                        engine=engine)
    second = ComponentDb(tmp_path, "counter", ("CREATE TABLE c (k TEXT PRIMARY KEY, v INTEGER NOT NULL)",),
                         engine=engine)
    with first.tx() as db:
        db.execute("INSERT INTO c (k, v) VALUES ('n', 0)")
    seen: list[int] = []

    def increment() -> None:
        with second.tx() as db:
            value = db.execute("SELECT v FROM c WHERE k = 'n'").fetchone()[0]
            seen.append(value)
            db.execute("UPDATE c SET v = ? WHERE k = 'n'", (value + 1,))

    try:
        with first.tx() as db:
            value = db.execute("SELECT v FROM c WHERE k = 'n'").fetchone()[0]
            other = threading.Thread(target=increment)
            other.start()
            with psycopg.connect(engine.url, autocommit=True) as watcher:
                while not watcher.execute("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                                          ).fetchone():
                    watcher.execute("SELECT pg_sleep(0.01)")
            db.execute("UPDATE c SET v = ? WHERE k = 'n'", (value + 1,))
        other.join()
        assert seen == [1]  # the waiting writer read the first one's committed increment
        assert first.query("SELECT v FROM c")[0][0] == 2
    finally:
        first.close()
        second.close()


def test_an_unflushed_transaction_turns_synchronous_commit_off_for_itself_only(items: ComponentDb) -> None:
    with items.tx(flush=False) as db:
        assert db.execute("SHOW synchronous_commit").fetchone()[0] == "off"
        db.execute("INSERT INTO items (name) VALUES ('quick')")
    assert items.query("SHOW synchronous_commit")[0][0] == "on"
    assert items.query("SELECT COUNT(*) FROM items")[0][0] == 1


def test_an_unreachable_database_is_a_clear_error_naming_it_without_its_password() -> None:
    url = f"postgresql://hearth:secret@127.0.0.1:{pgcluster._free_port()}/nowhere"
    with pytest.raises(DatabaseUnavailable) as caught:
        PostgresEngine(url).check()
    assert "127.0.0.1" in str(caught.value) and "secret" not in str(caught.value)
    assert redact(url) in str(caught.value)
    served = subprocess.run([sys.executable, "-m", "hearth", "serve", "--database", url, "--port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert served.returncode != 0
    assert "cannot reach the database at" in served.stderr and "secret" not in served.stderr
    assert "Traceback" not in served.stderr


def test_an_outage_fails_calls_then_recovers_without_a_restart(tmp_path: Path) -> None:
    own = pgcluster.Cluster()  # its own cluster: this test stops it
    try:
        db = ComponentDb(tmp_path, "items", ITEMS, engine=PostgresEngine(own.new_database("outage")))
        with db.tx() as c:
            c.execute("INSERT INTO items (name) VALUES ('before')")
        own.pause()
        with pytest.raises(DatabaseUnavailable):
            db.query("SELECT name FROM items")
        with pytest.raises(DatabaseUnavailable), db.tx() as c:
            c.execute("INSERT INTO items (name) VALUES ('during')")
        own.resume()
        with db.tx() as c:
            c.execute("INSERT INTO items (name) VALUES ('after')")
        assert [r[0] for r in db.query("SELECT name FROM items ORDER BY id")] == ["before", "after"]
        db.close()
    finally:
        own.stop()


def test_text_sorts_bytewise_whatever_the_databases_locale(tmp_path: Path) -> None:
    """Listings page and DynamoDB sort keys order by bytes, as on SQLite, also in a database whose default
    collation is a language's (ICU English puts 'a' before 'B'; bytes put 'B' first)."""
    base = pgcluster.cluster().url("postgres")
    name = f"icu_{os.getpid()}"
    with psycopg.connect(base, autocommit=True) as conn:
        try:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' "
                         "LOCALE 'C.UTF-8'")
        except psycopg.Error as exc:
            pytest.skip(f"no ICU collations here: {exc}")
        assert conn.execute("SELECT 'a' < 'B' COLLATE \"en-US-x-icu\"").fetchone() == (True,)
    db = ComponentDb(tmp_path, "items", ITEMS, engine=PostgresEngine(base.rsplit("/", 1)[0] + f"/{name}"))
    try:
        with db.tx() as c:
            c.executemany("INSERT INTO items (name) VALUES (?)", [("a",), ("B",), ("_",), ("Z",)])
        assert [r[0] for r in db.query("SELECT name FROM items ORDER BY name")] == ["B", "Z", "_", "a"]
        assert [r[0] for r in db.query("SELECT name FROM items WHERE name > ? ORDER BY name", ("Z",))] == ["_", "a"]
    finally:
        db.close()


def test_a_tracked_component_learns_of_other_connections_writes_only(engine: PostgresEngine, tmp_path: Path) -> None:
    """What a node caches from a component (the functions' resolve cache) is dropped when another node
    wrote it; its own writes do not count."""
    here = ComponentDb(tmp_path, "tracked", ITEMS, engine=engine, track_changes=True)
    there = ComponentDb(tmp_path, "tracked", ITEMS, engine=engine, track_changes=True)
    try:
        assert not here.changed_elsewhere()
        with here.tx() as db:
            db.execute("INSERT INTO items (name) VALUES ('mine')")
        assert not here.changed_elsewhere()
        assert there.changed_elsewhere()
        assert not there.changed_elsewhere()  # once per change
        with there.tx() as db:
            db.execute("INSERT INTO items (name) VALUES ('theirs')")
        with here.tx() as db:  # a write of its own after theirs still reveals theirs
            db.execute("INSERT INTO items (name) VALUES ('mine again')")
        assert here.changed_elsewhere()
    finally:
        here.close()
        there.close()
