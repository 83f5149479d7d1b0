"""The cluster benchmarks' nodes: a Hearth server on a shared PostgreSQL database, started as its own
process group with the benchmark key, and stopped (or killed) by the benchmark.

It owns starting and stopping benchmark nodes, and making the echo function they invoke. It never
measures anything itself.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from hearth.bench.servers import BENCH_KEY, free_port

ECHO = "def handler(event, context):\n    return event\n"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


class Node:
    def __init__(self, database: str | None, node_id: str, times: str, root: Path) -> None:
        """`database` None: a single node on SQLite (the baseline)."""
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HEARTH_"))}
        env.update(HEARTH_ACCESS_KEY_ID=BENCH_KEY[0], HEARTH_SECRET_ACCESS_KEY=BENCH_KEY[1],
                   HEARTH_ACCOUNT_ID=BENCH_KEY[2], HEARTH_NODE_ID=node_id, HEARTH_CLUSTER_TIMES=times)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hearth", "serve", "--port", str(self.port), "--data-dir", str(root / node_id),
             *(("--database", database) if database else ())],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_hearth/health", timeout=1) as resp:
                    if json.load(resp).get("status") == "running":
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"node {node_id} did not start")
            time.sleep(0.1)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=BENCH_KEY[0], aws_secret_access_key=BENCH_KEY[1],
                            config=Config(retries={"max_attempts": 1}))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}/_hearth/health", timeout=5) as resp:
            doc: dict[str, Any] = json.load(resp)
            return doc

    def make_echo_function(self, name: str, *, admin: bool = False) -> None:
        """A Python function `name` answering its event, with a role of the same name (allowed everything
        with `admin`), Active when this returns."""
        iam, lam = self.client("iam"), self.client("lambda")
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        if admin:
            iam.attach_role_policy(RoleName=name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("app.py", ECHO)
        lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=arn,
                            Code={"ZipFile": archive.getvalue()})
        while lam.get_function_configuration(FunctionName=name)["State"] == "Pending":
            time.sleep(0.05)
