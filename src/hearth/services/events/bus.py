"""The event bus engine: an accepted event -> the enabled rules it matches -> one delivery per target.

It owns the event envelope as AWS delivers it (version, id, detail-type, source, account, time,
region, resources, detail), scheduled events ("Scheduled Event" from "aws.events"), the schedule
engine's registrations, and the `events` handler of the DeliveryRouter (a bus as a Lambda destination
or as another rule's target). It never parses API requests (the provider does) and never talks to a
target directly (the dispatcher does, through the router).
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from hearth.events.delivery import DeliveryError, Message
from hearth.services.events.dispatch import Dispatcher
from hearth.services.events.patterns import EventPattern, PatternError, compile_pattern
from hearth.services.events.schedules import ScheduleEngine, parse_schedule
from hearth.services.events.store import Delivery, EventStore, Rule
from hearth.services.events.transform import MISSING, TemplateError, select, target_input

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 185
DEFAULT_MAX_AGE_S = 86400


def event_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=4096)
def cached_pattern(text: str) -> EventPattern | None:
    try:
        return compile_pattern(text)
    except PatternError:
        return None  # stored patterns were validated; a bad one never matches


def envelope(*, source: str, detail_type: str, detail: Any, account: str, region: str,
             resources: list[str], moment: datetime, event_id: str | None = None) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": event_time(moment),
        "region": region,
        "resources": resources,
        "detail": detail,
    }


class EventBus:
    def __init__(self, store: EventStore, dispatcher: Dispatcher, schedules: ScheduleEngine) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.schedules = schedules
        self.matched = 0
        # What each rule was registered with the engine as (schedule, state, created): see reload_schedules.
        self._scheduled_as: dict[str, tuple[object, ...]] = {}

    # -- events -------------------------------------------------------------------------------------

    def route(self, account: str, region: str, bus: str, events: list[dict[str, Any]],
              trace_header: str | None = None, *, only_rules: set[str] | None = None) -> None:
        """Match `events` (already accepted) against the bus's enabled rules and enqueue deliveries, each
        carrying `trace_header` (the sender's X-Amzn-Trace-Id) to its target; keep them in the bus's
        archives whose pattern they match. A replay passes `only_rules` (the ARNs it may reach, None: all)
        and its events are not archived again."""
        rules = [r for r in self.store.list_rules(account, region, bus) if r.state != "DISABLED" and r.pattern
                 and (only_rules is None or r.arn in only_rules)]
        if not any("replay-name" in event for event in events):
            self._archive(account, region, bus, events)
        deliveries: list[Delivery] = []
        for event in events:
            for rule in rules:
                pattern = cached_pattern(rule.pattern or "")
                if pattern is not None and pattern.matches(event):
                    self.matched += 1
                    deliveries.extend(self._deliveries(rule, event, trace_header))
        self.dispatcher.enqueue(deliveries)

    def _archive(self, account: str, region: str, bus: str, events: list[dict[str, Any]]) -> None:
        now = time.time()
        for archive in self.store.archives(account, region, bus):
            pattern = cached_pattern(archive.pattern) if archive.pattern else None
            kept = [e for e in events if pattern is None or pattern.matches(e)]
            if kept:
                self.store.archive_events(archive, kept, now)

    def _deliveries(self, rule: Rule, event: dict[str, Any], trace_header: str | None = None) -> list[Delivery]:
        out: list[Delivery] = []
        now = time.time()
        ingestion = event_time(datetime.now(UTC))
        for target in self.store.targets(rule.account, rule.region, rule.bus, rule.name):
            policy = target.get("RetryPolicy") or {}
            sqs = target.get("SqsParameters") or {}
            try:
                body = target_input(target, event, rule.name, rule.arn, ingestion)
            except TemplateError as exc:  # AWS sends such a target nothing (recorded)
                log.info("rule %s target %s: input template gives no valid JSON (%s)", rule.arn, target.get("Id"), exc)
                continue
            out.append(Delivery(
                target_arn=str(target["Arn"]),
                body=body,
                source_arn=rule.arn,
                group_id=sqs.get("MessageGroupId") or _partition_key(target, event),
                max_attempts=int(policy.get("MaximumRetryAttempts", DEFAULT_MAX_ATTEMPTS)),
                expires_at=now + int(policy.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE_S)),
                dlq_arn=(target.get("DeadLetterConfig") or {}).get("Arn"),
                trace_header=trace_header,
            ))
        return out

    # -- schedules ----------------------------------------------------------------------------------

    def load_schedules(self) -> None:
        for rule in self.store.scheduled_rules():
            self.schedule(rule)

    def reload_schedules(self) -> None:
        """Cluster: follow rules changed through other nodes. Only a new, changed or removed rule is
        (un)registered: re-registering an unchanged one could skip a moment that is due but not fired."""
        rules = {rule.key: rule for rule in self.store.scheduled_rules()}
        for key in set(self._scheduled_as) - set(rules):
            self._scheduled_as.pop(key, None)
            self.schedules.remove(key)
        for key, rule in rules.items():
            if self._scheduled_as.get(key) != (rule.schedule, rule.state, rule.created):
                self.schedule(rule)

    def schedule(self, rule: Rule) -> None:
        """(Re)register `rule` with the engine if it is an enabled scheduled rule, else unregister it."""
        self._scheduled_as[rule.key] = (rule.schedule, rule.state, rule.created)
        if rule.schedule is None or rule.state == "DISABLED":
            self.schedules.remove(rule.key)
            return
        try:
            parsed = parse_schedule(rule.schedule, datetime.fromtimestamp(rule.created, UTC))
        except Exception:
            log.warning("rule %s has an invalid stored schedule %r", rule.arn, rule.schedule)
            return
        self.schedules.set(rule.key, parsed)

    def unschedule(self, rule: Rule) -> None:
        self._scheduled_as.pop(rule.key, None)
        self.schedules.remove(rule.key)

    async def fire(self, key: str, moment: datetime) -> None:
        """The schedule engine's callback: send a Scheduled Event to the rule's targets."""
        account, region, bus, name = key.split("|", 3)
        rule = self.store.get_rule(account, region, bus, name)
        if rule is None or rule.state == "DISABLED":
            return
        event = envelope(source="aws.events", detail_type="Scheduled Event", detail={}, account=account,
                         region=region, resources=[rule.arn], moment=moment)
        self.dispatcher.enqueue(self._deliveries(rule, event))

    # -- the router's `events` handler ----------------------------------------------------------------

    async def deliver_to_bus(self, target_arn: str, message: Message) -> None:
        """A bus as a target: another rule's event, or a Lambda destination's invocation record."""
        parts = target_arn.split(":", 5)
        resource = parts[5] if len(parts) == 6 else ""
        if not resource.startswith("event-bus/"):
            raise DeliveryError(f"not an event bus: {target_arn}", "InvalidParameterValueException")
        account, region, bus = parts[4], parts[3], resource.split("/", 1)[1]
        if self.store.get_bus(account, region, bus) is None:
            raise DeliveryError(f"Event bus {bus} does not exist.", "ResourceNotFoundException")
        try:
            doc = json.loads(message.body)
        except ValueError:
            doc = message.body
        now = datetime.now(UTC)
        if isinstance(doc, dict) and {"source", "detail-type", "detail"} <= doc.keys():
            # An event forwarded bus to bus keeps its envelope; into another region under a new id, into
            # another account of the same region under the same one (recorded by AWS).
            event = dict(doc) if doc.get("region") == region else {**doc, "id": str(uuid.uuid4())}
        else:
            record = doc if isinstance(doc, dict) else {"payload": doc}
            condition = str((record.get("requestContext") or {}).get("condition", "Success"))
            outcome = "Success" if condition == "Success" else "Failure"
            function_arn = message.source_arn or str((record.get("requestContext") or {}).get("functionArn", ""))
            event = envelope(source="lambda", detail_type=f"Lambda Function Invocation Result - {outcome}",
                             detail=record, account=account, region=region,
                             resources=[target_arn, function_arn] if function_arn else [target_arn], moment=now)
        self.route(account, region, bus, [event], message.trace_header)


def _partition_key(target: dict[str, Any], event: dict[str, Any]) -> str | None:
    """A Kinesis target's partition key: what `KinesisParameters.PartitionKeyPath` selects in the event,
    else the event's id (AWS's default); None for other targets."""
    if not str(target.get("Arn", "")).startswith("arn:aws:kinesis:"):
        return None
    path = (target.get("KinesisParameters") or {}).get("PartitionKeyPath")
    selected = select(event, str(path)) if path else MISSING
    if selected is MISSING or selected is None:
        return str(event.get("id") or "")
    return selected if isinstance(selected, str) else json.dumps(selected, separators=(",", ":"))
