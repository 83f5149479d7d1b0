"""Synchronous invocations across nodes (issue 18, hearth.cluster.placement and .forwarding): an
invocation received by one node runs where its version's environment is warm, responses streamed
included; a node killed mid-invocation turns into AWS's answer for a lost environment, not a hang; the
node that received it then runs new invocations itself; a rolling restart (SIGTERM drains) fails no
request; a function's reserved concurrency holds for invocations received by both nodes.

Runs on a throwaway PostgreSQL cluster (tests/pgcluster.py) in `./run test-postgresql`.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests import pgcluster
from tests.integration.harness import HearthServer, create_function, invoke_json

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not pgcluster.available(), reason="no PostgreSQL server binaries"),
              pytest.mark.skipif(not pgcluster.enabled(), reason="the PostgreSQL run's (./run test-postgresql)")]

FAST_CLUSTER = {"HEARTH_CLUSTER_TIMES": "0.3,1.5,2.5"}  # heartbeat, lease, dead after (seconds)

# A counter per environment: the same environment answers 1, 2, 3...; `sleep` holds it; `stream` answers
# with a generator (a streamed response).
HANDLER = '''
import os, time
count = 0

def handler(event, context):
    global count
    count += 1
    time.sleep(event.get("sleep", 0))
    if event.get("stream"):
        return chunks(count)
    return {"count": count, "pid": os.getpid()}

def chunks(n):
    yield "count="
    yield str(n)
'''


def _until(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)
    return value


def _placement(server: HearthServer) -> dict[str, Any]:
    placement: dict[str, Any] = server.health()["cluster"]["placement"]
    return placement


def _sees_warm(server: HearthServer, function: str, node_id: str) -> bool:
    return any(key.split(":")[6] == function and node_id in nodes
               for key, nodes in _placement(server)["warm_elsewhere"].items())


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HearthServer, HearthServer]]:
    database = pgcluster.cluster().new_database("forwarding")
    base = tmp_path_factory.mktemp("forwarding")
    a = HearthServer(base / "a", extra_args=("--database", database),
                     extra_env={"HEARTH_NODE_ID": "node-a", **FAST_CLUSTER})
    b = HearthServer(base / "b", extra_args=("--database", database),
                     extra_env={"HEARTH_NODE_ID": "node-b", **FAST_CLUSTER}, make_role=False)
    a.start()
    b.start()
    try:
        yield a, b
    finally:
        b_rc = b.stop()
        a.stop()
        assert b_rc == 0, b.log()


def test_an_invocation_runs_where_its_environment_is_warm(nodes: tuple[HearthServer, HearthServer]) -> None:
    a, b = nodes
    create_function(a.client("lambda"), "fwd-warm", {"app.py": HANDLER})
    _, first = invoke_json(a.client("lambda"), "fwd-warm", {})
    assert first["count"] == 1
    _until(lambda: _sees_warm(b, "fwd-warm", "node-a"), "node b learns that node a holds a warm environment")
    resp, second = invoke_json(b.client("lambda"), "fwd-warm", {}, LogType="Tail")
    # Node a's environment answered (its count went on); the caller of node b got AWS's whole answer.
    assert second == {"count": 2, "pid": first["pid"]}
    assert resp["ExecutedVersion"] == "$LATEST" and "LogResult" in resp
    assert _placement(b)["forwarded"] == {"node-a": 1}
    with urllib.request.urlopen(f"{b.endpoint}/_hearth/metrics", timeout=10) as resp:
        scraped = resp.read().decode()
    assert 'hearth_cluster_forwarded_invocations{node="node-a"} 1' in scraped
    assert 'hearth_cluster_nodes{state="alive"} 2' in scraped
    with urllib.request.urlopen(f"{a.endpoint}/_hearth/metrics", timeout=10) as resp:
        assert "hearth_cluster_received_invocations 1" in resp.read().decode()
    # A function error travels back as it is.
    resp, body = invoke_json(b.client("lambda"), "fwd-warm", {"sleep": "not a number"})
    assert resp["FunctionError"] == "Unhandled" and body["errorType"] == "TypeError"


def test_a_streamed_response_is_forwarded(nodes: tuple[HearthServer, HearthServer]) -> None:
    a, b = nodes
    create_function(a.client("lambda"), "fwd-stream", {"app.py": HANDLER})
    invoke_json(a.client("lambda"), "fwd-stream", {})
    _until(lambda: _sees_warm(b, "fwd-stream", "node-a"), "node b learns of node a's warm environment")
    before = _placement(b)["forwarded"].get("node-a", 0)
    resp = b.client("lambda").invoke_with_response_stream(FunctionName="fwd-stream",
                                                         Payload=json.dumps({"stream": True}))
    data = b""
    complete: dict[str, Any] = {}
    for event in resp["EventStream"]:
        data += event.get("PayloadChunk", {}).get("Payload", b"")
        complete = event.get("InvokeComplete", complete)
    assert data == b"count=2" and "ErrorCode" not in complete
    assert _placement(b)["forwarded"]["node-a"] == before + 1


def test_a_node_killed_mid_invocation_is_a_lost_environment(tmp_path: Path) -> None:
    database = pgcluster.cluster().new_database("forwarding-kill")
    a = HearthServer(tmp_path / "a", extra_args=("--database", database),
                     extra_env={"HEARTH_NODE_ID": "doomed", **FAST_CLUSTER})
    b = HearthServer(tmp_path / "b", extra_args=("--database", database),
                     extra_env={"HEARTH_NODE_ID": "receiver", **FAST_CLUSTER}, make_role=False)
    a.start()
    b.start()
    try:
        create_function(a.client("lambda"), "fwd-kill", {"app.py": HANDLER}, Timeout=60)
        invoke_json(a.client("lambda"), "fwd-kill", {})
        _until(lambda: _sees_warm(b, "fwd-kill", "doomed"), "node b learns of node a's warm environment")
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(invoke_json, b.client("lambda"), "fwd-kill", {"sleep": 50})
            # Node a accepted it and its environment runs it (a kill before the acceptance would leave
            # node b to run it itself, correctly).
            _until(lambda: _placement(a)["received"] >= 1
                   and a.health()["environments"]["by_state"].get("Invoking"), "the invocation runs on node a")
            a.kill9()
            started = time.monotonic()
            resp, body = answer.result(timeout=90)
        # Long before the function's 50 s would have passed: the dropped connection is the answer.
        assert time.monotonic() - started < 40
        assert resp["FunctionError"] == "Unhandled" and body["errorType"] == "Runtime.ExitError"
        # Node b runs the next invocation itself (node a is dead, or passed over until it is).
        _, after = invoke_json(b.client("lambda"), "fwd-kill", {})
        assert after["count"] == 1
    finally:
        a.stop()
        assert b.stop() == 0, b.log()


def test_a_rolling_restart_fails_no_request(nodes: tuple[HearthServer, HearthServer]) -> None:
    """Each node in turn is stopped (SIGTERM: it drains) and started again while a client keeps invoking
    through the other one, whose invocations were going to the restarting node's environment: not one
    request fails."""
    a, b = nodes
    create_function(a.client("lambda"), "fwd-roll", {"app.py": HANDLER})
    invoke_json(a.client("lambda"), "fwd-roll", {})
    for restarting, serving in ((a, b), (b, a)):
        lam = serving.client("lambda")
        answers: list[Any] = []
        stop = threading.Event()

        def load(lam: Any = lam, answers: list[Any] = answers, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                try:
                    resp, body = invoke_json(lam, "fwd-roll", {"sleep": 0.05})
                    answers.append(body if "FunctionError" not in resp else ("failed", body))
                except Exception as exc:  # any failure is the test's failure
                    answers.append(("failed", repr(exc)))

        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(load)
            _until(lambda answers=answers: len(answers) >= 5, "the client's first invocations")
            if restarting is a:  # node b sends them to node a's environment until node a drains
                assert _placement(b)["forwarded"].get("node-a")
            assert restarting.stop() == 0, restarting.log()
            restarting.start()
            seen = len(answers)
            _until(lambda answers=answers, seen=seen: len(answers) >= seen + 5, "invocations after the restart")
            stop.set()
            running.result()
        assert [x for x in answers if isinstance(x, tuple)] == []


def test_reserved_concurrency_holds_under_invocations_through_both_nodes(
        nodes: tuple[HearthServer, HearthServer]) -> None:
    """A reservation of 2 and six concurrent 3-second invocations, three through each node: two run,
    four get AWS's 429, whichever node received them and wherever they would have run."""
    a, b = nodes
    create_function(a.client("lambda"), "fwd-reserved", {"app.py": HANDLER}, Timeout=30)
    a.client("lambda").put_function_concurrency(FunctionName="fwd-reserved", ReservedConcurrentExecutions=2)
    _until(lambda: b.client("lambda").get_function_concurrency(FunctionName="fwd-reserved")
           .get("ReservedConcurrentExecutions") == 2, "node b knows the reservation")

    def call(server: HearthServer) -> str:
        try:
            resp, body = invoke_json(server.client("lambda"), "fwd-reserved", {"sleep": 3})
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return "ran" if "FunctionError" not in resp else f"failed: {body}"

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(call, [a, b, a, b, a, b]))
    assert sorted(outcomes) == ["TooManyRequestsException"] * 4 + ["ran"] * 2, outcomes
