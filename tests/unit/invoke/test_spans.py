"""The platform spans of an invocation: ids continued from the X-Amzn-Trace-Id, the phase spans."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.functions.model import FunctionVersion
from hearth.observability.spans import InvocationSpans, Phases, ids_for

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

CALLER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0;Lineage=a87bd80c:3"
FV = FunctionVersion(
    account_id="000000000000", region="us-east-1", name="traced", version="$LATEST",
    function_arn="arn:aws:lambda:us-east-1:000000000000:function:traced", runtime="python3.11",
    handler="app.handler", memory_mb=128, timeout_s=3, ephemeral_mb=512, environment={}, code_dir=Path("/x"),
    code_sha256="", revision_id="r", state="Active")


def test_ids_continue_the_callers_trace_and_make_the_function_span_the_parent() -> None:
    ids = ids_for(CALLER)
    assert ids.trace_id == 0x5759e988bd862e3fe1be46a994272793
    assert ids.parent_id == 0x53995c3f42cd8ad8
    assert ids.header == (f"Root=1-5759e988-bd862e3fe1be46a994272793;Parent={ids.span_id:016x};Sampled=0;"
                          "Lineage=a87bd80c:3")
    fresh = ids_for("Sampled=1")
    assert fresh.parent_id is None and fresh.header.startswith(f"Root=1-{fresh.trace_id >> 96:08x}-")


def test_an_invocation_exports_the_function_span_and_its_phases() -> None:
    memory = InMemorySpanExporter()
    spans = InvocationSpans("unused", exporter=memory, export_delay_ms=10)
    ids = ids_for(CALLER)
    end = 2_000_000_000_000_000_000
    spans.record(FV, ids, Phases(invoke_start_ns=end - 5_000_000, invoke_end_ns=end, init_ms=100.0,
                                 extensions_ms=2.0),
                 request_id="req-1", cold=True, error_type="ValueError")
    spans.close()
    got = {s.name: s for s in memory.get_finished_spans()}
    assert set(got) == {"traced", "Initialization", "Invocation", "Overhead"}
    root = got["traced"]
    assert root.context.trace_id == ids.trace_id and root.context.span_id == ids.span_id
    assert root.parent is not None and root.parent.span_id == ids.parent_id
    assert root.attributes is not None
    assert root.attributes["faas.invocation_id"] == "req-1" and root.attributes["faas.coldstart"] is True
    assert root.attributes["aws.lambda.error_type"] == "ValueError"
    assert root.start_time == end - 105_000_000 and root.end_time == end + 2_000_000
    for name in ("Initialization", "Invocation", "Overhead"):
        child = got[name]
        assert child.parent is not None and child.parent.span_id == ids.span_id
        assert child.context.trace_id == ids.trace_id
    assert got["Invocation"].start_time == end - 5_000_000 and got["Invocation"].end_time == end


def test_a_failed_init_is_an_initialization_span_in_error_without_an_invocation() -> None:
    memory = InMemorySpanExporter()
    spans = InvocationSpans("unused", exporter=memory, export_delay_ms=10)
    end = 2_000_000_000_000_000_000
    spans.record(FV, ids_for("Root=1-5759e988-bd862e3fe1be46a994272793"),
                 Phases(end, end, init_ms=50.0, invoked=False),
                 request_id="req-2", cold=True, error_type="Runtime.ImportModuleError")
    spans.close()
    got = {s.name: s for s in memory.get_finished_spans()}
    assert set(got) == {"traced", "Initialization"}
    assert got["traced"].parent is None  # no caller span: the function span is the trace's root
    assert got["traced"].context.trace_id == 0x5759e988bd862e3fe1be46a994272793
    assert not got["Initialization"].status.is_ok and got["Initialization"].status.description == (
        "Runtime.ImportModuleError")
