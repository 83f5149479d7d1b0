"""API Gateway benchmarks: a warm request through an HTTP API (payload 2.0) and through a REST API
(AWS_PROXY, payload 1.0) to a no-op function, p50/p99 with a raw keep-alive HTTP client, against the
ASGI echo app on the same server stack in the same run (target: API p50 <= 2.5 x echo p50), with a
function URL to the same function as a second reference (the same invoke path without API Gateway's
front: the difference is what the front costs); and requests per second at concurrency 16 for each.

Run: `hearth bench --section apigw` (or `.venv/bin/python benchmarks/apigw.py`). It starts its own
Hearth server and echo app and stops them.
"""

from __future__ import annotations

import http.client
import io
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from hearth.bench.servers import BENCH_KEY, start_echo, start_hearth

ROLE = f"arn:aws:iam::{BENCH_KEY[2]}:role/bench"
NOOP = 'def handler(event, context):\n    return {"statusCode": 200, "body": "ok"}\n'
TARGET_RATIO = 2.5


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=BENCH_KEY[0],
                        aws_secret_access_key=BENCH_KEY[1], config=Config(retries={"max_attempts": 1}))


def _zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", source)
    return buf.getvalue()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50": ordered[len(ordered) // 2], "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            "n": float(len(ordered))}


class _Target:
    """One keep-alive connection that sends GET `path` with `host`."""

    def __init__(self, port: int, path: str, host: str | None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.path = path
        self.headers = {"Host": host} if host else {}

    def once(self) -> None:
        self.conn.request("GET", self.path, headers=self.headers)
        resp = self.conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{self.path}: {resp.status}")

    def close(self) -> None:
        self.conn.close()


def _setup(endpoint: str) -> tuple[str, str, str]:
    lam, v2, rest = _client(endpoint, "lambda"), _client(endpoint, "apigatewayv2"), _client(endpoint, "apigateway")
    arn = lam.create_function(FunctionName="apigw-noop", Runtime="python3.11", Handler="app.handler", Role=ROLE,
                              Code={"ZipFile": _zip(NOOP)})["FunctionArn"]
    while lam.get_function_configuration(FunctionName="apigw-noop")["State"] == "Pending":
        time.sleep(0.05)
    http_api = v2.create_api(Name="bench-http", ProtocolType="HTTP", Target=arn)["ApiId"]
    api = rest.create_rest_api(name="bench-rest")
    res = rest.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="{proxy+}")
    rest.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod="ANY", authorizationType="NONE")
    rest.put_integration(restApiId=api["id"], resourceId=res["id"], httpMethod="ANY", type="AWS_PROXY",
                         integrationHttpMethod="POST",
                         uri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations")
    rest.create_deployment(restApiId=api["id"], stageName="bench")
    lam.add_permission(FunctionName="apigw-noop", StatementId="bench", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:us-east-1:{BENCH_KEY[2]}:*")
    lam.add_permission(FunctionName="apigw-noop", StatementId="url", Action="lambda:InvokeFunctionUrl",
                       Principal="*", FunctionUrlAuthType="NONE")
    url = lam.create_function_url_config(FunctionName="apigw-noop", AuthType="NONE")["FunctionUrl"]
    return http_api, api["id"], url.split("//", 1)[1].split(".", 1)[0]


def _rps(make: Any, concurrency: int, seconds: float) -> float:
    counts = [0] * concurrency
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        target = make()
        try:
            while time.monotonic() < stop:
                target.once()
                counts[i] += 1
        finally:
            target.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started)


def run(*, warm_runs: int = 300, seconds: float = 2.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hearth-bench-apigw-") as tmp:
        hearth, url = start_hearth(Path(tmp))
        echo, echo_url = start_echo(Path(tmp))
        try:
            http_api, rest_api, url_id = _setup(url)
            port, echo_port = int(url.rsplit(":", 1)[1]), int(echo_url.rsplit(":", 1)[1])

            def make(kind: str) -> _Target:
                if kind == "echo":
                    return _Target(echo_port, "/", None)
                if kind == "url":
                    return _Target(port, f"/_hearth/url/{url_id}/ping", None)
                if kind == "http":
                    return _Target(port, "/ping", f"{http_api}.execute-api.localhost:{port}")
                return _Target(port, "/bench/ping", f"{rest_api}.execute-api.localhost:{port}")

            targets = {kind: make(kind) for kind in ("echo", "url", "http", "rest")}
            for target in targets.values():
                for _ in range(20):
                    target.once()
            samples: dict[str, list[float]] = {kind: [] for kind in targets}
            # Interleaved, so drift on a shared machine hits the baseline and the figures alike.
            for _ in range(warm_runs):
                for kind, target in targets.items():
                    t0 = time.perf_counter()
                    target.once()
                    samples[kind].append((time.perf_counter() - t0) * 1000)
            for target in targets.values():
                target.close()
            out: dict[str, Any] = {f"{kind}_ms": percentiles(s) for kind, s in samples.items()}
            for kind in ("http", "rest"):
                out[f"{kind}_ratio"] = out[f"{kind}_ms"]["p50"] / out["echo_ms"]["p50"]
                out[f"{kind}_vs_url"] = out[f"{kind}_ms"]["p50"] / out["url_ms"]["p50"]
            # The three API paths share one function: warm 16 environments first, or whichever path is
            # measured first pays their cold starts inside its window.
            _rps(lambda: make("url"), 16, seconds)
            out["rps_c16"] = {kind: _rps(lambda k=kind: make(k), 16, seconds) for kind in targets}
            out["target_ratio"] = TARGET_RATIO
            return out
        finally:
            echo.stop()
            hearth.stop()
