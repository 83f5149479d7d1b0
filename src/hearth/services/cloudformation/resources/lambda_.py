"""CloudFormation resource types of Lambda: functions, permissions, versions, aliases, mappings, URLs,
layers and event invoke configurations."""

from __future__ import annotations

import io
import uuid
import zipfile
from typing import Any

from hearth.aws.errors import AwsError
from hearth.services.cloudformation.resources.base import (
    Handler,
    Outcome,
    ResourceFailed,
    ResourceRequest,
    ignore_missing,
    tags_dict,
    wait_until,
)

# Function configuration members that CloudFormation passes through under the same names.
_CONFIG = ("Description", "Handler", "Runtime", "Role", "MemorySize", "Timeout", "Environment", "Layers",
           "TracingConfig", "DeadLetterConfig", "EphemeralStorage", "LoggingConfig", "SnapStart", "VpcConfig",
           "KMSKeyArn", "RuntimeManagementConfig", "FileSystemConfigs", "ImageConfig")


def _inline_zip(source: str, runtime: str) -> bytes:
    """`Code.ZipFile`: CloudFormation writes the source as `index.py` / `index.js`."""
    name = "index.js" if runtime.startswith("nodejs") else "index.py"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        archive.writestr(info, source)
    return buffer.getvalue()


def _code(props: dict[str, Any]) -> dict[str, Any]:
    code = dict(props.get("Code") or {})
    if "ZipFile" in code:
        return {"ZipFile": _inline_zip(str(code["ZipFile"]), str(props.get("Runtime", "")))}
    return {k: code[k] for k in ("S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri") if k in code}


def _config(props: dict[str, Any]) -> dict[str, Any]:
    out = {k: props[k] for k in _CONFIG if k in props}
    if "KMSKeyArn" in out:
        out["KMSKeyArn"] = out.pop("KMSKeyArn")
    if "Architectures" in props:
        out["Architectures"] = props["Architectures"]
    return out


async def _wait_ready(r: ResourceRequest, name: str) -> dict[str, Any]:
    state: dict[str, Any] = {}

    async def ready() -> bool:
        nonlocal state
        state = (await r.client("lambda", "GetFunction", {"FunctionName": name}))["Configuration"]
        if state.get("State") == "Failed":
            raise ResourceFailed(f"Function {name} failed: {state.get('StateReason', '')}")
        return state.get("State") == "Active" and state.get("LastUpdateStatus") in (None, "Successful")

    await wait_until(ready, 300, f"function {name} to become Active")
    return state


class Function(Handler):
    type = "AWS::Lambda::Function"
    attributes = ("Arn", "SnapStartResponse", "SnapStartResponse.ApplyOn", "SnapStartResponse.OptimizationStatus")
    replace_on = frozenset({"FunctionName", "PackageType"})

    async def create(self, r: ResourceRequest) -> Outcome:
        props = r.properties
        name = r.name("FunctionName", 64)
        params = {"FunctionName": name, "Code": _code(props), "PackageType": props.get("PackageType"),
                  "Tags": tags_dict(props.get("Tags")) or None,
                  "CodeSigningConfigArn": props.get("CodeSigningConfigArn"),
                  **_config(props)}
        await r.client("lambda", "CreateFunction", params)
        r.created = name
        if "ReservedConcurrentExecutions" in props:
            await r.client("lambda", "PutFunctionConcurrency", {
                "FunctionName": name, "ReservedConcurrentExecutions": int(props["ReservedConcurrentExecutions"])})
        state = await _wait_ready(r, name)
        return Outcome(name, _function_attributes(state))

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        props = r.properties
        name = str(r.physical_id)
        if props.get("Code") != old.get("Code"):
            await r.client("lambda", "UpdateFunctionCode", {"FunctionName": name, **_code(props)})
            await _wait_ready(r, name)
        config = _config(props)
        for key in _CONFIG:  # a property removed from the template goes back to AWS's default
            if key in old and key not in props and key in ("Description", "Environment", "Layers"):
                config[key] = {"Description": "", "Environment": {"Variables": {}}, "Layers": []}[key]
        await r.client("lambda", "UpdateFunctionConfiguration", {"FunctionName": name, **config})
        if props.get("ReservedConcurrentExecutions") != old.get("ReservedConcurrentExecutions"):
            if "ReservedConcurrentExecutions" in props:
                await r.client("lambda", "PutFunctionConcurrency", {
                    "FunctionName": name, "ReservedConcurrentExecutions": int(props["ReservedConcurrentExecutions"])})
            else:
                await r.client("lambda", "DeleteFunctionConcurrency", {"FunctionName": name})
        state = await _wait_ready(r, name)
        arn = state["FunctionArn"]
        new_tags, old_tags = tags_dict(props.get("Tags")), tags_dict(old.get("Tags"))
        if new_tags != old_tags:
            gone = [k for k in old_tags if k not in new_tags]
            if gone:
                await r.client("lambda", "UntagResource", {"Resource": arn, "TagKeys": gone})
            if new_tags:
                await r.client("lambda", "TagResource", {"Resource": arn, "Tags": new_tags})
        return Outcome(name, _function_attributes(state))

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("lambda", "DeleteFunction", {"FunctionName": str(r.physical_id)}))


