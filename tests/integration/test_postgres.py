"""Hearth on PostgreSQL (`hearth serve --database`): a server keeps every component's state there, a
second node on the same database sees it and runs the same functions, the cluster shows in
`/_hearth/health` and `hearth cluster status`, and a database outage fails calls with ServiceException
until the database returns.

Runs on a throwaway cluster (tests/pgcluster.py) in `./run test-postgresql` (CI's PostgreSQL part).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests import pgcluster
from tests.integration.harness import HearthServer, create_function, invoke_json, make_zip, wait_active

# Part of the PostgreSQL run (`./run test-postgresql`, HEARTH_TEST_DATABASE=postgresql): several servers
# each, too many for the main run's budget.
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not pgcluster.available(), reason="no PostgreSQL server binaries"),
              pytest.mark.skipif(not pgcluster.enabled(), reason="the PostgreSQL run's (./run test-postgresql)")]

NEW_HANDLER = "def handler(event, context):\n    return {'new': True}\n"
HANDLER = "def handler(event, context):\n    return {'got': event, 'fn': context.function_name}\n"


@pytest.fixture(scope="module")
def database() -> str:
    return pgcluster.cluster().new_database("integration")


@pytest.fixture(scope="module")
def node1(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[HearthServer]:
    srv = HearthServer(tmp_path_factory.mktemp("node1") / "data", extra_args=("--database", database),
                       extra_env={"HEARTH_NODE_ID": "node-1"})
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.log()


def test_every_component_keeps_its_state_in_postgresql(node1: HearthServer, database: str) -> None:
    lam = node1.client("lambda")
    create_function(lam, "pg-fn", {"app.py": HANDLER})
    _, body = invoke_json(lam, "pg-fn", {"n": 1})
    assert body == {"got": {"n": 1}, "fn": "pg-fn"}
    sqs = node1.client("sqs")
    url = sqs.create_queue(QueueName="pg-q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    ddb = node1.client("dynamodb")
    ddb.create_table(TableName="pg-t", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName="pg-t", Item={"k": {"S": "a"}, "v": {"N": "1"}})
    node1.client("ssm").put_parameter(Name="/pg/p", Value="v", Type="String")
    node1.client("s3").create_bucket(Bucket="pg-bucket")
    node1.client("s3").put_object(Bucket="pg-bucket", Key="k", Body=b"body")
    # Nothing of it is in SQLite files: the data directory holds no database.
    assert not list(node1.data_dir.glob("*.db"))
    import psycopg
    with psycopg.connect(database) as conn:
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}
        assert {"functions", "sqs", "dynamodb", "ssm", "s3", "iam", "logs", "cluster", "code_blobs"} <= schemas
        assert conn.execute("SELECT COUNT(*) FROM code_blobs.code_blobs").fetchone()[0] >= 1  # type: ignore[index]


def test_a_second_node_on_the_database_is_the_same_hearth(node1: HearthServer, database: str,
                                                          tmp_path: Path) -> None:
    lam1 = node1.client("lambda")
    create_function(lam1, "pg-shared", {"app.py": HANDLER})
    node2 = HearthServer(tmp_path / "data", extra_args=("--database", database),
                         extra_env={"HEARTH_NODE_ID": "node-2"}, make_role=False)
    node2.start()
    try:
        # What node 1 stored, node 2 answers; node 2 runs node 1's function from the shared archive.
        names = {f["FunctionName"] for f in node2.client("lambda").list_functions()["Functions"]}
        assert {"pg-fn", "pg-shared"} <= names
        _, body = invoke_json(node2.client("lambda"), "pg-shared", {"from": 2})
        assert body == {"got": {"from": 2}, "fn": "pg-shared"}
        # A function created through node 1 while node 2 runs: node 2 fetches its archive at first start.
        create_function(lam1, "pg-late", {"app.py": HANDLER})
        _, body = invoke_json(node2.client("lambda"), "pg-late", {"late": True})
        assert body == {"got": {"late": True}, "fn": "pg-late"}
        # New code through node 1: node 2 drops its cached configuration and runs the new revision.
        lam1.update_function_code(FunctionName="pg-late", ZipFile=make_zip({"app.py": NEW_HANDLER}))
        wait_active(lam1, "pg-late")
        deadline = time.monotonic() + 30
        while invoke_json(node2.client("lambda"), "pg-late", {})[1] != {"new": True}:
            assert time.monotonic() < deadline, "node 2 kept running the old code"
            time.sleep(0.1)
        assert node2.client("ssm").get_parameter(Name="/pg/p")["Parameter"]["Value"] == "v"
        # A long poll on node 2 answers a message sent through node 1 (no shared wake-up: it looks again).
        url = node1.client("sqs").create_queue(QueueName="pg-across")["QueueUrl"]
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(node2.client("sqs").receive_message, QueueUrl=url, WaitTimeSeconds=20)
            node1.client("sqs").send_message(QueueUrl=url, MessageBody="across")
            assert [m["Body"] for m in waiting.result()["Messages"]] == ["across"]
        cluster = node2.health()["cluster"]
        nodes = {n["id"]: n["state"] for n in cluster["nodes"]}
        assert nodes == {"node-1": "alive", "node-2": "alive"}
        holders = {lease["name"]: lease["holder"] for lease in cluster["leases"]}
        assert holders["schedules"] == "node-1"  # the first node took it; the second waits
        shown = subprocess.run([sys.executable, "-m", "hearth", "cluster", "status", "--endpoint", node2.endpoint,
                                "--json"], capture_output=True, text=True, timeout=60, check=True)
        assert {n["id"] for n in json.loads(shown.stdout)["nodes"]} == {"node-1", "node-2"}
    finally:
        assert node2.stop() == 0, node2.log()
    nodes = {n["id"]: n["state"] for n in node1.health()["cluster"]["nodes"]}
    assert nodes["node-2"] == "left"  # a clean stop leaves; a crash turns into "dead" after the heartbeats


def test_a_database_outage_is_a_service_exception_and_heals(tmp_path: Path) -> None:
    own = pgcluster.Cluster()  # its own cluster: this test stops it
    srv = HearthServer(tmp_path / "data", extra_args=("--database", own.new_database("outage")))
    try:
        srv.start()
        sqs = srv.client("sqs")
        url = sqs.create_queue(QueueName="before")["QueueUrl"]
        own.pause()
        with pytest.raises(ClientError) as caught:
            sqs.create_queue(QueueName="during")
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert caught.value.response["Error"]["Code"] in ("ServiceException", "InternalFailure",
                                                          "InternalError", "AWS.SimpleQueueService.InternalError")
        own.resume()
        sqs.send_message(QueueUrl=url, MessageBody="after")
        assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["after"]
        assert sorted(u.rsplit("/", 1)[-1] for u in sqs.list_queues()["QueueUrls"]) == ["before"]
    finally:
        srv.stop()
        own.stop()


SLOW_HANDLER = "import time\ndef handler(event, context):\n    time.sleep(1)\n    return event\n"
FAST_CLUSTER = {"HEARTH_CLUSTER_TIMES": "0.3,1.5,2.5"}  # heartbeat, lease, dead after (seconds)


def test_a_killed_nodes_async_events_run_on_another_node(database: str, tmp_path: Path) -> None:
    """kill -9 of the node that accepted asynchronous invocations: another node declares it dead, takes
    its events over and runs every one (at least once); nothing acknowledged is lost."""
    a = HearthServer(tmp_path / "a", extra_args=("--database", database),
                     extra_env={"HEARTH_NODE_ID": "killed", **FAST_CLUSTER})
    b = HearthServer(tmp_path / "b", extra_args=("--database", database),
                     extra_env={"HEARTH_NODE_ID": "survivor", **FAST_CLUSTER}, make_role=False)
    a.start()
    b.start()
    try:
        lam = a.client("lambda")
        create_function(lam, "pg-async", {"app.py": SLOW_HANDLER})
        sqs = b.client("sqs")
        url = sqs.create_queue(QueueName="pg-async-done")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        lam.put_function_event_invoke_config(FunctionName="pg-async",
                                             DestinationConfig={"OnSuccess": {"Destination": arn}})
        for n in range(6):
            assert lam.invoke(FunctionName="pg-async", InvocationType="Event",
                              Payload=json.dumps({"n": n}))["StatusCode"] == 202
        a.kill9()  # acknowledged, some running, most queued: all stored, owned by the dead node
        seen: set[int] = set()
        deadline = time.monotonic() + 90
        while seen != set(range(6)):
            assert time.monotonic() < deadline, f"only {sorted(seen)} ran after the takeover:\n{b.log()}"
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=1).get("Messages", []):
                seen.add(json.loads(message["Body"])["requestPayload"]["n"])
        nodes = {n["id"]: n["state"] for n in b.health()["cluster"]["nodes"]}
        assert nodes["killed"] == "dead" and nodes["survivor"] == "alive"
        assert "asynchronous event(s) of killed" in b.log()  # they ran because the survivor took them over
    finally:
        a.stop()
        assert b.stop() == 0, b.log()

