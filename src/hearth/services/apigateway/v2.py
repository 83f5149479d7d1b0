"""The HTTP API control plane (boto3's `apigatewayv2` client): Apis (with quick create), Routes,
Integrations, Stages, Deployments, Authorizers, and ImportApi / ReimportApi from OpenAPI.

It owns the HTTP API document in the store (kind "HTTP": PascalCase members as botocore's output
shapes spell them, plus `routes`, `integrations`, `authorizers`, `stages`, `deployments`) and AWS's
rules: quick create (`Target`) makes an `AWS_PROXY` (payload 2.0) or `HTTP_PROXY` integration, a
route (`$default` unless `RouteKey` says otherwise) and an auto-deploying `$default` stage. Every
change bumps `_revision`, which is how the front knows its compiled routes are stale; a deployment
freezes the routes, integrations and authorizers for stages without AutoDeploy. WebSocket APIs are
refused (not served yet). It never serves API requests.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any
from urllib.parse import urlsplit

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.apigateway import openapi
from hearth.services.apigateway.store import ApiStore, Doc, new_id

HTTP = "HTTP"
WEBSOCKET = "WEBSOCKET"
_PRIVATE = ("routes", "integrations", "authorizers", "stages", "deployments")


def not_found(message: str) -> AwsError:
    return AwsError("NotFoundException", message, 404)


def bad_request(message: str) -> AwsError:
    return AwsError("BadRequestException", message, 400)


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


class HttpApiProvider:
    def __init__(self, store: ApiStore, endpoint_url: str) -> None:
        self._store = store
        port = urlsplit(endpoint_url).port
        self._port = f":{port}" if port else ""

    # -- helpers ----------------------------------------------------------------------------------

    def _api(self, ctx: RequestContext, api_id: str) -> Doc:
        doc = self._store.get(api_id)
        if doc is None or doc["_kind"] not in (HTTP, WEBSOCKET) or doc["_account"] != ctx.principal.account_id \
                or doc["_region"] != ctx.region:
            raise not_found(f"Invalid API identifier specified {ctx.principal.account_id}:{api_id}")
        return doc

    def _save(self, doc: Doc) -> None:
        doc["_revision"] = int(doc.get("_revision", 0)) + 1
        for stage in doc["stages"].values():
            if stage.get("AutoDeploy"):
                stage["LastUpdatedDate"] = time.time()
        self._store.put(doc)

    @staticmethod
    def _out(doc: Doc) -> Doc:
        return {k: copy.deepcopy(v) for k, v in doc.items() if not k.startswith("_") and k not in _PRIVATE}

    # -- Apis -------------------------------------------------------------------------------------

    def create_api(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        protocol = p["ProtocolType"]
        if protocol == WEBSOCKET and not p.get("RouteSelectionExpression"):
            raise bad_request("RouteSelectionExpression is required for WEBSOCKET APIs")
        if protocol == WEBSOCKET and p.get("Target"):
            raise bad_request("Target is not supported for WEBSOCKET APIs")
        doc = self._new(ctx, p)
        if p.get("Target"):
            self._quick_create(doc, p)
        self._save(doc)
        return self._out(doc)

    def _new(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        api_id = self._store.unused_id()
        return _clean({
            "_id": api_id, "_kind": p.get("ProtocolType") or HTTP, "_account": ctx.principal.account_id,
            "_region": ctx.region, "ApiId": api_id, "Name": p.get("Name"),
            "ProtocolType": p.get("ProtocolType") or HTTP,
            "ApiEndpoint": f"{'ws' if p.get('ProtocolType') == WEBSOCKET else 'http'}://{api_id}.execute-api.localhost"
                           f"{self._port}",
            "ApiKeySelectionExpression": p.get("ApiKeySelectionExpression") or "$request.header.x-api-key",
            "RouteSelectionExpression": p.get("RouteSelectionExpression") or "${request.method} ${request.path}",
            "CorsConfiguration": p.get("CorsConfiguration"), "CreatedDate": time.time(),
            "Description": p.get("Description"), "DisableExecuteApiEndpoint": bool(p.get("DisableExecuteApiEndpoint")),
            "DisableSchemaValidation": p.get("DisableSchemaValidation"), "IpAddressType": "ipv4",
            "Tags": p.get("Tags") or {}, "Version": p.get("Version"),
            "routes": {}, "integrations": {}, "authorizers": {}, "stages": {}, "deployments": {},
        })

    def _quick_create(self, doc: Doc, p: dict[str, Any]) -> None:
        target: str = p["Target"]
        iid = new_id(7)
        if target.startswith("http://") or target.startswith("https://"):
            integ = {"IntegrationId": iid, "IntegrationType": "HTTP_PROXY", "IntegrationUri": target,
                     "IntegrationMethod": "ANY", "PayloadFormatVersion": "1.0", "ConnectionType": "INTERNET",
                     "TimeoutInMillis": 30000, "ApiGatewayManaged": True}
        else:
            integ = {"IntegrationId": iid, "IntegrationType": "AWS_PROXY", "IntegrationUri": target,
                     "IntegrationMethod": "POST", "PayloadFormatVersion": "2.0", "ConnectionType": "INTERNET",
                     "TimeoutInMillis": 30000, "ApiGatewayManaged": True}
        if p.get("CredentialsArn"):
            integ["CredentialsArn"] = p["CredentialsArn"]
        doc["integrations"][iid] = integ
        rid = new_id(7)
        doc["routes"][rid] = {"RouteId": rid, "RouteKey": p.get("RouteKey") or "$default",
                              "AuthorizationType": "NONE", "ApiKeyRequired": False, "ApiGatewayManaged": True,
                              "Target": f"integrations/{iid}"}
        now = time.time()
        doc["stages"]["$default"] = {"StageName": "$default", "AutoDeploy": True, "ApiGatewayManaged": True,
                                     "CreatedDate": now, "LastUpdatedDate": now, "DefaultRouteSettings": {
                                         "DetailedMetricsEnabled": False}, "RouteSettings": {},
                                     "StageVariables": {}, "Tags": {}}

    def get_api(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return self._out(self._api(ctx, p["ApiId"]))

    def get_apis(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        account, region = ctx.principal.account_id, ctx.region
        docs = sorted(self._store.all(HTTP, account, region) + self._store.all(WEBSOCKET, account, region),
                      key=lambda d: d["CreatedDate"])
        return {"Items": [self._out(d) for d in docs]}

    def update_api(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["ApiId"])
        for key in ("Name", "Description", "CorsConfiguration", "DisableExecuteApiEndpoint", "Version",
                    "ApiKeySelectionExpression", "RouteSelectionExpression", "DisableSchemaValidation"):
            if key in p:
                doc[key] = p[key]
        self._save(doc)
        return self._out(doc)

    def delete_api(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        self._api(ctx, p["ApiId"])
        self._store.delete(p["ApiId"])

    def delete_cors_configuration(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api(ctx, p["ApiId"])
        doc.pop("CorsConfiguration", None)
        self._save(doc)

    def import_api(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        spec = openapi.load(p.get("Body") or "")
        fields, routes, integrations, authorizers, warnings = openapi.import_http(spec)
        if warnings and p.get("FailOnWarnings"):
            raise bad_request("Warnings found during import:\n\t" + "\n\t".join(warnings))
        doc = self._new(ctx, {**fields, "ProtocolType": "HTTP"})
        self._fill(doc, routes, integrations, authorizers)
        self._save(doc)
        out = self._out(doc)
        if warnings:
            out["Warnings"] = warnings
        return out

    def reimport_api(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["ApiId"])
        spec = openapi.load(p.get("Body") or "")
        fields, routes, integrations, authorizers, warnings = openapi.import_http(spec)
        if warnings and p.get("FailOnWarnings"):
            raise bad_request("Warnings found during import:\n\t" + "\n\t".join(warnings))
        doc.update(fields)
        doc["routes"], doc["integrations"], doc["authorizers"] = {}, {}, {}
        self._fill(doc, routes, integrations, authorizers)
        self._save(doc)
        return self._out(doc)

    @staticmethod
    def _fill(doc: Doc, routes: list[Doc], integrations: list[Doc], authorizers: list[Doc]) -> None:
        for r in routes:
            doc["routes"][r["RouteId"]] = r
        for i in integrations:
            doc["integrations"][i["IntegrationId"]] = i
        for a in authorizers:
            doc["authorizers"][a["AuthorizerId"]] = a

    # -- Tags -------------------------------------------------------------------------------------

    def _tagged(self, ctx: RequestContext, arn: str) -> tuple[Doc, Doc]:
        parts = arn.split(":", 5)
        segs = (parts[5] if len(parts) == 6 else "").strip("/").split("/")
        if len(segs) >= 2 and segs[0] == "apis":
            doc = self._api(ctx, segs[1])
            if len(segs) == 2:
                return doc, doc
            if len(segs) == 4 and segs[2] == "stages":
                return doc, self._stage(doc, segs[3])
        raise not_found(f"Invalid resource identifier specified {arn}")

    def tag_resource(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc, target = self._tagged(ctx, p["ResourceArn"])
        target.setdefault("Tags", {}).update(p.get("Tags") or {})
        self._save(doc)
        return {}

    def untag_resource(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc, target = self._tagged(ctx, p["ResourceArn"])
        for key in p.get("TagKeys") or []:
            target.get("Tags", {}).pop(key, None)
        self._save(doc)

    def get_tags(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return {"Tags": dict(self._tagged(ctx, p["ResourceArn"])[1].get("Tags") or {})}

    # -- Routes -----------------------------------------------------------------------------------

    def _check_route(self, doc: Doc, p: dict[str, Any], exclude: str | None = None) -> None:
        key = p.get("RouteKey")
        if key is not None:
            if key != "$default" and doc["ProtocolType"] == HTTP:
                method, _, path = key.partition(" ")
                if not path.startswith("/") or method.upper() not in (
                        "ANY", "GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD"):
                    raise bad_request(f"Unable to create route {key}. Invalid route key.")
            if any(r["RouteKey"] == key and r["RouteId"] != exclude for r in doc["routes"].values()):
                raise AwsError("ConflictException", f"Route with key {key} already exists for this API", 409)
        if p.get("AuthorizerId") and p["AuthorizerId"] not in doc["authorizers"]:
            raise not_found(f"Invalid authorizer identifier specified {p['AuthorizerId']}")
        target = p.get("Target")
        if target and target.removeprefix("integrations/") not in doc["integrations"]:
            raise bad_request(f"Invalid integration identifier specified in target {target}")

    def create_route(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["ApiId"])
        self._check_route(doc, p)
        rid = new_id(7)
        route = _clean({"RouteId": rid, "RouteKey": p["RouteKey"], "ApiKeyRequired": bool(p.get("ApiKeyRequired")),
                        "AuthorizationType": p.get("AuthorizationType") or "NONE",
                        "AuthorizationScopes": p.get("AuthorizationScopes"), "AuthorizerId": p.get("AuthorizerId"),
                        "OperationName": p.get("OperationName"), "RequestParameters": p.get("RequestParameters"),
                        "RouteResponseSelectionExpression": p.get("RouteResponseSelectionExpression"),
                        "Target": p.get("Target")})
        doc["routes"][rid] = route
        self._save(doc)
        return copy.deepcopy(route)

    def _route(self, doc: Doc, rid: str) -> Doc:
        route: Doc | None = doc["routes"].get(rid)
        if route is None:
            raise not_found(f"Invalid Route identifier specified {rid}")
        return route

    def get_route(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return copy.deepcopy(self._route(self._api(ctx, p["ApiId"]), p["RouteId"]))

    def get_routes(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return {"Items": copy.deepcopy(list(self._api(ctx, p["ApiId"])["routes"].values()))}

    def update_route(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["ApiId"])
        route = self._route(doc, p["RouteId"])
        self._check_route(doc, p, exclude=route["RouteId"])
        for key in ("RouteKey", "ApiKeyRequired", "AuthorizationType", "AuthorizationScopes", "AuthorizerId",
                    "OperationName", "RequestParameters", "Target", "RouteResponseSelectionExpression"):
            if key in p:
                route[key] = p[key]
        self._save(doc)
        return copy.deepcopy(route)

    def create_route_response(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        """Two-way WebSocket routes: the route's RouteResponseSelectionExpression is what the front uses."""
        doc = self._api(ctx, p["ApiId"])
        route = self._route(doc, p["RouteId"])
        rrid = new_id(6)
        response = {"RouteResponseId": rrid, "RouteResponseKey": p["RouteResponseKey"]}
        route.setdefault("_responses", {})[rrid] = response
        self._save(doc)
        return dict(response)

    def delete_route(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api(ctx, p["ApiId"])
        self._route(doc, p["RouteId"])
        del doc["routes"][p["RouteId"]]
        self._save(doc)

    # -- Integrations -----------------------------------------------------------------------------

    def create_integration(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["ApiId"])
        kind = p["IntegrationType"]
        allowed = ("AWS_PROXY", "HTTP_PROXY") if doc["ProtocolType"] == HTTP else ("AWS_PROXY", "MOCK")
        if kind not in allowed:
            raise bad_request(f"Integration type {kind} is not supported for {doc['ProtocolType']} APIs by Hearth.")
        version = p.get("PayloadFormatVersion") or ("2.0" if kind == "AWS_PROXY" else "1.0")
        if version not in ("1.0", "2.0"):
            raise bad_request(f"Unsupported payload format version: {version}")
        iid = new_id(7)
        integ = _clean({"IntegrationId": iid, "IntegrationType": kind, "IntegrationUri": p.get("IntegrationUri"),
                        "IntegrationMethod": p.get("IntegrationMethod") or ("POST" if kind == "AWS_PROXY" else "ANY"),
                        "PayloadFormatVersion": version, "ConnectionType": p.get("ConnectionType") or "INTERNET",
                        "CredentialsArn": p.get("CredentialsArn"), "Description": p.get("Description"),
                        "TimeoutInMillis": p.get("TimeoutInMillis") or 30000,
                        "RequestParameters": p.get("RequestParameters")})
        doc["integrations"][iid] = integ
        self._save(doc)
        return copy.deepcopy(integ)

    def _integration(self, doc: Doc, iid: str) -> Doc:
        integ: Doc | None = doc["integrations"].get(iid)
        if integ is None:
            raise not_found(f"Invalid Integration identifier specified {iid}")
        return integ

    def get_integration(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return copy.deepcopy(self._integration(self._api(ctx, p["ApiId"]), p["IntegrationId"]))

    def get_integrations(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return {"Items": copy.deepcopy(list(self._api(ctx, p["ApiId"])["integrations"].values()))}

    def update_integration(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["ApiId"])
        integ = self._integration(doc, p["IntegrationId"])
        for key in ("IntegrationUri", "IntegrationMethod", "PayloadFormatVersion", "CredentialsArn", "Description",
                    "TimeoutInMillis", "RequestParameters", "IntegrationType"):
            if key in p:
                integ[key] = p[key]
        self._save(doc)
        return copy.deepcopy(integ)

    def delete_integration(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api(ctx, p["ApiId"])
        self._integration(doc, p["IntegrationId"])
        del doc["integrations"][p["IntegrationId"]]
        self._save(doc)

    # -- Authorizers ------------------------------------------------------------------------------

    def create_authorizer(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["ApiId"])
        kind = p["AuthorizerType"]
        if kind == "JWT" and not (p.get("JwtConfiguration") or {}).get("Issuer"):
            raise bad_request("JwtConfiguration.Issuer must be specified for JWT authorizers")
        if kind == "REQUEST" and not p.get("AuthorizerUri"):
            raise bad_request("AuthorizerUri must be specified for REQUEST authorizers")
        aid = new_id(6)
        auth = _clean({"AuthorizerId": aid, "Name": p.get("Name"), "AuthorizerType": kind,
                       "AuthorizerUri": p.get("AuthorizerUri"),
                       "AuthorizerPayloadFormatVersion": p.get("AuthorizerPayloadFormatVersion"),
                       "AuthorizerResultTtlInSeconds": p.get("AuthorizerResultTtlInSeconds", 0 if kind == "REQUEST"
                                                             else None),
                       "EnableSimpleResponses": p.get("EnableSimpleResponses"),
                       "IdentitySource": p.get("IdentitySource") or ["$request.header.Authorization"],
                       "JwtConfiguration": p.get("JwtConfiguration"),
                       "AuthorizerCredentialsArn": p.get("AuthorizerCredentialsArn")})
        doc["authorizers"][aid] = auth
        self._save(doc)
        return copy.deepcopy(auth)

    def _authorizer(self, doc: Doc, aid: str) -> Doc:
        auth: Doc | None = doc["authorizers"].get(aid)
        if auth is None:
            raise not_found(f"Invalid Authorizer identifier specified {aid}")
        return auth

    def get_authorizer(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return copy.deepcopy(self._authorizer(self._api(ctx, p["ApiId"]), p["AuthorizerId"]))

    def get_authorizers(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return {"Items": copy.deepcopy(list(self._api(ctx, p["ApiId"])["authorizers"].values()))}

    def delete_authorizer(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api(ctx, p["ApiId"])
        self._authorizer(doc, p["AuthorizerId"])
        del doc["authorizers"][p["AuthorizerId"]]
        self._save(doc)

    # -- Stages and deployments -------------------------------------------------------------------

    def create_stage(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["ApiId"])
        name = p["StageName"]
        if name in doc["stages"]:
            raise AwsError("ConflictException", f"Stage {name} already exists", 409)
        if p.get("DeploymentId") and p["DeploymentId"] not in doc["deployments"]:
            raise not_found(f"Invalid Deployment identifier specified {p['DeploymentId']}")
        now = time.time()
        stage = _clean({"StageName": name, "AutoDeploy": bool(p.get("AutoDeploy")),
                        "DeploymentId": p.get("DeploymentId"), "Description": p.get("Description"),
                        "StageVariables": p.get("StageVariables") or {}, "CreatedDate": now, "LastUpdatedDate": now,
                        "DefaultRouteSettings": p.get("DefaultRouteSettings") or {"DetailedMetricsEnabled": False},
                        "RouteSettings": p.get("RouteSettings") or {}, "Tags": p.get("Tags") or {},
                        "AccessLogSettings": p.get("AccessLogSettings")})
        doc["stages"][name] = stage
        self._save(doc)
        return copy.deepcopy(stage)

    def _stage(self, doc: Doc, name: str) -> Doc:
        stage: Doc | None = doc["stages"].get(name)
        if stage is None:
            raise not_found(f"Invalid stage identifier specified {name}")
        return stage

    def get_stage(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return copy.deepcopy(self._stage(self._api(ctx, p["ApiId"]), p["StageName"]))

    def get_stages(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return {"Items": copy.deepcopy(list(self._api(ctx, p["ApiId"])["stages"].values()))}

    def update_stage(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["ApiId"])
        stage = self._stage(doc, p["StageName"])
        if p.get("DeploymentId") and p["DeploymentId"] not in doc["deployments"]:
            raise not_found(f"Invalid Deployment identifier specified {p['DeploymentId']}")
        for key in ("AutoDeploy", "DeploymentId", "Description", "StageVariables", "DefaultRouteSettings",
                    "RouteSettings", "AccessLogSettings"):
            if key in p:
                stage[key] = p[key]
        stage["LastUpdatedDate"] = time.time()
        self._save(doc)
        return copy.deepcopy(stage)

    def delete_stage(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api(ctx, p["ApiId"])
        self._stage(doc, p["StageName"])
        del doc["stages"][p["StageName"]]
        self._save(doc)

    def create_deployment(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["ApiId"])
        if p.get("StageName"):
            stage = self._stage(doc, p["StageName"])
            if stage.get("AutoDeploy"):
                raise bad_request("Cannot create a deployment for a stage with AutoDeploy enabled")
        did = new_id(6)
        dep = _clean({"DeploymentId": did, "DeploymentStatus": "DEPLOYED", "CreatedDate": time.time(),
                      "AutoDeployed": False, "Description": p.get("Description")})
        doc["deployments"][did] = {**dep, "_snapshot": json.loads(json.dumps({
            "routes": doc["routes"], "integrations": doc["integrations"], "authorizers": doc["authorizers"],
            "_revision": f"d{did}"}))}
        if p.get("StageName"):
            doc["stages"][p["StageName"]]["DeploymentId"] = did
        self._save(doc)
        return dep

    def get_deployment(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["ApiId"])
        dep = doc["deployments"].get(p["DeploymentId"])
        if dep is None:
            raise not_found(f"Invalid Deployment identifier specified {p['DeploymentId']}")
        return {k: v for k, v in dep.items() if not k.startswith("_")}

    def get_deployments(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["ApiId"])
        return {"Items": [{k: v for k, v in d.items() if not k.startswith("_")} for d in doc["deployments"].values()]}

    def delete_deployment(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api(ctx, p["ApiId"])
        if doc["deployments"].pop(p["DeploymentId"], None) is None:
            raise not_found(f"Invalid Deployment identifier specified {p['DeploymentId']}")
        self._save(doc)
