"""Recursive loop detection: the lineage an event carries in its X-Ray trace header.

AWS Lambda counts, per function, how many times one chain of events (function -> queue -> function,
function -> topic -> function, function -> function asynchronously) has already run that function.
The count travels in the `X-Amzn-Trace-Id` header as `Lineage=<hash>:<count>`, where the hash is 8
hex digits naming the function; a chain through several functions carries one entry per function,
separated by `|` (`Lineage=a87bd80c:3|68fd508a:1`). AWS lets a function run 16 times in one chain and
stops the 17th invocation (unless the function's recursion config says `Allow`).

This module owns the parsing and rewriting of that header and the hop limit. It never decides what
happens to a stopped event (the async queue does) and never sees payloads. Malformed input is never an
error: a header it cannot read starts a new chain, as X-Ray does with a malformed header.

Decision: AWS documents the `<hash>:<count>` form; a 3-part `<version>:<hash>:<count>` form is also
accepted when reading (and the larger of two counts for one hash wins), and Hearth always writes the
2-part form.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.parse
from dataclasses import dataclass, field

MAX_HOPS = 16  # a function may run this many times in one chain; the next invocation is stopped
_MAX_ENTRIES = 8  # a header stays small even in a chain through many functions
_MAX_COUNT = 32767


def function_hash(function_arn: str) -> str:
    """8 hex digits naming a function (unqualified ARN: all versions and aliases count together)."""
    base = function_arn.split(":function:", 1)
    if len(base) == 2:
        function_arn = base[0] + ":function:" + base[1].split(":", 1)[0]
    return hashlib.sha256(function_arn.encode()).hexdigest()[:8]


def new_root() -> str:
    # X-Ray's trace id: 1-<8 hex epoch seconds>-<24 hex random>
    return f"1-{int(time.time()):08x}-{os.urandom(12).hex()}"


def _new_parent() -> str:
    return os.urandom(8).hex()


@dataclass
class TraceHeader:
    """A parsed `X-Amzn-Trace-Id`. Unknown fields are kept, in order, so nothing is lost in transit."""

    root: str | None = None
    parent: str | None = None
    sampled: str | None = None
    lineage: dict[str, int] = field(default_factory=dict)  # function hash -> times run in this chain
    extra: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, header: str | None) -> TraceHeader:
        out = cls()
        if not header:
            return out
        # botocore percent-encodes the header it copies from _X_AMZN_TRACE_ID (`|` becomes %7C).
        for part in urllib.parse.unquote(header).split(";"):
            key, sep, value = part.strip().partition("=")
            if not sep:
                continue
            if key == "Root":
                out.root = value
            elif key == "Parent":
                out.parent = value
            elif key == "Sampled":
                out.sampled = value
            elif key == "Lineage":
                out.lineage = _parse_lineage(value)
            elif key != "Self":  # ALB's own id is never forwarded
                out.extra.append((key, value))
        return out

    def render(self) -> str:
        parts = [f"Root={self.root or new_root()}"]
        if self.parent:
            parts.append(f"Parent={self.parent}")
        parts.append(f"Sampled={self.sampled if self.sampled in ('0', '1', '?') else '0'}")
        if self.lineage:
            parts.append("Lineage=" + "|".join(f"{h}:{c}" for h, c in self.lineage.items()))
        parts.extend(f"{k}={v}" for k, v in self.extra)
        return ";".join(parts)


def _parse_lineage(value: str) -> dict[str, int]:
    entries: dict[str, int] = {}
    for item in value.split("|"):
        fields = item.strip().split(":")
        if len(fields) == 3:  # <version>:<hash>:<count>
            fields = fields[1:]
        if len(fields) != 2:
            continue
        digest, count_text = fields
        if len(digest) != 8 or not all(c in "0123456789abcdefABCDEF" for c in digest):
            continue
        try:
            count = int(count_text)
        except ValueError:
            continue
        if 0 <= count <= _MAX_COUNT:
            key = digest.lower()
            entries[key] = max(count, entries.get(key, 0))
    return entries


def hops(header: str | None, function_arn: str) -> int:
    """How many times `function_arn` already ran in the chain that produced `header`."""
    return TraceHeader.parse(header).lineage.get(function_hash(function_arn), 0)


def is_loop(header: str | None, function_arn: str) -> bool:
    """True when running the function once more would exceed MAX_HOPS."""
    return hops(header, function_arn) >= MAX_HOPS


def next_hop(header: str | None, function_arn: str, *, active: bool = False) -> str:
    """The trace header of one more run of `function_arn` in this chain: Root, Parent and Sampled
    kept, this function's count incremented. No header starts a new chain (with a new Parent).

    Why the caller's Parent: a function's own spans (X-Ray SDK, OpenTelemetry) then nest under the
    caller's span, as they do on AWS under an untraced (PassThrough) invocation. Hearth records no
    span for the invocation unless it exports spans (HEARTH_OTLP_ENDPOINT); then the invoker makes
    its own function span the Parent (hearth.observability.spans).

    `active`: the function's TracingConfig is Active, so a trace no caller decided on (no header, or
    `Sampled=?`) is sampled. Decision: every such invocation, where AWS samples the first each second
    and 5% of the rest (Hearth is for development: every trace is wanted). A caller's decision wins."""
    parsed = TraceHeader.parse(header)
    key = function_hash(function_arn)
    lineage = dict(parsed.lineage)
    lineage[key] = min(lineage.get(key, 0) + 1, _MAX_COUNT)
    if len(lineage) > _MAX_ENTRIES:  # keep the entries that matter most: the highest counts
        keep = sorted(lineage.items(), key=lambda kv: (kv[0] != key, -kv[1]))[:_MAX_ENTRIES]
        lineage = dict(keep)
    return TraceHeader(
        root=parsed.root or new_root(),
        parent=parsed.parent or _new_parent(),
        sampled=parsed.sampled if parsed.sampled in ("0", "1") else ("1" if active else "0"),
        lineage=lineage,
        extra=parsed.extra,
    ).render()