def _function_attributes(state: dict[str, Any]) -> dict[str, Any]:
    snap = state.get("SnapStart") or {"ApplyOn": "None", "OptimizationStatus": "Off"}
    return {"Arn": state["FunctionArn"], "SnapStartResponse": snap,
            "SnapStartResponse.ApplyOn": snap.get("ApplyOn"),
            "SnapStartResponse.OptimizationStatus": snap.get("OptimizationStatus")}


class Permission(Handler):
    type = "AWS::Lambda::Permission"
    updatable = False

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        sid = f"{r.stack_name}-{r.logical_id}-{uuid.uuid4().hex[:12]}"[-100:]
        params = {"FunctionName": p["FunctionName"], "StatementId": sid, "Action": p["Action"],
                  "Principal": p["Principal"], "SourceArn": p.get("SourceArn"), "SourceAccount": p.get("SourceAccount"),
                  "EventSourceToken": p.get("EventSourceToken"), "PrincipalOrgID": p.get("PrincipalOrgID"),
                  "FunctionUrlAuthType": p.get("FunctionUrlAuthType")}
        await r.client("lambda", "AddPermission", params)
        return Outcome(sid)

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("lambda", "RemovePermission", {
            "FunctionName": r.properties["FunctionName"], "StatementId": str(r.physical_id)}))


class Version(Handler):
    type = "AWS::Lambda::Version"
    attributes = ("Version", "FunctionArn")
    updatable = False

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        await _wait_ready(r, str(p["FunctionName"]))
        out = await r.client("lambda", "PublishVersion", {
            "FunctionName": p["FunctionName"], "Description": p.get("Description"), "CodeSha256": p.get("CodeSha256")})
        if p.get("ProvisionedConcurrencyConfig"):
            await r.client("lambda", "PutProvisionedConcurrencyConfig", {
                "FunctionName": p["FunctionName"], "Qualifier": out["Version"],
                "ProvisionedConcurrentExecutions": int(p["ProvisionedConcurrencyConfig"]
                                                       ["ProvisionedConcurrentExecutions"])})
        arn = out["FunctionArn"]
        return Outcome(arn, {"Version": out["Version"], "FunctionArn": arn.rsplit(":", 1)[0]})

    async def delete(self, r: ResourceRequest) -> None:
        arn = str(r.physical_id)
        function, _, version = arn.rpartition(":")
        await ignore_missing(r.client("lambda", "DeleteFunction", {"FunctionName": function, "Qualifier": version}))


