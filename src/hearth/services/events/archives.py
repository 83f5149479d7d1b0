"""EventBridge archives and replays: their operations (a part of `EventsProvider`).

It owns these operations' rules and texts as AWS answers them: an archive keeps the events of one bus
that match its pattern (the bus keeps them, `EventBus.route`); a replay sends an archive's events of a
time window back to the bus, to all its rules or to the rules it names, with `replay-name` added to each
event. A replay runs at once when started (it answers STARTING, as AWS does, and is COMPLETED when
described); replayed events are never archived again. It never delivers itself: `EventBus.route` does.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.events.bus import EventBus
from hearth.services.events.patterns import PatternError, compile_pattern
from hearth.services.events.resource_ops import decode_token, encode_token
from hearth.services.events.store import Archive, Bus, EventStore


def _not_found(message: str) -> AwsError:
    return AwsError("ResourceNotFoundException", message)


def _epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _seconds(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


class ArchiveOperations:
    """CreateArchive, DescribeArchive, ListArchives, UpdateArchive, DeleteArchive, StartReplay,
    DescribeReplay, ListReplays, CancelReplay."""

    store: EventStore
    bus: EventBus

    def _bus(self, ctx: RequestContext, name: str | None) -> Bus:
        raise NotImplementedError  # EventsProvider's

    def _archive(self, ctx: RequestContext, name: str) -> Archive:
        found = next((a for a in self.store.archives(ctx.account_id, ctx.region) if a.name == name), None)
        if found is None:
            raise _not_found(f"Archive {name} does not exist.")
        return found

    @staticmethod
    def _check_pattern(pattern: str | None) -> None:
        if pattern:
            try:
                compile_pattern(pattern)
            except PatternError as exc:
                raise AwsError("InvalidEventPatternException", str(exc)) from None

    def _summary(self, archive: Archive) -> dict[str, Any]:
        events = self.store.archived(archive)
        return {"ArchiveName": archive.name, "EventSourceArn": archive.bus_arn, "State": "ENABLED",
                "RetentionDays": archive.retention_days, "CreationTime": _epoch(archive.created),
                "EventCount": len(events), "SizeBytes": sum(len(json.dumps(e)) for e in events)}

    def create_archive(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        source = str(params["EventSourceArn"])
        bus = self._bus(ctx, source.split(":event-bus/", 1)[-1])
        self._check_pattern(params.get("EventPattern"))
        archive = Archive(account=ctx.account_id, region=ctx.region, name=params["ArchiveName"], bus=bus.name,
                          pattern=params.get("EventPattern"), description=params.get("Description"),
                          retention_days=int(params.get("RetentionDays") or 0), created=time.time())
        if not self.store.create_archive(archive):
            raise AwsError("ResourceAlreadyExistsException", f"Archive {archive.name} already exists.")
        return {"ArchiveArn": archive.arn, "State": "ENABLED", "CreationTime": _epoch(archive.created)}

    def describe_archive(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        archive = self._archive(ctx, params["ArchiveName"])
        return {**self._summary(archive), "ArchiveArn": archive.arn, "Description": archive.description,
                "EventPattern": archive.pattern}

    def list_archives(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bus = None
        if params.get("EventSourceArn"):
            bus = self._bus(ctx, str(params["EventSourceArn"]).split(":event-bus/", 1)[-1]).name
        prefix = params.get("NamePrefix") or ""
        found = [a for a in self.store.archives(ctx.account_id, ctx.region, bus) if a.name.startswith(prefix)
                 and params.get("State") in (None, "ENABLED")]
        start = decode_token(params.get("NextToken"))
        limit = int(params.get("Limit") or 100)
        out: dict[str, Any] = {"Archives": [self._summary(a) for a in found[start:start + limit]]}
        if start + limit < len(found):
            out["NextToken"] = encode_token(start + limit)
        return out

    def update_archive(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if not any(params.get(k) is not None for k in ("EventPattern", "RetentionDays", "Description")):
            raise AwsError("ValidationException",
                           "At least one of EventPattern, RetentionDays or Description must be provided.")
        archive = self._archive(ctx, params["ArchiveName"])
        self._check_pattern(params.get("EventPattern"))
        updated = Archive(**{**archive.__dict__,
                             "pattern": params.get("EventPattern", archive.pattern),
                             "description": params.get("Description", archive.description),
                             "retention_days": int(params.get("RetentionDays", archive.retention_days) or 0)})
        self.store.update_archive(updated)
        return {"ArchiveArn": archive.arn, "State": "ENABLED", "CreationTime": _epoch(archive.created)}

    def delete_archive(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        archive = self._archive(ctx, params["ArchiveName"])
        self.store.delete_archive(ctx.account_id, ctx.region, archive.name)
        return {}

    # -- replays ------------------------------------------------------------------------------------

    def start_replay(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ReplayName"]
        source = str(params["EventSourceArn"])
        archive_name = source.split(":archive/", 1)[-1]
        archive = next((a for a in self.store.archives(ctx.account_id, ctx.region) if a.name == archive_name), None)
        if archive is None:
            raise AwsError("ValidationException", f"Parameter EventSourceArn is not valid. Reason: Archive "
                                                  f"{archive_name} does not exist.")
        start, end = _seconds(params["EventStartTime"]), _seconds(params["EventEndTime"])
        if start >= end:
            raise AwsError("ValidationException", "Parameter EventEndTime is not valid. Reason: EventStartTime must "
                                                  "be before EventEndTime.")
        destination = params["Destination"]
        target_bus = self._bus(ctx, str(destination["Arn"]).split(":event-bus/", 1)[-1])
        if target_bus.name != archive.bus:
            # A replay goes back to the bus its archive records (AWS refuses any other).
            raise AwsError("ValidationException", "Parameter Destination.Arn is not valid. Reason: Cross event bus "
                                                  "replay is not permitted.")
        if any(r.get("ReplayName") == name for r in self.store.replays(ctx.account_id, ctx.region)):
            raise AwsError("ResourceAlreadyExistsException", f"Replay {name} already exists.")
        now = time.time()
        body = {"ReplayName": name, "ReplayArn": f"arn:aws:events:{ctx.region}:{ctx.account_id}:replay/{name}",
                "Description": params.get("Description"), "State": "COMPLETED", "EventSourceArn": archive.arn,
                "Destination": destination, "EventStartTime": start, "EventEndTime": end,
                "EventLastReplayedTime": now, "ReplayStartTime": now, "ReplayEndTime": now}
        if not self.store.put_replay(ctx.account_id, ctx.region, name, body, now):
            raise AwsError("ResourceAlreadyExistsException", f"Replay {name} already exists.")
        events = [_replayed(event, name) for event in self.store.archived(archive, start, end)]
        rules = set(destination.get("FilterArns") or []) or None
        self.bus.route(ctx.account_id, ctx.region, target_bus.name, events, only_rules=rules)
        return {"ReplayArn": body["ReplayArn"], "State": "STARTING", "ReplayStartTime": _epoch(now)}

    def _replay(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        found = next((r for r in self.store.replays(ctx.account_id, ctx.region) if r["ReplayName"] == name), None)
        if found is None:
            raise _not_found(f"Replay {name} does not exist.")
        return found

    def describe_replay(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        replay = self._replay(ctx, params["ReplayName"])
        return {**{k: v for k, v in replay.items() if v is not None and not k.endswith("Time")},
                **{k: _epoch(float(v)) for k, v in replay.items() if k.endswith("Time")}}

    def list_replays(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("NamePrefix") or ""
        found = [r for r in self.store.replays(ctx.account_id, ctx.region) if r["ReplayName"].startswith(prefix)
                 and params.get("EventSourceArn") in (None, r["EventSourceArn"])
                 and params.get("State") in (None, r["State"])]
        start = decode_token(params.get("NextToken"))
        limit = int(params.get("Limit") or 100)
        keys = ("ReplayName", "EventSourceArn", "State", "EventStartTime", "EventEndTime", "ReplayStartTime",
                "ReplayEndTime")  # ListReplays leaves EventLastReplayedTime out (recorded by AWS)
        out: dict[str, Any] = {"Replays": [
            {k: _epoch(float(r[k])) if k.endswith("Time") else r[k] for k in keys if r.get(k) is not None}
            for r in found[start:start + limit]]}
        if start + limit < len(found):
            out["NextToken"] = encode_token(start + limit)
        return out

    def cancel_replay(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        replay = self._replay(ctx, params["ReplayName"])
        # Replays run to completion when started: there is nothing left to cancel.
        raise AwsError("IllegalStatusException", f"Replay {replay['ReplayName']} is not in a valid state for this "
                                                 "operation.")


def _replayed(event: dict[str, Any], name: str) -> dict[str, Any]:
    """The event as a replay sends it: `replay-name` after `region`, as AWS places it."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        out[key] = value
        if key == "region":
            out["replay-name"] = name
    out.setdefault("replay-name", name)
    return out
