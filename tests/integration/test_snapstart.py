"""SnapStart as AWS: a published version's INIT runs once into a snapshot (before-snapshot hooks, then
Pending -> Active), and new environments are restored from it (after-restore hooks, Restore Duration,
AWS_LAMBDA_INITIALIZATION_TYPE=snap-start) with a fresh identity each; `$LATEST` too when the operator
turns it on. Isolation of restored environments is proven in tests/security."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.harness import HearthServer, create_function, make_zip, wait_active

pytestmark = pytest.mark.integration


@pytest.fixture
def server(server: HearthServer) -> HearthServer:
    if server.health().get("isolation") == "process":
        pytest.skip("snapshots need the namespace backend (the process fallback starts on demand)")
    return server

HANDLER = """
import os, random, socket, time, uuid
import snapshot_restore_py

INIT_TOKEN = uuid.uuid4().hex  # made once, in INIT: every restored environment shares it
RANDOM_AT_INIT = random.random()
HOOKS = []
with open("/tmp/written-in-init", "w") as f:
    f.write("from INIT")
print("INIT ran", INIT_TOKEN, flush=True)

@snapshot_restore_py.register_before_snapshot
def first():
    HOOKS.append("before-1")

def second(tag, *, suffix):
    HOOKS.append(tag + suffix)

snapshot_restore_py.register_before_snapshot(second, "before-", suffix="2")

@snapshot_restore_py.register_after_restore
def restored():
    HOOKS.append("after")
    print("restored", flush=True)

def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    mine = "/tmp/mine-" + context.aws_request_id
    open(mine, "w").close()
    return {
        "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
        "init_token": INIT_TOKEN,
        "random_at_init": RANDOM_AT_INIT,
        "random_now": random.random(),
        "urandom": os.urandom(8).hex(),
        "hooks": HOOKS,
        "tmp": sorted(os.listdir("/tmp")),
        "tmp_init": open("/tmp/written-in-init").read(),
        "hostname": socket.gethostname(),
        "log_stream_var": os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME"),
        "request_id": context.aws_request_id,
        "uid": os.getuid(),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    }
"""

BROKEN = """
import snapshot_restore_py
def boom():
    raise ValueError("not today")
snapshot_restore_py.register_before_snapshot(boom)
def handler(event, context):
    return {}
"""


def wait_version(lam: Any, name: str, version: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        cfg: dict[str, Any] = lam.get_function_configuration(FunctionName=name, Qualifier=version)
        if cfg["State"] != "Pending":
            return cfg
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}:{version} is still Pending")
        time.sleep(0.05)


def invoke(lam: Any, name: str, qualifier: str, payload: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    resp = lam.invoke(FunctionName=name, Qualifier=qualifier, Payload=json.dumps(payload or {}), LogType="Tail")
    assert "FunctionError" not in resp, resp["Payload"].read()
    return json.loads(resp["Payload"].read()), base64.b64decode(resp["LogResult"]).decode()


def test_published_version_is_restored_from_its_snapshot(server: HearthServer) -> None:
    lam = server.client("lambda")
    name = "snap-basic"
    create_function(lam, name, {"app.py": HANDLER}, runtime="python3.12", Timeout=30,
                    SnapStart={"ApplyOn": "PublishedVersions"})
    latest = lam.get_function_configuration(FunctionName=name)
    assert latest["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "Off"}

    published = lam.publish_version(FunctionName=name)
    assert published["State"] == "Pending"  # until the snapshot is taken, as AWS
    cfg = wait_version(lam, name, published["Version"])
    assert cfg["State"] == "Active", cfg
    assert cfg["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}

    # Two environments at once, both restored from the one snapshot.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: invoke(lam, name, "1", {"sleep": 0.5}), range(2)))
    (a, _), (b, _) = runs
    for body, tail in runs:
        assert body["init_type"] == "snap-start"
        # Newest-registered first before the snapshot, then the after-restore hook in this environment.
        assert body["hooks"] == ["before-2", "before-1", "after"]
        assert "Restore Duration: " in tail and "Billed Restore Duration: " in tail
        assert "Init Duration" not in tail
        assert "INIT ran" not in tail  # INIT did not run again
        assert body["log_stream_var"] is None  # AWS does not give SnapStart functions these
        assert body["tmp_init"] == "from INIT"  # /tmp starts as the snapshot's
        assert body["uid"] == 993
        assert body["pids"] == [1, 2]  # its own pid namespace: init and the runtime, nothing else
    assert a["init_token"] == b["init_token"]  # the same INIT state...
    assert a["random_at_init"] == b["random_at_init"]
    assert a["random_now"] != b["random_now"]  # ...but reseeded random state
    assert a["urandom"] != b["urandom"]
    assert a["hostname"] != b["hostname"]
    # A private /tmp each: neither sees the file the other wrote.
    assert f"mine-{b['request_id']}" not in a["tmp"] and f"mine-{a['request_id']}" not in b["tmp"]

    # Warm again: no restore in the REPORT.
    body, tail = invoke(lam, name, "1")
    assert body["init_type"] == "snap-start"
    assert "Restore Duration" not in tail and "Init Duration" not in tail

    # $LATEST is not restored (ApplyOn is about published versions).
    body, tail = invoke(lam, name, "$LATEST")
    assert body["init_type"] == "on-demand"
    assert "Init Duration" in tail

    # The snapshot's INIT went to the logs once, with its INIT_REPORT; each restored environment writes
    # to a log stream of its own.
    logs = server.client("logs")
    group = f"/aws/lambda/{name}"
    # Log events are written a few milliseconds after the invoke answers (docs/design.md, the log writer).
    deadline = time.monotonic() + 10
    while True:
        messages = [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]
        if sum("INIT ran" in m for m in messages) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sum("INIT ran" in m for m in messages) == 2  # the snapshot's, and $LATEST's on-demand INIT
    assert any(m.startswith("INIT_REPORT Init Duration:") for m in messages)
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]]
    restored_streams = {s for s in streams if "[1]" in s
                        for e in logs.get_log_events(logGroupName=group, logStreamName=s)["events"]
                        if "Restore Duration" in e["message"]}
    assert len(restored_streams) == 2


def test_snapshot_failure_fails_the_version(server: HearthServer) -> None:
    lam = server.client("lambda")
    name = "snap-broken"
    create_function(lam, name, {"app.py": BROKEN}, runtime="python3.12", SnapStart={"ApplyOn": "PublishedVersions"})
    version = lam.publish_version(FunctionName=name)["Version"]
    cfg = wait_version(lam, name, version)
    assert cfg["State"] == "Failed"
    assert cfg["StateReasonCode"] == "FunctionError"
    assert "Runtime.BeforeSnapshotError" in cfg["StateReason"] and "not today" in cfg["StateReason"]


AFTER_RESTORE_FAILS = """
import snapshot_restore_py
@snapshot_restore_py.register_after_restore
def reconnect():
    raise ConnectionError("the database is gone")
