"""Per-invocation log capture and the platform lines AWS writes (START, END, REPORT).

It owns the bytes a runtime writes to stdout/stderr between two platform lines, bounded in memory,
the exact text of the platform lines, how a function's LoggingConfig shapes what is kept (`LogStyle`:
JSON platform records and level filtering, see `platform_log`), and `FunctionLogs`, the one place a
function's finished log events are handed to a `LogSink` (the invoker's invocations, the snapshot
templates' INIT). It never stores logs itself (the sink does) and never blocks: capture is fed from
the environment's pipe reader.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Protocol

from hearth.functions.model import FunctionVersion
from hearth.invoke.platform_log import LogStyle, PlatformRecord, application_level_of

log = logging.getLogger(__name__)

# Keep at most this much of one invocation's output in memory (and in the log store). A function that
# writes 100 MB is still read to the end, so it never blocks on a full pipe; the rest is counted.
MAX_CAPTURE_BYTES = 1 << 20
TAIL_BYTES = 4096  # what `LogType: Tail` returns, as AWS


@dataclass
class LogCapture:
    """Output of one phase (INIT or one invocation) as (timestamp ms, line) events, shaped by the
    function's `LogStyle`: in JSON format application lines below ApplicationLogLevel are dropped and
    platform records are JSON objects filtered by SystemLogLevel."""

    style: LogStyle = field(default_factory=LogStyle)
    events: list[tuple[int, str]] = field(default_factory=list)
    size: int = 0
    dropped: int = 0
    _partial: bytes = b""

    def feed(self, data: bytes) -> None:
        if self.size >= MAX_CAPTURE_BYTES:
            self.dropped += len(data)
            return
        room = MAX_CAPTURE_BYTES - self.size
        if len(data) > room:
            self.dropped += len(data) - room
            data = data[:room]
        self.size += len(data)
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        now = _now_ms()
        minimum = self.style.application_minimum  # None: every line is kept (Text format)
        for line in lines:
            if minimum is not None and application_level_of(line) < minimum:
                continue
            self.events.append((now, line.decode("utf-8", "replace") + "\n"))

    def close(self) -> None:
        if self._partial:
            minimum = self.style.application_minimum
            if minimum is None or application_level_of(self._partial) >= minimum:
                self.events.append((_now_ms(), self._partial.decode("utf-8", "replace") + "\n"))
            self._partial = b""
        if self.dropped:
            self.platform(PlatformRecord(
                "platform.logsDropped",
                {"reason": f"more than {MAX_CAPTURE_BYTES} bytes of output in one phase",
                 "droppedRecords": 0, "droppedBytes": self.dropped},
                f"[hearth] {self.dropped} bytes of output dropped: more than {MAX_CAPTURE_BYTES} bytes in one phase\n"))

    def add(self, line: str) -> None:
        self.events.append((_now_ms(), line))

    def platform(self, record: PlatformRecord) -> None:
        """A platform record in the function's log format (kept or not by its SystemLogLevel)."""
        line = self.style.render(record)
        if line is not None:
            self.events.append((_now_ms(), line))


def _now_ms() -> int:
    return int(time.time() * 1000)


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}\n"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}\n"


def report_line(
    request_id: str,
    *,
    duration_ms: float,
    memory_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None = None,
    status: str | None = None,
    error_type: str | None = None,
    restore_ms: tuple[float, float] | None = None,
) -> str:
    # AWS bills in 1 ms increments, rounding the duration up.
    billed = max(1, math.ceil(duration_ms))
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {billed} ms\t"
        f"Memory Size: {memory_mb} MB\tMax Memory Used: {max_memory_used_mb} MB\t"
    )
    if init_duration_ms is not None:
        line += f"Init Duration: {init_duration_ms:.2f} ms\t"
    if restore_ms is not None:  # SnapStart: (Restore Duration, Billed Restore Duration)
        billed_restore = max(1, math.ceil(restore_ms[1]))
        line += f"Restore Duration: {restore_ms[0]:.2f} ms\tBilled Restore Duration: {billed_restore} ms\t"
    if status is not None:
        line += f"Status: {status}\t"
        if error_type:
            line += f"Error Type: {error_type}\t"
    return line + "\n"


