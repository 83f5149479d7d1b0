"""CloudFormation resource types of API Gateway: REST APIs (`AWS::ApiGateway::*`) and HTTP and WebSocket
APIs (`AWS::ApiGatewayV2::*`), written against the two control planes' APIs."""

from __future__ import annotations

import json
from typing import Any

from hearth.aws.errors import AwsError
from hearth.services.cloudformation.resources.base import (
    Handler,
    Outcome,
    ResourceRequest,
    as_json,
    ignore_missing,
    read_all,
    tags_dict,
)

BODY_LIMIT = 6 * 1024 * 1024  # API Gateway's limit for an imported definition


def _lower(props: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """CloudFormation's PascalCase properties as the REST API's lowerCamel members (those given)."""
    return {member: props[prop] for prop, member in names.items() if prop in props}


def _body(value: Any) -> bytes:
    return (value if isinstance(value, str) else json.dumps(value)).encode()


def _patch(path: str, value: Any) -> dict[str, str]:
    return {"op": "replace", "path": path, "value": str(value)}


# -- REST APIs ---------------------------------------------------------------------------------------------


def _stack_tags(r: ResourceRequest) -> dict[str, str]:
    """The tags CloudFormation puts on what it makes (GetRestApi shows them, as in AWS)."""
    return {"aws:cloudformation:logical-id": r.logical_id, "aws:cloudformation:stack-id": r.stack_id,
            "aws:cloudformation:stack-name": r.stack_name}


class RestApi(Handler):
    type = "AWS::ApiGateway::RestApi"
    attributes = ("RestApiId", "RootResourceId")

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        if "Body" in p or "BodyS3Location" in p:
            body = _body(p["Body"]) if "Body" in p else await self._s3_body(r, p["BodyS3Location"])
            out = await r.client("apigateway", "ImportRestApi", {
                "body": body, "failOnWarnings": p.get("FailOnWarnings"),
                "parameters": {str(k): str(v) for k, v in (p.get("Parameters") or {}).items()} or None})
            r.created = out["id"]
            await self._rename(r, out["id"], p)
            await r.client("apigateway", "TagResource", {
                "resourceArn": f"arn:aws:apigateway:{r.region}::/restapis/{out['id']}",
                "tags": {**tags_dict(p.get("Tags")), **_stack_tags(r)}})
        else:
            out = await r.client("apigateway", "CreateRestApi", {
                "name": p.get("Name") or r.stack_name, **_lower(p, {
                    "Description": "description", "BinaryMediaTypes": "binaryMediaTypes",
                    "MinimumCompressionSize": "minimumCompressionSize", "ApiKeySourceType": "apiKeySource",
                    "DisableExecuteApiEndpoint": "disableExecuteApiEndpoint", "CloneFrom": "cloneFrom"}),
                "endpointConfiguration": {"types": p["EndpointConfiguration"].get("Types", ["EDGE"])}
                if p.get("EndpointConfiguration") else None,
                "policy": as_json(p["Policy"]) if p.get("Policy") else None,
                "tags": {**tags_dict(p.get("Tags")), **_stack_tags(r)}})
            r.created = out["id"]
        return await self._outcome(r, out["id"])

    async def _s3_body(self, r: ResourceRequest, location: dict[str, Any]) -> bytes:
        out = await r.client("s3", "GetObject", {"Bucket": location["Bucket"], "Key": location["Key"],
                                                 "VersionId": location.get("Version")})
        return await read_all(out["Body"], BODY_LIMIT)

    async def _rename(self, r: ResourceRequest, api_id: str, p: dict[str, Any]) -> None:
        patches = [_patch("/name", p["Name"])] if p.get("Name") else []
        if p.get("Description"):
            patches.append(_patch("/description", p["Description"]))
        for media in p.get("BinaryMediaTypes") or []:
            patches.append({"op": "add", "path": "/binaryMediaTypes/" + str(media).replace("/", "~1")})
        if patches:
            await r.client("apigateway", "UpdateRestApi", {"restApiId": api_id, "patchOperations": patches})

    async def _outcome(self, r: ResourceRequest, api_id: str) -> Outcome:
        resources = await r.client("apigateway", "GetResources", {"restApiId": api_id, "limit": 500})
        root = next((x["id"] for x in resources.get("items", []) if x.get("path") == "/"), "")
        return Outcome(api_id, {"RestApiId": api_id, "RootResourceId": root})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        p = r.properties
        api_id = str(r.physical_id)
        if "Body" in p and p.get("Body") != old.get("Body"):
            await r.client("apigateway", "PutRestApi", {"restApiId": api_id, "mode": "overwrite",
                                                        "body": _body(p["Body"])})
        await self._rename(r, api_id, {k: v for k, v in p.items() if v != old.get(k)})
        return await self._outcome(r, api_id)

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("apigateway", "DeleteRestApi", {"restApiId": str(r.physical_id)}))


