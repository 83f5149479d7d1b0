"""One event source mapping as Hearth keeps it, its state machine, and its rendering as AWS shows it.

It owns the mapping's fields (typed, with AWS's defaults per source kind), the states and the only
transitions allowed between them, and `to_api()` (the EventSourceMappingConfiguration shape). It
never validates caller input (the provider does), never stores anything and never polls.

States (AWS's names): Creating -> Enabled | Disabled; Enabled -> Disabling -> Disabled;
Disabled -> Enabling -> Enabled; Enabled | Disabled -> Updating -> Enabled | Disabled; any settled
or transitional state -> Deleting (then the mapping is gone). A mapping fires only while Enabled.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

SourceKind = Literal["sqs", "kinesis", "dynamodb"]  # dynamodb: a table's stream

CREATING, ENABLING, ENABLED, DISABLING, DISABLED, UPDATING, DELETING = (
    "Creating", "Enabling", "Enabled", "Disabling", "Disabled", "Updating", "Deleting")
SETTLED = frozenset({ENABLED, DISABLED})
TRANSITIONS: dict[str, frozenset[str]] = {
    CREATING: frozenset({ENABLED, DISABLED, DELETING}),
    ENABLING: frozenset({ENABLED, DISABLED, DELETING}),
    DISABLING: frozenset({DISABLED, DELETING}),
    UPDATING: frozenset({ENABLED, DISABLED, DELETING}),
    ENABLED: frozenset({DISABLING, UPDATING, DELETING}),
    DISABLED: frozenset({ENABLING, UPDATING, DELETING}),
    DELETING: frozenset(),
}

# AWS words the reason differently per source kind (queues: an enum-like token; streams: prose).
USER_REASON: dict[SourceKind, str] = {"sqs": "USER_INITIATED", "kinesis": "User action",
                                      "dynamodb": "User action"}
NO_RECORDS = "No records processed"
RESULT_OK = "OK"
RESULT_FUNCTION_FAILED = "PROBLEM: Function call failed"
RESULT_FUNCTION_MISSING = "PROBLEM: Function not found."

DEFAULT_BATCH: dict[SourceKind, int] = {"sqs": 10, "kinesis": 100, "dynamodb": 100}


class TransitionError(Exception):
    """A state change that the state machine does not list."""


@dataclass(frozen=True)
class MappingConfig:
    """What the caller configured (the poller's inputs). Stream-only fields are ignored for queues."""

    batch_size: int
    window_s: int = 0
    filters: tuple[str, ...] = ()  # FilterCriteria patterns, as given
    report_failures: bool = False  # FunctionResponseTypes == ["ReportBatchItemFailures"]
    max_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency (queues)
    starting_position: str | None = None  # streams
    starting_timestamp: float | None = None
    parallelization: int = 1
    max_retries: int = -1
    max_record_age_s: int = -1
    bisect: bool = False
    on_failure: str | None = None
    tumbling_window_s: int = 0
    kms_key_arn: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["filters"] = list(self.filters)
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> MappingConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in doc.items() if k in known}
        values["filters"] = tuple(values.get("filters") or ())
        return cls(**values)


@dataclass(frozen=True)
class Mapping:
    uuid: str
    account: str
    region: str
    source_arn: str
    kind: SourceKind
    function_arn: str  # qualified when the caller named a qualifier
    enabled: bool  # what the caller asked for; `state` says where the mapping is
    state: str
    config: MappingConfig
    last_modified: float
    last_result: str = NO_RECORDS
    state_reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # accepted-and-echoed fields (MetricsConfig …)

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:event-source-mapping:{self.uuid}"

    @property
    def fires(self) -> bool:
        return self.state == ENABLED

    def moved(self, state: str, **changes: Any) -> Mapping:
        """This mapping in `state`; refuses a transition the state machine does not list."""
        if state != self.state and state not in TRANSITIONS[self.state]:
            raise TransitionError(f"event source mapping {self.uuid}: {self.state} -> {state} is not allowed")
        return dataclasses.replace(self, state=state, **changes)

    def to_api(self) -> dict[str, Any]:
        c = self.config
        out: dict[str, Any] = {"UUID": self.uuid}
        if self.kind != "sqs":
            out["StartingPosition"] = c.starting_position
            if c.starting_timestamp is not None:
                out["StartingPositionTimestamp"] = c.starting_timestamp
        out["BatchSize"] = c.batch_size
        out["MaximumBatchingWindowInSeconds"] = c.window_s
        if self.kind != "sqs":
            out["ParallelizationFactor"] = c.parallelization
        out["EventSourceArn"] = self.source_arn
        if c.filters:
            out["FilterCriteria"] = {"Filters": [{"Pattern": p} for p in c.filters]}
        if c.kms_key_arn:
            out["KMSKeyArn"] = c.kms_key_arn
        out["FunctionArn"] = self.function_arn
        out["LastModified"] = self.last_modified
        if self.kind != "sqs":
            out["LastProcessingResult"] = self.last_result
        out["State"] = self.state
        out["StateTransitionReason"] = self.state_reason or USER_REASON[self.kind]
        if self.kind != "sqs":
            out["DestinationConfig"] = {"OnFailure": {"Destination": c.on_failure} if c.on_failure else {}}
            out["MaximumRecordAgeInSeconds"] = c.max_record_age_s
            out["BisectBatchOnFunctionError"] = c.bisect
            out["MaximumRetryAttempts"] = c.max_retries
            out["TumblingWindowInSeconds"] = c.tumbling_window_s
        out["FunctionResponseTypes"] = ["ReportBatchItemFailures"] if c.report_failures else []
        if self.kind == "sqs" and c.max_concurrency is not None:
            out["ScalingConfig"] = {"MaximumConcurrency": c.max_concurrency}
        out.update(self.extra)
        out["EventSourceMappingArn"] = self.arn
        return out
