"""A real `hearth serve` process for integration tests, and helpers to drive it with boto3."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from hearth.sandbox.cgroups import instance_key
from hearth.sandbox.network import NetworkPool
from tests import pgcluster

ACCOUNT = "000000000000"
ACCESS_KEY = "AKIAHEARTHTESTADMIN0"
SECRET_KEY = "hearth-test-secret-key-0000000000000000"
OTHER_ACCOUNT = "111111111111"
OTHER_ACCESS_KEY = "AKIAHEARTHTESTOTHER1"
OTHER_SECRET_KEY = "hearth-test-secret-key-1111111111111111"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/lambda-role"
# The execution role every test's functions use: Lambda may assume it, and it may do anything, as the
# account's admin key could before functions ran with their role's credentials.
LAMBDA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HearthServer:
    data_dir: Path
    port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)
    make_role: bool = True  # the tests' execution role (ROLE) is made at start; the quick start makes its own
    host: str = "127.0.0.1"  # where it listens (a namespaced node: its own address)
    wrap: tuple[str, ...] = ()  # a command the server runs under (`ip netns exec NAME` for a namespaced node)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    _crashed: bool = False  # kill9'd and not started again since

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self._crashed = False  # a start removes what a killed server of this data directory left
        self.data_dir.mkdir(parents=True, exist_ok=True)
        keys = [
            {"access_key_id": OTHER_ACCESS_KEY, "secret_access_key": OTHER_SECRET_KEY, "account_id": OTHER_ACCOUNT},
        ]
        keys_file = self.data_dir / "keys.json"
        if not keys_file.exists():
            keys_file.write_text(json.dumps(keys))
            keys_file.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HEARTH_"))}
        env.update(HEARTH_ACCESS_KEY_ID=ACCESS_KEY, HEARTH_SECRET_ACCESS_KEY=SECRET_KEY,
                   HEARTH_ACCOUNT_ID=ACCOUNT, HEARTH_KEEP_ALIVE="120")
        # HEARTH_TEST_ISOLATION=process runs the suite on the fallback backend (default: auto).
        if os.environ.get("HEARTH_TEST_ISOLATION"):
            env["HEARTH_ISOLATION"] = os.environ["HEARTH_TEST_ISOLATION"]
        # HEARTH_TEST_DATABASE=postgresql: the server keeps its state on the throwaway test PostgreSQL (one
        # database per data directory, so that a restarted server finds its state).
        database: tuple[str, ...] = ()
        if pgcluster.enabled() and "--database" not in self.extra_args and "HEARTH_DATABASE_URL" not in self.extra_env:
            database = ("--database", pgcluster.database_for(self.data_dir))
        env.update(self.extra_env)
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        log_file = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*self.wrap, sys.executable, "-m", "hearth", "serve", "--port", str(self.port),
             "--data-dir", str(self.data_dir), *(("--host", self.host) if self.host != "127.0.0.1" else ()),
             *database, *self.extra_args],
            env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hearth exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_hearth/health", timeout=1) as resp:
                    if json.load(resp).get("status") == "running":
                        if self.make_role:
                            self.ensure_role()
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"hearth did not become healthy:\n{self.log()}")

    def ensure_role(self, name: str = "lambda-role") -> None:
        """The tests' execution role (ROLE), made once per data directory."""
        iam = self.client("iam")
        try:
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST)
        except iam.exceptions.EntityAlreadyExistsException:
            return
        iam.attach_role_policy(RoleName=name, PolicyArn=ADMIN_POLICY)

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}/_hearth/health", timeout=5) as resp:
            return dict(json.load(resp))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            if self._crashed:  # killed and not started again: what its network left on the host goes
                self._crashed = False
                with contextlib.suppress(Exception):  # no networking here (not root, no tools): nothing left
                    NetworkPool.remove_leftovers(instance_key(self.data_dir))
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill9(self) -> None:
        """kill -9 the server process only (as a crash would); its sandboxes die with their zygote's
        parent or are reaped by the next start."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        self._crashed = True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-20000:] if self.log_path else ""

    def client(self, service: str, *, account: str = ACCOUNT, **kwargs: Any) -> Any:
        key, secret = (ACCESS_KEY, SECRET_KEY) if account == ACCOUNT else (OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=kwargs.pop("key", key), aws_secret_access_key=kwargs.pop("secret", secret),
            config=Config(retries={"max_attempts": 1}, read_timeout=120, connect_timeout=5), **kwargs,
        )

    def cli_env(self, account: str = ACCOUNT) -> dict[str, str]:
        key, secret = (ACCESS_KEY, SECRET_KEY) if account == ACCOUNT else (OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ENDPOINT_URL=self.endpoint, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret,
                   AWS_DEFAULT_REGION="us-east-1", AWS_MAX_ATTEMPTS="1", AWS_PAGER="")
        return env

    def aws(self, *args: str, account: str = ACCOUNT, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the AWS CLI (the one installed beside the tests) against this server."""
        aws = Path(sys.executable).with_name("aws")
        if _cli_command(args) in CLI_ENDPOINT_OVERRIDDEN and "--endpoint-url" not in args:
            args = ("--endpoint-url", self.endpoint, *args)
        return subprocess.run([str(aws), *args], env=self.cli_env(account), capture_output=True, text=True,
                              check=check, timeout=120)


# AWS CLI v1 (awscli/customizations/overridesslcommonname.py) replaces the endpoint of these commands with
# https://queue.amazonaws.com-style hosts whenever --endpoint-url is absent, ignoring AWS_ENDPOINT_URL.
CLI_ENDPOINT_OVERRIDDEN = frozenset({"sqs", "emr", "rds", "docdb", "neptune", "health"})


def _cli_command(args: tuple[str, ...]) -> str | None:
    """The service command of an `aws` argument list (the first word that is not a global option)."""
    valued = {"--endpoint-url", "--region", "--profile", "--output", "--query", "--color", "--ca-bundle",
              "--cli-read-timeout", "--cli-connect-timeout", "--cli-binary-format"}
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in valued:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def make_zip(files: dict[str, str | bytes], executable: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            mode = 0o755 if name in executable else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
    return buf.getvalue()


def wait_active(client: Any, name: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        cfg: dict[str, Any] = client.get_function_configuration(FunctionName=name)
        if cfg["State"] != "Pending" and cfg.get("LastUpdateStatus") != "InProgress":
            return cfg
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} still {cfg['State']}/{cfg.get('LastUpdateStatus')}")
        time.sleep(0.05)


def create_function(client: Any, name: str, files: dict[str, str | bytes], *, runtime: str = "python3.11",
                    handler: str = "app.handler", executable: tuple[str, ...] = (), **kwargs: Any) -> dict[str, Any]:
    client.create_function(FunctionName=name, Runtime=runtime, Handler=handler, Role=kwargs.pop("Role", ROLE),
                           Code={"ZipFile": make_zip(files, executable)}, **kwargs)
    return wait_active(client, name)


def invoke_json(client: Any, name: str, payload: Any = None, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    resp = client.invoke(FunctionName=name, Payload=json.dumps(payload if payload is not None else {}), **kwargs)
    body = resp["Payload"].read()
    return resp, json.loads(body) if body else None
