"""Function aliases: a name that points at one published version, optionally sending a share of the
invocations to a second version (weighted routing, the way canaries and linear deployments work).

It owns the alias record, AWS's routing rules with their exact messages, and the weighted choice
of a version per invocation. It never stores anything (`hearth.functions.service` does) and never
looks up versions itself: callers pass a `version_exists` check.

Weighted choice: one draw of a uniform number in [0, 1) per invocation from an injectable source
(`random.random` by default); the additional version runs when the draw is below its weight. Draws
are independent, so over n invocations the share is binomial around the weight (for n = 2,000 and
any weight, three standard deviations stay under 3.4 points, and typically under 2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hearth.functions import errors
from hearth.functions.names import LATEST, function_arn


@dataclass(frozen=True)
class Alias:
    account_id: str
    region: str
    function_name: str
    name: str
    function_version: str
    revision_id: str
    description: str = ""
    weights: dict[str, float] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return function_arn(self.region, self.account_id, self.function_name, self.name)

    def document(self) -> dict[str, Any]:
        return {"function_version": self.function_version, "description": self.description,
                "weights": dict(self.weights)}

    @classmethod
    def from_document(
        cls, account: str, region: str, function: str, name: str, revision: str, doc: Mapping[str, Any]
    ) -> Alias:
        return cls(account, region, function, name, str(doc["function_version"]), revision,
                   str(doc.get("description") or ""), {str(k): float(v) for k, v in (doc.get("weights") or {}).items()})

    def pick(self, draw: Callable[[], float]) -> str:
        """The version one invocation runs."""
        for version, weight in self.weights.items():
            if weight > 0 and draw() < weight:
                return version
        return self.function_version


def check_routing(
    account: str,
    region: str,
    function: str,
    target: str,
    weights: Mapping[str, float],
    version_exists: Callable[[str], bool],
) -> None:
    """AWS's rules for an alias's target and RoutingConfig, in the order AWS applies them (the
    protocol layer has already refused weights outside [0, 1] and keys that are not numbers)."""
    if len(weights) > 1:
        raise errors.invalid_parameter("Number of items in AdditionalVersionWeights cannot be greater than 1")
    for version in weights:
        if version == target:
            raise errors.invalid_parameter(
                f"Invalid function version {version}. Function version {version} is already included in "
                "routing configuration."
            )
    for version in (target, *weights):
        if not version_exists(version):
            raise errors.not_found(function_arn(region, account, function, version))
    if weights and target == LATEST:
        raise errors.latest_in_routing()
