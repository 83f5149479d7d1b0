"""The resolved, immutable view of one function version that the invoke path runs.

This is the contract between the control plane (`hearth.functions`, `hearth.services.lambda_`) and
the data plane (`hearth.invoke`, `hearth.sandbox`): everything an environment needs, nothing about
how it is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# The sandbox network of a function outside any VPC: Hearth's egress bridge (hearth.sandbox.network).
EGRESS_NETWORK = "egress"


def vpc_network_key(account: str, region: str, subnet_ids: Sequence[str], group_ids: Sequence[str]) -> str:
    """The name of the sandbox network one VPC configuration's environments share."""
    if not subnet_ids:
        return EGRESS_NETWORK
    return f"vpc:{account}:{region}:{','.join(subnet_ids)}:{','.join(sorted(group_ids))}"



@dataclass(frozen=True)
class FunctionVersion:
    account_id: str
    region: str
    name: str
    version: str  # "$LATEST" or "1", "2", …
    function_arn: str  # unqualified ARN
    runtime: str  # AWS runtime id: "python3.11", "nodejs20.x", "provided.al2023"
    handler: str
    memory_mb: int
    timeout_s: int
    ephemeral_mb: int
    environment: dict[str, str]
    code_dir: Path  # extracted code, read-only, content-addressed by code_sha256
    code_sha256: str
    revision_id: str
    state: str  # Pending | Active | Failed | Inactive
    state_reason: str | None = None
    state_reason_code: str | None = None
    last_update_status: str = "Successful"
    log_format: str = "Text"  # LoggingConfig.LogFormat
    log_group: str = ""
    application_log_level: str | None = None
    system_log_level: str | None = None
    tracing_mode: str = "PassThrough"  # TracingConfig.Mode: Active samples traces no caller decided on
    architectures: tuple[str, ...] = ("x86_64",)
    layer_dirs: tuple[Path, ...] = field(default_factory=tuple)  # extracted layers, in order
    reserved_concurrency: int | None = None
    snap_start_apply_on: str = "None"  # SnapStart.ApplyOn: "PublishedVersions" or "None"
    role: str = ""  # the execution role ARN: its session's credentials are the environment's
    vpc_subnet_ids: tuple[str, ...] = ()  # VpcConfig: empty for a function outside any VPC
    vpc_security_group_ids: tuple[str, ...] = ()

    @property
    def network_key(self) -> str:
        """The sandbox network its environments get: Hearth's egress bridge, or its VPC configuration's."""
        return vpc_network_key(self.account_id, self.region, self.vpc_subnet_ids, self.vpc_security_group_ids)

    @property
    def qualified_arn(self) -> str:
        return f"{self.function_arn}:{self.version}"

    @property
    def effective_log_group(self) -> str:
        return self.log_group or f"/aws/lambda/{self.name}"