def tail(events: list[tuple[int, str]]) -> str:
    """Base64 of the last 4 KB of an invocation's log, as `X-Amz-Log-Result` carries it."""
    text = "".join(line for _, line in events).encode()
    return base64.b64encode(text[-TAIL_BYTES:]).decode()


def log_stream_name(version: str, env_id: str) -> str:
    """AWS's stream naming: `2024/01/31/[$LATEST]<32 hex>`, one stream per environment."""
    day = time.strftime("%Y/%m/%d", time.gmtime())
    return f"{day}/[{version}]{env_id.replace('-', '')[:32]}"


def init_report_line(error_type: str) -> str:
    """The line AWS writes when INIT failed (newer runtimes' INIT_REPORT)."""
    status = "timeout" if error_type == "Sandbox.Timedout" else "error"
    return f"INIT_REPORT Phase: init\tStatus: {status}\tError Type: {error_type}\n"


# -- platform records: each platform line with its JSON form (LoggingConfig.LogFormat JSON) ------------


def _tracing(trace_id: str | None) -> dict[str, str] | None:
    """The `tracing` member of a record: present when the invocation's trace is sampled, as AWS."""
    if not trace_id or "Sampled=1" not in trace_id:
        return None
    parent = next((p[7:] for p in trace_id.split(";") if p.startswith("Parent=")), "")
    return {"spanId": parent, "type": "X-Amzn-Trace-Id", "value": trace_id}


# The per-invocation builders below take `json`: False builds the Text format's line alone (the warm
# path of a Text-format function pays for no record it would never write).


def start_record(request_id: str, version: str, trace_id: str | None = None, *, json: bool = True) -> PlatformRecord:
    if not json:
        return PlatformRecord("platform.start", {}, start_line(request_id, version))
    record: dict[str, object] = {"requestId": request_id, "version": version}
    tracing = _tracing(trace_id)
    if tracing is not None:
        record["tracing"] = tracing
    return PlatformRecord("platform.start", record, start_line(request_id, version))


def runtime_done_record(request_id: str, *, status: str, duration_ms: float, produced_bytes: int,
                        error_type: str | None = None, trace_id: str | None = None,
                        json: bool = True) -> PlatformRecord:
    """The runtime finished the invocation (END in the Text format). `status`: success, error (the
    function failed), failure (the runtime went away) or timeout."""
    if not json:
        return PlatformRecord("platform.runtimeDone", {}, end_line(request_id))
    record: dict[str, object] = {"requestId": request_id, "status": status}
    if error_type and status != "success":
        record["errorType"] = error_type
    record["metrics"] = {"durationMs": round(duration_ms, 3), "producedBytes": produced_bytes}
    tracing = _tracing(trace_id)
    if tracing is not None:
        record["tracing"] = tracing
    return PlatformRecord("platform.runtimeDone", record, end_line(request_id))


def report_record(
    request_id: str,
    *,
    duration_ms: float,
    memory_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None = None,
    status: str | None = None,
    error_type: str | None = None,
    restore_ms: tuple[float, float] | None = None,
    trace_id: str | None = None,
    json: bool = True,
) -> PlatformRecord:
    """REPORT, and its JSON form: `status` is the Text format's (None: success)."""
    text = report_line(request_id, duration_ms=duration_ms, memory_mb=memory_mb,
                       max_memory_used_mb=max_memory_used_mb, init_duration_ms=init_duration_ms, status=status,
                       error_type=error_type, restore_ms=restore_ms)
    if not json:
        return PlatformRecord("platform.report", {}, text)
    metrics: dict[str, object] = {
        "durationMs": round(duration_ms, 3), "billedDurationMs": max(1, math.ceil(duration_ms)),
        "memorySizeMB": memory_mb, "maxMemoryUsedMB": max_memory_used_mb,
    }
    if init_duration_ms is not None:
        metrics["initDurationMs"] = round(init_duration_ms, 3)
    if restore_ms is not None:
        metrics["restoreDurationMs"] = round(restore_ms[0], 3)
        metrics["billedRestoreDurationMs"] = max(1, math.ceil(restore_ms[1]))
    record: dict[str, object] = {"requestId": request_id, "metrics": metrics}
    tracing = _tracing(trace_id)
    if tracing is not None:
        record["tracing"] = tracing
    record["status"] = status or "success"
    if status and error_type:
        record["errorType"] = error_type
    return PlatformRecord("platform.report", record, text)