def handler(event, context):
    return "unreachable"
"""


def test_failing_after_restore_hook_fails_the_invocation(server: HearthServer) -> None:
    lam = server.client("lambda")
    name = "snap-after-fails"
    create_function(lam, name, {"app.py": AFTER_RESTORE_FAILS}, runtime="python3.12",
                    SnapStart={"ApplyOn": "PublishedVersions"})
    lam.publish_version(FunctionName=name)
    assert wait_version(lam, name, "1")["State"] == "Active"  # the snapshot itself was fine
    resp = lam.invoke(FunctionName=name, Qualifier="1", Payload=b"{}", LogType="Tail")
    body = json.loads(resp["Payload"].read())
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.AfterRestoreError"
    assert "the database is gone" in body["errorMessage"]


TICKER = """
import threading, time
TICKS = [0]
def tick():
    while True:
        TICKS[0] += 1
        time.sleep(0.001)
threading.Thread(target=tick, daemon=True).start()
time.sleep(0.05)
def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"ticks": TICKS[0], "threads": threading.active_count()}
"""


def test_the_snapshot_is_frozen_between_restores(server: HearthServer) -> None:
    """A thread INIT started does not keep running in the template (it would use CPU for nothing and
    change what later clones start from); clones start from the state the snapshot was taken in."""
    lam = server.client("lambda")
    name = "snap-ticker"
    create_function(lam, name, {"app.py": TICKER}, runtime="python3.12", Timeout=30,
                    SnapStart={"ApplyOn": "PublishedVersions"})
    lam.publish_version(FunctionName=name)
    assert wait_version(lam, name, "1")["State"] == "Active"
    first, _ = invoke(lam, name, "1", {"sleep": 1.0})  # keeps the first clone busy...
    time.sleep(0.5)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # ...so that these need new clones
        later = list(pool.map(lambda _: invoke(lam, name, "1", {"sleep": 0.3})[0], range(2)))
    for body in (first, *later):
        assert body["threads"] == 1  # fork copies only the thread that forks (see docs/design.md)
    # Restored 0.5 s and more apart, from a template that was frozen in between: ~the same count.
    assert all(abs(body["ticks"] - first["ticks"]) < 50 for body in later), (first, later)


def test_snapstart_runtime_and_apply_on_validation(server: HearthServer) -> None:
    lam = server.client("lambda")
    with pytest.raises(ClientError) as info:
        create_function(lam, "snap-node", {"index.js": "exports.handler = async () => 1;"}, runtime="nodejs20.x",
                        handler="index.handler", SnapStart={"ApplyOn": "PublishedVersions"})
    err = info.value.response["Error"]
    assert err["Code"] == "InvalidParameterValueException"
    assert err["Message"] == "nodejs20.x is not supported for SnapStart enabled functions."
    with pytest.raises(ClientError) as info:
        create_function(lam, "snap-bad", {"app.py": HANDLER}, runtime="python3.12",
                        SnapStart={"ApplyOn": "invalidOption"})
    assert info.value.response["Error"]["Message"] == (
        "1 validation error detected: Value 'invalidOption' at 'snapStart.applyOn' failed to satisfy constraint: "
        "Member must satisfy enum value set: [PublishedVersions, None]")


def test_snapstart_for_latest_when_the_operator_turns_it_on(tmp_path: Path) -> None:
    srv = HearthServer(tmp_path / "data", extra_env={"HEARTH_SNAPSTART_LATEST": "1"})
    srv.start()
    try:
        if srv.health().get("isolation") == "process":
            pytest.skip("snapshots need the namespace backend")
        lam = srv.client("lambda")
        create_function(lam, "snap-dev", {"app.py": HANDLER}, runtime="python3.11", Timeout=30)
        body, tail = invoke(lam, "snap-dev", "$LATEST")
        assert body["init_type"] == "snap-start" and "Restore Duration" in tail
        first_token = body["init_token"]
        # New code: a new snapshot (the old one is retired with its environments).
        lam.update_function_code(FunctionName="snap-dev", ZipFile=make_zip({"app.py": HANDLER}))
        wait_active(lam, "snap-dev")
        body, tail = invoke(lam, "snap-dev", "$LATEST")
        assert body["init_type"] == "snap-start" and body["init_token"] != first_token
    finally:
        assert srv.stop() == 0, srv.log()


HOSTILE = """
import os, time
BALLAST = bytearray(8 * 1024 * 1024)  # INIT state the clones share copy-on-write
def handler(event, context):
    if event["do"] == "oom":
        hog = []
        while True:
            hog.append(bytearray(16 * 1024 * 1024))
    if event["do"] == "forkbomb":
        for _ in range(100000):
            try:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
            except OSError:
                return "fork refused"
        return "forked without limit"
    if event["do"] == "fill_tmp":
        try:
            with open("/tmp/fill", "wb") as f:
                while True:
                    f.write(b"x" * (1 << 20))
        except OSError as exc:
            return "tmp full: " + type(exc).__name__
    return "ok"