class Alias(Handler):
    type = "AWS::Lambda::Alias"
    attributes = ("AliasArn",)
    replace_on = frozenset({"FunctionName", "Name"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        out = await r.client("lambda", "CreateAlias", {
            "FunctionName": p["FunctionName"], "Name": p["Name"], "FunctionVersion": str(p["FunctionVersion"]),
            "Description": p.get("Description"), "RoutingConfig": p.get("RoutingConfig")})
        await self._provisioned(r, None)
        return Outcome(out["AliasArn"], {"AliasArn": out["AliasArn"]})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        p = r.properties
        out = await r.client("lambda", "UpdateAlias", {
            "FunctionName": p["FunctionName"], "Name": p["Name"], "FunctionVersion": str(p["FunctionVersion"]),
            "Description": p.get("Description", ""), "RoutingConfig": p.get("RoutingConfig") or {
                "AdditionalVersionWeights": {}}})
        await self._provisioned(r, old)
        return Outcome(out["AliasArn"], {"AliasArn": out["AliasArn"]})

    async def _provisioned(self, r: ResourceRequest, old: dict[str, Any] | None) -> None:
        p = r.properties
        wanted = p.get("ProvisionedConcurrencyConfig")
        had = (old or {}).get("ProvisionedConcurrencyConfig")
        if wanted:
            await r.client("lambda", "PutProvisionedConcurrencyConfig", {
                "FunctionName": p["FunctionName"], "Qualifier": p["Name"],
                "ProvisionedConcurrentExecutions": int(wanted["ProvisionedConcurrentExecutions"])})
        elif had:
            await ignore_missing(r.client("lambda", "DeleteProvisionedConcurrencyConfig", {
                "FunctionName": p["FunctionName"], "Qualifier": p["Name"]}))

    async def delete(self, r: ResourceRequest) -> None:
        p = r.properties
        await ignore_missing(r.client("lambda", "DeleteAlias", {"FunctionName": p["FunctionName"], "Name": p["Name"]}))


_MAPPING_FIELDS = ("BatchSize", "BisectBatchOnFunctionError", "DestinationConfig", "Enabled", "FilterCriteria",
                   "FunctionResponseTypes", "MaximumBatchingWindowInSeconds", "MaximumRecordAgeInSeconds",
                   "MaximumRetryAttempts", "ParallelizationFactor", "ScalingConfig", "TumblingWindowInSeconds",
                   "FunctionName")


class EventSourceMapping(Handler):
    type = "AWS::Lambda::EventSourceMapping"
    attributes = ("Id", "EventSourceMappingArn")
    replace_on = frozenset({"EventSourceArn", "StartingPosition", "StartingPositionTimestamp"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        params = {k: p[k] for k in _MAPPING_FIELDS if k in p}
        params.update({k: p[k] for k in ("EventSourceArn", "StartingPosition", "Tags", "Queues") if k in p})
        if "StartingPositionTimestamp" in p:
            params["StartingPositionTimestamp"] = _timestamp(p["StartingPositionTimestamp"])
        if "Tags" in params:
            params["Tags"] = tags_dict(params["Tags"])
        out = await r.client("lambda", "CreateEventSourceMapping", params)
        return Outcome(out["UUID"], {"Id": out["UUID"], "EventSourceMappingArn": out.get("EventSourceMappingArn")})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        p = r.properties
        params = {k: p[k] for k in _MAPPING_FIELDS if k in p}
        out = await r.client("lambda", "UpdateEventSourceMapping", {"UUID": str(r.physical_id), **params})
        return Outcome(out["UUID"], {"Id": out["UUID"], "EventSourceMappingArn": out.get("EventSourceMappingArn")})

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("lambda", "DeleteEventSourceMapping", {"UUID": str(r.physical_id)}))


def _timestamp(value: Any) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(float(value), UTC)


class Url(Handler):
    type = "AWS::Lambda::Url"
    attributes = ("FunctionArn", "FunctionUrl")
    replace_on = frozenset({"TargetFunctionArn", "Qualifier"})

    def _params(self, r: ResourceRequest) -> dict[str, Any]:
        p = r.properties
        return {"FunctionName": p["TargetFunctionArn"], "Qualifier": p.get("Qualifier"), "AuthType": p["AuthType"],
                "Cors": p.get("Cors"), "InvokeMode": p.get("InvokeMode")}

    async def create(self, r: ResourceRequest) -> Outcome:
        out = await r.client("lambda", "CreateFunctionUrlConfig", self._params(r))
        return Outcome(out["FunctionArn"], {"FunctionArn": out["FunctionArn"], "FunctionUrl": out["FunctionUrl"]})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        params = self._params(r)
        params.setdefault("Cors", {})
        out = await r.client("lambda", "UpdateFunctionUrlConfig", params)
        return Outcome(out["FunctionArn"], {"FunctionArn": out["FunctionArn"], "FunctionUrl": out["FunctionUrl"]})

    async def delete(self, r: ResourceRequest) -> None:
        p = r.properties
        await ignore_missing(r.client("lambda", "DeleteFunctionUrlConfig", {
            "FunctionName": p["TargetFunctionArn"], "Qualifier": p.get("Qualifier")}))


class LayerVersion(Handler):
    type = "AWS::Lambda::LayerVersion"
    attributes = ("LayerVersionArn",)
    updatable = False

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        name = r.name("LayerName", 64)
        content = dict(p.get("Content") or {})
        out = await r.client("lambda", "PublishLayerVersion", {
            "LayerName": name, "Description": p.get("Description"), "Content": content,
            "CompatibleRuntimes": p.get("CompatibleRuntimes"), "LicenseInfo": p.get("LicenseInfo"),
            "CompatibleArchitectures": p.get("CompatibleArchitectures")})
        arn = out["LayerVersionArn"]
        return Outcome(arn, {"LayerVersionArn": arn})

    async def delete(self, r: ResourceRequest) -> None:
        arn = str(r.physical_id)
        layer, _, number = arn.rpartition(":")
        await ignore_missing(r.client("lambda", "DeleteLayerVersion", {
            "LayerName": layer, "VersionNumber": int(number)}))


class LayerVersionPermission(Handler):
    type = "AWS::Lambda::LayerVersionPermission"
    updatable = False

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        layer, _, number = str(p["LayerVersionArn"]).rpartition(":")
        sid = f"{r.logical_id}-{uuid.uuid4().hex[:8]}"
        await r.client("lambda", "AddLayerVersionPermission", {
            "LayerName": layer, "VersionNumber": int(number), "StatementId": sid, "Action": p["Action"],
            "Principal": p["Principal"], "OrganizationId": p.get("OrganizationId")})
        return Outcome(f"{p['LayerVersionArn']}#{sid}")

    async def delete(self, r: ResourceRequest) -> None:
        layer_arn, _, sid = str(r.physical_id).partition("#")
        layer, _, number = layer_arn.rpartition(":")
        await ignore_missing(r.client("lambda", "RemoveLayerVersionPermission", {
            "LayerName": layer, "VersionNumber": int(number), "StatementId": sid}))


class EventInvokeConfig(Handler):
    type = "AWS::Lambda::EventInvokeConfig"
    replace_on = frozenset({"FunctionName", "Qualifier"})

    def _params(self, r: ResourceRequest) -> dict[str, Any]:
        p = r.properties
        return {"FunctionName": p["FunctionName"], "Qualifier": p["Qualifier"],
                "MaximumEventAgeInSeconds": p.get("MaximumEventAgeInSeconds"),
                "MaximumRetryAttempts": p.get("MaximumRetryAttempts"), "DestinationConfig": p.get("DestinationConfig")}

    async def create(self, r: ResourceRequest) -> Outcome:
        await r.client("lambda", "PutFunctionEventInvokeConfig", self._params(r))
        return Outcome(f"{r.properties['FunctionName']}:{r.properties['Qualifier']}:{uuid.uuid4()}")

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        await r.client("lambda", "PutFunctionEventInvokeConfig", self._params(r))
        return Outcome(str(r.physical_id))

    async def delete(self, r: ResourceRequest) -> None:
        p = r.properties
        try:
            await r.client("lambda", "DeleteFunctionEventInvokeConfig", {"FunctionName": p["FunctionName"],
                                                                          "Qualifier": p["Qualifier"]})
        except AwsError as err:
            if err.code != "ResourceNotFoundException":
                raise


HANDLERS: tuple[type[Handler], ...] = (Function, Permission, Version, Alias, EventSourceMapping, Url, LayerVersion,
                                      LayerVersionPermission, EventInvokeConfig)
