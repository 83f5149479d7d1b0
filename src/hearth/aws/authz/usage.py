"""What each role (or user) actually used: the evidence for `hearth policy suggest`.

It owns an in-memory record of (action, resource) pairs per identity, fed by the authorizer for every
judged request (allowed, denied or audited), and the smallest policy that allows exactly those pairs.
It never decides anything and is not durable: it describes the calls made since the server started
(a test run, typically), which is what a suggestion should be made from.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

# Per identity; past it the oldest evidence is not dropped, new pairs are just not recorded.
MAX_PAIRS = 10_000


class UsageRecorder:
    def __init__(self) -> None:
        self._used: dict[str, set[tuple[str, str]]] = defaultdict(set)

    def record(self, identity_arn: str, action: str, resource: str) -> None:
        used = self._used[identity_arn]
        if len(used) < MAX_PAIRS:
            used.add((action, resource))

    def identities(self) -> list[str]:
        return sorted(self._used)

    def used(self, identity_arn: str) -> set[tuple[str, str]]:
        return set(self._used.get(identity_arn, ()))

    def suggest(self, identity_arn: str) -> dict[str, Any]:
        return smallest_policy(self.used(identity_arn))


def smallest_policy(used: set[tuple[str, str]]) -> dict[str, Any]:
    """One statement per set of resources that share the same actions: nothing more is allowed than
    what was used, in as few statements as that allows."""
    actions_of: dict[str, set[str]] = defaultdict(set)
    for action, resource in used:
        actions_of[resource].add(action)
    resources_of: dict[frozenset[str], list[str]] = defaultdict(list)
    for resource, actions in actions_of.items():
        resources_of[frozenset(actions)].append(resource)
    statements = []
    for action_set, resources in sorted(resources_of.items(), key=lambda kv: (sorted(kv[0]), sorted(kv[1]))):
        action_list, resource_list = sorted(action_set), sorted(resources)
        statements.append({
            "Effect": "Allow",
            "Action": action_list[0] if len(action_list) == 1 else action_list,
            "Resource": resource_list[0] if len(resource_list) == 1 else resource_list,
        })
    return {"Version": "2012-10-17", "Statement": statements}


def render(policy: dict[str, Any]) -> str:
    return json.dumps(policy, indent=2)