class Deployment(Handler):
    type = "AWS::ApiGateway::Deployment"
    attributes = ("DeploymentId",)
    updatable = False

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        stage = p.get("StageDescription") or {}
        out = await r.client("apigateway", "CreateDeployment", {
            "restApiId": p["RestApiId"], "stageName": p.get("StageName"), "description": p.get("Description"),
            "stageDescription": stage.get("Description"), "variables": stage.get("Variables"),
            "tracingEnabled": stage.get("TracingEnabled")})
        return Outcome(out["id"], {"DeploymentId": out["id"]})

    async def delete(self, r: ResourceRequest) -> None:
        p = r.properties
        if p.get("StageName"):  # the stage this deployment made goes with it
            await ignore_missing(r.client("apigateway", "DeleteStage", {"restApiId": p["RestApiId"],
                                                                        "stageName": p["StageName"]}))
        try:
            await r.client("apigateway", "DeleteDeployment", {"restApiId": p["RestApiId"],
                                                              "deploymentId": str(r.physical_id)})
        except AwsError as err:
            # A deployment a stage still serves is kept (AWS refuses to delete it): the stage's own
            # update or delete comes first in the cleanup, and the API's delete removes the rest.
            if err.code not in ("NotFoundException", "BadRequestException", "ConflictException"):
                raise


class Stage(Handler):
    type = "AWS::ApiGateway::Stage"
    replace_on = frozenset({"RestApiId", "StageName"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        await r.client("apigateway", "CreateStage", {
            "restApiId": p["RestApiId"], "stageName": p["StageName"], "deploymentId": p["DeploymentId"],
            "description": p.get("Description"), "variables": p.get("Variables"),
            "tracingEnabled": p.get("TracingEnabled"), "tags": tags_dict(p.get("Tags")) or None})
        return Outcome(str(p["StageName"]))

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        p = r.properties
        patches = []
        if p.get("DeploymentId") != old.get("DeploymentId"):
            patches.append(_patch("/deploymentId", p["DeploymentId"]))
        if p.get("Description") != old.get("Description"):
            patches.append(_patch("/description", p.get("Description", "")))
        for name, value in (p.get("Variables") or {}).items():
            if (old.get("Variables") or {}).get(name) != value:
                patches.append(_patch(f"/variables/{name}", value))
        for name in set(old.get("Variables") or {}) - set(p.get("Variables") or {}):
            patches.append({"op": "remove", "path": f"/variables/{name}"})
        if patches:
            await r.client("apigateway", "UpdateStage", {"restApiId": p["RestApiId"], "stageName": p["StageName"],
                                                         "patchOperations": patches})
        return Outcome(str(p["StageName"]))

    async def delete(self, r: ResourceRequest) -> None:
        p = r.properties
        await ignore_missing(r.client("apigateway", "DeleteStage", {"restApiId": p["RestApiId"],
                                                                    "stageName": p["StageName"]}))


class Resource(Handler):
    type = "AWS::ApiGateway::Resource"
    attributes = ("ResourceId",)
    updatable = False

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        out = await r.client("apigateway", "CreateResource", {"restApiId": p["RestApiId"], "parentId": p["ParentId"],
                                                              "pathPart": p["PathPart"]})
        return Outcome(out["id"], {"ResourceId": out["id"]})

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("apigateway", "DeleteResource", {"restApiId": r.properties["RestApiId"],
                                                                       "resourceId": str(r.physical_id)}))


class Method(Handler):
    type = "AWS::ApiGateway::Method"
    updatable = False

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        key = {"restApiId": p["RestApiId"], "resourceId": p["ResourceId"], "httpMethod": p["HttpMethod"]}
        await r.client("apigateway", "PutMethod", {
            **key, "authorizationType": p.get("AuthorizationType", "NONE"), **_lower(p, {
                "AuthorizerId": "authorizerId", "ApiKeyRequired": "apiKeyRequired", "OperationName": "operationName",
                "RequestParameters": "requestParameters", "RequestModels": "requestModels",
                "RequestValidatorId": "requestValidatorId", "AuthorizationScopes": "authorizationScopes"})})
        r.created = "method"
        integration = p.get("Integration")
        if integration:
            await r.client("apigateway", "PutIntegration", {**key, "type": integration["Type"], **_lower(integration, {
                "IntegrationHttpMethod": "integrationHttpMethod", "Uri": "uri", "Credentials": "credentials",
                "RequestParameters": "requestParameters", "RequestTemplates": "requestTemplates",
                "PassthroughBehavior": "passthroughBehavior", "ContentHandling": "contentHandling",
                "TimeoutInMillis": "timeoutInMillis", "ConnectionType": "connectionType",
                "CacheKeyParameters": "cacheKeyParameters", "CacheNamespace": "cacheNamespace"})})
            for response in integration.get("IntegrationResponses") or []:
                await r.client("apigateway", "PutIntegrationResponse", {
                    **key, "statusCode": str(response["StatusCode"]), **_lower(response, {
                        "SelectionPattern": "selectionPattern", "ResponseParameters": "responseParameters",
                        "ResponseTemplates": "responseTemplates", "ContentHandling": "contentHandling"})})
        for response in p.get("MethodResponses") or []:
            await r.client("apigateway", "PutMethodResponse", {
                **key, "statusCode": str(response["StatusCode"]),
                **_lower(response, {"ResponseParameters": "responseParameters", "ResponseModels": "responseModels"})})
        return Outcome(f"{p['RestApiId']}|{p['ResourceId']}|{p['HttpMethod']}")

    async def delete(self, r: ResourceRequest) -> None:
        p = r.properties
        await ignore_missing(r.client("apigateway", "DeleteMethod", {
            "restApiId": p["RestApiId"], "resourceId": p["ResourceId"], "httpMethod": p["HttpMethod"]}))


class Authorizer(Handler):
    type = "AWS::ApiGateway::Authorizer"
    attributes = ("AuthorizerId",)
    updatable = False

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        out = await r.client("apigateway", "CreateAuthorizer", {
            "restApiId": p["RestApiId"], "name": p["Name"], "type": p["Type"], **_lower(p, {
                "AuthorizerUri": "authorizerUri", "IdentitySource": "identitySource", "ProviderARNs": "providerARNs",
                "AuthorizerCredentials": "authorizerCredentials", "AuthType": "authType",
                "IdentityValidationExpression": "identityValidationExpression"}),
            "authorizerResultTtlInSeconds": int(p["AuthorizerResultTtlInSeconds"])
            if "AuthorizerResultTtlInSeconds" in p else None})
        return Outcome(out["id"], {"AuthorizerId": out["id"]})

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("apigateway", "DeleteAuthorizer", {"restApiId": r.properties["RestApiId"],
                                                                         "authorizerId": str(r.physical_id)}))


