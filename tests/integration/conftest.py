from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import HearthServer


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    srv = HearthServer(tmp_path_factory.mktemp("hearth") / "data")
    srv.start()
    yield srv
    code = srv.stop()
    assert code == 0, f"hearth did not shut down cleanly ({code}):\n{srv.log()}"


@pytest.fixture
def lam(server: HearthServer):  # type: ignore[no-untyped-def]
    return server.client("lambda")


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[HearthServer]:
    srv = HearthServer(tmp_path / "data")
    yield srv
    srv.stop()
