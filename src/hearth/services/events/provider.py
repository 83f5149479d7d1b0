"""The EventBridge API (boto3's `events` client): buses, rules, targets, PutEvents, TestEventPattern.

It owns the operations' business rules and AWS's error codes and texts; the protocol layer has
already checked the model's constraints (lengths, name patterns, list sizes). It never matches or
delivers events itself: accepted events go to `EventBus.route`, rule changes to the schedule engine.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.events.archives import ArchiveOperations
from hearth.services.events.bus import EventBus, envelope
from hearth.services.events.connections import ConnectionOperations
from hearth.services.events.patterns import PatternError, compile_pattern
from hearth.services.events.resource_ops import ResourceOperations, decode_token, encode_token
from hearth.services.events.schedules import parse_schedule
from hearth.services.events.store import Bus, EventStore, Rule
from hearth.services.events.transform import PREDEFINED, placeholders, valid_path

PUT_EVENTS_LIMIT = 256 * 1024
TARGETS_PER_RULE = 5
_TEST_EVENT_FIELDS = ("id", "account", "source", "time", "region", "detail-type")


def _not_found(message: str) -> AwsError:
    return AwsError("ResourceNotFoundException", message)


def _validation(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def bus_name(value: str | None) -> str:
    """A bus parameter may be a name or an ARN (`arn:aws:events:r:a:event-bus/name`)."""
    if not value:
        return "default"
    if value.startswith("arn:"):
        return value.split(":event-bus/", 1)[-1]
    return value


def _page(items: list[Any], params: dict[str, Any], default_limit: int = 100) -> tuple[list[Any], str | None]:
    start = decode_token(params.get("NextToken"))
    limit = int(params.get("Limit") or default_limit)
    end = start + limit
    return items[start:end], (encode_token(end) if end < len(items) else None)


def _epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class EventsProvider(ResourceOperations, ArchiveOperations, ConnectionOperations):
    def __init__(self, store: EventStore, bus: EventBus) -> None:
        self.store = store
        self.bus = bus

    # -- buses --------------------------------------------------------------------------------------

    def _bus(self, ctx: RequestContext, name: str | None) -> Bus:
        found = self.store.get_bus(ctx.account_id, ctx.region, bus_name(name))
        if found is None:
            raise _not_found(f"Event bus {bus_name(name)} does not exist.")
        return found

    def create_event_bus(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["Name"]
        if params.get("EventSourceName") or name.startswith("aws."):
            raise _validation("Hearth does not serve partner event buses.")
        self.store.ensure_default_bus(ctx.account_id, ctx.region)
        if not self.store.create_bus(ctx.account_id, ctx.region, name, params.get("Description")):
            raise AwsError("ResourceAlreadyExistsException", f"Event bus {name} already exists.")
        bus = self._bus(ctx, name)
        if params.get("Tags"):
            self.store.tag(ctx.account_id, ctx.region, bus.arn, {t["Key"]: t["Value"] for t in params["Tags"]})
        out: dict[str, Any] = {"EventBusArn": bus.arn}
        if bus.description:
            out["Description"] = bus.description
        return out

    def describe_event_bus(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bus = self._bus(ctx, params.get("Name"))
        policy = self.store.bus_policy(ctx.account_id, ctx.region, bus.name)
        return {**self._describe_bus(bus), **({"Policy": policy} if policy else {})}

    @staticmethod
    def _describe_bus(bus: Bus) -> dict[str, Any]:
        return {"Name": bus.name, "Arn": bus.arn, "Description": bus.description,
                "CreationTime": _epoch(bus.created), "LastModifiedTime": _epoch(bus.modified)}

    def list_event_buses(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        buses = self.store.list_buses(ctx.account_id, ctx.region, params.get("NamePrefix"))
        page, token = _page(buses, params)
        return {"EventBuses": [self._describe_bus(b) for b in page], "NextToken": token}

    def delete_event_bus(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = bus_name(params["Name"])
        if name == "default":
            raise _validation("Cannot delete event bus default.")
        for rule in self.store.list_rules(ctx.account_id, ctx.region, name):
            self.bus.unschedule(rule)
        self.store.delete_bus(ctx.account_id, ctx.region, name)
        return {}

    # -- rules --------------------------------------------------------------------------------------

    def _rule(self, ctx: RequestContext, name: str, bus: str | None) -> Rule:
        bus_id = bus_name(bus)
        self._bus(ctx, bus_id)
        rule = self.store.get_rule(ctx.account_id, ctx.region, bus_id, name)
        if rule is None:
            raise _not_found(f"Rule {name} does not exist on EventBus {bus_id}.")
        return rule

    def put_rule(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bus = self._bus(ctx, params.get("EventBusName"))
        pattern, schedule = params.get("EventPattern"), params.get("ScheduleExpression")
        if not pattern and not schedule:
            raise _validation("Parameter(s) EventPattern or ScheduleExpression must be specified.")
        if schedule:
            if bus.name != "default":
                raise _validation("ScheduleExpression is supported only on the default event bus.")
            parse_schedule(schedule)
        if pattern:
            _compile(pattern)
        existing = self.store.get_rule(ctx.account_id, ctx.region, bus.name, params["Name"])
        rule = self.store.put_rule(Rule(
            account=ctx.account_id, region=ctx.region, bus=bus.name, name=params["Name"], pattern=pattern,
            schedule=schedule, state=params.get("State") or "ENABLED", description=params.get("Description"),
            role_arn=params.get("RoleArn"), created=existing.created if existing else time.time()))
        self.bus.schedule(rule)
        if params.get("Tags"):
            self.store.tag(ctx.account_id, ctx.region, rule.arn, {t["Key"]: t["Value"] for t in params["Tags"]})
        return {"RuleArn": rule.arn}

    @staticmethod
    def _describe_rule(rule: Rule) -> dict[str, Any]:
        return {"Name": rule.name, "Arn": rule.arn, "EventPattern": rule.pattern,
                "ScheduleExpression": rule.schedule, "State": rule.state, "Description": rule.description,
                "RoleArn": rule.role_arn, "EventBusName": rule.bus}

    def describe_rule(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rule = self._rule(ctx, params["Name"], params.get("EventBusName"))
        return {**self._describe_rule(rule), "CreatedBy": rule.account}

    def list_rules(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bus = self._bus(ctx, params.get("EventBusName"))
        prefix = params.get("NamePrefix") or ""
        rules = [r for r in self.store.list_rules(ctx.account_id, ctx.region, bus.name) if r.name.startswith(prefix)]
        page, token = _page(rules, params)
        return {"Rules": [self._describe_rule(r) for r in page], "NextToken": token}

    def enable_rule(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set_state(ctx, params, "ENABLED")

    def disable_rule(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._set_state(ctx, params, "DISABLED")

    def _set_state(self, ctx: RequestContext, params: dict[str, Any], state: str) -> dict[str, Any]:
        rule = self._rule(ctx, params["Name"], params.get("EventBusName"))
        self.store.set_state(rule.account, rule.region, rule.bus, rule.name, state)
        updated = self.store.get_rule(rule.account, rule.region, rule.bus, rule.name)
        if updated is not None:
            self.bus.schedule(updated)
        return {}

    def delete_rule(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bus = self._bus(ctx, params.get("EventBusName"))
        rule = self.store.get_rule(ctx.account_id, ctx.region, bus.name, params["Name"])
        if rule is None:
            return {}  # AWS deletes idempotently
        if self.store.targets(rule.account, rule.region, rule.bus, rule.name):
            raise _validation("Rule can't be deleted since it has targets.")
        self.bus.unschedule(rule)
        self.store.delete_rule(rule.account, rule.region, rule.bus, rule.name)
        return {}

    # -- targets ------------------------------------------------------------------------------------

    def put_targets(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rule = self._rule(ctx, params["Rule"], params.get("EventBusName"))
        targets: list[dict[str, Any]] = params["Targets"]
        for target in targets:
            _check_target(target)
        existing = {t["Id"] for t in self.store.targets(rule.account, rule.region, rule.bus, rule.name)}
        if len(existing | {t["Id"] for t in targets}) > TARGETS_PER_RULE:
            raise AwsError("LimitExceededException", "The requested resource exceeds the maximum number allowed.")
        self.store.put_targets(rule.account, rule.region, rule.bus, rule.name, targets)
        return {"FailedEntryCount": 0, "FailedEntries": []}

    def remove_targets(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rule = self._rule(ctx, params["Rule"], params.get("EventBusName"))
        self.store.remove_targets(rule.account, rule.region, rule.bus, rule.name, list(params["Ids"]))
        return {"FailedEntryCount": 0, "FailedEntries": []}

    def list_targets_by_rule(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rule = self._rule(ctx, params["Rule"], params.get("EventBusName"))
        page, token = _page(self.store.targets(rule.account, rule.region, rule.bus, rule.name), params)
        return {"Targets": page, "NextToken": token}

    # -- events -------------------------------------------------------------------------------------

    def put_events(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        entries: list[dict[str, Any]] = params["Entries"]
        if sum(_entry_size(e) for e in entries) > PUT_EVENTS_LIMIT:
            raise _validation("Total size of the entries in the request is over the limit.")
        results: list[dict[str, Any]] = []
        accepted: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        now = datetime.now(UTC)
        for entry in entries:
            try:
                target, event = self._accept(ctx, entry, now)
            except _EntryError as err:
                results.append({"ErrorCode": err.code, "ErrorMessage": err.message})
                continue
            accepted.setdefault(target, []).append(event)
            results.append({"EventId": event["id"]})
        for (account, region, name), events in accepted.items():
            self.bus.route(account, region, name, events, ctx.headers.get("x-amzn-trace-id"))
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}

    def _accept(self, ctx: RequestContext, entry: dict[str, Any],
                now: datetime) -> tuple[tuple[str, str, str], dict[str, Any]]:
        for member in ("Source", "DetailType", "Detail"):
            if not entry.get(member):
                raise _EntryError("InvalidArgument",
                                  f"Parameter {member} is not valid. Reason: {member} is a required argument.")
        try:
            detail = json.loads(entry["Detail"])
        except ValueError:
            detail = None
        if not isinstance(detail, dict):
            raise _EntryError("MalformedDetail", "Detail is malformed.")
        # An event for a bus that does not exist is accepted and dropped, as AWS does (no rule can match it).
        target = self._target_bus(ctx, entry.get("EventBusName"))
        moment = entry.get("Time") or now
        event = envelope(source=entry["Source"], detail_type=entry["DetailType"], detail=detail,
                         account=ctx.account_id, region=ctx.region, resources=list(entry.get("Resources") or []),
                         moment=moment)
        return target, event

    def _target_bus(self, ctx: RequestContext, given: str | None) -> tuple[str, str, str]:
        """(account, region, bus) an entry goes to. A bus ARN may name another region or account: the event
        keeps the sender's account and region (recorded by AWS); another account's bus takes it only when
        its policy lets the sender put events (PutPermission)."""
        parts = given.split(":", 5) if given and given.startswith("arn:") else []
        if len(parts) < 6 or (parts[3] == ctx.region and parts[4] == ctx.account_id):
            return ctx.account_id, ctx.region, bus_name(given)
        account, region, name = parts[4], parts[3], bus_name(given)
        if account != ctx.account_id and not _allows_put_events(
                self.store.bus_policy(account, region, name), ctx.account_id):
            raise _EntryError("AccessDeniedException", f"Account {ctx.account_id} is not authorized to put events "
                                                       f"to event bus {given}.")
        return account, region, name

    def test_event_pattern(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        pattern = _compile(params["EventPattern"])
        try:
            event = json.loads(params["Event"])
        except ValueError:
            event = None
        if not isinstance(event, dict) or any(f not in event for f in _TEST_EVENT_FIELDS):
            raise _validation("Parameter Event is not valid.")
        return {"Result": pattern.matches(event)}


def _allows_put_events(policy: str | None, account: str) -> bool:
    """Whether a bus policy has an Allow statement for events:PutEvents naming `account` or everyone."""
    try:
        statements = json.loads(policy).get("Statement", []) if policy else []
    except (ValueError, AttributeError):
        return False
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        principal = statement.get("Principal")
        named = principal.get("AWS") if isinstance(principal, dict) else principal
        names = [named] if isinstance(named, str) else list(named or [])
        if statement.get("Effect") == "Allow" and any(a in ("events:PutEvents", "events:*", "*") for a in actions) \
                and any(n == "*" or n == account or n.startswith(f"arn:aws:iam::{account}:") for n in names):
            return True
    return False


class _EntryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _compile(pattern: str) -> Any:
    try:
        return compile_pattern(pattern)
    except PatternError as exc:
        raise AwsError("InvalidEventPatternException", f"Event pattern is not valid. Reason: {exc.reason}") from None


def _entry_size(entry: dict[str, Any]) -> int:
    # AWS's documented calculation: 14 bytes for a Time, plus the UTF-8 sizes of the other members.
    size = 14 if entry.get("Time") else 0
    for member in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(member) or "").encode())
    size += sum(len(r.encode()) for r in entry.get("Resources") or [])
    return size


def _check_target(target: dict[str, Any]) -> None:
    arn = str(target["Arn"])
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn" or not parts[2]:
        raise _validation(f"Parameter {arn} is not valid. Reason: Provided Arn is not in correct format.")
    given = [k for k in ("Input", "InputPath", "InputTransformer") if target.get(k) is not None]
    if len(given) > 1:
        raise _validation(f"Only one of Input, InputPath, or InputTransformer must be provided for target "
                          f"{target.get('Id')}.")
    if "Input" in target:
        try:
            json.loads(target["Input"])
        except ValueError:
            raise _validation("Parameter Input is not valid. Reason: Input is not a valid JSON text.") from None
    if "InputPath" in target and not valid_path(str(target["InputPath"])):
        raise _validation(f"Parameter InputPath is not valid. Reason: {target['InputPath']} is not a valid "
                          "JSON path.")
    transformer = target.get("InputTransformer")
    if transformer:
        for key, path in (transformer.get("InputPathsMap") or {}).items():
            if key.startswith("aws.") or not valid_path(str(path)):
                raise _validation(f"Parameter InputPathsMap is not valid. Reason: invalid entry {key}.")
        known = set(transformer.get("InputPathsMap") or {}) | set(PREDEFINED)
        unknown = [name for name in placeholders(str(transformer.get("InputTemplate") or "")) if name not in known]
        if unknown:
            raise _validation(f"InputTemplate for target {target.get('Id')} contains invalid placeholder "
                              f"{unknown[0]}.")