class ApiKey(Handler):
    type = "AWS::ApiGateway::ApiKey"
    attributes = ("APIKeyId",)
    updatable = False

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        out = await r.client("apigateway", "CreateApiKey", {
            "name": p.get("Name") or r.name("Name", 128), "description": p.get("Description"),
            "enabled": str(p.get("Enabled", False)).lower() == "true", "value": p.get("Value"),
            "generateDistinctId": p.get("GenerateDistinctId"), "customerId": p.get("CustomerId"),
            "stageKeys": [{"restApiId": k.get("RestApiId"), "stageName": k.get("StageName")}
                          for k in p.get("StageKeys") or []] or None,
            "tags": tags_dict(p.get("Tags")) or None})
        return Outcome(out["id"], {"APIKeyId": out["id"]})

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("apigateway", "DeleteApiKey", {"apiKey": str(r.physical_id)}))


def _plan_params(p: dict[str, Any]) -> dict[str, Any]:
    throttle = p.get("Throttle") or {}
    quota = p.get("Quota") or {}
    return {
        "apiStages": [{"apiId": s["ApiId"], "stage": s["Stage"]} for s in p.get("ApiStages") or []] or None,
        "throttle": {k: v for k, v in (("burstLimit", int(throttle["BurstLimit"]) if "BurstLimit" in throttle
                                        else None), ("rateLimit", float(throttle["RateLimit"])
                                                     if "RateLimit" in throttle else None)) if v is not None}
        or None,
        "quota": {k: v for k, v in (("limit", int(quota["Limit"]) if "Limit" in quota else None),
                                    ("period", quota.get("Period")),
                                    ("offset", int(quota["Offset"]) if "Offset" in quota else None)) if v is not None}
        or None,
    }


class UsagePlan(Handler):
    type = "AWS::ApiGateway::UsagePlan"
    attributes = ("Id",)
    updatable = False

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        out = await r.client("apigateway", "CreateUsagePlan", {
            "name": p.get("UsagePlanName") or r.name("UsagePlanName", 128), "description": p.get("Description"),
            **_plan_params(p), "tags": tags_dict(p.get("Tags")) or None})
        return Outcome(out["id"], {"Id": out["id"]})

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("apigateway", "DeleteUsagePlan", {"usagePlanId": str(r.physical_id)}))


