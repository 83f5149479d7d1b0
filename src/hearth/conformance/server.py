"""A throw-away Hearth server for one conformance run: a free port, its own temporary data directory.

It holds the two keys LocalStack's tests sign with: `test`/`test` for account 000000000000 (the primary
test account) and `000000000002`/`test2` for account 000000000002 (the secondary account of the
cross-account tests). It runs as its own process group and is stopped by its PID, never by name.

The tests' caller: AWS recorded LocalStack's tests as an IAM user of the primary account, not as its
root, and the answers show it (SNS's SubscriptionPrincipal is the subscriber's ARN). When the server
serves IAM, `start` makes such a user (`CALLER_USER`, with AdministratorAccess, so that it may do what
the root may) and `caller` is its key, which the tests then sign with; the root's `test` key stays
valid (a few tests sign raw requests with it). Without IAM, `caller` is the root's key.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

PRIMARY = {"access_key_id": "test", "secret_access_key": "test", "account_id": "000000000000"}
SECONDARY = {"access_key_id": "000000000002", "secret_access_key": "test2", "account_id": "000000000002"}
CALLER_USER = "hearth-conformance"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`hearth serve` on 127.0.0.1, started by `start()` and stopped by `stop()` (idempotent)."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self.caller = {"access_key_id": PRIMARY["access_key_id"], "secret_access_key": PRIMARY["secret_access_key"]}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> dict[str, Any]:
        """Start and wait until healthy; returns the health document (which services it serves)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        keys = self.data_dir / "keys.json"
        keys.write_text(json.dumps([SECONDARY]))
        keys.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HEARTH_"))}
        env.update(HEARTH_ACCESS_KEY_ID=PRIMARY["access_key_id"], HEARTH_SECRET_ACCESS_KEY=PRIMARY["secret_access_key"],
                   HEARTH_ACCOUNT_ID=PRIMARY["account_id"])
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "hearth", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"hearth exited with {self._proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_hearth/health", timeout=1) as resp:
                    health: dict[str, Any] = json.load(resp)
                    if health.get("status") == "running":
                        if "iam" in (health.get("services") or {}):
                            self.caller = self._make_caller()
                        return health
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"hearth did not become healthy within {timeout:.0f} s; see {self.log_path}")

    def _make_caller(self) -> dict[str, str]:
        """An IAM user of the primary account allowed everything, and a key of it (see the module's doc)."""
        import boto3  # only here: the rest of the runner needs no AWS SDK

        iam = boto3.client("iam", endpoint_url=self.endpoint, region_name="us-east-1",
                           aws_access_key_id=PRIMARY["access_key_id"],
                           aws_secret_access_key=PRIMARY["secret_access_key"])
        iam.create_user(UserName=CALLER_USER)
        iam.attach_user_policy(UserName=CALLER_USER, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
        key = iam.create_access_key(UserName=CALLER_USER)["AccessKey"]
        return {"access_key_id": str(key["AccessKeyId"]), "secret_access_key": str(key["SecretAccessKey"])}

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        # SIGTERM runs Hearth's shutdown sequence; its environments go with its process group.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
