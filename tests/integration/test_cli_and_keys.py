"""The inner-loop CLI (`hearth deploy`, `invoke`, `logs`, `env`) against a real server, first-start key
generation, `--auth any`, and AWS's logs API over function logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import HearthServer

pytestmark = pytest.mark.integration


def hearth(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hearth", *args], env=env, capture_output=True, text=True,
                          check=check, timeout=120)


def test_deploy_invoke_logs(server: HearthServer, tmp_path: Path) -> None:
    src = tmp_path / "fn"
    src.mkdir()
    (src / "app.py").write_text("def handler(event, context):\n    print('cli-log-line', event)\n"
                                "    return {'got': event}\n")
    env = server.cli_env()
    out = hearth("deploy", str(src), "--name", "cli-fn", "--runtime", "python3.11", "--handler", "app.handler",
                 env=env)
    assert "cli-fn" in out.stdout
    result = hearth("invoke", "cli-fn", "--payload", '{"a": 1}', env=env)
    assert json.loads(result.stdout) == {"got": {"a": 1}}
    assert "START RequestId" in result.stderr and "REPORT RequestId" in result.stderr
    # A function error: exit code 1 and the error type named.
    (src / "app.py").write_text("def handler(event, context):\n    raise ValueError('nope')\n")
    hearth("deploy", str(src), "--name", "cli-fn", env=env)
    failed = hearth("invoke", "cli-fn", env=env, check=False)
    assert failed.returncode == 1 and "ValueError" in failed.stdout + failed.stderr
    deadline = time.monotonic() + 20
    while True:  # the log writer commits shortly after the answer
        logs = hearth("logs", "cli-fn", "--since", "10m", env=env)
        if "cli-log-line {'a': 1}" in logs.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "cli-log-line {'a': 1}" in logs.stdout
    assert "REPORT RequestId" in logs.stdout
    # The same events through AWS's own CLI and the CloudWatch Logs API.
    streams = json.loads(server.aws("logs", "describe-log-streams", "--log-group-name", "/aws/lambda/cli-fn").stdout)
    assert streams["logStreams"] and streams["logStreams"][0]["logStreamName"].count("/") == 3
    missing = hearth("invoke", "no-such-fn", env=env, check=False)
    assert missing.returncode == 1 and "ResourceNotFoundException" in missing.stderr


def test_first_start_generates_a_private_key_pair(tmp_path: Path) -> None:
    srv = HearthServer(tmp_path / "data", extra_env={})
    srv.data_dir.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HEARTH_"))}
    env["HEARTH_DATA_DIR"] = str(srv.data_dir)
    proc = subprocess.Popen([sys.executable, "-m", "hearth", "serve", "--port", str(srv.port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        keys_file = srv.data_dir / "keys.json"
        deadline = time.monotonic() + 60
        while not keys_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert keys_file.stat().st_mode & 0o777 == 0o600
        exports = hearth("env", env={**env, "HEARTH_PORT": str(srv.port)}).stdout
        values = dict(line.removeprefix("export ").split("=", 1) for line in exports.splitlines()
                      if line.startswith("export "))
        key = json.loads(keys_file.read_text())[0]
        assert values["AWS_ACCESS_KEY_ID"] == key["access_key_id"]
        assert values["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{srv.port}"
        import boto3

        lam: Any = boto3.client("lambda", endpoint_url=values["AWS_ENDPOINT_URL"], region_name="us-east-1",
                                aws_access_key_id=key["access_key_id"],
                                aws_secret_access_key=key["secret_access_key"])
        deadline = time.monotonic() + 60
        while True:
            try:
                assert lam.list_functions()["Functions"] == []
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "generated an admin key pair" in out
    assert proc.returncode == 0


def test_auth_any_is_loopback_only(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HEARTH_"))}
    refused = hearth("serve", "--auth", "any", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "d"), env=env,
                     check=False)
    assert refused.returncode != 0 and "loopback" in refused.stderr


def test_auth_any_takes_the_account_from_the_key(tmp_path: Path) -> None:
    srv = HearthServer(tmp_path / "data", extra_args=("--auth", "any"))
    srv.start()
    try:
        import boto3

        def client(key: str) -> Any:
            return boto3.client("lambda", endpoint_url=srv.endpoint, region_name="us-east-1",
                                aws_access_key_id=key, aws_secret_access_key="anything")

        from tests.integration.harness import create_function

        create_function(client("222222222222"), "mine", {"app.py": "def handler(e, c):\n    return 1\n"})
        assert [f["FunctionName"] for f in client("222222222222").list_functions()["Functions"]] == ["mine"]
        assert client("333333333333").list_functions()["Functions"] == []
        arn = client("222222222222").get_function(FunctionName="mine")["Configuration"]["FunctionArn"]
        assert ":222222222222:" in arn
        assert "WARNING" in srv.log() and "any" in srv.log()
    finally:
        assert srv.stop() == 0