class UsagePlanKey(Handler):
    type = "AWS::ApiGateway::UsagePlanKey"
    attributes = ("Id",)
    updatable = False

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        out = await r.client("apigateway", "CreateUsagePlanKey", {"usagePlanId": p["UsagePlanId"], "keyId": p["KeyId"],
                                                                  "keyType": p["KeyType"]})
        return Outcome(f"{p['UsagePlanId']}:{out['id']}", {"Id": out["id"]})

    async def delete(self, r: ResourceRequest) -> None:
        p = r.properties
        await ignore_missing(r.client("apigateway", "DeleteUsagePlanKey", {"usagePlanId": p["UsagePlanId"],
                                                                           "keyId": p["KeyId"]}))


class GatewayResponse(Handler):
    type = "AWS::ApiGateway::GatewayResponse"

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        await r.client("apigateway", "PutGatewayResponse", {
            "restApiId": p["RestApiId"], "responseType": p["ResponseType"],
            **_lower(p, {"StatusCode": "statusCode", "ResponseParameters": "responseParameters",
                         "ResponseTemplates": "responseTemplates"})})
        return Outcome(f"{p['RestApiId']}|{p['ResponseType']}")

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        return await self.create(r)

    async def delete(self, r: ResourceRequest) -> None:
        p = r.properties
        await ignore_missing(r.client("apigateway", "DeleteGatewayResponse", {"restApiId": p["RestApiId"],
                                                                              "responseType": p["ResponseType"]}))


class RequestValidator(Handler):
    type = "AWS::ApiGateway::RequestValidator"
    attributes = ("RequestValidatorId",)
    updatable = False

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        out = await r.client("apigateway", "CreateRequestValidator", {
            "restApiId": p["RestApiId"], "name": p.get("Name"),
            "validateRequestBody": p.get("ValidateRequestBody"),
            "validateRequestParameters": p.get("ValidateRequestParameters")})
        return Outcome(out["id"], {"RequestValidatorId": out["id"]})

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("apigateway", "DeleteRequestValidator", {
            "restApiId": r.properties["RestApiId"], "requestValidatorId": str(r.physical_id)}))


class Model(Handler):
    type = "AWS::ApiGateway::Model"
    updatable = False

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        name = p.get("Name") or r.logical_id
        await r.client("apigateway", "CreateModel", {
            "restApiId": p["RestApiId"], "name": name, "contentType": p.get("ContentType", "application/json"),
            "description": p.get("Description"), "schema": as_json(p["Schema"]) if "Schema" in p else None})
        return Outcome(str(name))

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("apigateway", "DeleteModel", {"restApiId": r.properties["RestApiId"],
                                                                    "modelName": str(r.physical_id)}))


# -- HTTP and WebSocket APIs -------------------------------------------------------------------------------


