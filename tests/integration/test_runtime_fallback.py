"""HEARTH_RUNTIME_FALLBACK=nearest on a real server: a function naming a runtime this host lacks runs on
the nearest installed version of its language, and its INIT log says so."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from hearth.runtimes.registry import installed_runtimes
from tests.integration.harness import HearthServer, create_function, invoke_json

pytestmark = pytest.mark.integration

MISSING = next((r for r in ("python3.14", "python3.13", "python3.12") if r not in installed_runtimes()), None)


@pytest.fixture(scope="module")
def fallback_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    srv = HearthServer(tmp_path_factory.mktemp("fallback") / "data",
                       extra_env={"HEARTH_RUNTIME_FALLBACK": "nearest"})
    srv.start()
    yield srv
    srv.stop()


@pytest.mark.skipif(MISSING is None, reason="this host has every Python runtime AWS offers")
def test_a_missing_runtime_runs_on_the_nearest_and_says_so(fallback_server: HearthServer) -> None:
    assert MISSING is not None
    lam = fallback_server.client("lambda")
    code = "import sys\ndef handler(e, c):\n    return '%d.%d' % sys.version_info[:2]\n"
    create_function(lam, "stand-in", {"app.py": code}, runtime=MISSING)
    resp, body = invoke_json(lam, "stand-in", {}, LogType="Tail")
    stand_in = installed_runtimes()  # what the server found is what this process finds
    assert body in {info.version for info in stand_in.values() if info.kind == "python"}
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert f"INIT_START {MISSING} is not installed on this host: running on python{body}" in tail
