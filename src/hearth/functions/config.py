"""The stored configuration of one function version, and its lifecycle state.

It owns the fields a function version has, their defaults, and their JSON form in the store. It
never renders the AWS wire shape (`hearth.services.lambda_.provider` does) nor touches the disk.

State machine (what `hearth.functions.service` enforces):

    create           -> State Pending   (StateReasonCode Creating), LastUpdateStatus absent
    code ready       -> State Active,   LastUpdateStatus Successful
    code/runtime bad -> State Failed,   LastUpdateStatus Failed (reason and code set on both)
    update accepted  -> LastUpdateStatus InProgress (State unchanged)
    update finished  -> LastUpdateStatus Successful (State Active) | Failed (State Failed)

Every change, including the background transitions, gets a new RevisionId.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

PENDING_REASON = "The function is being created."
PENDING_CODE = "Creating"
_TUPLES = ("layers", "layer_shas", "layer_sizes", "vpc_subnet_ids", "vpc_security_group_ids")


def aws_timestamp(when: dt.datetime | None = None) -> str:
    """AWS's LastModified spelling: 2024-01-01T00:00:00.000+0000."""
    when = when or dt.datetime.now(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


@dataclass(frozen=True)
class FunctionConfig:
    account_id: str
    region: str
    name: str
    runtime: str
    role: str
    handler: str
    code_sha256: str  # hex
    code_size: int
    revision_id: str
    last_modified: str
    version: str = "$LATEST"
    description: str = ""
    timeout: int = 3
    memory_size: int = 128
    environment: dict[str, str] = field(default_factory=dict)
    # Whether the caller ever sent an `Environment`: AWS shows the member then, even with no variables,
    # and leaves it out for a function that never had one.
    environment_set: bool = False
    # A published version's: $LATEST's description when it was published (PublishVersion may give the
    # version its own). A later change to $LATEST's description is a change worth a new version, as on AWS.
    latest_description: str | None = None
    tracing_mode: str = "PassThrough"
    architectures: tuple[str, ...] = ("x86_64",)
    ephemeral_storage: int = 512
    log_format: str = "Text"
    log_group: str | None = None
    application_log_level: str | None = None
    system_log_level: str | None = None
    layers: tuple[str, ...] = ()  # layer version ARNs, in order
    layer_shas: tuple[str, ...] = ()  # their archives (kept even if the layer version is deleted, as AWS)
    layer_sizes: tuple[int, ...] = ()  # their zipped sizes (the CodeSize GetFunction shows)
    layers_unzipped_size: int = 0
    code_unzipped_size: int = 0  # 0: not measured yet (functions created before it was recorded)
    dead_letter_target: str | None = None
    kms_key_arn: str | None = None
    snap_start_apply_on: str = "None"
    # VpcConfig: the subnets and security groups, their VPC (found at create/update), and whether the
    # caller ever sent one (AWS shows the member then, empty once the configuration is removed).
    vpc_subnet_ids: tuple[str, ...] = ()
    vpc_security_group_ids: tuple[str, ...] = ()
    vpc_id: str = ""
    vpc_ipv6_dual_stack: bool = False
    vpc_set: bool = False
    state: str = "Pending"
    state_reason: str | None = PENDING_REASON
    state_reason_code: str | None = PENDING_CODE
    last_update_status: str | None = None
    last_update_status_reason: str | None = None
    last_update_status_reason_code: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.account_id, self.region, self.name)

    @property
    def effective_log_group(self) -> str:
        return self.log_group or f"/aws/lambda/{self.name}"

    @property
    def busy(self) -> bool:
        """True while a create or an update is being finished in the background."""
        return self.state == "Pending" or self.last_update_status == "InProgress"

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["architectures"] = list(self.architectures)
        for name in _TUPLES:
            data[name] = list(getattr(self, name))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FunctionConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["architectures"] = tuple(values.get("architectures") or ("x86_64",))
        for name in _TUPLES:
            values[name] = tuple(values.get(name) or ())
        return cls(**values)

    def replace(self, **changes: Any) -> FunctionConfig:
        return dataclasses.replace(self, **changes)