class Api(Handler):
    type = "AWS::ApiGatewayV2::Api"
    attributes = ("ApiEndpoint", "ApiId")
    replace_on = frozenset({"ProtocolType"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        if "Body" in p:
            out = await r.client("apigatewayv2", "ImportApi", {"Body": as_json(p["Body"]),
                                                               "FailOnWarnings": p.get("FailOnWarnings")})
            r.created = out["ApiId"]
            if p.get("Name") or p.get("CorsConfiguration"):
                out = await r.client("apigatewayv2", "UpdateApi", {"ApiId": out["ApiId"], "Name": p.get("Name"),
                                                                   "CorsConfiguration": p.get("CorsConfiguration")})
        else:
            out = await r.client("apigatewayv2", "CreateApi", {
                "Name": p.get("Name") or r.stack_name, "ProtocolType": p["ProtocolType"],
                "Tags": tags_dict(p.get("Tags")) or None, **{k: p[k] for k in (
                    "ApiKeySelectionExpression", "CorsConfiguration", "CredentialsArn", "Description",
                    "DisableSchemaValidation", "DisableExecuteApiEndpoint", "RouteKey", "RouteSelectionExpression",
                    "Target", "Version", "IpAddressType") if k in p}})
        return Outcome(out["ApiId"], {"ApiId": out["ApiId"], "ApiEndpoint": out.get("ApiEndpoint")})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        p = r.properties
        api_id = str(r.physical_id)
        if "Body" in p and p.get("Body") != old.get("Body"):
            await r.client("apigatewayv2", "ReimportApi", {"ApiId": api_id, "Body": as_json(p["Body"])})
        out = await r.client("apigatewayv2", "UpdateApi", {"ApiId": api_id, **{k: p[k] for k in (
            "Name", "CorsConfiguration", "CredentialsArn", "Description", "DisableExecuteApiEndpoint", "RouteKey",
            "RouteSelectionExpression", "Target", "Version") if k in p}})
        return Outcome(api_id, {"ApiId": api_id, "ApiEndpoint": out.get("ApiEndpoint")})

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("apigatewayv2", "DeleteApi", {"ApiId": str(r.physical_id)}))


_V2_STAGE = ("AccessLogSettings", "AutoDeploy", "ClientCertificateId", "DefaultRouteSettings", "DeploymentId",
             "Description", "RouteSettings", "StageVariables")


class ApiStage(Handler):
    type = "AWS::ApiGatewayV2::Stage"
    replace_on = frozenset({"ApiId", "StageName"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        await r.client("apigatewayv2", "CreateStage", {"ApiId": p["ApiId"], "StageName": p["StageName"],
                                                       "Tags": tags_dict(p.get("Tags")) or None,
                                                       **{k: p[k] for k in _V2_STAGE if k in p}})
        return Outcome(str(p["StageName"]))

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        p = r.properties
        await r.client("apigatewayv2", "UpdateStage", {"ApiId": p["ApiId"], "StageName": p["StageName"],
                                                       **{k: p[k] for k in _V2_STAGE if k in p}})
        return Outcome(str(p["StageName"]))

    async def delete(self, r: ResourceRequest) -> None:
        p = r.properties
        await ignore_missing(r.client("apigatewayv2", "DeleteStage", {"ApiId": p["ApiId"],
                                                                      "StageName": p["StageName"]}))


class _V2Child(Handler):
    """Routes, integrations, deployments and authorizers: created with the API's operation, replaced on change."""

    updatable = False
    create_op = ""
    delete_op = ""
    id_member = ""
    members: tuple[str, ...] = ()

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        out = await r.client("apigatewayv2", self.create_op, {"ApiId": p["ApiId"],
                                                              **{k: p[k] for k in self.members if k in p}})
        return Outcome(str(out[self.id_member]), {self.id_member: out[self.id_member]})

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("apigatewayv2", self.delete_op, {"ApiId": r.properties["ApiId"],
                                                                       self.id_member: str(r.physical_id)}))


class Route(_V2Child):
    type = "AWS::ApiGatewayV2::Route"
    attributes = ("RouteId",)
    create_op, delete_op, id_member = "CreateRoute", "DeleteRoute", "RouteId"
    members = ("ApiKeyRequired", "AuthorizationScopes", "AuthorizationType", "AuthorizerId", "ModelSelectionExpression",
               "OperationName", "RequestModels", "RequestParameters", "RouteKey", "RouteResponseSelectionExpression",
               "Target")


class Integration(_V2Child):
    type = "AWS::ApiGatewayV2::Integration"
    attributes = ("IntegrationId",)
    create_op, delete_op, id_member = "CreateIntegration", "DeleteIntegration", "IntegrationId"
    members = ("ConnectionId", "ConnectionType", "ContentHandlingStrategy", "CredentialsArn", "Description",
               "IntegrationMethod", "IntegrationSubtype", "IntegrationType", "IntegrationUri", "PassthroughBehavior",
               "PayloadFormatVersion", "RequestParameters", "RequestTemplates", "ResponseParameters",
               "TemplateSelectionExpression", "TimeoutInMillis", "TlsConfig")


class ApiDeployment(_V2Child):
    type = "AWS::ApiGatewayV2::Deployment"
    attributes = ("DeploymentId",)
    create_op, delete_op, id_member = "CreateDeployment", "DeleteDeployment", "DeploymentId"
    members = ("Description", "StageName")


class ApiAuthorizer(_V2Child):
    type = "AWS::ApiGatewayV2::Authorizer"
    attributes = ("AuthorizerId",)
    create_op, delete_op, id_member = "CreateAuthorizer", "DeleteAuthorizer", "AuthorizerId"
    members = ("AuthorizerCredentialsArn", "AuthorizerPayloadFormatVersion", "AuthorizerResultTtlInSeconds",
               "AuthorizerType", "AuthorizerUri", "EnableSimpleResponses", "IdentitySource",
               "IdentityValidationExpression", "JwtConfiguration", "Name")


HANDLERS: tuple[type[Handler], ...] = (RestApi, Deployment, Stage, Resource, Method, Authorizer, ApiKey, UsagePlan,
                                      UsagePlanKey, GatewayResponse, RequestValidator, Model, Api, ApiStage, Route,
                                      Integration, ApiDeployment, ApiAuthorizer)
