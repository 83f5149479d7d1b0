"""Lambda layer operations: PublishLayerVersion, GetLayerVersion(ByArn), ListLayers,
ListLayerVersions, DeleteLayerVersion and the layer version permissions.

It owns the translation between AWS's request/response shapes and `hearth.functions.layers`:
which account a LayerName or ARN points into, who may read another account's layer version, and
the exact fields AWS returns. It never stores anything itself.
"""

from __future__ import annotations

import base64
from typing import Any

from hearth.aws.context import RequestContext
from hearth.config import Settings
from hearth.functions import errors, policy
from hearth.functions.layers import (
    LayerService,
    LayerVersion,
    check_version_number,
    layer_arn,
    parse_layer_name,
    parse_layer_version_arn,
)
from hearth.services.lambda_ import code_source, validation
from hearth.services.lambda_.code_source import S3Reader
from hearth.services.lambda_.code_url import CodeUrlSigner
from hearth.services.lambda_.errors import maps_domain_errors


def _version_item(lv: LayerVersion) -> dict[str, Any]:
    out: dict[str, Any] = {
        "LayerVersionArn": lv.arn,
        "Version": lv.version,
        "Description": lv.description,
        "CreatedDate": lv.created_date,
    }
    # AWS leaves out what the publisher did not name, and answers an empty list it was given.
    if lv.compatible_runtimes is not None:
        out["CompatibleRuntimes"] = list(lv.compatible_runtimes)
    if lv.compatible_architectures is not None:
        out["CompatibleArchitectures"] = list(lv.compatible_architectures)
    if lv.license_info is not None:
        out["LicenseInfo"] = lv.license_info
    return out


@maps_domain_errors
class LambdaLayersProvider:
    def __init__(self, settings: Settings, layers: LayerService, signer: CodeUrlSigner, *,
                 s3_code: S3Reader | None = None) -> None:
        self._s3_code = s3_code
        self._settings = settings
        self._layers = layers
        self._signer = signer

    def _render(self, lv: LayerVersion) -> dict[str, Any]:
        out = _version_item(lv)
        out.update({
            "LayerArn": lv.layer_arn,
            "Content": {
                "Location": self._signer.url(self._settings.endpoint_url, lv.account_id, lv.code_sha256),
                "CodeSha256": base64.b64encode(bytes.fromhex(lv.code_sha256)).decode(),
                "CodeSize": lv.code_size,
            },
        })
        return out

    def _target(self, ctx: RequestContext, layer_name: str) -> tuple[str, str]:
        """(owner account, layer name) of a LayerName parameter in the caller's region."""
        account, region, name = parse_layer_name(layer_name, ctx.account_id, ctx.region)
        if region != ctx.region:
            raise errors.resource_not_found(errors.NOT_EXIST)
        return account, name

    def _own(self, ctx: RequestContext, layer_name: str, version: int | None = None) -> str:
        """The layer name for an operation only the owner may perform."""
        account, name = self._target(ctx, layer_name)
        if account != ctx.account_id:
            arn = layer_arn(ctx.region, account, name, version)
            raise errors.access_denied(ctx.account_id, "GetLayerVersion", arn)
        return name

    def _readable(self, ctx: RequestContext, account: str, name: str, version: int) -> LayerVersion:
        check_version_number(version)
        lv = self._layers.get(account, ctx.region, name, version)
        if lv is None:
            if account != ctx.account_id:  # do not tell another account what exists
                raise errors.access_denied(ctx.account_id, "GetLayerVersion",
                                           layer_arn(ctx.region, account, name, version))
            raise errors.resource_not_found(errors.NOT_EXIST)
        if not self._layers.may_use(ctx.account_id, lv):
            raise errors.access_denied(ctx.account_id, "GetLayerVersion", lv.arn)
        return lv

    # -- versions ----------------------------------------------------------------------------------

    async def publish_layer_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        validation.check_request_size(ctx.raw_body, "PublishLayerVersion")
        name = self._own(ctx, params["LayerName"])
        zip_file = await code_source.package(params.get("Content") or {}, ctx.account_id, self._s3_code)
        lv = await self._layers.publish(
            ctx.account_id, ctx.region, name, zip_file, description=params.get("Description") or "",
            license_info=params.get("LicenseInfo"), runtimes=params.get("CompatibleRuntimes"),
            architectures=params.get("CompatibleArchitectures"),
        )
        return self._render(lv)

    def get_layer_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        account, name = self._target(ctx, params["LayerName"])
        return self._render(self._readable(ctx, account, name, int(params["VersionNumber"])))

    def get_layer_version_by_arn(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        parts = parse_layer_version_arn(params["Arn"])
        if parts is None or parts[1] != ctx.region:
            raise errors.resource_not_found(errors.NOT_EXIST)
        account, _region, name, version = parts
        return self._render(self._readable(ctx, account, name, version))

    def list_layers(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found, marker = self._layers.list_layers(
            ctx.account_id, ctx.region, runtime=params.get("CompatibleRuntime"),
            architecture=params.get("CompatibleArchitecture"), marker=params.get("Marker"),
            max_items=params.get("MaxItems"),
        )
        out: dict[str, Any] = {"Layers": [
            {"LayerName": lv.name, "LayerArn": lv.layer_arn, "LatestMatchingVersion": _version_item(lv)}
            for lv in found
        ]}
        if marker is not None:
            out["NextMarker"] = marker
        return out

    def list_layer_versions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        account, name = self._target(ctx, params["LayerName"])
        found, marker = self._layers.list_versions(
            account, ctx.region, name, runtime=params.get("CompatibleRuntime"),
            architecture=params.get("CompatibleArchitecture"), marker=params.get("Marker"),
            max_items=params.get("MaxItems"),
        )
        if account != ctx.account_id:  # another account sees only the versions shared with it
            found = [lv for lv in found if self._layers.may_use(ctx.account_id, lv)]
        out: dict[str, Any] = {"LayerVersions": [_version_item(lv) for lv in found]}
        if marker is not None:
            out["NextMarker"] = marker
        return out

    def delete_layer_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        version = int(params["VersionNumber"])
        check_version_number(version)
        name = self._own(ctx, params["LayerName"], version)
        self._layers.delete(ctx.account_id, ctx.region, name, version)
        return {}

    # -- permissions -------------------------------------------------------------------------------

    def add_layer_version_permission(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        version = int(params["VersionNumber"])
        name = self._own(ctx, params["LayerName"], version)
        if params.get("OrganizationId"):
            # Hearth has no AWS Organizations: a grant to one could never be checked, so refuse it.
            raise errors.invalid_parameter(
                "Hearth has no AWS Organizations: OrganizationId is not supported. Grant the account id "
                '(or "*") in Principal instead.'
            )
        statement, revision = self._layers.add_permission(
            ctx.account_id, ctx.region, name, version, sid=params["StatementId"], action=params["Action"],
            principal=params["Principal"], organization_id=None, revision_id=params.get("RevisionId"),
        )
        return {"Statement": policy.statement_json(statement), "RevisionId": revision}

    def remove_layer_version_permission(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        version = int(params["VersionNumber"])
        name = self._own(ctx, params["LayerName"], version)
        self._layers.remove_permission(ctx.account_id, ctx.region, name, version, sid=params["StatementId"],
                                       revision_id=params.get("RevisionId"))
        return {}

    def get_layer_version_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        version = int(params["VersionNumber"])
        name = self._own(ctx, params["LayerName"], version)
        document, revision = self._layers.get_policy(ctx.account_id, ctx.region, name, version)
        return {"Policy": document, "RevisionId": revision}
