"""Hearth's settings: one immutable object, parsed once at start from options and the environment.

Nothing else in Hearth reads `os.environ` for its own configuration.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

AuthMode = Literal["sigv4", "any"]
IsolationChoice = Literal["auto", "namespace", "process"]

DEFAULT_PORT = 4566
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "000000000000"


def default_data_dir() -> Path:
    env = os.environ.get("HEARTH_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hearth"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = field(default_factory=default_data_dir)
    auth: AuthMode = "sigv4"
    region: str = DEFAULT_REGION
    # The admin key from the environment (HEARTH_ACCESS_KEY_ID / HEARTH_SECRET_ACCESS_KEY); more keys
    # come from <data_dir>/keys.json.
    access_key_id: str | None = None
    secret_access_key: str | None = None
    account_id: str = DEFAULT_ACCOUNT
    isolation: IsolationChoice = "auto"
    # Seconds an idle warm environment is kept before it is reclaimed.
    keep_alive_s: float = 600.0
    # Account-wide concurrency limit, as AWS's default.
    account_concurrency: int = 1000
    log_level: str = "info"
    # How long idle environments are kept: "fixed" (keep_alive_s) or "adaptive" (learned per function).
    keep_alive_policy: str = "fixed"
    # SnapStart for $LATEST too (Python): the inner development loop gets restored environments.
    snapstart_latest: bool = False
    # Mount a controller-less cgroup hierarchy with `favordynmods` while serving (see
    # hearth.sandbox.cgroups.favor_dynamic_modifications): environment starts stop waiting for RCU.
    cgroup_favor_dynmods: bool = True
    # Test knobs, never for production: make the async queue's clock (retry delays, event age) and the
    # event bus's schedule clock run this many times faster than wall time; override the retry delays.
    async_time_scale: float = 1.0
    async_retry_delays_s: tuple[float, ...] = ()
    schedule_time_scale: float = 1.0
    # Test knob: temporary credentials (STS sessions, function sessions) expire this many times sooner.
    session_time_scale: float = 1.0
    # HTTPS on this port too (a local CA is made at first start; `hearth env` prints AWS_CA_BUNDLE).
    https_port: int | None = None
    # IAM enforcement for non-root callers: "enforce" (AccessDenied) or "audit" (allow, log the denial).
    iam_mode: str = "enforce"
    # OTLP/HTTP endpoint receiving every invocation's platform spans (hearth.observability.spans);
    # None: no spans, nothing imported.
    otlp_endpoint: str | None = None
    # Sandbox networking (hearth.sandbox.network): "egress" gives every isolated environment an
    # interface onto Hearth's bridge with address translation to the host's routes; "none" keeps the
    # loopback-only sandboxes (functions reach only Hearth's AWS API).
    network: str = "egress"
    # Prepared network namespaces kept ready per network, and tracked connections per environment.
    network_pool: int = 4
    network_conn_limit: int = 1024
    # VPC subnets → operator-named host networks: "subnet-id-or-CIDR=bridge" each (see docs/design.md).
    vpc_networks: tuple[str, ...] = ()
    # Every component's state in this PostgreSQL database (postgresql://...) instead of SQLite files in
    # data_dir; several nodes on one database are one Hearth (hearth.store.postgres, hearth.cluster).
    database_url: str | None = None
    # This node's id in the cluster (default: the host name and port).
    node_id: str | None = None
    # Where the other nodes reach this one (forwarded invocations): default its endpoint, or with a
    # wildcard --host the address of the interface that carries the default route.
    node_address: str | None = None
    # Cluster timing (hearth.cluster.membership): heartbeat period, lease time (renewed every heartbeat),
    # and how long a silent node is alive before it is declared dead (its work then moves elsewhere).
    cluster_heartbeat_s: float = 2.0
    cluster_lease_s: float = 10.0
    cluster_dead_after_s: float = 15.0

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from HEARTH_* variables, then explicit overrides (CLI options) on top."""
        env = os.environ
        values: dict[str, object] = {}
        if "HEARTH_HOST" in env:
            values["host"] = env["HEARTH_HOST"]
        if "HEARTH_PORT" in env:
            values["port"] = int(env["HEARTH_PORT"])
        if "HEARTH_REGION" in env:
            values["region"] = env["HEARTH_REGION"]
        if "HEARTH_ACCOUNT_ID" in env:
            values["account_id"] = env["HEARTH_ACCOUNT_ID"]
        if "HEARTH_ACCESS_KEY_ID" in env:
            values["access_key_id"] = env["HEARTH_ACCESS_KEY_ID"]
        if "HEARTH_SECRET_ACCESS_KEY" in env:
            values["secret_access_key"] = env["HEARTH_SECRET_ACCESS_KEY"]
        if "HEARTH_AUTH" in env:
            values["auth"] = env["HEARTH_AUTH"]
        if "HEARTH_ISOLATION" in env:
            values["isolation"] = env["HEARTH_ISOLATION"]
        if "HEARTH_KEEP_ALIVE" in env:
            values["keep_alive_s"] = float(env["HEARTH_KEEP_ALIVE"])
        if "HEARTH_ACCOUNT_CONCURRENCY" in env:
            values["account_concurrency"] = int(env["HEARTH_ACCOUNT_CONCURRENCY"])
        if "HEARTH_KEEP_ALIVE_POLICY" in env:
            values["keep_alive_policy"] = env["HEARTH_KEEP_ALIVE_POLICY"]
        if "HEARTH_SNAPSTART_LATEST" in env:
            values["snapstart_latest"] = env["HEARTH_SNAPSTART_LATEST"].strip().lower() in ("1", "true", "yes", "on")
        if "HEARTH_CGROUP_FAVOR_DYNMODS" in env:
            values["cgroup_favor_dynmods"] = env["HEARTH_CGROUP_FAVOR_DYNMODS"].strip().lower() in (
                "1", "true", "yes", "on")
        if "HEARTH_ASYNC_TIME_SCALE" in env:
            values["async_time_scale"] = float(env["HEARTH_ASYNC_TIME_SCALE"])
        if "HEARTH_ASYNC_RETRY_DELAYS" in env:
            values["async_retry_delays_s"] = tuple(
                float(d) for d in env["HEARTH_ASYNC_RETRY_DELAYS"].split(",") if d.strip())
        if "HEARTH_TEST_SESSION_TIME_SCALE" in env:
            values["session_time_scale"] = float(env["HEARTH_TEST_SESSION_TIME_SCALE"])
        if "HEARTH_HTTPS_PORT" in env:
            values["https_port"] = int(env["HEARTH_HTTPS_PORT"])
        if "HEARTH_IAM" in env:
            values["iam_mode"] = env["HEARTH_IAM"]
        if env.get("HEARTH_OTLP_ENDPOINT", "").strip():
            values["otlp_endpoint"] = env["HEARTH_OTLP_ENDPOINT"].strip()
        if "HEARTH_NETWORK" in env:
            values["network"] = env["HEARTH_NETWORK"]
        if "HEARTH_NETWORK_POOL" in env:
            values["network_pool"] = int(env["HEARTH_NETWORK_POOL"])
        if "HEARTH_NETWORK_CONN_LIMIT" in env:
            values["network_conn_limit"] = int(env["HEARTH_NETWORK_CONN_LIMIT"])
        if "HEARTH_VPC_NETWORKS" in env:
            values["vpc_networks"] = tuple(v for v in env["HEARTH_VPC_NETWORKS"].split(",") if v.strip())
        if "HEARTH_DATABASE_URL" in env:
            values["database_url"] = env["HEARTH_DATABASE_URL"]
        if "HEARTH_NODE_ID" in env:
            values["node_id"] = env["HEARTH_NODE_ID"]
        if "HEARTH_NODE_ADDRESS" in env:
            values["node_address"] = env["HEARTH_NODE_ADDRESS"]
        if "HEARTH_CLUSTER_TIMES" in env:  # "HEARTBEAT,LEASE,DEAD_AFTER" in seconds
            beat, lease, dead = (float(v) for v in env["HEARTH_CLUSTER_TIMES"].split(","))
            values.update(cluster_heartbeat_s=beat, cluster_lease_s=lease, cluster_dead_after_s=dead)
        if "HEARTH_TEST_TIME_SCALE" in env:
            values["schedule_time_scale"] = float(env["HEARTH_TEST_TIME_SCALE"])
        values.update({k: v for k, v in overrides.items() if v is not None and v != ()})
        if "data_dir" in values:
            values["data_dir"] = Path(str(values["data_dir"])).expanduser().absolute()
        return cls(**values)  # type: ignore[arg-type]

    @property
    def cluster_address(self) -> str:
        """The URL other nodes of a cluster send forwarded invocations to."""
        if self.node_address:
            return self.node_address.rstrip("/")
        if self.host not in ("0.0.0.0", "::"):
            return self.endpoint_url
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:  # a datagram socket's connect sends nothing: it only picks the outgoing interface
                probe.connect(("192.0.2.1", 9))
                address = str(probe.getsockname()[0])
            except OSError:
                address = "127.0.0.1"
        return f"http://{address}:{self.port}"

    @property
    def endpoint_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"
