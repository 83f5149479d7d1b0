"""Lambda function management operations (CreateFunction, GetFunction, UpdateFunctionCode, tags …).

It owns the translation between AWS's request/response shapes and the function domain: parameter
defaults, Lambda-specific checks (via `validation`), and the exact response fields AWS returns. It
never changes state itself (`FunctionService` does) and never invokes functions (`invoke_api`).
Every operation is confined to the caller's account and region.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError, ValidationError
from hearth.config import Settings
from hearth.esm.model import DELETING
from hearth.esm.store import MappingStore
from hearth.functions import errors
from hearth.functions.config import FunctionConfig
from hearth.functions.names import LATEST, FunctionRef, function_arn, runtime_version_arn
from hearth.functions.service import FunctionService
from hearth.functions.store import FunctionStore
from hearth.services.lambda_ import code_source, validation
from hearth.services.lambda_.code_source import S3Reader
from hearth.services.lambda_.code_url import CodeUrlSigner
from hearth.services.lambda_.errors import maps_domain_errors
from hearth.store.blobs import ZipRejected, inspect_zip

TOTAL_CODE_SIZE_LIMIT = 80_530_636_800
# (account, region, subnet ids, security group ids) -> the VPC they are in; raises Lambda's error.
VpcCheck = Callable[[str, str, list[str], list[str]], str]
_ALIAS_LIKE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def render_configuration(cfg: FunctionConfig, arn_qualifier: str | None = None) -> dict[str, Any]:
    """The FunctionConfiguration shape, with the members AWS returns for a Zip function.

    `arn_qualifier` qualifies FunctionArn: AWS shows the unqualified ARN when the caller named no
    qualifier, and the qualifier the caller named (version, alias or $LATEST) otherwise."""
    out: dict[str, Any] = {
        "FunctionName": cfg.name,
        "FunctionArn": function_arn(cfg.region, cfg.account_id, cfg.name, arn_qualifier),
        "Runtime": cfg.runtime,
        "Role": cfg.role,
        "Handler": cfg.handler,
        "CodeSize": cfg.code_size,
        "Description": cfg.description,
        "Timeout": cfg.timeout,
        "MemorySize": cfg.memory_size,
        "LastModified": cfg.last_modified,
        "CodeSha256": base64.b64encode(bytes.fromhex(cfg.code_sha256)).decode(),
        "Version": cfg.version,
        "TracingConfig": {"Mode": cfg.tracing_mode},
        "RevisionId": cfg.revision_id,
        "State": cfg.state,
        "PackageType": "Zip",
        "Architectures": list(cfg.architectures),
        "EphemeralStorage": {"Size": cfg.ephemeral_storage},
        "SnapStart": {
            "ApplyOn": cfg.snap_start_apply_on,
            # On for the versions restored from a snapshot: published ones, as AWS.
            "OptimizationStatus": "On" if cfg.snap_start_apply_on == "PublishedVersions" and cfg.version != "$LATEST"
            else "Off",
        },
        "RuntimeVersionConfig": {"RuntimeVersionArn": runtime_version_arn(cfg.region, cfg.runtime)},
        "LoggingConfig": _logging(cfg),
    }
    if cfg.environment or cfg.environment_set:
        out["Environment"] = {"Variables": dict(cfg.environment)}
    if cfg.state_reason is not None:
        out["StateReason"] = cfg.state_reason
    if cfg.state_reason_code is not None:
        out["StateReasonCode"] = cfg.state_reason_code
    if cfg.last_update_status is not None:
        out["LastUpdateStatus"] = cfg.last_update_status
    if cfg.last_update_status_reason is not None:
        out["LastUpdateStatusReason"] = cfg.last_update_status_reason
    if cfg.last_update_status_reason_code is not None:
        out["LastUpdateStatusReasonCode"] = cfg.last_update_status_reason_code
    if cfg.layers:
        sizes = list(cfg.layer_sizes) + [0] * (len(cfg.layers) - len(cfg.layer_sizes))
        out["Layers"] = [{"Arn": arn, "CodeSize": size} for arn, size in zip(cfg.layers, sizes, strict=True)]
    if cfg.dead_letter_target:
        out["DeadLetterConfig"] = {"TargetArn": cfg.dead_letter_target}
    if cfg.kms_key_arn:
        out["KMSKeyArn"] = cfg.kms_key_arn
    if cfg.vpc_set:
        out["VpcConfig"] = {"SubnetIds": list(cfg.vpc_subnet_ids), "SecurityGroupIds": list(cfg.vpc_security_group_ids),
                            "VpcId": cfg.vpc_id, "Ipv6AllowedForDualStack": cfg.vpc_ipv6_dual_stack}
    return out


# ListFunctions returns a subset of FunctionConfiguration: AWS documents that state, update status
# and runtime version fields come only from GetFunction/GetFunctionConfiguration.
_NOT_LISTED = (
    "State",
    "StateReason",
    "StateReasonCode",
    "LastUpdateStatus",
    "LastUpdateStatusReason",
    "LastUpdateStatusReasonCode",
    "RuntimeVersionConfig",
)


def _list_entry(cfg: FunctionConfig, arn_qualifier: str | None = None) -> dict[str, Any]:
    out = render_configuration(cfg, arn_qualifier)
    for key in _NOT_LISTED:
        out.pop(key, None)
    return out


def _logging(cfg: FunctionConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"LogFormat": cfg.log_format}
    if cfg.application_log_level:
        out["ApplicationLogLevel"] = cfg.application_log_level
    if cfg.system_log_level:
        out["SystemLogLevel"] = cfg.system_log_level
    out["LogGroup"] = cfg.effective_log_group
    return out


def _logging_changes(logging: dict[str, Any] | None, current: FunctionConfig | None) -> dict[str, Any]:
    """FunctionConfig fields from a LoggingConfig parameter (JSON logs default to INFO levels, as AWS)."""
    if not logging:
        return {}
    fmt = logging.get("LogFormat") or (current.log_format if current else "Text")
    changes: dict[str, Any] = {"log_format": fmt}
    if "LogGroup" in logging:
        changes["log_group"] = logging["LogGroup"] or None
    if fmt == "JSON":
        changes["application_log_level"] = logging.get("ApplicationLogLevel") or (
            current.application_log_level if current and current.application_log_level else "INFO"
        )
        changes["system_log_level"] = logging.get("SystemLogLevel") or (
            current.system_log_level if current and current.system_log_level else "INFO"
        )
    else:
        changes["application_log_level"] = None
        changes["system_log_level"] = None
    return changes


def _check_zip(zip_file: bytes) -> int:
    """Check an archive (its zipped size was checked where it came from); return its declared unzipped size."""
    try:
        return inspect_zip(zip_file)
    except ZipRejected as exc:
        raise errors.invalid_parameter(str(exc)) from None


@maps_domain_errors
class LambdaProvider:
    def __init__(
        self, settings: Settings, store: FunctionStore, functions: FunctionService, code_signer: CodeUrlSigner,
        *, reserved_concurrency: Callable[[str], int | None] | None = None,
        role_assumable: Callable[[str], bool] | None = None, s3_code: S3Reader | None = None,
        vpc_check: VpcCheck | None = None,
        mappings: MappingStore | None = None,
    ) -> None:
        self._s3_code = s3_code
        # Event source mappings are taggable by their ARN too; their tags live with the mappings.
        self._mappings = mappings
        self._settings = settings
        self._store = store
        self._functions = functions
        self._signer = code_signer
        # The concurrency limiter owns reservations; GetFunction only reports them.
        self._reserved = reserved_concurrency or (lambda arn: None)
        # IAM owns roles: whether a role exists and trusts lambda.amazonaws.com (None: no IAM, any role).
        self._role_assumable = role_assumable
        # EC2 owns subnets and security groups: a VpcConfig's VPC, or Lambda's error naming what is missing.
        self._vpc_check = vpc_check

    def _vpc_fields(self, ctx: RequestContext, vpc: dict[str, Any] | None) -> dict[str, Any]:
        """FunctionConfig fields from a VpcConfig parameter (an empty one removes the configuration)."""
        vpc = vpc or {}
        subnets = list(vpc.get("SubnetIds") or [])
        groups = list(vpc.get("SecurityGroupIds") or [])
        if subnets and not groups:
            raise errors.invalid_parameter("SecurityGroupIds are required when SubnetIds are specified.")
        vpc_id = ""
        if subnets and self._vpc_check is not None:
            vpc_id = self._vpc_check(ctx.account_id, ctx.region, subnets, groups)
        return {"vpc_subnet_ids": tuple(subnets), "vpc_security_group_ids": tuple(groups) if subnets else (),
                "vpc_id": vpc_id, "vpc_ipv6_dual_stack": bool(vpc.get("Ipv6AllowedForDualStack")) if subnets else False,
                "vpc_set": True}

    def _check_role(self, role: str) -> None:
        if self._role_assumable is not None and not self._role_assumable(role):
            raise errors.invalid_parameter("The role defined for the function cannot be assumed by Lambda.")

    # -- helpers -----------------------------------------------------------------------------------

    def _ref(
        self,
        ctx: RequestContext,
        params: dict[str, Any],
        action: str,
        *,
        key: str = "FunctionName",
        qualifier: str | None = None,
    ) -> FunctionRef:
        return self._functions.parse_ref(ctx.account_id, ctx.region, params[key], qualifier, action=action)

    def _mapping_uuid(self, resource: str) -> str | None:
        """The UUID of the caller's event source mapping `resource` names, None when it names no
        mapping; raises AWS's not-found error for a mapping that does not exist (here)."""
        if ":event-source-mapping:" not in resource or self._mappings is None:
            return None
        mapping = self._mappings.get(resource.rsplit(":", 1)[1])
        if mapping is None or mapping.arn != resource or mapping.state == DELETING:
            raise AwsError("ResourceNotFoundException", f"Event source mapping not found: {resource}", 404,
                           fields={"Type": "User"}, message_key="Message")
        return mapping.uuid

    def _tag_target(self, ctx: RequestContext, resource: str, action: str) -> tuple[str, str]:
        """The owner and name of the function `resource` names (another account's when its policy allows)."""
        if ":function:" not in resource:
            # Hearth keeps tags on functions only: other taggable resources are answered as missing, in
            # the words AWS uses for each kind.
            for kind, what in ((":event-source-mapping:", "Event source mapping"),
                               (":capacity-provider:", "Capacity provider")):
                if kind in resource:
                    raise AwsError("ResourceNotFoundException", f"{what} not found: {resource}", 404,
                                   fields={"Type": "User"}, message_key="Message")
            raise errors.not_found(resource)
        ref = self._functions.parse_ref(ctx.account_id, ctx.region, resource, None, action=action)
        if ref.qualifier is not None:
            raise errors.invalid_parameter(
                "Tags on function aliases and versions are not supported. Please specify a function ARN."
            )
        return ref.account or ctx.account_id, ref.name

    # -- functions ---------------------------------------------------------------------------------

    async def create_function(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        validation.check_request_size(ctx.raw_body, "CreateFunction")
        ref = self._ref(ctx, params, "CreateFunction")
        validation.check_create_name(ref.name)
        if params.get("PackageType") == "Image":
            raise errors.invalid_parameter(
                "Container image functions (PackageType Image) are not supported by Hearth yet; use Zip."
            )
        runtime, handler = params.get("Runtime"), params.get("Handler")
        if not runtime or not handler:
            raise errors.invalid_parameter(
                "Runtime and Handler are mandatory parameters for functions created with deployment packages."
            )
        validation.check_runtime(runtime)
        validation.check_limits(params)
        self._check_role(params["Role"])
        variables = dict((params.get("Environment") or {}).get("Variables") or {})
        validation.check_environment(variables)
        zip_file = await code_source.package(params.get("Code") or {}, ctx.account_id, self._s3_code)
        unzipped = _check_zip(zip_file)
        tags = dict(params.get("Tags") or {})
        validation.check_tags(len(tags))
        layer_fields = self._functions.layer_fields(ctx.account_id, ctx.region, list(params.get("Layers") or []),
                                                    unzipped)
        cfg = FunctionConfig(
            account_id=ctx.account_id,
            region=ctx.region,
            name=ref.name,
            runtime=runtime,
            role=params["Role"],
            handler=handler,
            code_sha256="",
            code_size=0,
            revision_id="",
            last_modified="",
            description=params.get("Description") or "",
            timeout=params.get("Timeout") or 3,
            memory_size=params.get("MemorySize") or 128,
            environment=variables,
            environment_set=params.get("Environment") is not None,
            tracing_mode=(params.get("TracingConfig") or {}).get("Mode") or "PassThrough",
            architectures=tuple(params.get("Architectures") or ("x86_64",)),
            ephemeral_storage=(params.get("EphemeralStorage") or {}).get("Size") or 512,
            dead_letter_target=(params.get("DeadLetterConfig") or {}).get("TargetArn") or None,
            kms_key_arn=params.get("KMSKeyArn") or None,
            snap_start_apply_on=(params.get("SnapStart") or {}).get("ApplyOn") or "None",
        )
        cfg = cfg.replace(**_logging_changes(params.get("LoggingConfig"), None), **layer_fields,
                          code_unzipped_size=unzipped)
        if "VpcConfig" in params:
            cfg = cfg.replace(**self._vpc_fields(ctx, params["VpcConfig"]))
        validation.check_snap_start(cfg.snap_start_apply_on, cfg.runtime)
        created = await self._functions.create(cfg, zip_file, tags, publish=bool(params.get("Publish")))
        return render_configuration(created)

    def get_function(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ref = self._ref(ctx, params, "GetFunction", qualifier=params.get("Qualifier"))
        owner = ref.account or ctx.account_id
        cfg = self._functions.get_qualified(owner, ctx.region, ref.name, ref.qualifier)
        out: dict[str, Any] = {
            "Configuration": render_configuration(cfg, ref.qualifier),
            "Code": {
                "RepositoryType": "S3",
                "Location": self._signer.url(self._settings.endpoint_url, owner, cfg.code_sha256),
            },
        }
        if owner == ctx.account_id:  # tags are the owner's business
            tags = self._store.get_tags(owner, ctx.region, cfg.name)
            if tags:
                out["Tags"] = tags
        reserved = self._reserved(function_arn(ctx.region, owner, cfg.name))
        if reserved is not None:
            out["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
        return out

    def get_function_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ref = self._ref(ctx, params, "GetFunctionConfiguration", qualifier=params.get("Qualifier"))
        owner = ref.account or ctx.account_id
        return render_configuration(self._functions.get_qualified(owner, ctx.region, ref.name, ref.qualifier),
                                    ref.qualifier)

    def list_functions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        # MasterRegion (Lambda@Edge replicas) does not apply.
        all_versions = params.get("FunctionVersion") == "ALL"
        configs, marker = self._functions.list_functions(
            ctx.account_id, ctx.region, marker=params.get("Marker") or None, max_items=params.get("MaxItems"),
            all_versions=all_versions,
        )
        out: dict[str, Any] = {
            "Functions": [_list_entry(c, c.version if all_versions else None) for c in configs]
        }
        if marker is not None:
            out["NextMarker"] = marker
        return out

    async def update_function_code(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        validation.check_request_size(ctx.raw_body, "UpdateFunctionCode")
        ref = self._ref(ctx, params, "UpdateFunctionCode")
        if ref.qualifier is not None:
            raise errors.not_found(function_arn(ctx.region, ctx.account_id, ref.name, ref.qualifier))
        zip_file = await code_source.package(params, ctx.account_id, self._s3_code)
        unzipped = _check_zip(zip_file)
        publish = bool(params.get("Publish"))
        cfg = await self._functions.update_code(
            ctx.account_id,
            ctx.region,
            ref.name,
            zip_file,
            revision_id=params.get("RevisionId"),
            dry_run=bool(params.get("DryRun")),
            publish=publish,
            unzipped_size=unzipped,
        )
        # With Publish, AWS answers with the new version (qualified ARN, Version "N", Pending).
        return render_configuration(cfg, cfg.version if cfg.version != LATEST else None)

    def update_function_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ref = self._ref(ctx, params, "UpdateFunctionConfiguration")
        if ref.qualifier is not None:
            raise errors.not_found(function_arn(ctx.region, ctx.account_id, ref.name, ref.qualifier))
        validation.check_limits(params)
        current = self._functions.get(ctx.account_id, ctx.region, ref.name)
        changes: dict[str, Any] = {}
        simple = {
            "Role": "role",
            "Handler": "handler",
            "Description": "description",
            "Timeout": "timeout",
            "MemorySize": "memory_size",
            "KMSKeyArn": "kms_key_arn",
        }
        for param, attr in simple.items():
            if param in params:
                changes[attr] = params[param]
        if "Role" in params:
            self._check_role(params["Role"])
        if "Runtime" in params:
            validation.check_runtime(params["Runtime"])
            changes["runtime"] = params["Runtime"]
        if "Environment" in params:
            variables = dict((params["Environment"] or {}).get("Variables") or {})
            validation.check_environment(variables)
            changes["environment"] = variables
            changes["environment_set"] = True
        if "TracingConfig" in params:
            changes["tracing_mode"] = (params["TracingConfig"] or {}).get("Mode") or "PassThrough"
        if "VpcConfig" in params:
            changes.update(self._vpc_fields(ctx, params["VpcConfig"]))
        if "EphemeralStorage" in params:
            changes["ephemeral_storage"] = (params["EphemeralStorage"] or {}).get("Size") or 512
        if "DeadLetterConfig" in params:
            changes["dead_letter_target"] = (params["DeadLetterConfig"] or {}).get("TargetArn") or None
        if "SnapStart" in params:
            changes["snap_start_apply_on"] = (params["SnapStart"] or {}).get("ApplyOn") or "None"
        layers = list(params.get("Layers") or []) if "Layers" in params else None
        changes.update(_logging_changes(params.get("LoggingConfig"), current))
        validation.check_snap_start(changes.get("snap_start_apply_on", current.snap_start_apply_on),
                                    changes.get("runtime", current.runtime))
        cfg = self._functions.update_configuration(
            ctx.account_id, ctx.region, ref.name, changes, revision_id=params.get("RevisionId"), layers=layers
        )
        return render_configuration(cfg)

    def delete_function(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ref = self._ref(ctx, params, "DeleteFunction", qualifier=params.get("Qualifier"))
        q = ref.qualifier
        owner = ref.account or ctx.account_id
        if q is not None and not q.isdigit() and set(q) <= _ALIAS_LIKE:
            raise errors.invalid_parameter("Deletion of aliases is not currently supported.")
        # $LATEST is refused before the function is looked up: AWS answers so even for a missing function.
        if q == LATEST:
            raise errors.invalid_parameter("$LATEST version cannot be deleted without deleting the function.")
        self._functions.get(owner, ctx.region, ref.name)  # not found, unqualified, as AWS
        if q is not None:
            # Deleting a version that does not exist (of a function that does) succeeds: AWS's
            # DeleteFunction is idempotent there.
            if self._store.get_version(owner, ctx.region, ref.name, q) is not None:
                self._functions.delete_version(owner, ctx.region, ref.name, q)
            return {"StatusCode": 204}
        self._functions.delete(owner, ctx.region, ref.name)
        return {"StatusCode": 204}

    # -- tags --------------------------------------------------------------------------------------

    def tag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        mapping = self._mapping_uuid(params["Resource"])
        tags = dict(params.get("Tags") or {})
        if mapping is not None and self._mappings is not None:
            if not tags:
                raise errors.invalid_parameter("An error occurred and the request cannot be processed.")
            validation.check_tags(len(set(self._mappings.tags(mapping)) | set(tags)))
            self._mappings.set_tags(mapping, tags)
            return {}
        owner, name = self._tag_target(ctx, params["Resource"], "TagResource")
        if not tags:
            raise errors.invalid_parameter("An error occurred and the request cannot be processed.")
        existing = self._functions.tags(owner, ctx.region, name)
        validation.check_tags(len(set(existing) | set(tags)))
        self._functions.tag(owner, ctx.region, name, tags)
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        keys = list(params.get("TagKeys") or [])
        if not keys:
            raise ValidationError(
                "1 validation error detected: Value null at 'tagKeys' failed to satisfy "
                "constraint: Member must not be null"
            )
        mapping = self._mapping_uuid(params["Resource"])
        if mapping is not None and self._mappings is not None:
            self._mappings.remove_tags(mapping, keys)
            return {}
        owner, name = self._tag_target(ctx, params["Resource"], "UntagResource")
        self._functions.untag(owner, ctx.region, name, keys)
        return {}

    def list_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        mapping = self._mapping_uuid(params["Resource"])
        if mapping is not None and self._mappings is not None:
            return {"Tags": self._mappings.tags(mapping)}
        owner, name = self._tag_target(ctx, params["Resource"], "ListTags")
        return {"Tags": self._functions.tags(owner, ctx.region, name)}
