"""What API Gateway reports about requests: CloudWatch-style metrics in `/_hearth/metrics` (Count,
4XX, 5XX, Latency, IntegrationLatency per API and stage) and stage access logs written into the logs
service with the stage's `$context` format.

It owns the metric names and the access-log format substitution (`$context.<name>` and dotted names
such as `$context.identity.sourceIp`; an unknown or empty variable renders as `-`, as AWS does). The
destination is the log group named by the stage's destination ARN (created if missing), stream
`<api-id>_<stage>`. It never changes a response.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Protocol

from hearth.observability import metrics
from hearth.services.apigateway import proxy
from hearth.urls.event import aws_time

_VAR = re.compile(r"\$context\.([A-Za-z0-9_.]+)")
_GROUP = re.compile(r"^arn:aws[a-z-]*:logs:[a-z0-9-]+:\d{12}:log-group:([^:]+?)(?::\*)?$")


class LogSink(Protocol):
    def ensure_group(self, account: str, region: str, group: str) -> None: ...
    def ensure_stream(self, account: str, region: str, group: str, stream: str) -> None: ...
    def append(self, account: str, region: str, group: str, stream: str, events: list[tuple[int, str]]) -> None: ...


class ApiMetrics:
    def __init__(self, registry: metrics.Registry = metrics.REGISTRY) -> None:
        r = registry
        self.count = r.counter("hearth_apigateway_requests_total", "API requests (API Gateway: Count).")
        self.client_errors = r.counter("hearth_apigateway_4xx_total", "API answers with a 4xx status (4XXError).")
        self.server_errors = r.counter("hearth_apigateway_5xx_total", "API answers with a 5xx status (5XXError).")
        self.latency = r.histogram("hearth_apigateway_latency_seconds",
                                   "From request received to answer (API Gateway: Latency).")
        self.integration_latency = r.histogram("hearth_apigateway_integration_latency_seconds",
                                               "Time in the integration (API Gateway: IntegrationLatency).")

    def record(self, api_id: str, stage: str, status: int, latency_s: float, integration_s: float | None) -> None:
        labels = {"api": api_id, "stage": stage or "-"}
        self.count.inc(labels)
        if 400 <= status < 500:
            self.client_errors.inc(labels)
        elif status >= 500:
            self.server_errors.inc(labels)
        self.latency.observe(latency_s, labels)
        if integration_s is not None:
            self.integration_latency.observe(integration_s, labels)


def _lookup(values: dict[str, Any], dotted: str) -> str:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return "-"
        node = node[part]
    if node is None or node == "":
        return "-"
    return node if isinstance(node, str) else json.dumps(node) if isinstance(node, (dict, list)) else str(node)


def access_line(fmt: str, req: proxy.ApiRequest, status: int, length: int, latency_ms: int,
                integration_ms: int | None, extra: dict[str, Any]) -> str:
    values: dict[str, Any] = {
        "accountId": req.account, "apiId": req.api_id, "domainName": req.domain_name, "domainPrefix": req.api_id,
        "httpMethod": req.method, "path": req.stage_path, "protocol": "HTTP/1.1", "requestId": req.request_id,
        "extendedRequestId": req.request_id, "requestTime": aws_time(req.epoch_ms),
        "requestTimeEpoch": req.epoch_ms, "stage": req.stage, "status": status, "responseLength": length,
        "responseLatency": latency_ms, "integrationLatency": integration_ms,
        "integration": {"latency": integration_ms, "status": extra.get("integrationStatus")},
        "identity": {"sourceIp": req.source_ip, "userAgent": req.header("user-agent")},
        **extra,
    }
    return _VAR.sub(lambda m: _lookup(values, m.group(1)), fmt)


class AccessLogs:
    def __init__(self, sink: LogSink | None) -> None:
        self._sink = sink

    def write(self, destination: str | None, fmt: str | None, line: str | None, req: proxy.ApiRequest) -> None:
        if self._sink is None or not destination or not fmt or line is None:
            return
        m = _GROUP.match(destination)
        if m is None:
            return
        group, stream = m.group(1), f"{req.api_id}_{req.stage}"
        self._sink.ensure_group(req.account, req.region, group)
        self._sink.ensure_stream(req.account, req.region, group, stream)
        self._sink.append(req.account, req.region, group, stream, [(int(time.time() * 1000), line)])
