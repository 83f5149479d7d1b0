from __future__ import annotations

from pathlib import Path

import pytest

from hearth.store.component import ComponentDb, ComponentDbError
from hearth.store.db import open_store

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
