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
    from hearth.store import component, engine
    from hearth.store.postgres import PostgresEngine

    engines: dict[Path, engine.Engine] = {}

    def engine_for(data_dir: Path) -> engine.Engine:
        key = data_dir.resolve()
        if key in engine._engines:  # a test chose its engine (use_engine), as the server would
            return engine._engines[key]
        if key not in engines:
            engines[key] = PostgresEngine(pgcluster.database_for(data_dir))
        return engines[key]

    monkeypatch.setattr(component, "engine_for", engine_for)
    yield
