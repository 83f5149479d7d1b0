"""FunctionStore: schema migrations, durability settings, atomic writes, compare-and-swap."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests import pgcluster

from hearth.functions import store as db_mod
from hearth.functions.store import AlreadyExists, FunctionStore, RevisionMismatch, VersionRow, open_store
from hearth.store.component import ComponentDbError, split_sql


def row(name: str = "f", revision: str = "r1", account: str = "000000000000", **kw: object) -> VersionRow:
    values: dict[str, object] = dict(
        account_id=account,
        region="us-east-1",
        name=name,
        version="$LATEST",
        config={"name": name},
        revision_id=revision,
        state="Pending",
        last_update_status=None,
        code_sha256="ab" * 32,
        code_size=10,
    )
    values.update(kw)
    return VersionRow(**values)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> FunctionStore:
    s = open_store(tmp_path)
    yield s  # type: ignore[misc]
    s.close()


def test_migrations_apply_once(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    assert s.schema_version() == len(db_mod.MIGRATIONS)
    s.create_function(row(), {})
    s.close()
    again = open_store(tmp_path)
    assert again.schema_version() == len(db_mod.MIGRATIONS)
    assert again.get_version("000000000000", "us-east-1", "f") is not None
    again.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    with s._db.tx() as db:
        db.execute("UPDATE component_schema SET version = 99 WHERE component = 'functions'")
    s.close()
    with pytest.raises(ComponentDbError, match="newer than this Hearth"):
        open_store(tmp_path)


def test_create_get_list_delete_with_tags(store: FunctionStore) -> None:
    store.create_function(row("b"), {"t": "1"})
    store.create_function(row("a"), {})
    store.create_function(row("c", account="111111111111"), {})
    with pytest.raises(AlreadyExists):
        store.create_function(row("a"), {})
    assert [r.name for r in store.list_versions("000000000000", "us-east-1", after=None, limit=10)] == [
        "a",
        "b",
    ]
    assert [r.name for r in store.list_versions("000000000000", "us-east-1", after="a", limit=10)] == ["b"]
    assert store.get_tags("000000000000", "us-east-1", "b") == {"t": "1"}
    assert store.usage("000000000000", "us-east-1") == (20, 2)
    assert store.delete_function("000000000000", "us-east-1", "b")
    assert not store.delete_function("000000000000", "us-east-1", "b")
    # Tags and versions went with the function (foreign keys cascade).
    assert store.get_tags("000000000000", "us-east-1", "b") == {}
    assert store.get_version("000000000000", "us-east-1", "b") is None


def test_failed_create_leaves_nothing_behind(store: FunctionStore) -> None:
    bad = row("x", config={"unserializable": object()})
    with pytest.raises(TypeError):
        store.create_function(bad, {"t": "1"})
    assert store.usage("000000000000", "us-east-1") == (0, 0)
    store.create_function(row("x"), {})  # the name is free: the function row was rolled back


def test_put_version_is_compare_and_swap(store: FunctionStore) -> None:
    store.create_function(row(), {})
    store.put_version(row(revision="r2", state="Active"), expected_revision="r1")
    with pytest.raises(RevisionMismatch):
        store.put_version(row(revision="r3"), expected_revision="r1")
    with pytest.raises(RevisionMismatch):
        store.put_version(row("missing"), expected_revision=None)
    got = store.get_version("000000000000", "us-east-1", "f")
    assert got is not None and (got.revision_id, got.state) == ("r2", "Active")


def test_unfinished_versions_and_tags(store: FunctionStore) -> None:
    store.create_function(row("p"), {})
    store.create_function(row("a", state="Active", last_update_status="Successful"), {})
    store.create_function(row("u", state="Active", last_update_status="InProgress"), {})
    assert sorted(r.name for r in store.unfinished_versions()) == ["p", "u"]
    store.set_tags("000000000000", "us-east-1", "a", {"k": "1", "j": "2"})
    store.set_tags("000000000000", "us-east-1", "a", {"k": "3"})
    store.remove_tags("000000000000", "us-east-1", "a", ["j", "absent"])
    assert store.get_tags("000000000000", "us-east-1", "a") == {"k": "3"}
    assert store.all_code_hashes() == {"ab" * 32}


@pytest.mark.skipif(pgcluster.enabled(), reason="an old SQLite layout")
def test_a_data_directory_from_before_component_schema_is_carried_forward(tmp_path: Path) -> None:
    # The layout older Hearths wrote: the functions' migrations with their own schema_version table.
    old = sqlite3.connect(tmp_path / "hearth.db")
    old.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL)")
    for number, script in enumerate(db_mod.MIGRATIONS, start=1):
        for statement in split_sql(script):
            old.execute(statement)
        old.execute("INSERT INTO schema_version VALUES (?, 0)", (number,))
    old.execute("INSERT INTO functions (account_id, region, name, created_at) VALUES "
                "('000000000000', 'us-east-1', 'old', 0)")
    old.commit()
    old.close()
    s = open_store(tmp_path)
    assert s.schema_version() == len(db_mod.MIGRATIONS)  # adopted, not re-run (which would fail)
    assert s.last_version_number("000000000000", "us-east-1", "old") == 0
    s.close()


def test_closed_store_refuses_use(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    s.close()
    with pytest.raises(ComponentDbError):
        s.get_version("000000000000", "us-east-1", "f")