"""


def test_restored_environments_keep_their_limits(server: HearthServer) -> None:
    """Memory, pids and /tmp limits hold in a clone (it joins cgroups of its own, not the template's)."""
    lam = server.client("lambda")
    name = "snap-hostile"
    create_function(lam, name, {"app.py": HOSTILE}, runtime="python3.12", Timeout=30, MemorySize=1024,
                    EphemeralStorage={"Size": 512}, SnapStart={"ApplyOn": "PublishedVersions"})
    lam.publish_version(FunctionName=name)
    assert wait_version(lam, name, "1")["State"] == "Active"

    def call(do: str) -> tuple[dict[str, Any], Any]:
        resp = lam.invoke(FunctionName=name, Qualifier="1", Payload=json.dumps({"do": do}))
        return resp, json.loads(resp["Payload"].read())

    resp, body = call("oom")
    assert resp["FunctionError"] == "Unhandled" and body["errorType"] == "Runtime.OutOfMemory"
    resp, body = call("fill_tmp")
    assert body == "tmp full: OSError"
    resp, body = call("forkbomb")  # last: its sleeping children hold memory until the environment ends
    assert body == "fork refused" or resp.get("FunctionError") == "Unhandled"
    # The snapshot survived all of it: a new environment is restored from it.
    resp, body = call("ok")
    assert body == "ok"
    with urllib.request.urlopen(f"{server.endpoint}/_hearth/metrics", timeout=5) as resp:
        metrics = resp.read().decode()
    restores = [line for line in metrics.splitlines()
                if line.startswith("hearth_restore_duration_seconds_count") and f'function="{name}"' in line]
    assert restores and float(restores[0].rsplit(" ", 1)[1]) >= 2  # a new clone after the killed one


def test_a_restarted_server_takes_a_new_snapshot(fresh_server: HearthServer) -> None:
    """Snapshots live in memory: after a restart (even kill -9) the first cold start takes a new one."""
    fresh_server.start()
    if fresh_server.health().get("isolation") == "process":
        pytest.skip("snapshots need the namespace backend")
    lam = fresh_server.client("lambda")
    create_function(lam, "snap-restart", {"app.py": HANDLER}, runtime="python3.12", Timeout=30,
                    SnapStart={"ApplyOn": "PublishedVersions"})
    lam.publish_version(FunctionName="snap-restart")
    assert wait_version(lam, "snap-restart", "1")["State"] == "Active"
    before, _ = invoke(lam, "snap-restart", "1")
    fresh_server.kill9()
    fresh_server.start()
    lam = fresh_server.client("lambda")
    after, tail = invoke(lam, "snap-restart", "1")
    assert after["init_type"] == "snap-start" and "Restore Duration" in tail
    assert after["init_token"] != before["init_token"]  # INIT ran again, once, for the new snapshot
    assert after["hooks"] == ["before-2", "before-1", "after"]


def _template_init_pids() -> list[int]:
    """Host pids of snapshot templates' init processes: the parents' parents of clones' inits (a clone's
    init is pid 1 of a pid namespace nested two levels below the host's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        nspid = fields.get("NSpid", "").split()
        if len(nspid) == 3 and nspid[-1] == "1":  # a clone's init; its parent is the template's runtime
            runtime = int(fields["PPid"])
            try:
                template_status = Path(f"/proc/{runtime}/status").read_text()
            except OSError:
                continue
            ppid = [line.split()[1] for line in template_status.splitlines() if line.startswith("PPid:")]
            found.append(int(ppid[0]))
    return sorted(set(found))


def test_a_dead_snapshot_is_taken_again(server: HearthServer) -> None:
    """The template dies (here: SIGKILL from outside; on a host, the OOM killer), and its clones with it
    (they live in namespaces nested in its pid namespace): the next cold start takes a new snapshot
    instead of failing."""
    lam = server.client("lambda")
    name = "snap-killed"
    create_function(lam, name, {"app.py": HANDLER}, runtime="python3.12", Timeout=30,
                    SnapStart={"ApplyOn": "PublishedVersions"})
    lam.publish_version(FunctionName=name)
    assert wait_version(lam, name, "1")["State"] == "Active"
    before, _ = invoke(lam, name, "1")
    templates_before = _template_init_pids()
    assert templates_before, "no template found"
    for pid in templates_before:  # frozen between restores: it dies when the next restore thaws it
        os.kill(pid, signal.SIGKILL)

    def call(_: int) -> tuple[dict[str, Any], Any, str]:
        resp = lam.invoke(FunctionName=name, Qualifier="1", Payload=json.dumps({"sleep": 0.5}), LogType="Tail")
        return resp, json.loads(resp["Payload"].read()), base64.b64decode(resp["LogResult"]).decode()

    # Two at once: one may land on the idle clone, which died with its template (a known limit: clones
    # live in namespaces nested in the template's); the other needs a restore, which finds the snapshot
    # dead and takes a new one.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(call, range(2)))
    failed = [body for resp, body, _ in runs if "FunctionError" in resp]
    assert len(failed) <= 1 and all(body["errorType"] == "Runtime.ExitError" for body in failed), runs
    restored = [body for resp, body, tail in runs if "FunctionError" not in resp and "Restore Duration" in tail]
    assert restored, runs
    assert restored[0]["init_token"] != before["init_token"]  # a new snapshot: INIT ran again
    resp, body, _ = call(0)  # and the function keeps working
    assert "FunctionError" not in resp and body["init_type"] == "snap-start"

TIGHT = """
import time
BALLAST = bytearray(108 * 1024 * 1024)
for i in range(0, len(BALLAST), 4096):
    BALLAST[i] = 1
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return "ok"
"""


def test_a_burst_of_restores_of_a_memory_tight_function(server: HearthServer) -> None:
    """Every clone's page tables (and the pages it copies before joining its own groups) are charged to
    the template's memory cgroup: without room for them, this burst gets the template OOM-killed and
    every clone with it."""
    lam = server.client("lambda")
    name = "snap-tight"
    create_function(lam, name, {"app.py": TIGHT}, runtime="python3.12", MemorySize=128, Timeout=30,
                    SnapStart={"ApplyOn": "PublishedVersions"})
    lam.publish_version(FunctionName=name)
    assert wait_version(lam, name, "1")["State"] == "Active"

    def call(_: int) -> Any:
        resp = lam.invoke(FunctionName=name, Qualifier="1", Payload=json.dumps({"sleep": 2}))
        return resp.get("FunctionError"), json.loads(resp["Payload"].read())

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(16)))
    assert results == [(None, "ok")] * 16
