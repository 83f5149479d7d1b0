"""A real Hearth server for the security tests; they only run when it isolates with namespaces."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.integration.harness import HearthServer


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    srv = HearthServer(tmp_path_factory.mktemp("hearth-security") / "data")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def isolated(server: HearthServer) -> HearthServer:
    health = server.health()
    if health.get("isolation") == "process":
        pytest.skip(f"the server runs without isolation ({health.get('isolation_warning')}); "
                    "these tests prove namespace isolation")
    return server
