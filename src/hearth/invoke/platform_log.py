"""How a function's LoggingConfig shapes its log stream: the format of platform records and the level
filters, applied as AWS applies them.

It owns `LogStyle` (LogFormat, ApplicationLogLevel, SystemLogLevel of one function version), the level
AWS gives each platform record type, the JSON envelope of a platform record
(`{"time": ..., "type": "platform.start", "record": {...}}`) and the level of an application log line.
It never captures output and never writes logs (`logs.LogCapture` and `logs.FunctionLogs` do).

What AWS does, and what Hearth decided where AWS is unclear (docs/design.md, "Logging controls"):
- Text format: platform lines are the text lines (START, END, REPORT, ...); no level filtering at all
  (AWS accepts the levels only with the JSON format).
- JSON format: every platform line becomes a JSON record of its Telemetry API type. SystemLogLevel
  keeps records at or above it: INFO keeps initStart/initReport/start/report/restore*, DEBUG also
  the *RuntimeDone records, WARN only logsDropped.
- JSON format: each application line (what the function writes to stdout/stderr) has a level: the
  `level` key of a line that is a JSON object (any case; WARNING counts as WARN, CRITICAL as FATAL),
  else INFO, as AWS assigns INFO to lines without a valid level. Lines below ApplicationLogLevel are
  dropped; kept lines are stored exactly as written (never re-wrapped).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from hearth.functions.model import FunctionVersion

# AWS's application levels, least to most severe, with the names loggers also use.
LEVELS = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "WARN": 3, "WARNING": 3, "ERROR": 4, "FATAL": 5, "CRITICAL": 5}
_INFO = LEVELS["INFO"]

# The level each platform record type is logged at (SystemLogLevel keeps the ones at or above it).
RECORD_LEVELS = {
    "platform.initStart": "INFO",
    "platform.initRuntimeDone": "DEBUG",
    "platform.initReport": "INFO",
    "platform.start": "INFO",
    "platform.runtimeDone": "DEBUG",
    "platform.report": "INFO",
    "platform.restoreStart": "INFO",
    "platform.restoreRuntimeDone": "DEBUG",
    "platform.restoreReport": "INFO",
    "platform.extension": "INFO",
    "platform.telemetrySubscription": "INFO",
    "platform.logsDropped": "WARN",
}


class PlatformRecord(NamedTuple):
    """One platform event: its Telemetry API type and record, and its line in the Text format (None:
    the Text format has no line for it). A tuple: three are made per invocation on the warm path."""

    type: str
    record: dict[str, Any]
    text: str | None


@dataclass(frozen=True)
class LogStyle:
    """The LoggingConfig of one function version, as its log capture applies it."""

    json: bool = False
    application_level: str = "INFO"
    system_level: str = "INFO"

    @classmethod
    def of(cls, fv: FunctionVersion) -> LogStyle:
        if fv.log_format != "JSON":
            return cls()
        return cls(True, (fv.application_log_level or "INFO").upper(), (fv.system_log_level or "INFO").upper())

    @property
    def application_minimum(self) -> int | None:
        """The least severe application level kept; None: every line is kept (Text format)."""
        if not self.json:
            return None
        minimum = LEVELS.get(self.application_level, _INFO)
        return None if minimum <= LEVELS["TRACE"] else minimum

    def keeps(self, record_type: str) -> bool:
        if not self.json:
            return True
        return LEVELS[RECORD_LEVELS.get(record_type, "INFO")] >= LEVELS.get(self.system_level, _INFO)

    def render(self, record: PlatformRecord) -> str | None:
        """The record's log line in this format, or None when this style leaves it out."""
        if not self.json:
            return record.text
        if not record.type or not self.keeps(record.type):  # no type: a Text-only line
            return None
        return json.dumps({"time": iso_time(), "type": record.type, "record": record.record},
                          separators=(",", ":")) + "\n"


def iso_time(epoch_s: float | None = None) -> str:
    """AWS's platform record time: `2024-01-31T12:00:00.123Z`."""
    now = time.time() if epoch_s is None else epoch_s
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def application_level_of(line: bytes) -> int:
    """The level AWS gives one application line: a JSON object's `level`, else INFO."""
    stripped = line.strip()
    if not stripped.startswith(b"{"):  # the common case costs one comparison
        return _INFO
    try:
        parsed = json.loads(stripped)
    except ValueError:
        return _INFO
    level = parsed.get("level") if isinstance(parsed, dict) else None
    if not isinstance(level, str):
        return _INFO
    return LEVELS.get(level.upper(), _INFO)
