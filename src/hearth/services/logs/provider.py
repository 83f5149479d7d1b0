"""The CloudWatch Logs provider: one method per `Logs_20140328.*` operation Hearth supports.

It owns CloudWatch's business rules (which group a request names, PutLogEvents' ordering, age and
size rules, retention values, AWS's error codes and messages) and the output shapes. It never touches
SQLite itself (the `LogStore` does) and never lets a caller name another account's group: a group
is always looked up under the caller's own account and region, and a log group ARN for another account
or region is answered as "does not exist".
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.logs.delivery import DeliveryOperations
from hearth.services.logs.filters import FilterOperations
from hearth.services.logs.policies import PolicyOperations
from hearth.services.logs.queries import QueryOperations
from hearth.services.logs.resources import scoped_name
from hearth.services.logs.store import (
    MAX_PAGE_BYTES,
    RETENTION_DAYS,
    LogGroupInfo,
    LogStore,
    LogStoreError,
    LogStreamInfo,
)
from hearth.services.logs.subscriptions import SubscriptionDelivery

_ERROR_CODES = {
    "group_not_found": "ResourceNotFoundException",
    "stream_not_found": "ResourceNotFoundException",
    "group_exists": "ResourceAlreadyExistsException",
    "stream_exists": "ResourceAlreadyExistsException",
    "invalid_token": "InvalidParameterException",
    "invalid_parameter": "InvalidParameterException",
}
# PutLogEvents' time window, as CloudWatch: not more than 2 hours ahead, not older than 14 days, and
# one batch spans at most 24 hours.
_TOO_NEW_MS = 2 * 3_600_000
_TOO_OLD_MS = 14 * 86_400_000
_MAX_SPAN_MS = 86_400_000
_EVENT_OVERHEAD = 26  # bytes CloudWatch counts per event on top of its message


def invalid(message: str) -> AwsError:
    return AwsError("InvalidParameterException", message, 400)


@contextmanager
def _aws_errors() -> Iterator[None]:
    try:
        yield
    except LogStoreError as exc:
        raise AwsError(_ERROR_CODES[exc.kind], exc.message, 400) from None


class LogsProvider(FilterOperations, PolicyOperations, DeliveryOperations, QueryOperations):
    """CloudWatch Logs operations over a `LogStore`, scoped to the caller's account and region (filters
    in `filters`, resource policies and destinations in `policies`, vended-log delivery in `delivery`,
    Logs Insights in `queries`)."""

    def __init__(self, store: LogStore, subscriptions: SubscriptionDelivery | None = None) -> None:
        self._store = store
        # Where subscription filters' destinations get new events (None: filters are kept, not delivered).
        self._subscriptions = subscriptions

    # -- log groups ------------------------------------------------------------------------------

    def create_log_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with _aws_errors():
            self._store.create_group(ctx.account_id, ctx.region, params["logGroupName"], params.get("tags"))
        return {}

    def delete_log_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with _aws_errors():
            self._store.delete_group(ctx.account_id, ctx.region, params["logGroupName"])
        return {}

    def describe_log_groups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("logGroupNamePrefix")
        pattern = params.get("logGroupNamePattern")
        if prefix and pattern:
            raise invalid("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
        names: list[str] | None = None
        if "logGroupIdentifiers" in params:
            found = (self._own_group_name(ctx, ident, strict=False) for ident in params["logGroupIdentifiers"])
            names = [name for name in found if name]
        with _aws_errors():
            groups, token = self._store.describe_groups(
                ctx.account_id, ctx.region, prefix=prefix, pattern=pattern, names=names,
                limit=params.get("limit", 50), token=params.get("nextToken"))
        counts = self.metric_filter_counts(ctx)
        out: dict[str, Any] = {"logGroups": [_group_shape(group, counts.get(group.name, 0)) for group in groups]}
        if params.get("logGroupClass"):
            wanted = params["logGroupClass"]
            out["logGroups"] = [g for g in out["logGroups"] if g["logGroupClass"] == wanted]
        if token:
            out["nextToken"] = token
        return out

    def list_log_groups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """The newer listing: names matching a pattern (a substring, as DescribeLogGroups' pattern)."""
        with _aws_errors():
            groups, token = self._store.describe_groups(
                ctx.account_id, ctx.region, pattern=params.get("logGroupNamePattern") or None,
                limit=params.get("limit", 50), token=params.get("nextToken"))
        out: dict[str, Any] = {"logGroups": [
            {"logGroupName": g.name, "logGroupArn": g.log_group_arn, "logGroupClass": "STANDARD"} for g in groups
            if params.get("logGroupClass") in (None, "STANDARD")]}
        if token:
            out["nextToken"] = token
        return out

    def put_retention_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        days = params["retentionInDays"]
        if days not in RETENTION_DAYS:
            allowed = ", ".join(str(d) for d in RETENTION_DAYS)
            raise invalid(f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy "
                          f"constraint: Member must satisfy enum value set: [{allowed}]")
        with _aws_errors():
            self._store.put_retention(ctx.account_id, ctx.region, params["logGroupName"], days)
        return {}

    def delete_retention_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with _aws_errors():
            self._store.put_retention(ctx.account_id, ctx.region, params["logGroupName"], None)
        return {}

    # -- tags (the deprecated group-name operations and the ARN ones) ----------------------------

    def tag_log_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with _aws_errors():
            self._store.tag_group(ctx.account_id, ctx.region, params["logGroupName"], params["tags"])
        return {}

    def untag_log_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with _aws_errors():
            self._store.untag_group(ctx.account_id, ctx.region, params["logGroupName"], params["tags"])
        return {}

    def list_tags_log_group(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with _aws_errors():
            return {"tags": self._store.get_group(ctx.account_id, ctx.region, params["logGroupName"]).tags}

    def tag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._group_from_arn(ctx, params["resourceArn"])
        with _aws_errors():
            self._store.tag_group(ctx.account_id, ctx.region, name, params["tags"])
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._group_from_arn(ctx, params["resourceArn"])
        with _aws_errors():
            self._store.untag_group(ctx.account_id, ctx.region, name, params["tagKeys"])
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._group_from_arn(ctx, params["resourceArn"])
        with _aws_errors():
            return {"tags": self._store.get_group(ctx.account_id, ctx.region, name).tags}

    # -- log streams -----------------------------------------------------------------------------

    def create_log_stream(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with _aws_errors():
            self._store.create_stream(ctx.account_id, ctx.region, params["logGroupName"], params["logStreamName"])
        return {}

    def delete_log_stream(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with _aws_errors():
            self._store.delete_stream(ctx.account_id, ctx.region, params["logGroupName"], params["logStreamName"])
        return {}

    def describe_log_streams(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = self._group_param(ctx, params)
        with _aws_errors():
            streams, token = self._store.describe_streams(
                ctx.account_id, ctx.region, group, prefix=params.get("logStreamNamePrefix"),
                order_by=params.get("orderBy", "LogStreamName"), descending=bool(params.get("descending")),
                limit=params.get("limit", 50), token=params.get("nextToken"))
        out: dict[str, Any] = {"logStreams": [_stream_shape(stream) for stream in streams]}
        if token:
            out["nextToken"] = token
        return out

    # -- events ----------------------------------------------------------------------------------

    def put_log_events(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """Store a batch; the sequence token is accepted and ignored, as CloudWatch does since 2023."""
        group, stream = params["logGroupName"], params["logStreamName"]
        events = [(int(e["timestamp"]), str(e["message"])) for e in params["logEvents"]]
        if any(b[0] < a[0] for a, b in itertools.pairwise(events)):
            raise invalid("Log events in a single PutLogEvents request must be in chronological order.")
        if events[-1][0] - events[0][0] > _MAX_SPAN_MS:
            raise invalid("The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
        size = sum(len(message.encode()) + _EVENT_OVERHEAD for _, message in events)
        if size > MAX_PAGE_BYTES:
            raise invalid(f"Upload too large: {size} bytes exceeds limit of {MAX_PAGE_BYTES}")
        now = int(time.time() * 1000)
        with _aws_errors():
            retention = self._store.retention_days(ctx.account_id, ctx.region, group)
        rejected: dict[str, int] = {}
        # Events are sorted, so each rejected range is a prefix (too old, expired) or a suffix (too new).
        too_new = next((i for i, (ts, _) in enumerate(events) if ts > now + _TOO_NEW_MS), len(events))
        if too_new < len(events):
            rejected["tooNewLogEventStartIndex"] = too_new
        too_old = next((i for i, (ts, _) in enumerate(events) if ts >= now - _TOO_OLD_MS), len(events))
        if too_old > 0:
            rejected["tooOldLogEventEndIndex"] = too_old
        expired = too_old
        if retention is not None:
            cutoff = now - retention * 86_400_000
            expired = next((i for i, (ts, _) in enumerate(events) if ts >= cutoff), len(events))
            if expired > 0:
                rejected["expiredLogEventEndIndex"] = expired
        accepted = events[max(too_old, expired):too_new]
        with _aws_errors():
            # put_events checks that the stream exists even when every event was rejected.
            self._store.put_events(ctx.account_id, ctx.region, group, stream, accepted)
        if self._subscriptions is not None and accepted:
            filters = self._store.resources.list(ctx.account_id, ctx.region, "subscription_filter",
                                                 scoped_name(group, ""))
            if filters:
                numbered = [(f"{ts:015d}{now:015d}{i:06d}", ts, text) for i, (ts, text) in enumerate(accepted)]
                self._subscriptions.submit(ctx.account_id, ctx.region, group, stream, filters, numbered)
        out: dict[str, Any] = {"nextSequenceToken": f"{now:056d}"}
        if rejected:
            out["rejectedLogEventsInfo"] = rejected
        return out

    def get_log_events(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = self._group_param(ctx, params)
        with _aws_errors():
            page = self._store.get_events(
                ctx.account_id, ctx.region, group, params["logStreamName"], start=params.get("startTime"),
                end=params.get("endTime"), token=params.get("nextToken"),
                start_from_head=bool(params.get("startFromHead")), limit=params.get("limit", 10_000))
        return {
            "events": [{"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_ms}
                       for e in page.events],
            "nextForwardToken": page.next_forward,
            "nextBackwardToken": page.next_backward,
        }

    def filter_log_events(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        group = self._group_param(ctx, params)
        names = params.get("logStreamNames")
        prefix = params.get("logStreamNamePrefix")
        if names and prefix:
            raise invalid("You cannot specify both logStreamNames and logStreamNamePrefix.")
        with _aws_errors():
            page = self._store.filter_events(
                ctx.account_id, ctx.region, group, streams=names, stream_prefix=prefix,
                start=params.get("startTime"), end=params.get("endTime"), pattern=params.get("filterPattern"),
                limit=params.get("limit", 10_000), token=params.get("nextToken"))
        out: dict[str, Any] = {
            "events": [
                {"logStreamName": e.stream, "timestamp": e.timestamp, "message": e.message,
                 "ingestionTime": e.ingestion_ms, "eventId": e.key}
                for e in page.events
            ],
            "searchedLogStreams": [{"logStreamName": name, "searchedCompletely": page.next_token is None}
                                   for name in page.searched_streams],
        }
        if page.next_token:
            out["nextToken"] = page.next_token
        return out

    # -- helpers ---------------------------------------------------------------------------------

    def _group_param(self, ctx: RequestContext, params: dict[str, Any]) -> str:
        """The group a request names by `logGroupName` or `logGroupIdentifier` (a name or an ARN)."""
        name, ident = params.get("logGroupName"), params.get("logGroupIdentifier")
        if name and ident:
            # Recorded by AWS as a ValidationException, unlike the service's other parameter errors.
            raise AwsError("ValidationException", "LogGroup name and LogGroup ARN are mutually exclusive "
                                                  "parameters.", 400)
        if name:
            return str(name)
        if ident:
            return self._own_group_name(ctx, str(ident), strict=True) or ""
        raise invalid("Should provide either logGroupName or logGroupIdentifier.")

    def _own_group_name(self, ctx: RequestContext, ident: str, *, strict: bool) -> str | None:
        if not ident.startswith("arn:"):
            return ident
        try:
            return self._group_from_arn(ctx, ident)
        except AwsError:
            if strict:
                raise
            return None

    def _group_from_arn(self, ctx: RequestContext, arn: str) -> str:
        # arn:aws:logs:<region>:<account>:log-group:<name>[:*]
        parts = arn.split(":", 6)
        if len(parts) != 7 or parts[2] != "logs" or parts[5] != "log-group":
            raise invalid(f"Invalid resource arn: {arn}")
        name = parts[6].removesuffix(":*")
        if parts[3] != ctx.region or parts[4] != ctx.account_id:
            # Another account's or region's group: indistinguishable from a group that does not exist.
            raise AwsError("ResourceNotFoundException", "The specified log group does not exist.", 400)
        return name


def _group_shape(group: LogGroupInfo, metric_filters: int) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "logGroupName": group.name,
        "creationTime": group.created_ms,
        "metricFilterCount": metric_filters,
        "arn": group.arn,
        "storedBytes": group.stored_bytes,
        "logGroupClass": "STANDARD",
        "logGroupArn": group.log_group_arn,
    }
    if group.retention_days is not None:
        shape["retentionInDays"] = group.retention_days
    return shape


def _stream_shape(stream: LogStreamInfo) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "logStreamName": stream.name,
        "creationTime": stream.created_ms,
        "arn": stream.arn,
        # CloudWatch stopped reporting per-stream sizes (always 0), and so does Hearth.
        "storedBytes": 0,
    }
    if stream.first_event_ms is not None:
        shape["firstEventTimestamp"] = stream.first_event_ms
        shape["lastEventTimestamp"] = stream.last_event_ms
    if stream.last_ingestion_ms is not None:
        shape["lastIngestionTime"] = stream.last_ingestion_ms
        shape["uploadSequenceToken"] = f"{stream.last_ingestion_ms:056d}"
    return shape
