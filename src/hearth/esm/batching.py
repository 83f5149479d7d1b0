"""What every poller shares: FilterCriteria evaluation, reading a function's batch response, and
splitting batches.

It owns AWS's rules for these, each pure and synchronous:
- Filters: a record is kept when ANY pattern matches. A queue message is matched as its `aws:sqs`
  record with `body` parsed when it is JSON (a plain-text body can only match patterns on `body` as
  a string); a stream record is matched as its `kinesis` object with `data` decoded from base64 and
  parsed when it is JSON. Patterns use EventBridge's language (hearth.services.events.patterns).
- ReportBatchItemFailures: success when the response is empty, null, or has an empty or null
  `batchItemFailures`; complete failure when it is not JSON, not an object, `batchItemFailures` is
  not a list, or an entry's `itemIdentifier` is missing, null, empty, not a string, or names no
  record of the batch; otherwise the named records failed.
It never invokes, deletes or checkpoints anything.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hearth.services.events.patterns import EventPattern, PatternError, compile_pattern

INVALID_FILTER = "Invalid filter pattern definition."


class FilterError(Exception):
    """A FilterCriteria pattern AWS refuses; the message is AWS's text."""


def compile_filters(patterns: Sequence[str]) -> tuple[EventPattern, ...]:
    compiled: list[EventPattern] = []
    for text in patterns:
        try:
            compiled.append(compile_pattern(text))
        except PatternError:
            raise FilterError(INVALID_FILTER) from None
    return tuple(compiled)


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def sqs_filter_view(record: dict[str, Any]) -> dict[str, Any]:
    """The object a queue-mapping filter sees for one `aws:sqs` record."""
    return {**record, "body": _maybe_json(record.get("body", ""))}


def kinesis_filter_view(record: dict[str, Any]) -> dict[str, Any]:
    """The object a stream-mapping filter sees for one `aws:kinesis` record: its `kinesis` part."""
    inner = dict(record.get("kinesis", {}))
    try:
        raw = base64.b64decode(inner.get("data", ""))
        inner["data"] = _maybe_json(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        pass  # binary data: only patterns that do not look inside `data` can match
    return inner


def keep(filters: Sequence[EventPattern], view: dict[str, Any]) -> bool:
    return not filters or any(f.matches(view) for f in filters)


@dataclass(frozen=True)
class ItemVerdict:
    """The outcome of one batch: `all_failed`, or the identifiers of the failed records (maybe none)."""

    all_failed: bool
    failed: frozenset[str] = frozenset()

    @property
    def success(self) -> bool:
        return not self.all_failed and not self.failed


COMPLETE_FAILURE = ItemVerdict(True)
SUCCESS = ItemVerdict(False)


def item_failures(payload: bytes, identifiers: Sequence[str]) -> ItemVerdict:
    """Read a ReportBatchItemFailures response (AWS's rules, in the module docstring)."""
    text = payload.strip()
    if not text:
        return SUCCESS
    try:
        doc = json.loads(text)
    except ValueError:
        return COMPLETE_FAILURE
    if doc is None:
        return SUCCESS
    if not isinstance(doc, dict):
        return COMPLETE_FAILURE
    failures = doc.get("batchItemFailures")
    if failures is None:
        return SUCCESS
    if not isinstance(failures, list):
        return COMPLETE_FAILURE
    known = set(identifiers)
    failed: set[str] = set()
    for entry in failures:
        if not isinstance(entry, dict):
            return COMPLETE_FAILURE
        ident = entry.get("itemIdentifier")
        if not isinstance(ident, str) or not ident or ident not in known:
            return COMPLETE_FAILURE
        failed.add(ident)
    return ItemVerdict(False, frozenset(failed))


def halves(items: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Bisect a batch (the first half gets the smaller share of an odd batch)."""
    middle = len(items) // 2
    return list(items[:middle]), list(items[middle:])
