"""Lambda resource-based policy operations: AddPermission, RemovePermission, GetPolicy.

It owns the translation between AWS's request/response shapes and the function domain's policies
(statement arguments, the statement and policy JSON strings AWS returns). It never evaluates
policies (`hearth.functions.policy` does) and never stores anything itself.
"""

from __future__ import annotations

from typing import Any

from hearth.aws.context import RequestContext
from hearth.functions import policy
from hearth.functions.names import FunctionRef
from hearth.functions.service import FunctionService
from hearth.services.lambda_.errors import maps_domain_errors


@maps_domain_errors
class LambdaPolicyProvider:
    def __init__(self, functions: FunctionService) -> None:
        self._functions = functions

    def _ref(self, ctx: RequestContext, params: dict[str, Any], action: str) -> FunctionRef:
        return self._functions.parse_ref(ctx.account_id, ctx.region, params["FunctionName"],
                                         params.get("Qualifier"), action=action)

    def add_permission(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ref = self._ref(ctx, params, "AddPermission")
        statement = self._functions.add_permission(
            ctx.account_id, ctx.region, ref.name, ref.qualifier,
            {
                "sid": params["StatementId"],
                "action": params["Action"],
                "principal": params["Principal"],
                "source_arn": params.get("SourceArn"),
                "source_account": params.get("SourceAccount"),
                "principal_org_id": params.get("PrincipalOrgID"),
                "function_url_auth_type": params.get("FunctionUrlAuthType"),
                "event_source_token": params.get("EventSourceToken"),
            },
            revision_id=params.get("RevisionId"),
        )
        return {"Statement": policy.statement_json(statement)}

    def remove_permission(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ref = self._ref(ctx, params, "RemovePermission")
        self._functions.remove_permission(ctx.account_id, ctx.region, ref.name, ref.qualifier,
                                          params["StatementId"], revision_id=params.get("RevisionId"))
        return {}

    def get_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ref = self._ref(ctx, params, "GetPolicy")
        document, revision = self._functions.get_policy(ctx.account_id, ctx.region, ref.name, ref.qualifier)
        return {"Policy": document, "RevisionId": revision}
