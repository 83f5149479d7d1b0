"""What was acknowledged survives kill -9 of the server and a restart."""

from __future__ import annotations

import pytest

from tests.integration.harness import ROLE, HearthServer, make_zip, wait_active

pytestmark = pytest.mark.integration


def test_functions_survive_kill_9(fresh_server: HearthServer) -> None:
    fresh_server.start()
    lam = fresh_server.client("lambda")
    for i in range(3):
        lam.create_function(FunctionName=f"durable-{i}", Runtime="python3.11", Handler="app.handler", Role=ROLE,
                            Code={"ZipFile": make_zip({"app.py": f"def handler(e, c):\n    return {i}\n"})})
    # The last create is acknowledged but may still be Pending when the server dies.
    fresh_server.kill9()
    fresh_server.start()
    lam = fresh_server.client("lambda")
    names = sorted(f["FunctionName"] for f in lam.list_functions()["Functions"])
    assert names == ["durable-0", "durable-1", "durable-2"]
    for i in range(3):
        cfg = wait_active(lam, f"durable-{i}")
        assert cfg["State"] == "Active"
        resp = lam.invoke(FunctionName=f"durable-{i}")
        assert resp["Payload"].read() == str(i).encode()
