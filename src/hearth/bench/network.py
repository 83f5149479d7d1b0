"""Cold starts with networking: a function in a VPC against one outside any VPC, on one server.

Figures (Python, on-demand, 1,769 MB, measured end to end with the raw signed client, alternating so
that a noisy neighbour slows both alike):
- `python_egress_cold_start_ms`: the first invocation of a new function without VpcConfig (its
  environment gets an interface on Hearth's egress bridge);
- `python_vpc_cold_start_ms`: the same for a function whose VpcConfig names a subnet mapped to a
  host bridge (`--vpc-network`), with a security group;
- `vpc_cold_ratio`: VPC / non-VPC p50 (AWS's Hyperplane interfaces made it near 1);
- `pool_misses`: environments that found their network pool empty (their namespace was made on
  the invoke path).
The bench makes its own bridge (root only) on a private range, sends no traffic over it, and removes it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from hearth.bench.latency import BENCH_MEMORY_MB, PY_HANDLER, ROLE, _client, _raw, _raw_invoke, _series, _time_ms
from hearth.bench.latency import _wait_active as wait_active
from hearth.bench.latency import _zip as zip_one
from hearth.bench.progress import SILENT, Progress
from hearth.bench.servers import BENCH_KEY, start_hearth

SUBNET = "10.253.7.0/24"


def run(runs: int = 20, progress: Progress = SILENT) -> dict[str, Any]:
    if os.geteuid() != 0 or shutil.which("nft") is None:
        return {"skipped": "needs root and nftables (the server's sandbox networking)"}
    bridge = f"hbench{os.getpid() % 10000}"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    tmp = Path(tempfile.mkdtemp(prefix="hearth-bench-net-"))
    hearth = None
    try:
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
        hearth, endpoint = start_hearth(tmp, "--network", "egress", "--vpc-network", f"{SUBNET}={bridge}")
        with urllib.request.urlopen(f"{endpoint}/_hearth/health", timeout=10) as resp:
            if not json.load(resp).get("network"):
                return {"skipped": "the server could not set up sandbox networking"}
        lam, raw = _client(endpoint), _raw(endpoint)
        ec2_client = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1",
                                  aws_access_key_id=BENCH_KEY[0], aws_secret_access_key=BENCH_KEY[1],
                                  config=Config(retries={"max_attempts": 1}))
        vpc = ec2_client.create_vpc(CidrBlock="10.253.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2_client.create_subnet(VpcId=vpc, CidrBlock=SUBNET)["Subnet"]["SubnetId"]
        group = ec2_client.create_security_group(GroupName="bench", Description="bench", VpcId=vpc)["GroupId"]
        code = zip_one("app.py", PY_HANDLER)
        plain = [f"bench-net-plain-{i}" for i in range(runs)]
        in_vpc = [f"bench-net-vpc-{i}" for i in range(runs)]
        for name in plain + in_vpc:
            extra: dict[str, Any] = {"VpcConfig": {"SubnetIds": [subnet], "SecurityGroupIds": [group]}} \
                if name in in_vpc else {}
            lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
                                Code={"ZipFile": code}, MemorySize=BENCH_MEMORY_MB, **extra)
        for name in plain + in_vpc:
            wait_active(lam, name)
        advance = progress.phase("network: cold starts, VPC vs not", runs)
        egress_ms: list[float] = []
        vpc_ms: list[float] = []
        for a, b in zip(plain, in_vpc, strict=True):
            egress_ms.append(_time_ms(partial(_raw_invoke, raw, a)))
            vpc_ms.append(_time_ms(partial(_raw_invoke, raw, b)))
            advance(1)
        with urllib.request.urlopen(f"{endpoint}/_hearth/health", timeout=10) as resp:
            network = json.load(resp).get("network") or {}
        results: dict[str, Any] = {
            "runs": runs,
            "python_egress_cold_start_ms": _series(egress_ms),
            "python_vpc_cold_start_ms": _series(vpc_ms),
            "pool_misses": network.get("misses"),
            "distributions": [{"title": "cold start: VPC vs not",
                               "series": {"no VpcConfig (egress)": egress_ms, "VpcConfig": vpc_ms}}],
        }
        results["vpc_cold_ratio"] = (results["python_vpc_cold_start_ms"]["p50"]
                                     / results["python_egress_cold_start_ms"]["p50"])
        return results
    finally:
        if hearth is not None:
            hearth.stop()
        subprocess.run(["ip", "link", "del", bridge], check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
