from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests import pgcluster

from hearth.functions.store import open_store
from hearth.store.component import ComponentDb, ComponentDbError, table_exists
from hearth.store.engine import Connection

sqlite_only = pytest.mark.skipif(pgcluster.enabled(), reason="SQLite files and pragmas")

V1 = "CREATE TABLE q_items (id INTEGER PRIMARY KEY, body TEXT NOT NULL);"
V2 = "ALTER TABLE q_items ADD COLUMN extra TEXT -- added later;"


def test_migrations_apply_once_and_in_order(tmp_path: Path) -> None:
    db = ComponentDb(tmp_path, "queues", [V1])
    with db.tx() as c:
        c.execute("INSERT INTO q_items (body) VALUES ('a')")
    db.close()
    db = ComponentDb(tmp_path, "queues", [V1, V2])
    assert db.schema_version() == 2
    assert [tuple(r) for r in db.query("SELECT body, extra FROM q_items")] == [("a", None)]
    db.close()


def test_components_share_the_file_without_sharing_versions(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    a = ComponentDb(tmp_path, "a", [V1])
    b = ComponentDb(tmp_path, "b", ["CREATE TABLE b_items (id INTEGER PRIMARY KEY);"])
    assert (a.schema_version(), b.schema_version()) == (1, 1)
    assert store.schema_version() >= 1
    for closable in (a, b, store):
        closable.close()


@sqlite_only
def test_connections_make_acknowledged_writes_durable(tmp_path: Path) -> None:
    db = ComponentDb(tmp_path, "queues", [V1])
    conn = db._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    db.close()


@sqlite_only
def test_a_component_may_keep_its_own_database_and_adopt_an_old_layout(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "side.db")
    old.execute("CREATE TABLE q_items (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    old.execute("INSERT INTO q_items (body) VALUES ('kept')")
    old.commit()
    old.close()

    def adopt(conn: Connection) -> int:
        return 1 if table_exists(conn, "q_items") else 0

    db = ComponentDb(tmp_path, "queues", [V1, V2], database="side", adopt=adopt)
    assert db.path == tmp_path / "side.db"
    assert db.schema_version() == 2
    assert [tuple(r) for r in db.query("SELECT body, extra FROM q_items")] == [("kept", None)]
    db.close()
    assert not (tmp_path / "hearth.db").exists()


def test_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    db = ComponentDb(tmp_path, "queues", [V1])
    with pytest.raises(RuntimeError), db.tx() as c:
        c.execute("INSERT INTO q_items (body) VALUES ('x')")
        raise RuntimeError("boom")
    assert db.query("SELECT COUNT(*) AS n FROM q_items")[0]["n"] == 0
    db.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    ComponentDb(tmp_path, "queues", [V1, V2]).close()
    with pytest.raises(ComponentDbError):
        ComponentDb(tmp_path, "queues", [V1])
