"""Hostile function code cannot leave its sandbox: each test runs a probe inside a real function.

The probes run as a Lambda handler and return what they observed; the assertions here decide. Every
test runs twice: in environments started on demand (python3.11), and in environments restored from a
SnapStart snapshot (python3.12, a published version), which must hold every property as well. They
need a server that isolates with namespaces and cgroups (skipped otherwise)."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from tests.integration.harness import HearthServer, create_function, invoke_json

pytestmark = [pytest.mark.security, pytest.mark.integration]

PROBES = r'''
import ctypes, errno, json, os, signal, socket, time

def _try(fn):
    try:
        return {"ok": True, "value": fn()}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__, "errno": getattr(exc, "errno", None)}

def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()

def identity(event):
    return {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
            "cap_eff": _status("CapEff"), "cap_prm": _status("CapPrm"), "no_new_privs": _status("NoNewPrivs")}

def files(event):
    data_dir = event["data_dir"]
    return {
        "data_dir": _try(lambda: os.listdir(data_dir)),
        "keys": _try(lambda: open(os.path.join(data_dir, "keys.json")).read()),
        "root": _try(lambda: [n for n in os.listdir("/root") if n != ".pyenv"]),
        "root_bashrc": _try(lambda: open("/root/.bashrc").read()),
        "shadow": _try(lambda: open("/etc/shadow").read()),
        "host_proc_root": _try(lambda: os.listdir("/proc/1/root/root")),
        "write_task": _try(lambda: open("/var/task/owned", "w").write("x")),
        "write_runtime": _try(lambda: open("/var/runtime/owned", "w").write("x")),
        "write_usr": _try(lambda: open("/usr/owned", "w").write("x")),
        "write_root_fs": _try(lambda: open("/owned", "w").write("x")),
        "write_tmp": _try(lambda: open("/tmp/mine", "w").write("x")),
    }

def tmp_write(event):
    with open("/tmp/" + event["token"], "w") as f:
        f.write("secret")
    return sorted(os.listdir("/tmp"))

def tmp_list(event):
    return sorted(os.listdir("/tmp"))

_ENVIRONMENT = None

def tmp_hold(event):
    # Write a token, stay busy so that a concurrent call needs another environment, then look.
    # The environment's id is drawn at its first call (after a SnapStart restore, never inherited).
    global _ENVIRONMENT
    if _ENVIRONMENT is None:
        _ENVIRONMENT = os.urandom(8).hex()
    with open("/tmp/" + event["token"], "w") as f:
        f.write("secret")
    time.sleep(event["hold_s"])
    return {"environment": _ENVIRONMENT, "tmp": sorted(os.listdir("/tmp"))}

def processes(event):
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    return {
        "pids": pids,
        "signal_server": _try(lambda: os.kill(event["server_pid"], signal.SIGKILL)),
        "signal_server_0": _try(lambda: os.kill(event["server_pid"], 0)),
        "signal_init": _try(lambda: os.kill(1, signal.SIGKILL)),
        "ptrace_init": ctypes.CDLL(None, use_errno=True).ptrace(16, 1, 0, 0),  # PTRACE_ATTACH
        "pid": os.getpid(),
    }

def network(event):
    def connect(host, port):
        with socket.create_connection((host, port), timeout=5):
            return "connected"
    with open("/proc/net/dev") as f:
        interfaces = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    return {
        "interfaces": interfaces,
        "server_port": _try(lambda: connect("127.0.0.1", event["server_port"])),
        "other_port": _try(lambda: connect("127.0.0.1", event["other_port"])),
        "own_runtime_api": _try(lambda: connect("127.0.0.1", 9001)),
        "forbidden": {f"{h}:{p}": _try(lambda: connect(h, p)) for h, p in event.get("forbidden", [])},
    }

def privileges(event):
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None)
    mount_errno = ctypes.get_errno()
    return {"mount": [rc, mount_errno],
            "setuid": _try(lambda: os.setuid(0)), "chroot": _try(lambda: os.chroot("/tmp")),
            "hostname": _try(lambda: socket.sethostname("owned"))}

def handler(event, context):
    return {"init": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
            "result": globals()[event["probe"]](event)}
'''


@dataclass
class Target:
    client: Any
    mode: str  # "on-demand" or "snap-start"


@pytest.fixture(scope="module", params=["on-demand", "snap-start"])
def lam(isolated: HearthServer, request: pytest.FixtureRequest) -> Target:
    client = isolated.client("lambda")
    mode: str = request.param
    for name in ("sec-probe", "sec-probe-other"):
        if mode == "on-demand":
            create_function(client, f"{name}-{mode}", {"app.py": PROBES}, Timeout=10, MemorySize=128)
            continue
        create_function(client, f"{name}-{mode}", {"app.py": PROBES}, runtime="python3.12", Timeout=10,
                        MemorySize=128, SnapStart={"ApplyOn": "PublishedVersions"})
        client.publish_version(FunctionName=f"{name}-{mode}")
        deadline = time.monotonic() + 60
        while client.get_function_configuration(FunctionName=f"{name}-{mode}", Qualifier="1")["State"] != "Active":
            assert time.monotonic() < deadline, "the snapshot was not taken"
            time.sleep(0.05)
    return Target(client, mode)


def probe(lam: Target, name: str, **event: Any) -> Any:
    qualifier = {"Qualifier": "1"} if lam.mode == "snap-start" else {}
    resp, body = invoke_json(lam.client, f"{name}-{lam.mode}", {"probe": event.pop("probe"), **event}, **qualifier)
    assert "FunctionError" not in resp, body
    assert body["init"] == lam.mode  # the environment really was started that way
    return body["result"]


def test_runs_unprivileged(lam: Target) -> None:
    found = probe(lam, "sec-probe", probe="identity")
    assert found["uid"] != 0 and found["euid"] != 0 and found["gid"] != 0
    assert 0 not in found["groups"]
    assert int(found["cap_eff"], 16) == 0 and int(found["cap_prm"], 16) == 0
    assert found["no_new_privs"] == "1"


def test_host_files_are_invisible_and_code_is_read_only(lam: Target, isolated: HearthServer) -> None:
    found = probe(lam, "sec-probe", probe="files", data_dir=str(isolated.data_dir))
    for key in ("data_dir", "keys", "root_bashrc", "shadow", "host_proc_root"):
        assert not found[key]["ok"], (key, found[key])
    assert not found["root"]["ok"] or found["root"]["value"] == []
    for key in ("write_task", "write_runtime", "write_usr", "write_root_fs"):
        assert not found[key]["ok"], (key, found[key])
    assert found["write_tmp"]["ok"]


def test_tmp_is_private_to_each_function(lam: Target) -> None:
    token = "secret-" + os.urandom(6).hex()
    assert token in probe(lam, "sec-probe", probe="tmp_write", token=token)
    assert token not in probe(lam, "sec-probe-other", probe="tmp_list")


def test_host_processes_are_invisible_and_unsignalable(lam: Target, isolated: HearthServer) -> None:
    assert isolated.proc is not None
    server_pid = isolated.proc.pid
    found = probe(lam, "sec-probe", probe="processes", server_pid=server_pid)
    assert max(found["pids"]) < 64  # a fresh pid namespace, not the host's
    assert not found["signal_server"]["ok"]
    assert not found["signal_server_0"]["ok"]
    assert found["ptrace_init"] == -1  # init is another user's or non-dumpable
    assert isolated.health()["status"] == "running"


def _host_addresses() -> list[str]:
    """The host's own IPv4 addresses outside loopback and Hearth's egress bridges."""
    out = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=False).stdout
    found = []
    for link in json.loads(out or "[]"):
        for a in link.get("addr_info", []):
            if not a["local"].startswith("127.") and not link["ifname"].endswith("br"):
                found.append(a["local"])
    return found


def test_network_reaches_nothing_of_the_host(lam: Target, isolated: HearthServer) -> None:
    """Hearth's ports, the host's other services, the metadata address, the bridge and other
    environments: each refused at once from inside a function (an error, never a hang)."""
    other = socket.socket()
    other.bind(("0.0.0.0", 0))  # a host service on every address, the sandbox's bridge gateway included
    other.listen()
    other_port = other.getsockname()[1]
    network = isolated.health().get("network")
    forbidden: list[tuple[str, int]] = [("169.254.169.254", 80), ("169.254.170.2", 80)]
    if network:
        subnet = ipaddress.ip_network(network["egress_subnet"])
        gateway = str(subnet.network_address + 1)
        forbidden += [(gateway, other_port), (gateway, isolated.port), (gateway, 22)]
        # Other environments' addresses (the pool keeps several prepared: some exist, none answers).
        forbidden += [(str(subnet.network_address + n), 9001) for n in (2, 3, 4)]
        forbidden += [(addr, port) for addr in _host_addresses() for port in (other_port, isolated.port)]
    try:
        found = probe(lam, "sec-probe", probe="network", server_port=isolated.port, other_port=other_port,
                      forbidden=forbidden)
    finally:
        other.close()
    assert found["interfaces"] == (["eth0", "lo"] if network else ["lo"])
    assert not found["server_port"]["ok"]
    assert not found["other_port"]["ok"]
    for target, result in found["forbidden"].items():
        assert not result["ok"], target
        # Refused or unreachable, answered by the packet filter: not a connection attempt left to time out.
        assert result["error"] != "TimeoutError", (target, result)


def test_no_privileged_operations(lam: Target) -> None:
    found = probe(lam, "sec-probe", probe="privileges")
    assert found["mount"][0] == -1
    assert not found["setuid"]["ok"]
    assert not found["chroot"]["ok"]
    assert not found["hostname"]["ok"]


def test_environments_are_separate(lam: Target) -> None:
    # Two concurrent environments of one function each have their own /tmp. Each call stays busy for a
    # while so that the other needs a second environment; the environments' ids prove whether it got
    # one (a warm environment serving both in turn proves nothing, so that attempt is made again).
    for attempt in range(3):
        token = f"conc-{os.urandom(6).hex()}"
        with ThreadPoolExecutor(2) as pool:
            calls = [pool.submit(probe, lam, "sec-probe", probe="tmp_hold", token=f"{token}-{side}",
                                 hold_s=1.0 + attempt) for side in "ab"]
            a, b = (c.result() for c in calls)
        if a["environment"] != b["environment"]:
            break
    else:
        pytest.fail("two concurrent calls never ran in two environments")
    assert f"{token}-a" in a["tmp"] and f"{token}-b" in b["tmp"]  # each saw its own file
    assert f"{token}-b" not in a["tmp"] and f"{token}-a" not in b["tmp"]  # and not the other's
