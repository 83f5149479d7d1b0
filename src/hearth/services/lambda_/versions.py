"""Lambda version and alias operations: PublishVersion, ListVersionsByFunction, and
Create/Get/Update/Delete/ListAliases.

It owns the translation between AWS's request/response shapes and the function domain for versions
and aliases. It never changes state itself (`FunctionService` does) and never invokes anything.
"""

from __future__ import annotations

from typing import Any

from hearth.aws.context import RequestContext
from hearth.functions import errors
from hearth.functions.aliases import Alias
from hearth.functions.names import FunctionRef, function_arn
from hearth.functions.service import MAX_PAGE, FunctionService
from hearth.services.lambda_.errors import maps_domain_errors
from hearth.services.lambda_.provider import _list_entry, render_configuration


def render_alias(alias: Alias) -> dict[str, Any]:
    out: dict[str, Any] = {
        "AliasArn": alias.arn,
        "Name": alias.name,
        "FunctionVersion": alias.function_version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    }
    if alias.weights:  # AWS leaves RoutingConfig out when it routes to one version only (recorded)
        out["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.weights)}
    return out


def _page(items: list[Any], key: Any, marker: str | None, max_items: int | None) -> tuple[list[Any], str | None]:
    """A page after `marker` (the key of the last item of the previous page)."""
    start = 0
    if marker:
        start = next((i + 1 for i, item in enumerate(items) if key(item) == marker), len(items))
    limit = min(max_items or MAX_PAGE, MAX_PAGE)
    page = items[start:start + limit]
    return page, (key(page[-1]) if start + limit < len(items) and page else None)


@maps_domain_errors
class LambdaVersionsProvider:
    def __init__(self, functions: FunctionService) -> None:
        self._functions = functions

    def _ref(self, ctx: RequestContext, params: dict[str, Any], action: str) -> FunctionRef:
        return self._functions.parse_ref(ctx.account_id, ctx.region, params["FunctionName"], None, action=action)

    def _unqualified(self, ctx: RequestContext, params: dict[str, Any], action: str) -> tuple[str, str]:
        """The function's owner and name. The owner is another account when the caller named another
        account's function and that function's policy lets it (`FunctionService.parse_ref` decides)."""
        ref = self._ref(ctx, params, action)
        owner = ref.account or ctx.account_id
        if ref.qualifier is not None:
            # Versions and aliases belong to the function, not to one of its qualifiers.
            raise errors.not_found(function_arn(ctx.region, owner, ref.name, ref.qualifier))
        return owner, ref.name

    # -- versions ----------------------------------------------------------------------------------

    def publish_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        owner, name = self._unqualified(ctx, params, "PublishVersion")
        cfg = self._functions.publish_version(
            owner, ctx.region, name, code_sha256=params.get("CodeSha256"),
            revision_id=params.get("RevisionId"), description=params.get("Description"),
        )
        return render_configuration(cfg, cfg.version)

    def list_versions_by_function(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        owner, name = self._unqualified(ctx, params, "ListVersionsByFunction")
        configs = self._functions.list_versions(owner, ctx.region, name)
        page, marker = _page(configs, lambda c: c.version, params.get("Marker"), params.get("MaxItems"))
        out: dict[str, Any] = {"Versions": [_list_entry(c, c.version) for c in page]}
        if marker is not None:
            out["NextMarker"] = marker
        return out

    # -- aliases -----------------------------------------------------------------------------------

    def create_alias(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        owner, name = self._unqualified(ctx, params, "CreateAlias")
        weights = dict((params.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})
        alias = self._functions.create_alias(
            owner, ctx.region, name, params["Name"], params["FunctionVersion"],
            params.get("Description") or "", weights,
        )
        return render_alias(alias)

    def get_alias(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        owner, name = self._unqualified(ctx, params, "GetAlias")
        return render_alias(self._functions.get_alias(owner, ctx.region, name, params["Name"]))

    def update_alias(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        owner, name = self._unqualified(ctx, params, "UpdateAlias")
        weights: dict[str, float] | None = None
        if "RoutingConfig" in params:
            weights = dict((params.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})
        alias = self._functions.update_alias(
            owner, ctx.region, name, params["Name"], version=params.get("FunctionVersion"),
            description=params.get("Description"), weights=weights, revision_id=params.get("RevisionId"),
        )
        return render_alias(alias)

    def delete_alias(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        owner, name = self._unqualified(ctx, params, "DeleteAlias")
        self._functions.delete_alias(owner, ctx.region, name, params["Name"])
        return {}

    def list_aliases(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        owner, name = self._unqualified(ctx, params, "ListAliases")
        aliases = self._functions.list_aliases(owner, ctx.region, name, params.get("FunctionVersion"))
        page, marker = _page(aliases, lambda a: a.name, params.get("Marker"), params.get("MaxItems"))
        out: dict[str, Any] = {"Aliases": [render_alias(a) for a in page]}
        if marker is not None:
            out["NextMarker"] = marker
        return out