def runtime_version_arn(region: str, runtime_version: str) -> str:
    """A stable runtime version ARN in AWS's shape (Hearth's runtimes are not AWS's builds)."""
    digest = hashlib.sha256(runtime_version.encode()).hexdigest()
    return f"arn:aws:lambda:{region}::runtime:{digest}"


def init_start_record(*, function_name: str, function_version: str, initialization_type: str,
                      runtime_version: str, region: str, note: str | None = None,
                      restore: bool = False) -> PlatformRecord:
    """INIT_START (platform.restoreStart for a SnapStart clone). The Text format writes INIT_START only
    to say that the function runs on a stand-in runtime (`note`)."""
    record: dict[str, object] = {"runtimeVersion": runtime_version,
                                 "runtimeVersionArn": runtime_version_arn(region, runtime_version),
                                 "functionName": function_name, "functionVersion": function_version}
    if restore:
        return PlatformRecord("platform.restoreStart", record, None)
    record = {"initializationType": initialization_type, "phase": "init", **record}
    return PlatformRecord("platform.initStart", record, f"INIT_START {note}\n" if note else None)


def init_runtime_done_record(initialization_type: str, *, error_type: str | None = None,
                             restore: bool = False) -> PlatformRecord:
    """The runtime finished INIT (or restore): no line in the Text format."""
    status = "success" if error_type is None else ("timeout" if error_type == "Sandbox.Timedout" else "error")
    record: dict[str, object] = {"status": status}
    if error_type is not None:
        record["errorType"] = error_type
    if restore:
        return PlatformRecord("platform.restoreRuntimeDone", record, None)
    return PlatformRecord("platform.initRuntimeDone",
                          {"initializationType": initialization_type, "phase": "init", **record}, None)


def init_report_record(initialization_type: str, *, error_type: str | None = None,
                       duration_ms: float | None = None, text: str | None = None) -> PlatformRecord:
    """INIT_REPORT: a failed INIT (the Text format's line), or a SnapStart template's INIT (`text`)."""
    status = "success" if error_type is None else ("timeout" if error_type == "Sandbox.Timedout" else "error")
    record: dict[str, object] = {"initializationType": initialization_type, "phase": "init", "status": status}
    if error_type is not None:
        record["errorType"] = error_type
    if duration_ms is not None:
        record["metrics"] = {"durationMs": round(duration_ms, 3)}
    if text is None and error_type is not None:
        text = init_report_line(error_type)
    return PlatformRecord("platform.initReport", record, text)


def text_only(line: str) -> PlatformRecord:
    """A platform line the JSON format has no record for (its content is in another record)."""
    return PlatformRecord("", {}, line)


class LogSink(Protocol):
    """Where log events go: CloudWatch Logs' store, or a writer thread in front of it."""

    def ensure_group(self, account: str, region: str, group: str) -> None: ...
    def ensure_stream(self, account: str, region: str, group: str, stream: str) -> None: ...
    def append(self, account: str, region: str, group: str, stream: str,
               events: list[tuple[int, str]]) -> None: ...


class FunctionLogs:
    """Writes a function's log events to its log group (`/aws/lambda/<name>` or its LoggingConfig's)."""

    def __init__(self, sink: LogSink) -> None:
        self._sink = sink

    def write(self, fv: FunctionVersion, stream: str, events: list[tuple[int, str]]) -> None:
        group = fv.effective_log_group
        try:
            self._sink.ensure_group(fv.account_id, fv.region, group)
            self._sink.ensure_stream(fv.account_id, fv.region, group, stream)
            self._sink.append(fv.account_id, fv.region, group, stream, events)
        except Exception:  # logging must never fail an invocation
            log.exception("writing logs of %s failed", fv.function_arn)
