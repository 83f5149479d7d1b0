"""OpenTelemetry spans for the platform phases of every invocation, exported over OTLP/HTTP.

With `HEARTH_OTLP_ENDPOINT` set (`http://collector:4318`, or a full `.../v1/traces` URL), every
invocation becomes one trace fragment, shaped like the segments AWS X-Ray shows for a Lambda function:

    <function name>            SERVER span: the function segment (faas.* and cloud.* attributes)
      ├─ Initialization        INIT of a cold environment (on-demand or provisioned)
      ├─ Restore               a SnapStart environment's restore instead
      ├─ Invocation            the runtime working on the event
      └─ Overhead              extensions still working after the runtime answered

The trace continues the caller's X-Amzn-Trace-Id: the trace id is its Root (`1-5759e988-bd86...` is
`5759e988bd86...`), the function span's parent is its Parent, and the function sees its own
`_X_AMZN_TRACE_ID` with Parent = the function span, so spans the function exports itself nest under
Hearth's, as AWS makes the function segment their parent. Every invocation is exported whatever its
Sampled flag says (the endpoint asked for them all).

It owns the tracer provider, the span shapes and the id mapping. It never blocks an invocation: spans
are queued and a background thread (the SDK's batch processor) sends them; an unreachable collector
costs dropped spans and a log line, never a failed invocation. Without the variable nothing here is
imported or called (zero cost); without the `otel` extra installed, one warning at start-up.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from hearth.events.lineage import TraceHeader
from hearth.functions.model import FunctionVersion

log = logging.getLogger(__name__)

ENDPOINT_ENV = "HEARTH_OTLP_ENDPOINT"
EXPORT_DELAY_MS = 1000  # how long spans gather before one export request


@dataclass(frozen=True)
class SpanIds:
    """One invocation's place in its trace."""

    header: str  # the X-Amzn-Trace-Id the function sees: Parent is the function span
    trace_id: int
    span_id: int  # the function span
    parent_id: int | None  # the caller's span (its Parent), if it named one


@dataclass(frozen=True)
class Phases:
    """When each platform phase of one invocation ran (epoch nanoseconds and durations)."""

    invoke_start_ns: int
    invoke_end_ns: int
    init_ms: float | None = None
    restore_ms: float | None = None
    extensions_ms: float | None = None  # PostRuntimeExtensionsDuration, when extensions ran
    invoked: bool = True  # False: INIT failed, the event never reached the function


def _hex_id(text: str | None, digits: int) -> int | None:
    if not text:
        return None
    clean = text.replace("-", "")
    if len(clean) != digits:
        return None
    try:
        value = int(clean, 16)
    except ValueError:
        return None
    return value or None


def ids_for(header: str) -> SpanIds:
    """Ids for an invocation under `header`, and the header the function sees (its Parent replaced by
    the function span). A header without a usable Root gets a new trace."""
    parsed = TraceHeader.parse(header)
    root = parsed.root or ""
    trace_id = _hex_id(root[2:], 32) if root.startswith("1-") else None
    if trace_id is None:
        trace_id = int.from_bytes(os.urandom(16), "big") or 1
        root = f"1-{trace_id >> 96:08x}-{trace_id & ((1 << 96) - 1):024x}"
    span_id = int.from_bytes(os.urandom(8), "big") or 1
    parsed.root = root
    parent_id = _hex_id(parsed.parent, 16)
    parsed.parent = f"{span_id:016x}"
    return SpanIds(parsed.render(), trace_id, span_id, parent_id)


