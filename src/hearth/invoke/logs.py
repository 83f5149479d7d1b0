"""Per-invocation log capture and the platform lines AWS writes (START, END, REPORT).

It owns the bytes a runtime writes to stdout/stderr between two platform lines, bounded in memory,
the exact text of the platform lines, and `FunctionLogs`, the one place a function's finished log
events are handed to a `LogSink` (the invoker's invocations, the snapshot templates' INIT). It never
stores logs itself (the sink does) and never blocks: capture is fed from the environment's pipe reader.
"""

from __future__ import annotations

import base64
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Protocol

from hearth.functions.model import FunctionVersion

log = logging.getLogger(__name__)

# Keep at most this much of one invocation's output in memory (and in the log store). A function that
# writes 100 MB is still read to the end, so it never blocks on a full pipe; the rest is counted.
MAX_CAPTURE_BYTES = 1 << 20
TAIL_BYTES = 4096  # what `LogType: Tail` returns, as AWS


@dataclass
class LogCapture:
    """Output of one phase (INIT or one invocation) as (timestamp ms, line) events."""

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
        for line in lines:
            self.events.append((now, line.decode("utf-8", "replace") + "\n"))

    def close(self) -> None:
        if self._partial:
            self.events.append((_now_ms(), self._partial.decode("utf-8", "replace") + "\n"))
            self._partial = b""
        if self.dropped:
            self.events.append(
                (_now_ms(), f"[hearth] {self.dropped} bytes of output dropped: more than "
                            f"{MAX_CAPTURE_BYTES} bytes in one phase\n"))

    def add(self, line: str) -> None:
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
