"""`ComponentDb.tx(flush=False)`: committed like any transaction, and the connection goes back to
synchronous=FULL afterwards (also when the transaction fails), so every other write stays flushed."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests import pgcluster

from hearth.store.component import ComponentDb

# SQLite's PRAGMA: PostgreSQL's synchronous_commit switch is tests/unit/store/test_postgres.py's.
pytestmark = pytest.mark.skipif(pgcluster.enabled(), reason="SQLite's synchronous pragma")

MIGRATIONS = ("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)",)
FULL = 2  # PRAGMA synchronous values: 0 OFF, 1 NORMAL, 2 FULL


def _synchronous(db: ComponentDb) -> int:
    return int(db.query("PRAGMA synchronous")[0][0])


def test_an_unflushed_transaction_commits_and_restores_full_sync(tmp_path: Path) -> None:
    db = ComponentDb(tmp_path, "flushtest", MIGRATIONS)
    try:
        with db.tx(flush=False) as conn:
            assert int(conn.execute("PRAGMA synchronous").fetchone()[0]) == 1
            conn.execute("INSERT INTO t (k, v) VALUES ('a', 1)")
        assert _synchronous(db) == FULL
        with pytest.raises(RuntimeError), db.tx(flush=False) as conn:
            conn.execute("INSERT INTO t (k, v) VALUES ('b', 2)")
            raise RuntimeError("rolled back")
        assert _synchronous(db) == FULL
        again = ComponentDb(tmp_path, "flushtest", MIGRATIONS)  # another connection sees the commit
        try:
            assert [tuple(r) for r in again.query("SELECT k, v FROM t ORDER BY k")] == [("a", 1)]
        finally:
            again.close()
    finally:
        db.close()
