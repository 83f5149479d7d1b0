"""LoggingConfig as the log capture applies it: JSON platform records, SystemLogLevel and
ApplicationLogLevel filtering (docs/design.md, "Logging controls")."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

from hearth.invoke import logs
from hearth.invoke.environment import Environment
from hearth.invoke.platform_log import LogStyle, application_level_of
from hearth.sandbox.types import SandboxSpec

JSON_INFO = LogStyle(json=True)
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def _records(capture: logs.LogCapture) -> list[dict[str, object]]:
    return [json.loads(line) for _, line in capture.events]


def test_text_format_keeps_the_text_lines_and_every_application_line() -> None:
    capture = logs.LogCapture()
    capture.platform(logs.start_record("r1", "$LATEST", TRACE))
    capture.feed(b'{"level": "DEBUG", "message": "kept"}\nplain\n')
    capture.platform(logs.runtime_done_record("r1", status="success", duration_ms=1.5, produced_bytes=2))
    capture.platform(logs.report_record("r1", duration_ms=1.5, memory_mb=128, max_memory_used_mb=40))
    lines = [line for _, line in capture.events]
    assert lines[0] == "START RequestId: r1 Version: $LATEST\n"
    assert lines[1:3] == ['{"level": "DEBUG", "message": "kept"}\n', "plain\n"]
    assert lines[3] == "END RequestId: r1\n"
    assert lines[4].startswith("REPORT RequestId: r1\tDuration: 1.50 ms\tBilled Duration: 2 ms")


def test_json_format_writes_platform_records_at_info() -> None:
    capture = logs.LogCapture(JSON_INFO)
    capture.platform(logs.init_start_record(function_name="f", function_version="$LATEST",
                                            initialization_type="on-demand", runtime_version="python:3.12",
                                            region="us-east-1"))
    capture.platform(logs.init_runtime_done_record("on-demand"))  # DEBUG: left out
    capture.platform(logs.start_record("r1", "$LATEST", TRACE))
    capture.platform(logs.text_only("2024-01-01T00:00:00Z r1 Task timed out after 3.00 seconds\n"))
    capture.platform(logs.runtime_done_record("r1", status="timeout", duration_ms=3000, produced_bytes=0))
    capture.platform(logs.report_record("r1", duration_ms=3000.2, memory_mb=128, max_memory_used_mb=40,
                                        init_duration_ms=120.5, status="timeout", error_type="Sandbox.Timedout",
                                        trace_id=TRACE))
    records = _records(capture)
    assert [r["type"] for r in records] == ["platform.initStart", "platform.start", "platform.report"]
    init, start, report = (r["record"] for r in records)
    assert init == {"initializationType": "on-demand", "phase": "init", "runtimeVersion": "python:3.12",
                    "runtimeVersionArn": logs.runtime_version_arn("us-east-1", "python:3.12"),
                    "functionName": "f", "functionVersion": "$LATEST"}
    assert start == {"requestId": "r1", "version": "$LATEST",
                     "tracing": {"spanId": "53995c3f42cd8ad8", "type": "X-Amzn-Trace-Id", "value": TRACE}}
    assert report["metrics"] == {"durationMs": 3000.2, "billedDurationMs": 3001, "memorySizeMB": 128,
                                 "maxMemoryUsedMB": 40, "initDurationMs": 120.5}
    assert report["status"] == "timeout" and report["errorType"] == "Sandbox.Timedout"
    assert str(records[0]["time"]).endswith("Z") and len(str(records[0]["time"])) == 24


def test_system_log_level_debug_adds_runtime_done_and_warn_keeps_only_warnings() -> None:
    debug = logs.LogCapture(LogStyle(json=True, system_level="DEBUG"))
    warn = logs.LogCapture(LogStyle(json=True, system_level="WARN"))
    for capture in (debug, warn):
        capture.platform(logs.start_record("r1", "1"))
        capture.platform(logs.runtime_done_record("r1", status="error", duration_ms=2, produced_bytes=9,
                                                  error_type="ValueError"))
        capture.platform(logs.report_record("r1", duration_ms=2, memory_mb=128, max_memory_used_mb=40))
    done = _records(debug)[1]
    assert done["type"] == "platform.runtimeDone"
    assert done["record"] == {"requestId": "r1", "status": "error", "errorType": "ValueError",
                              "metrics": {"durationMs": 2, "producedBytes": 9}}
    assert "tracing" not in _records(debug)[0]["record"]  # an unsampled invocation has no tracing member
    assert warn.events == []


def test_application_log_level_filters_json_lines_by_their_level_and_plain_lines_as_info() -> None:
    capture = logs.LogCapture(LogStyle(json=True, application_level="WARN"))
    capture.feed(b'{"level": "INFO", "message": "a"}\n{"level": "warning", "message": "b"}\nplain print\n')
    capture.feed(b'{"timestamp": "x", "level": "ERROR", "message": "c"}\n{"level": "CRITICAL"}\n{"no": "level"}\n')
    capture.feed(b'{"level": "DEBUG", "message": "partial, then closed"}')
    capture.close()
    assert [line for _, line in capture.events] == [
        '{"level": "warning", "message": "b"}\n',
        '{"timestamp": "x", "level": "ERROR", "message": "c"}\n',
        '{"level": "CRITICAL"}\n',
    ]


def test_level_of_an_application_line() -> None:
    assert application_level_of(b'  {"level":"trace"}') == 0
    assert application_level_of(b'{"level": 5}') == 2  # not a name: INFO
    assert application_level_of(b"{not json") == 2
    assert application_level_of(b'["level", "ERROR"]') == 2


def test_dropped_output_is_a_logs_dropped_record_in_json() -> None:
    capture = logs.LogCapture(LogStyle(json=True, application_level="ERROR", system_level="WARN"))
    capture.feed(b"x" * (logs.MAX_CAPTURE_BYTES + 10))
    capture.close()
    (record,) = _records(capture)
    assert record["type"] == "platform.logsDropped"
    assert record["record"]["droppedBytes"] == 10  # type: ignore[index]


def test_init_failure_report_in_both_formats() -> None:
    failed = logs.init_report_record("on-demand", error_type="Runtime.ImportModuleError")
    text = LogStyle().render(failed)
    assert text == "INIT_REPORT Phase: init\tStatus: error\tError Type: Runtime.ImportModuleError\n"
    rendered = LogStyle(json=True).render(failed)
    assert rendered is not None
    assert json.loads(rendered)["record"] == {"initializationType": "on-demand", "phase": "init",
                                              "status": "error", "errorType": "Runtime.ImportModuleError"}


def _environment(*, restored: bool, style: LogStyle) -> Environment:
    env = {"AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023", "AWS_LAMBDA_FUNCTION_NAME": "f",
           "AWS_REGION": "eu-west-1", "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start" if restored else "on-demand"}
    spec = SandboxSpec(env_id="e1", argv=["/var/task/bootstrap"], env=env, code_dir=Path("/x"), runtime_dir=None,
                       opt_dirs=(), extra_ro_mounts=(), memory_mb=128, cpu_fraction=0.1, tmp_mb=512)
    return Environment(env_id="e1", spec=spec, backend=mock.Mock(), version="3", memory_mb=128, log_stream="s",
                       restored=restored, log_style=style)


async def test_an_environment_opens_its_log_with_init_start_or_restore_start_in_json() -> None:
    (fresh,) = [json.loads(line) for _, line in _environment(restored=False, style=JSON_INFO).take_init_log()]
    assert fresh["type"] == "platform.initStart"
    assert fresh["record"]["functionName"] == "f" and fresh["record"]["functionVersion"] == "3"
    assert fresh["record"]["runtimeVersionArn"].startswith("arn:aws:lambda:eu-west-1::runtime:")
    (restored,) = [json.loads(line) for _, line in _environment(restored=True, style=JSON_INFO).take_init_log()]
    assert restored["type"] == "platform.restoreStart" and "phase" not in restored["record"]
    assert _environment(restored=False, style=LogStyle()).take_init_log() == []  # Text: no INIT_START line
