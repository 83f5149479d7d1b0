"""EventBridge's tags and event bus permissions: their operations (a part of `EventsProvider`), and
ListRuleNamesByTarget.

It owns these operations' rules as AWS answers them: a resource is named by its ARN (`event-bus/<name>`
or `rule/[<bus>/]<name>`) and must exist ("Event bus x does not exist.", "Rule x does not exist on
EventBus y."); PutPermission adds (or replaces, by statement id) one statement granting
events:PutEvents, or replaces the whole policy; RemovePermission removes one statement or all. Policies
are stored and described, not enforced: Hearth serves one account's callers per endpoint and evaluates
identity policies only (docs/design.md).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.events.store import Bus, EventStore, Rule


def _not_found(message: str) -> AwsError:
    return AwsError("ResourceNotFoundException", message)


class ResourceOperations:
    """TagResource, UntagResource, ListTagsForResource, PutPermission, RemovePermission,
    ListRuleNamesByTarget."""

    store: EventStore

    def _bus(self, ctx: RequestContext, name: str | None) -> Bus:
        raise NotImplementedError  # EventsProvider's

    def _rule(self, ctx: RequestContext, name: str, bus: str | None) -> Rule:
        raise NotImplementedError  # EventsProvider's

    def _tagged(self, ctx: RequestContext, arn: str) -> str:
        """The ARN of an existing bus or rule of the caller's, as stored; AWS's error otherwise."""
        resource = arn.split(":", 5)[-1]
        kind, _, path = resource.partition("/")
        if kind == "event-bus":
            return self._bus(ctx, path).arn
        if kind == "rule":
            bus, _, name = path.rpartition("/")
            return self._rule(ctx, name, bus or None).arn
        raise AwsError("ValidationException", f"Parameter {arn} is not valid.")

    def tag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = self._tagged(ctx, params["ResourceARN"])
        self.store.tag(ctx.account_id, ctx.region, arn, {t["Key"]: t["Value"] for t in params["Tags"]})
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = self._tagged(ctx, params["ResourceARN"])
        self.store.untag(ctx.account_id, ctx.region, arn, list(params["TagKeys"]))
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = self._tagged(ctx, params["ResourceARN"])
        return {"Tags": [{"Key": k, "Value": v} for k, v in self.store.tags(ctx.account_id, ctx.region, arn).items()]}

    # -- permissions --------------------------------------------------------------------------------

    def put_permission(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bus = self._bus(ctx, params.get("EventBusName"))
        if params.get("Policy"):
            try:
                json.loads(params["Policy"])
            except ValueError:
                raise AwsError("ValidationException", "Policy is not a valid JSON document.") from None
            self.store.set_bus_policy(ctx.account_id, ctx.region, bus.name, params["Policy"])
            return {}
        sid, principal = params.get("StatementId"), params.get("Principal")
        if not sid or not principal:
            raise AwsError("ValidationException", "Parameter(s) StatementId and Principal must be specified.")
        statement: dict[str, Any] = {
            "Sid": sid, "Effect": "Allow",
            "Principal": "*" if principal == "*" else {"AWS": f"arn:aws:iam::{principal}:root"},
            "Action": params.get("Action") or "events:PutEvents", "Resource": bus.arn,
        }
        condition = params.get("Condition")
        if condition:
            statement["Condition"] = {condition["Type"]: {condition["Key"]: condition["Value"]}}
        policy = self._policy(ctx, bus)
        policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != sid] + [statement]
        self.store.set_bus_policy(ctx.account_id, ctx.region, bus.name, json.dumps(policy))
        return {}

    def remove_permission(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bus = self._bus(ctx, params.get("EventBusName"))
        if params.get("RemoveAllPermissions"):
            self.store.set_bus_policy(ctx.account_id, ctx.region, bus.name, None)
            return {}
        sid = params.get("StatementId")
        policy = self._policy(ctx, bus)
        kept = [s for s in policy["Statement"] if s.get("Sid") != sid]
        if not sid or len(kept) == len(policy["Statement"]):
            raise _not_found("Statement with the provided id does not exist.")
        policy["Statement"] = kept
        self.store.set_bus_policy(ctx.account_id, ctx.region, bus.name, json.dumps(policy) if kept else None)
        return {}

    def _policy(self, ctx: RequestContext, bus: Bus) -> dict[str, Any]:
        stored = self.store.bus_policy(ctx.account_id, ctx.region, bus.name)
        policy = json.loads(stored) if stored else {}
        if not isinstance(policy.get("Statement"), list):
            policy = {"Version": "2012-10-17", "Statement": []}
        return policy

    # -- rules by target ----------------------------------------------------------------------------

    def list_rule_names_by_target(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bus = self._bus(ctx, params.get("EventBusName"))
        target = params["TargetArn"]
        names = [rule.name for rule in self.store.list_rules(ctx.account_id, ctx.region, bus.name)
                 if any(t.get("Arn") == target for t in self.store.targets(rule.account, rule.region, rule.bus,
                                                                           rule.name))]
        start = decode_token(params.get("NextToken"))
        limit = int(params.get("Limit") or 100)
        out: dict[str, Any] = {"RuleNames": names[start:start + limit]}
        if start + limit < len(names):
            out["NextToken"] = encode_token(start + limit)
        return out


def encode_token(offset: int) -> str:
    """An opaque page token (AWS's are long opaque strings; a bare number would read as data)."""
    return base64.urlsafe_b64encode(f"hearth-page:{offset:012d}".encode()).decode()


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AwsError("ValidationException", "The NextToken provided is not valid.") from None
    prefix, _, offset = text.partition(":")
    if prefix != "hearth-page" or not offset.isdigit():
        raise AwsError("ValidationException", "The NextToken provided is not valid.")
    return int(offset)
