"""Suite-wide switches.

HEARTH_TEST_DATABASE=postgresql runs every test on PostgreSQL: each data directory a test opens a
component store on gets its own database on a throwaway cluster (tests/pgcluster.py), and the
integration harness starts its servers with `--database` on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pgcluster


@pytest.fixture(autouse=True)
def _postgres_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if not pgcluster.enabled():
        yield
        return
    from hearth.store import engine
    from hearth.store.postgres import PostgresEngine

    def on_postgresql(data_dir: Path) -> engine.Engine:
        return PostgresEngine(pgcluster.database_for(data_dir))

    # Every data directory nobody chose an engine for gets its own database (engine_for remembers it
    # per directory, so a store reopened on it finds its data).
    monkeypatch.setattr(engine, "_default_engine", on_postgresql)
    yield
    with engine._engines_lock:
        for key in [k for k, v in engine._engines.items() if isinstance(v, PostgresEngine)]:
            del engine._engines[key]