class InvocationSpans:
    """The OTLP/HTTP export of invocations' platform spans (requires the `otel` extra)."""

    def __init__(self, endpoint: str, *, exporter: Any = None, export_delay_ms: int = EXPORT_DELAY_MS) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON

        class PresetIds(RandomIdGenerator):
            """Span and trace ids Hearth chose (the function already saw them in its trace header);
            random ones for every span it did not preset. Spans are made on one thread at a time."""

            def __init__(self) -> None:
                self.span_id: int | None = None
                self.trace_id: int | None = None

            def generate_span_id(self) -> int:
                preset, self.span_id = self.span_id, None
                return preset if preset is not None else super().generate_span_id()

            def generate_trace_id(self) -> int:
                preset, self.trace_id = self.trace_id, None
                return preset if preset is not None else super().generate_trace_id()

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            url = endpoint.rstrip("/")
            exporter = OTLPSpanExporter(endpoint=url if url.endswith("/v1/traces") else f"{url}/v1/traces")
        self._trace = trace
        self._ids = PresetIds()
        self._provider = TracerProvider(resource=Resource.create({"service.name": "hearth"}),
                                        id_generator=self._ids, sampler=ALWAYS_ON)
        self._provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=export_delay_ms))
        self._tracer = self._provider.get_tracer("hearth.invoke")
        self.exported = 0

    def begin(self, header: str) -> SpanIds:
        return ids_for(header)

    def record(self, fv: FunctionVersion, ids: SpanIds, phases: Phases, *, request_id: str, cold: bool,
               invoked_arn: str | None = None, error_type: str | None = None) -> None:
        """The spans of one finished invocation (queued for export)."""
        trace = self._trace
        from opentelemetry.context import Context
        from opentelemetry.trace import SpanKind, Status, StatusCode

        ns = 1_000_000
        start = phases.invoke_start_ns
        end = phases.invoke_end_ns
        children: list[tuple[str, int, int]] = []
        if phases.restore_ms is not None:
            children.append(("Restore", start - int(phases.restore_ms * ns), start))
        elif phases.init_ms is not None:
            children.append(("Initialization", start - int(phases.init_ms * ns), start))
        if phases.invoked:
            children.append(("Invocation", start, end))
        if phases.extensions_ms:
            children.append(("Overhead", end, end + int(phases.extensions_ms * ns)))
        first, last = children[0][1], children[-1][2]

        parent_ctx = trace.SpanContext(ids.trace_id, ids.parent_id or trace.INVALID_SPAN_ID, is_remote=True,
                                       trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
        # An empty context, not the current one: nothing of the server's own context may become a parent.
        context = trace.set_span_in_context(trace.NonRecordingSpan(parent_ctx), Context()) if ids.parent_id \
            else Context()
        attributes: dict[str, str | bool | int] = {
            "faas.name": fv.name, "faas.version": fv.version, "faas.invocation_id": request_id,
            "faas.coldstart": cold, "faas.max_memory": fv.memory_mb * 1024 * 1024,
            "cloud.provider": "aws", "cloud.platform": "aws_lambda", "cloud.region": fv.region,
            "cloud.account.id": fv.account_id, "cloud.resource_id": invoked_arn or fv.function_arn,
            "aws.xray.trace_id": ids.header.split(";", 1)[0].removeprefix("Root="),
        }
        if phases.init_ms is not None or phases.restore_ms is not None:
            attributes["faas.init_type"] = "snap-start" if phases.restore_ms is not None else "on-demand"
        if error_type:
            attributes["aws.lambda.error_type"] = error_type
        self._ids.trace_id = None if ids.parent_id else ids.trace_id
        self._ids.span_id = ids.span_id
        root = self._tracer.start_span(fv.name, context=context, kind=SpanKind.SERVER, attributes=attributes,
                                       start_time=first)
        if error_type:
            root.set_status(Status(StatusCode.ERROR, error_type))
        inside = trace.set_span_in_context(root)
        for name, begin, finish in children:
            child = self._tracer.start_span(name, context=inside, start_time=begin,
                                            attributes={"faas.invocation_id": request_id})
            if error_type and (name == "Invocation" or not phases.invoked):
                child.set_status(Status(StatusCode.ERROR, error_type))
            child.end(end_time=finish)
        root.end(end_time=last)
        self.exported += 1

    def close(self) -> None:
        """Send what is queued, then stop the exporter's thread."""
        self._provider.shutdown()


def exporter_for(endpoint: str | None) -> InvocationSpans | None:
    """The exporter the `otlp_endpoint` setting (HEARTH_OTLP_ENDPOINT) asks for; None when it is unset
    or the SDK is not installed."""
    if not endpoint:
        return None
    try:
        spans = InvocationSpans(endpoint)
    except ImportError:
        log.warning("%s is set but the OpenTelemetry SDK is not installed (pip install 'hearth[otel]'): "
                    "no spans are exported", ENDPOINT_ENV)
        return None
    log.info("exporting invocation spans over OTLP/HTTP to %s", endpoint)
    return spans
