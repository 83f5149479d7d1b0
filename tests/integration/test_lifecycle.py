"""Environment lifecycle end to end: freeze between invocations, idle reclaim, retirement on change."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import HearthServer, create_function, invoke_json, wait_active

pytestmark = pytest.mark.integration

TICKER = """
import threading, time
ticks = [0]
def _tick():
    while True:
        ticks[0] += 1
        time.sleep(0.005)
threading.Thread(target=_tick, daemon=True).start()
def handler(event, context):
    return {"ticks": ticks[0], "stream": context.log_stream_name}
"""


def test_background_threads_do_not_run_while_idle(lam: Any, server: HearthServer) -> None:
    if server.health()["isolation"] == "process":
        pytest.skip("the process backend freezes with SIGSTOP too, but this checks the cgroup freezer")
    create_function(lam, "ticker", {"app.py": TICKER})
    _, first = invoke_json(lam, "ticker")
    time.sleep(0.6)  # ~120 ticks if the thread ran while idle
    _, second = invoke_json(lam, "ticker")
    assert second["stream"] == first["stream"]  # the same, warm environment
    assert second["ticks"] - first["ticks"] < 30, (first, second)


def test_idle_environments_are_reclaimed_and_changes_retire_them(tmp_path: Path) -> None:
    srv = HearthServer(tmp_path / "data", extra_args=("--keep-alive", "1"))
    srv.start()
    try:
        lam = srv.client("lambda")
        create_function(lam, "brief", {"app.py": TICKER})
        _, first = invoke_json(lam, "brief")
        assert srv.health()["environments"]["environments"] == 1
        deadline = time.monotonic() + 15
        while srv.health()["environments"]["environments"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert srv.health()["environments"]["environments"] == 0
        _, second = invoke_json(lam, "brief")
        assert second["stream"] != first["stream"]  # a new environment after the reclaim
        lam.update_function_configuration(FunctionName="brief", Description="changed")
        wait_active(lam, "brief")
        _, third = invoke_json(lam, "brief")
        assert third["stream"] != second["stream"]  # new configuration, new environment
        stats = srv.health()["environments"]
        assert stats["environments"] == 1, stats  # the old revision's environment was retired
    finally:
        assert srv.stop() == 0
