"""The REST API control plane (boto3's `apigateway` client): RestApis, Resources, Methods,
Integrations, method and integration responses, Deployments, Stages, Authorizers, API keys and usage
plans, and ImportRestApi / PutRestApi from OpenAPI.

It owns the operations' AWS rules and texts (checked against recorded AWS responses) and the shape of
a REST API document in the store. A deployment freezes a copy of the resource tree: the data plane
serves a stage from its deployment's snapshot, never from the live tree, as AWS does. It never serves
API requests (`front.py` does).

Account-level objects (API keys, usage plans) live in one document per account and region, kind
"ACCOUNT", whose id is `acct-<account>-<region>`.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import yaml

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.apigateway import export, openapi
from hearth.services.apigateway.patch import apply_patch
from hearth.services.apigateway.store import ApiStore, Doc, new_id, public

REST = "REST"
ACCOUNT_KIND = "ACCOUNT"
HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD", "ANY")
_PATH_PART_RX = re.compile(r"^(\{[a-zA-Z0-9._-]+\+?\}|[a-zA-Z0-9._:@~$&'()*,;=!-]+)$")


def bad_request(message: str) -> AwsError:
    return AwsError("BadRequestException", message, 400)


def not_found(message: str) -> AwsError:
    return AwsError("NotFoundException", message, 404)


def conflict(message: str) -> AwsError:
    return AwsError("ConflictException", message, 409)


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def resource_path(resources: dict[str, Doc], rid: str) -> str:
    parts: list[str] = []
    node = resources[rid]
    while node.get("parentId"):
        parts.append(node["pathPart"])
        node = resources[node["parentId"]]
    return "/" + "/".join(reversed(parts))


TestInvoke = Callable[[Doc, str, str, str, bytes, list[tuple[str, str]], dict[str, str]], Awaitable[Doc]]


class RestApiProvider:
    def __init__(self, store: ApiStore, test_invoke: TestInvoke | None = None) -> None:
        self._store = store
        self._test_invoke = test_invoke  # the execute-api front's TestInvokeMethod runner

    # -- helpers ----------------------------------------------------------------------------------

    def _api(self, ctx: RequestContext, api_id: str) -> Doc:
        doc = self._store.get(api_id)
        if doc is None or doc["_kind"] != REST or doc["_account"] != ctx.principal.account_id \
                or doc["_region"] != ctx.region:
            raise not_found(f"Invalid API identifier specified {ctx.principal.account_id}:{api_id}")
        return doc

    def _api_or(self, ctx: RequestContext, api_id: str, error: AwsError) -> Doc:
        """The API, or `error` when it is unknown: operations on an API's parts answer for the part
        AWS looks up (an unknown API's resource is an unknown resource)."""
        try:
            return self._api(ctx, api_id)
        except AwsError:
            raise error from None

    def _resource(self, doc: Doc, rid: str) -> Doc:
        res: Doc | None = doc["resources"].get(rid)
        if res is None:
            raise not_found("Invalid Resource identifier specified")
        return res

    def _method(self, doc: Doc, rid: str, method: str) -> Doc:
        m: Doc | None = self._resource(doc, rid).get("resourceMethods", {}).get(method.upper())
        if m is None:
            raise not_found("Invalid Method identifier specified")
        return m

    def _integration(self, doc: Doc, rid: str, method: str, missing_method: str = "Invalid Method identifier "
                                                                                  "specified") -> Doc:
        m: Doc | None = self._resource(doc, rid).get("resourceMethods", {}).get(method.upper())
        if m is None:
            raise not_found(missing_method)
        integ: Doc | None = m.get("methodIntegration")
        if integ is None:
            raise not_found("Invalid Integration identifier specified")
        return integ

    def _save(self, doc: Doc) -> None:
        self._store.put(doc)

    @staticmethod
    def _api_out(doc: Doc) -> Doc:
        out = public(doc)
        for key in ("resources", "deployments", "stages", "authorizers", "models", "requestValidators",
                    "gatewayResponses", "documentationParts", "documentationVersions"):
            out.pop(key, None)
        return out

    @staticmethod
    def _resource_out(doc: Doc, res: Doc, embed: bool = True) -> Doc:
        out = {"id": res["id"], "path": resource_path(doc["resources"], res["id"])}
        if res.get("parentId"):
            out["parentId"] = res["parentId"]
            out["pathPart"] = res["pathPart"]
        methods = res.get("resourceMethods") or {}
        if methods:
            out["resourceMethods"] = copy.deepcopy(methods) if embed else {m: {} for m in methods}
        return out

    # -- RestApis ---------------------------------------------------------------------------------

    def create_rest_api(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        if p.get("description") == "":
            raise bad_request("Description cannot be an empty string")
        size = p.get("minimumCompressionSize")
        if size is not None and not 0 <= size <= 10485760:
            raise bad_request("Invalid minimum compression size, must be between 0 and 10485760")
        doc = self._new_api(ctx, p)
        # AWS gives every new API two models, "Empty" and "Error".
        for name, description, extra in (("Empty", "This is a default empty schema model", {}),
                                         ("Error", "This is a default error schema model",
                                          {"properties": {"message": {"type": "string"}}})):
            schema = {"$schema": "http://json-schema.org/draft-04/schema#", "title": f"{name} Schema",
                      "type": "object", **extra}
            doc["models"][name] = {"id": new_id(6), "name": name, "description": description,
                                   "contentType": "application/json", "schema": json.dumps(schema, indent=2)}
        self._save(doc)
        return self._api_out(doc)

    def _new_api(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        api_id = self._store.unused_id()
        root = new_id(10)
        endpoint = dict(p.get("endpointConfiguration") or {})
        types = endpoint.get("types")
        if types is None:
            types = ["EDGE"]
        elif not types:
            raise bad_request("REGIONAL Configuration and EDGE Configuration cannot be both DISABLED.")
        if len(types) > 1:
            raise bad_request("Cannot create an api with multiple Endpoint Types.")
        endpoint["types"] = types
        if not endpoint.get("ipAddressType"):
            endpoint["ipAddressType"] = "dualstack" if types == ["PRIVATE"] else "ipv4"
        if types == ["PRIVATE"] and endpoint["ipAddressType"] != "dualstack":
            raise bad_request("Only dualstack ipAddressType is supported for Private APIs.")
        return _clean({
            "_id": api_id, "_kind": REST, "_account": ctx.principal.account_id, "_region": ctx.region,
            "id": api_id, "name": p.get("name"), "description": p.get("description"),
            "createdDate": time.time(), "version": p.get("version"),
            "binaryMediaTypes": p.get("binaryMediaTypes") or None,
            "minimumCompressionSize": p.get("minimumCompressionSize"),
            "apiKeySource": p.get("apiKeySource") or "HEADER", "endpointConfiguration": endpoint,
            "policy": p.get("policy"), "tags": p.get("tags") or None,
            "disableExecuteApiEndpoint": bool(p.get("disableExecuteApiEndpoint", False)),
            "rootResourceId": root,
            "resources": {root: {"id": root}},
            "deployments": {}, "stages": {}, "authorizers": {}, "models": {}, "requestValidators": {},
            "gatewayResponses": {},
        })

    def get_rest_api(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return self._api_out(self._api(ctx, p["restApiId"]))

    def get_rest_apis(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        docs = sorted(self._store.all(REST, ctx.principal.account_id, ctx.region), key=lambda d: d["createdDate"])
        return {"items": [self._api_out(d) for d in docs]}

    def delete_rest_api(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        self._api(ctx, p["restApiId"])
        self._store.delete(p["restApiId"])

    def update_rest_api(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = copy.deepcopy(self._api(ctx, p["restApiId"]))  # a refused patch leaves the API as it was
        for op in p.get("patchOperations") or []:
            path = op.get("path")
            if path == "/binaryMediaTypes":  # a list changed item by item: its path names the item
                raise bad_request("Invalid patch path /binaryMediaTypes")
            if path == "/minimumCompressionSize":
                if op.get("op") != "replace":
                    raise bad_request("Invalid patch operation specified. Must be one of: [replace]")
                value = op.get("value")
                if value in (None, ""):  # no value turns compression off
                    doc.pop("minimumCompressionSize", None)
                    continue
                if not re.fullmatch(r"\d+", str(value)) or int(value) > 10485760:
                    raise bad_request("Invalid minimum compression size, must be between 0 and 10485760")
            if path and path.startswith("/endpointConfiguration/types/"):
                if op.get("op") != "replace":
                    raise bad_request("Invalid patch operation specified. Must be 'add'|'remove'|'replace'")
                if op.get("value") not in ("REGIONAL", "EDGE", "PRIVATE"):
                    raise bad_request("Invalid EndpointTypes specified. Valid options are REGIONAL,EDGE,PRIVATE")
                doc["endpointConfiguration"]["types"] = [op["value"]]
                if op["value"] == "PRIVATE":  # private APIs are dualstack only
                    doc["endpointConfiguration"]["ipAddressType"] = "dualstack"
            if path == "/endpointConfiguration/ipAddressType":
                if op.get("op") != "replace":
                    raise bad_request("Invalid patch operation specified. Must be one of: [replace]")
                if op.get("value") not in ("ipv4", "dualstack"):
                    raise bad_request("ipAddressType must be either ipv4 or dualstack.")
                if doc["endpointConfiguration"]["types"] == ["PRIVATE"] and op["value"] != "dualstack":
                    raise bad_request("Only dualstack ipAddressType is supported for Private APIs.")
        ops = [op for op in p.get("patchOperations") or []
               if not (op.get("path") == "/minimumCompressionSize" and op.get("value") in (None, ""))
               and not (op.get("path") or "").startswith("/endpointConfiguration/types/")]
        doc.setdefault("tags", {})  # UpdateRestApi answers the (possibly empty) tags
        apply_patch(doc, ops, allowed=(
            "/name", "/description", "/binaryMediaTypes", "/apiKeySource", "/disableExecuteApiEndpoint",
            "/policy", "/minimumCompressionSize", "/version", "/endpointConfiguration"))
        self._save(doc)
        return self._api_out(doc)

    def import_rest_api(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        spec = openapi.load(p.get("body") or b"")
        doc = self._new_api(ctx, {"name": openapi.title(spec)})
        warnings = openapi.import_rest(doc, spec, mode="overwrite")
        if warnings and p.get("failOnWarnings"):
            raise bad_request("Warnings found during import:\n\t" + "\n\t".join(warnings))
        self._save(doc)
        out = self._api_out(doc)
        if warnings:
            out["warnings"] = warnings
        return out

    def put_rest_api(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        spec = openapi.load(p.get("body") or b"")  # AWS reads the definition before it looks up the API
        doc = self._api(ctx, p["restApiId"])
        work = copy.deepcopy(doc)
        warnings = openapi.import_rest(work, spec, mode=p.get("mode") or "merge")
        if warnings and p.get("failOnWarnings"):
            raise bad_request("Warnings found during import:\n\t" + "\n\t".join(warnings))
        self._save(work)
        out = self._api_out(work)
        out.setdefault("tags", {})  # PutRestApi answers the (possibly empty) tags
        if warnings:
            out["warnings"] = warnings
        return out

    # -- Resources --------------------------------------------------------------------------------

    def get_resources(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        embed = "methods" in (p.get("embed") or [])
        items = [self._resource_out(doc, r, embed) for r in doc["resources"].values()]
        items.sort(key=lambda r: r["path"])
        return {"items": items}

    def get_resource(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified"))
        return self._resource_out(doc, self._resource(doc, p["resourceId"]))

    def create_resource(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        res = add_resource(doc, p["parentId"], p["pathPart"])
        self._save(doc)
        return self._resource_out(doc, res)

    def update_resource(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        res = self._resource(doc, p["resourceId"])
        for op in p.get("patchOperations") or []:
            path = op.get("path")
            if op.get("op") != "replace":
                raise bad_request(f"Invalid patch path  '{path}' specified for op '{op.get('op')}'. "
                                  "Please choose supported operations")
            if path == "/pathPart":
                if not res.get("parentId"):
                    raise bad_request("Root resource cannot update its pathPart.")
                _check_path_part(doc, res["parentId"], op.get("value") or "", exclude=res["id"])
                res["pathPart"] = op.get("value")
            elif path == "/parentId":
                if not res.get("parentId"):
                    raise bad_request("Root resource cannot update its parentId.")
                parent = op.get("value") or ""
                self._resource(doc, parent)
                node: str | None = parent
                while node:
                    if node == res["id"]:
                        raise bad_request("Resources cannot be cyclical.")
                    node = doc["resources"][node].get("parentId")
                _check_path_part(doc, parent, res["pathPart"], exclude=res["id"])
                res["parentId"] = parent
            else:
                raise bad_request(f"Invalid patch path  '{path}' specified for op 'replace'. "
                                  "Must be one of: [/parentId, /pathPart]")
        self._save(doc)
        return self._resource_out(doc, res)

    def delete_resource(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api(ctx, p["restApiId"])
        res = self._resource(doc, p["resourceId"])
        if not res.get("parentId"):
            raise bad_request("Cannot delete root resource")
        gone = {res["id"]}
        changed = True
        while changed:
            changed = False
            for r in doc["resources"].values():
                if r.get("parentId") in gone and r["id"] not in gone:
                    gone.add(r["id"])
                    changed = True
        for rid in gone:
            del doc["resources"][rid]
        self._save(doc)

    # -- Methods and integrations -----------------------------------------------------------------

    def put_method(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified"))
        res = self._resource(doc, p["resourceId"])
        method = p["httpMethod"].upper()
        if method not in HTTP_METHODS:
            raise bad_request("Invalid HttpMethod specified. Valid options are GET,PUT,POST,DELETE,PATCH,OPTIONS,"
                              "HEAD,ANY")
        auth = p.get("authorizationType") or "NONE"
        if auth in ("CUSTOM", "COGNITO_USER_POOLS") and p.get("authorizerId") not in doc["authorizers"]:
            raise bad_request("Invalid authorizer ID specified. Setting the authorization type to CUSTOM or "
                              "COGNITO_USER_POOLS requires a valid authorizer.")
        if p.get("requestValidatorId") and p["requestValidatorId"] not in doc["requestValidators"]:
            raise bad_request("Invalid Request Validator identifier specified")
        for model in (p.get("requestModels") or {}).values():
            if model not in doc["models"] and model not in ("Empty", "Error"):
                raise bad_request(f"Invalid model identifier specified: {model}")
        names = [k.rsplit(".", 1)[-1] for k in p.get("requestParameters") or {}
                 if k.startswith(("method.request.querystring.", "method.request.header.", "method.request.path."))]
        if len(names) != len(set(names)):
            raise bad_request("Parameter names must be unique across querystring, header and path")
        m = _clean({
            "httpMethod": method, "authorizationType": auth, "authorizerId": p.get("authorizerId"),
            "apiKeyRequired": bool(p.get("apiKeyRequired", False)), "requestValidatorId": p.get("requestValidatorId"),
            "operationName": p.get("operationName"), "requestParameters": p.get("requestParameters") or None,
            "requestModels": p.get("requestModels") or None, "authorizationScopes": p.get("authorizationScopes"),
        })
        res.setdefault("resourceMethods", {})[method] = m
        self._save(doc)
        return copy.deepcopy(m)

    def get_method(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified"))
        return copy.deepcopy(self._method(doc, p["resourceId"], p["httpMethod"]))

    def update_method(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = copy.deepcopy(self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified")))
        m = self._method(doc, p["resourceId"], p["httpMethod"])
        ops = p.get("patchOperations") or []
        for op in ops:
            path = op.get("path") or ""
            top = path.split("/")[1] if path.count("/") else ""
            maps = top in ("requestParameters", "requestModels", "authorizationScopes")
            if top not in ("authorizationType", "authorizerId", "apiKeyRequired", "requestValidatorId",
                           "operationName", "requestParameters", "requestModels", "authorizationScopes") \
                    or (maps and top != "authorizationScopes" and path.count("/") != 2):
                raise bad_request(f"Invalid patch path {path}")
            if not maps and op.get("op") != "replace":
                raise bad_request("Invalid patch operation specified. Must be one of: [replace]")
        apply_patch(m, ops, allowed=None)
        if m.get("authorizationType") in ("CUSTOM", "COGNITO_USER_POOLS") and m.get("authorizerId") \
                not in doc["authorizers"]:
            raise bad_request("Invalid authorizer ID specified. Setting the authorization type to CUSTOM or "
                              "COGNITO_USER_POOLS requires a valid authorizer.")
        if m.get("authorizationType") not in ("CUSTOM", "COGNITO_USER_POOLS"):
            m.pop("authorizerId", None)  # AWS keeps no authorizer on a method that does not use one
        if m.get("requestValidatorId") and m["requestValidatorId"] not in doc["requestValidators"]:
            raise bad_request("Invalid Request Validator identifier specified")
        _booleans(m.get("requestParameters"))
        _drop_empty(m, ("requestParameters", "requestModels"))
        self._save(doc)
        return copy.deepcopy(m)

    def delete_method(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified"))
        self._method(doc, p["resourceId"], p["httpMethod"])
        del doc["resources"][p["resourceId"]]["resourceMethods"][p["httpMethod"].upper()]
        self._save(doc)

    def put_method_response(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified"))
        m = self._method(doc, p["resourceId"], p["httpMethod"])
        # Maps the caller sent are answered even when empty; maps left out are left out (recorded by AWS).
        r = _clean({"statusCode": p["statusCode"], "responseParameters": p.get("responseParameters"),
                    "responseModels": p.get("responseModels")})
        m.setdefault("methodResponses", {})[p["statusCode"]] = r
        self._save(doc)
        return copy.deepcopy(r)

    def get_method_response(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified"))
        r = self._method(doc, p["resourceId"], p["httpMethod"]).get("methodResponses", {}).get(p["statusCode"])
        if r is None:
            raise not_found("Invalid Response status code specified")
        return copy.deepcopy(r)

    def update_method_response(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified"))
        r = self._method(doc, p["resourceId"], p["httpMethod"]).get("methodResponses", {}).get(p["statusCode"])
        if r is None:
            raise not_found("Invalid Response status code specified")
        for op in p.get("patchOperations") or []:
            parts = (op.get("path") or "").split("/")
            if len(parts) == 3 and parts[1] in ("responseParameters", "responseModels") \
                    and op.get("op") in ("replace", "remove") \
                    and parts[2].replace("~1", "/").replace("~0", "~") not in (r.get(parts[1]) or {}):
                raise not_found("Invalid parameter name specified" if parts[1] == "responseParameters"
                                else "Content-Type specified was not found")
        apply_patch(r, p.get("patchOperations") or [], allowed=("/responseParameters", "/responseModels"))
        _booleans(r.get("responseParameters"))
        _drop_empty(r, ("responseParameters", "responseModels"))
        self._save(doc)
        return copy.deepcopy(r)

    def delete_method_response(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified"))
        responses = self._method(doc, p["resourceId"], p["httpMethod"]).get("methodResponses", {})
        if responses.pop(p["statusCode"], None) is None:
            raise not_found("Invalid Response status code specified")
        self._save(doc)

    def put_integration(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified"))
        m = self._method(doc, p["resourceId"], p["httpMethod"])
        integ = build_integration(p, p["resourceId"])
        m["methodIntegration"] = integ
        self._save(doc)
        return copy.deepcopy(integ)

    def get_integration(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified"))
        return copy.deepcopy(self._integration(doc, p["resourceId"], p["httpMethod"]))

    def update_integration(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified"))
        integ = self._integration(doc, p["resourceId"], p["httpMethod"])
        apply_patch(integ, p.get("patchOperations") or [], allowed=(
            "/uri", "/httpMethod", "/credentials", "/requestParameters", "/requestTemplates", "/passthroughBehavior",
            "/contentHandling", "/timeoutInMillis", "/cacheKeyParameters", "/connectionType", "/connectionId"))
        self._save(doc)
        return copy.deepcopy(integ)

    def delete_integration(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified"))
        self._integration(doc, p["resourceId"], p["httpMethod"])
        del self._method(doc, p["resourceId"], p["httpMethod"])["methodIntegration"]
        self._save(doc)

    def put_integration_response(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified"))
        integ = self._integration(doc, p["resourceId"], p["httpMethod"])
        r = _clean({"statusCode": p["statusCode"], "selectionPattern": p.get("selectionPattern"),
                    "responseParameters": p.get("responseParameters"), "responseTemplates": p.get("responseTemplates"),
                    "contentHandling": p.get("contentHandling")})
        integ.setdefault("integrationResponses", {})[p["statusCode"]] = r
        self._save(doc)
        return copy.deepcopy(r)

    def get_integration_response(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified"))
        integ = self._integration(doc, p["resourceId"], p["httpMethod"])
        r = integ.get("integrationResponses", {}).get(p["statusCode"])
        if r is None:
            raise not_found("Invalid Response status code specified")
        return copy.deepcopy(r)

    def update_integration_response(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified"))
        integ = self._integration(doc, p["resourceId"], p["httpMethod"], _NO_INTEGRATION)
        r = integ.get("integrationResponses", {}).get(p["statusCode"])
        if r is None:
            raise not_found("Invalid Response status code specified")
        apply_patch(r, p.get("patchOperations") or [], allowed=(
            "/selectionPattern", "/responseParameters", "/responseTemplates", "/contentHandling"))
        _drop_empty(r, ("responseParameters", "responseTemplates"))
        self._save(doc)
        return copy.deepcopy(r)

    def delete_integration_response(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Resource identifier specified"))
        integ = self._integration(doc, p["resourceId"], p["httpMethod"], _NO_INTEGRATION)
        if integ.get("integrationResponses", {}).pop(p["statusCode"], None) is None:
            raise not_found("Invalid Response status code specified")
        self._save(doc)

    async def test_invoke_method(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        methods = self._resource(doc, p["resourceId"]).get("resourceMethods") or {}
        if p["httpMethod"].upper() not in methods and "ANY" not in methods:
            raise not_found("Invalid Method identifier specified")
        if self._test_invoke is None:
            raise AwsError("UnknownOperationException", "TestInvokeMethod is not available.", 501)
        headers = [(k, v) for k, v in (p.get("headers") or {}).items()]
        for k, values in (p.get("multiValueHeaders") or {}).items():
            headers += [(k, v) for v in values if (k, v) not in headers]
        method = p["httpMethod"].upper()
        if method == "ANY":
            method = "GET"
        # Without a path, the resource's own path (variables unsubstituted) is what AWS runs and logs.
        path = p.get("pathWithQueryString") or resource_path(doc["resources"], p["resourceId"])
        return await self._test_invoke(doc, p["resourceId"], method, path,
                                       (p.get("body") or "").encode(), headers, p.get("stageVariables") or {})

    # -- Deployments and stages -------------------------------------------------------------------

    def create_deployment(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        if not any(r.get("resourceMethods") for r in doc["resources"].values()):
            raise bad_request("The REST API doesn't contain any methods")
        canary = p.get("canarySettings")
        stage_name = p.get("stageName")
        if canary is not None:  # a canary release of an existing stage
            if not stage_name:
                shown = "" if stage_name == "" else "null"
                raise bad_request("Invalid deployment content specified.Non null and non empty stageName must be "
                                  f"provided for canary deployment. Provided value is {shown}")
            if stage_name not in doc["stages"]:
                raise bad_request(f"Invalid deployment content specified.Stage {stage_name} must already be created "
                                  "before making a canary release deployment")
        dep_id = new_id(6)
        dep = _clean({"id": dep_id, "description": p.get("description"), "createdDate": time.time()})
        doc["deployments"][dep_id] = {**dep, "_snapshot": snapshot(doc)}
        if canary is not None and stage_name:
            stage = doc["stages"][stage_name]
            stage["canarySettings"] = _canary(dep_id, canary)
            stage["lastUpdatedDate"] = time.time()
        elif stage_name:
            stage = doc["stages"].get(stage_name)
            if stage is None:
                doc["stages"][stage_name] = new_stage(stage_name, dep_id, p.get("stageDescription"),
                                                      p.get("variables"), p.get("tracingEnabled"))
            else:
                stage["deploymentId"] = dep_id
                if p.get("variables"):
                    stage.setdefault("variables", {}).update(p["variables"])
                stage["lastUpdatedDate"] = time.time()
        self._save(doc)
        return dep

    def get_deployment(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        dep = doc["deployments"].get(p["deploymentId"])
        if dep is None:
            raise not_found("Invalid Deployment identifier specified")
        return {k: v for k, v in dep.items() if not k.startswith("_")}

    def get_deployments(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        return {"items": [{k: v for k, v in d.items() if not k.startswith("_")}
                          for d in sorted(doc["deployments"].values(), key=lambda d: d["createdDate"])]}

    def update_deployment(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        dep = doc["deployments"].get(p["deploymentId"])
        if dep is None:
            raise not_found("Invalid Deployment identifier specified")
        apply_patch(dep, p.get("patchOperations") or [], allowed=("/description",))
        self._save(doc)
        return {k: v for k, v in dep.items() if not k.startswith("_")}

    def delete_deployment(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api(ctx, p["restApiId"])
        if p["deploymentId"] not in doc["deployments"]:
            raise not_found("Invalid Deployment identifier specified")
        if any(s["deploymentId"] == p["deploymentId"] for s in doc["stages"].values()):
            raise bad_request("Active stages pointing to this deployment must be moved or deleted")
        del doc["deployments"][p["deploymentId"]]
        self._save(doc)

    def create_stage(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        if p["deploymentId"] not in doc["deployments"]:
            raise bad_request("Deployment id does not exist")
        if p["stageName"] in doc["stages"]:
            raise conflict("Stage already exists")
        stage = new_stage(p["stageName"], p["deploymentId"], p.get("description"), p.get("variables"),
                          p.get("tracingEnabled"))
        if p.get("documentationVersion"):
            stage["documentationVersion"] = p["documentationVersion"]
        if p.get("tags"):
            stage["tags"] = p["tags"]
        canary = p.get("canarySettings")
        if canary is not None:
            if canary.get("deploymentId") and canary["deploymentId"] not in doc["deployments"]:
                raise bad_request("Deployment id does not exist")
            stage["canarySettings"] = _canary(canary.get("deploymentId") or p["deploymentId"], canary)
        doc["stages"][p["stageName"]] = stage
        self._save(doc)
        return copy.deepcopy(stage)

    def _stage(self, doc: Doc, name: str) -> Doc:
        stage: Doc | None = doc["stages"].get(name)
        if stage is None:
            raise not_found("Invalid Stage identifier specified")
        return stage

    def get_stage(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return copy.deepcopy(self._stage(self._api(ctx, p["restApiId"]), p["stageName"]))

    def get_stages(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        stages = [s for s in doc["stages"].values()
                  if not p.get("deploymentId") or s["deploymentId"] == p["deploymentId"]]
        return {"item": copy.deepcopy(sorted(stages, key=lambda s: s["createdDate"]))}

    def get_export(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        stage = self._stage(doc, p["stageName"])
        export_type = p["exportType"]
        if export_type not in ("oas30", "swagger"):
            raise bad_request(f"No such type {export_type}")
        dep = doc["deployments"].get(stage.get("deploymentId") or "") or {}
        frozen = dep.get("_snapshot") or snapshot(doc)
        extensions = (p.get("parameters") or {}).get("extensions", "") or ""
        body = export.definition(doc, frozen, stage=p["stageName"], region=ctx.region, export_type=export_type,
                                 extensions="apigateway" in extensions.split(","),
                                 deployed_at=float(dep.get("createdDate") or time.time()))
        return export.render(body, export_type, str(body["info"]["version"]), p.get("accepts"))

    def update_stage(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = copy.deepcopy(self._api(ctx, p["restApiId"]))  # a refused patch leaves the API as it was
        stage = self._stage(doc, p["stageName"])
        plain = []
        for op in p.get("patchOperations") or []:
            path = op.get("path") or ""
            if path.startswith("/canarySettings") or op.get("op") == "copy":
                _canary_patch(doc, stage, op)
                continue
            if path.startswith("/accessLogSettings"):
                _check_access_log_patch(stage, op)
            plain.append(op)
            if path == "/deploymentId" and op.get("value") not in doc["deployments"]:
                raise bad_request("Deployment id does not exist")
            top = path.split("/")[1] if path.count("/") else ""
            if top in _STAGE_FIELDS:
                continue
            if not _method_setting_patch(stage, op):
                raise bad_request(_STAGE_PATHS.format(path=path))
        apply_patch(stage, [op for op in plain if (op.get("path") or "").split("/")[1] in _STAGE_FIELDS], allowed=None)
        stage["lastUpdatedDate"] = time.time()
        self._save(doc)
        return copy.deepcopy(stage)

    def delete_stage(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api(ctx, p["restApiId"])
        self._stage(doc, p["stageName"])
        del doc["stages"][p["stageName"]]
        self._save(doc)

    # -- Authorizers ------------------------------------------------------------------------------

    def create_authorizer(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], conflict(
            "Unable to complete operation due to concurrent modification. Please try again later."))
        auth = new_authorizer(p)
        doc["authorizers"][auth["id"]] = auth
        self._save(doc)
        return copy.deepcopy(auth)

    def get_authorizer(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        auth = doc["authorizers"].get(p["authorizerId"])
        if auth is None:
            raise not_found("Invalid Authorizer identifier specified")
        return copy.deepcopy(auth)

    def get_authorizers(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        return {"items": copy.deepcopy(list(doc["authorizers"].values()))}

    def update_authorizer(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        auth = doc["authorizers"].get(p["authorizerId"])
        if auth is None:
            raise not_found("Invalid Authorizer identifier specified")
        apply_patch(auth, p.get("patchOperations") or [], allowed=None)
        self._save(doc)
        return copy.deepcopy(auth)

    def delete_authorizer(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api(ctx, p["restApiId"])
        if doc["authorizers"].pop(p["authorizerId"], None) is None:
            raise not_found("Invalid Authorizer identifier specified")
        self._save(doc)

    # -- Models, request validators, gateway responses ---------------------------------------------

    def create_model(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        if not p.get("name"):
            raise bad_request("Model name must be non-empty")
        if p["name"] in doc["models"]:
            raise conflict("Model name already exists for this REST API")
        if p.get("schema") in (None, "", "{}"):
            raise bad_request("Model schema must have at least 1 property or array items defined")
        if p.get("schema"):
            try:
                json.loads(p["schema"])
            except ValueError:
                raise bad_request("Invalid model specified: Validation Result: warnings : [], errors : "
                                  "[Invalid model schema specified]") from None
        model = _clean({"id": new_id(6), "name": p["name"], "description": p.get("description") or None,
                        "schema": p.get("schema"), "contentType": p["contentType"]})
        doc["models"][p["name"]] = model
        self._save(doc)
        return copy.deepcopy(model)

    def get_model(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], not_found(f"Invalid model name specified: {p['modelName']}"))
        model: Doc | None = doc["models"].get(p["modelName"])
        if model is None:
            raise not_found(f"Invalid model name specified: {p['modelName']}")
        return copy.deepcopy(model)

    def get_models(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return {"items": copy.deepcopy(list(self._api(ctx, p["restApiId"])["models"].values()))}

    def update_model(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], not_found(f"Invalid model name specified: {p['modelName']}"))
        model: Doc | None = doc["models"].get(p["modelName"])
        if model is None:
            raise not_found(f"Invalid model name specified: {p['modelName']}")
        for op in p.get("patchOperations") or []:
            path = op.get("path")
            if op.get("op") != "replace":
                raise bad_request(f"Invalid patch path  '{path}' specified for op '{op.get('op')}'. "
                                  "Please choose supported operations")
            if path not in ("/description", "/schema"):
                raise bad_request(f"Invalid patch path  '{path}' specified for op 'replace'. "
                                  "Must be one of: [/description, /schema]")
            if path == "/schema":
                try:
                    schema = json.loads(op.get("value") or "")
                except ValueError:
                    schema = None
                if not isinstance(schema, dict) or not schema:
                    raise bad_request("Model schema must have at least 1 property or array items defined")
        apply_patch(model, p.get("patchOperations") or [], allowed=None)
        if model.get("description") == "":
            del model["description"]
        self._save(doc)
        return copy.deepcopy(model)

    def delete_model(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api_or(ctx, p["restApiId"], not_found(f"Invalid model name specified: {p['modelName']}"))
        for res in doc["resources"].values():
            for verb, m in (res.get("resourceMethods") or {}).items():
                if p["modelName"] in (m.get("requestModels") or {}).values():
                    path = resource_path(doc["resources"], res["id"])
                    raise conflict(f"Cannot delete model '{p['modelName']}', is referenced in method request: "
                                   f"{path}/{verb}")
        if doc["models"].pop(p["modelName"], None) is None:
            raise not_found(f"Invalid model name specified: {p['modelName']}")
        self._save(doc)

    def create_request_validator(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], bad_request("Invalid REST API identifier specified"))
        vid = new_id(6)
        validator = _clean({"id": vid, "name": p.get("name"),
                            "validateRequestBody": bool(p.get("validateRequestBody", False)),
                            "validateRequestParameters": bool(p.get("validateRequestParameters", False))})
        doc["requestValidators"][vid] = validator
        self._save(doc)
        return copy.deepcopy(validator)

    def _validator(self, doc: Doc, vid: str) -> Doc:
        validator: Doc | None = doc["requestValidators"].get(vid)
        if validator is None:
            raise not_found("Invalid Request Validator identifier specified")
        return validator

    def get_request_validator(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Request Validator identifier specified"))
        return copy.deepcopy(self._validator(doc, p["requestValidatorId"]))

    def get_request_validators(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return {"items": copy.deepcopy(list(self._api(ctx, p["restApiId"])["requestValidators"].values()))}

    def update_request_validator(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Request Validator identifier specified"))
        validator = self._validator(doc, p["requestValidatorId"])
        for op in p.get("patchOperations") or []:
            if op.get("op") != "replace":
                raise bad_request(f"Invalid patch path  '{op.get('path')}' specified for op '{op.get('op')}'. "
                                  "Please choose supported operations")
            if op.get("path") not in ("/name", "/validateRequestParameters", "/validateRequestBody"):
                raise bad_request(f"Invalid patch path  '{op.get('path')}' specified for op 'replace'. "
                                  "Must be one of: [/name, /validateRequestParameters, /validateRequestBody]")
            if op.get("path") == "/name" and not (op.get("value") or "").strip():
                raise bad_request("Request Validator name cannot be blank")
        apply_patch(validator, p.get("patchOperations") or [], allowed=None)
        for flag in ("validateRequestBody", "validateRequestParameters"):  # no value turns it off
            validator[flag] = bool(validator.get(flag))
        self._save(doc)
        return copy.deepcopy(validator)

    def delete_request_validator(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api_or(ctx, p["restApiId"], not_found("Invalid Request Validator identifier specified"))
        self._validator(doc, p["requestValidatorId"])
        del doc["requestValidators"][p["requestValidatorId"]]
        self._save(doc)

    def put_gateway_response(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        rtype = p["responseType"]
        response = _clean({"responseType": rtype, "statusCode": p.get("statusCode") or _DEFAULT_STATUS.get(rtype),
                           "responseParameters": p.get("responseParameters") or {},
                           "responseTemplates": p.get("responseTemplates") or dict(_DEFAULT_TEMPLATES),
                           "defaultResponse": False})
        doc["gatewayResponses"][p["responseType"]] = response
        self._save(doc)
        return copy.deepcopy(response)

    def get_gateway_response(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        return _gateway_response(doc, p["responseType"])

    def get_gateway_responses(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        types = sorted({*_DEFAULT_STATUS, "DEFAULT_4XX", "DEFAULT_5XX"})
        return _page([_gateway_response(doc, rtype) for rtype in types], p)

    def update_gateway_response(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        found: Doc | None = doc["gatewayResponses"].get(p["responseType"])
        if found is None:  # updating a default response customizes it
            found = doc["gatewayResponses"][p["responseType"]] = {**_gateway_response(doc, p["responseType"]),
                                                                  "defaultResponse": False}
        for op in p.get("patchOperations") or []:
            if op.get("path") == "/statusCode" and op.get("op") != "replace":
                raise bad_request("Invalid patch path /statusCode")
            for key in ("responseParameters", "responseTemplates"):  # AWS's checks, in its order
                if not str(op.get("path") or "").startswith(f"/{key}/"):
                    continue
                if op.get("op") in ("add", "replace") and op.get("value") in (None, ""):
                    raise bad_request(f"Invalid null or empty value in {key}")
                name = str(op["path"])[len(key) + 2:].replace("~1", "/").replace("~0", "~")
                if op.get("op") == "replace" and name not in (found.get(key) or {}):
                    raise not_found("Invalid parameter name specified")
        apply_patch(found, p.get("patchOperations") or [], allowed=("/statusCode", "/responseParameters",
                                                                     "/responseTemplates"))
        self._save(doc)
        return copy.deepcopy(found)

    def delete_gateway_response(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api(ctx, p["restApiId"])
        if doc["gatewayResponses"].pop(p["responseType"], None) is None:
            raise not_found("Gateway response type not defined on api")
        self._save(doc)

    # -- Documentation parts and versions ---------------------------------------------------------

    def create_documentation_part(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        location = _clean({k: p["location"].get(k) for k in ("type", "path", "method", "statusCode", "name")})
        if location["type"] not in ("API", "MODEL", "AUTHORIZER") and "path" not in location:
            location["path"] = "/"
        part = {"id": new_id(6), "location": location, "properties": p["properties"]}
        doc.setdefault("documentationParts", {})[part["id"]] = part
        self._save(doc)
        return copy.deepcopy(part)

    def import_documentation_parts(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        body = p.get("body") or b""
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        unreadable = bad_request("Unable to build importer with provided input.")
        try:
            spec = json.loads(text)
        except ValueError:
            try:
                spec = yaml.safe_load(text)
            except yaml.YAMLError:
                raise unreadable from None
        if not isinstance(spec, dict) or not ("swagger" in spec or "openapi" in spec):
            raise unreadable
        ids = openapi.import_documentation(doc, spec, mode=p.get("mode") or "merge")
        self._save(doc)
        return {"ids": ids}

    def _doc_part(self, ctx: RequestContext, p: dict[str, Any]) -> tuple[Doc, Doc]:
        missing = not_found("Invalid Documentation part identifier specified")
        doc = self._api_or(ctx, p["restApiId"], missing)
        part: Doc | None = doc.get("documentationParts", {}).get(p["documentationPartId"])
        if part is None:
            raise missing
        return doc, part

    def get_documentation_part(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return copy.deepcopy(self._doc_part(ctx, p)[1])

    def get_documentation_parts(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        parts = [part for part in doc.get("documentationParts", {}).values()
                 if (not p.get("type") or part["location"]["type"] == p["type"])
                 and (not p.get("path") or part["location"].get("path") == p["path"])]
        return _page(copy.deepcopy(parts), p)

    def update_documentation_part(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc, part = self._doc_part(ctx, p)
        for op in p.get("patchOperations") or []:
            path = op.get("path")
            if op.get("op") != "replace":
                raise bad_request(f"Invalid patch path  '{path}' specified for op '{op.get('op')}'. "
                                  "Please choose supported operations")
            if path != "/properties":
                raise bad_request(f"Invalid patch path  '{path}' specified for op 'replace'. "
                                  "Must be one of: [/properties]")
            part["properties"] = op.get("value")
        self._save(doc)
        return copy.deepcopy(part)

    def delete_documentation_part(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api(ctx, p["restApiId"])
        if doc.get("documentationParts", {}).pop(p["documentationPartId"], None) is None:
            raise not_found("Invalid Documentation part identifier specified")
        self._save(doc)

    def create_documentation_version(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        versions = doc.setdefault("documentationVersions", {})
        if p["documentationVersion"] in versions:
            raise conflict(f"Documentation version {p['documentationVersion']} already exists")
        if p.get("stageName"):
            self._stage(doc, p["stageName"])["documentationVersion"] = p["documentationVersion"]
        version = _clean({"version": p["documentationVersion"], "createdDate": time.time(),
                          "description": p.get("description")})
        versions[version["version"]] = version
        self._save(doc)
        return copy.deepcopy(version)

    def _doc_version(self, doc: Doc, version: str) -> Doc:
        found: Doc | None = doc.get("documentationVersions", {}).get(version)
        if found is None:
            raise not_found("Invalid Documentation version identifier specified")
        return found

    def get_documentation_version(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return copy.deepcopy(self._doc_version(self._api(ctx, p["restApiId"]), p["documentationVersion"]))

    def get_documentation_versions(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        return _page(copy.deepcopy(list(doc.get("documentationVersions", {}).values())), p)

    def update_documentation_version(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        doc = self._api(ctx, p["restApiId"])
        version = self._doc_version(doc, p["documentationVersion"])
        apply_patch(version, p.get("patchOperations") or [], allowed=("/description",))
        self._save(doc)
        return copy.deepcopy(version)

    def delete_documentation_version(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc = self._api(ctx, p["restApiId"])
        self._doc_version(doc, p["documentationVersion"])
        del doc["documentationVersions"][p["documentationVersion"]]
        self._save(doc)

    # -- Tags -------------------------------------------------------------------------------------

    def _tagged(self, ctx: RequestContext, arn: str) -> tuple[Doc, Doc]:
        """(document to save, object holding `tags`) for a REST API, stage, API key or usage plan ARN."""
        parts = arn.split(":", 5)
        path = parts[5] if len(parts) == 6 else ""
        segs = path.strip("/").split("/")
        if len(segs) >= 2 and segs[0] == "restapis":
            doc = self._api(ctx, segs[1])
            if len(segs) == 2:
                return doc, doc
            if len(segs) == 4 and segs[2] == "stages":
                return doc, self._stage(doc, segs[3])
        if len(segs) == 2 and segs[0] in ("apikeys", "usageplans"):
            acct = self._account(ctx)
            found = acct["apiKeys" if segs[0] == "apikeys" else "usagePlans"].get(segs[1])
            if found is not None:
                return acct, found
        raise not_found("Invalid resource identifier specified")

    def tag_resource(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc, target = self._tagged(ctx, p["resourceArn"])
        target.setdefault("tags", {}).update(p.get("tags") or {})
        self._store.put(doc)

    def untag_resource(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        doc, target = self._tagged(ctx, p["resourceArn"])
        for key in p.get("tagKeys") or []:
            target.get("tags", {}).pop(key, None)
        self._store.put(doc)

    def get_tags(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return {"tags": dict(self._tagged(ctx, p["resourceArn"])[1].get("tags") or {})}

    # -- API keys and usage plans -----------------------------------------------------------------

    def _account(self, ctx: RequestContext) -> Doc:
        key = f"acct-{ctx.principal.account_id}-{ctx.region}"
        doc: Doc | None = self._store.get(key)
        if doc is None:
            doc = {"_id": key, "_kind": ACCOUNT_KIND, "_account": ctx.principal.account_id, "_region": ctx.region,
                   "apiKeys": {}, "usagePlans": {}}
        return doc

    def create_api_key(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        acct = self._account(ctx)
        value = p.get("value") or None
        if len(p.get("name") or "") > 1024:
            raise bad_request("Invalid API Key name, can be at most 1024 characters.")
        if len(p.get("description") or "") > 125000:
            raise bad_request("Invalid API Key description specified.")
        if value is not None and len(value) < 20:
            raise bad_request("API Key value should be at least 20 characters")
        if value is not None and len(value) > 128:
            raise bad_request("API Key value exceeds maximum size of 128 characters")
        now = time.time()
        key = _clean({"id": new_id(10), "value": value or new_id(40), "name": p.get("name") or None,
                      "customerId": p.get("customerId"), "description": p.get("description"),
                      "enabled": bool(p.get("enabled", False)), "createdDate": now, "lastUpdatedDate": now,
                      "stageKeys": [f"{s['restApiId']}/{s['stageName']}" for s in p.get("stageKeys") or []],
                      "tags": p.get("tags")})
        acct["apiKeys"][key["id"]] = key
        self._store.put(acct)
        return copy.deepcopy(key)

    def get_api_key(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        key: Doc | None = self._account(ctx)["apiKeys"].get(p["apiKey"])
        if key is None:
            raise not_found("Invalid API Key identifier specified")
        out = copy.deepcopy(key)
        if not p.get("includeValue"):
            out.pop("value", None)
        return out

    def get_api_keys(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        items = []
        # Newest first, as AWS lists them.
        keys = sorted(self._account(ctx)["apiKeys"].values(), key=lambda k: (-k["createdDate"], k["id"]))
        for key in keys:
            if p.get("nameQuery") and not key.get("name", "").startswith(p["nameQuery"]):
                continue
            out = copy.deepcopy(key)
            if not p.get("includeValues"):
                out.pop("value", None)
            items.append(out)
        return _page(items, p)

    def update_api_key(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        acct = self._account(ctx)
        key = acct["apiKeys"].get(p["apiKey"])
        if key is None:
            raise not_found("Invalid API Key identifier specified")
        for op in p.get("patchOperations") or []:
            if op.get("path") not in ("/description", "/enabled", "/name", "/customerId"):
                raise bad_request(f"Invalid patch path  '{op.get('path')}' specified for op '{op.get('op')}'. "
                                  "Must be one of: [/description, /enabled, /name, /customerId]")
            if op.get("path") == "/description" and len(op.get("value") or "") > 125000:
                raise bad_request("Invalid API Key description specified.")
        apply_patch(key, p.get("patchOperations") or [], allowed=None)
        key["lastUpdatedDate"] = time.time()
        key.setdefault("tags", {})  # AWS answers an update with the (possibly empty) tags and without the value
        self._store.put(acct)
        out: Doc = copy.deepcopy(key)
        out.pop("value", None)
        return out

    def delete_api_key(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        acct = self._account(ctx)
        if acct["apiKeys"].pop(p["apiKey"], None) is None:
            raise not_found("Invalid API Key identifier specified")
        for plan in acct["usagePlans"].values():
            plan.get("_keys", {}).pop(p["apiKey"], None)
        self._store.put(acct)

    def create_usage_plan(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        acct = self._account(ctx)
        for s in p.get("apiStages") or []:
            api = self._store.get(s.get("apiId", ""))
            if api is None or s.get("stage") not in api.get("stages", {}):
                raise bad_request("Invalid API Stage specified")
        plan = _clean({"id": new_id(6), "name": p.get("name"), "description": p.get("description"),
                       "apiStages": p.get("apiStages") or [], "throttle": p.get("throttle"),
                       "quota": p.get("quota"), "tags": p.get("tags"), "_keys": {}})
        acct["usagePlans"][plan["id"]] = plan
        self._store.put(acct)
        return public(plan)

    def _plan(self, acct: Doc, plan_id: str) -> Doc:
        plan: Doc | None = acct["usagePlans"].get(plan_id)
        if plan is None:
            raise not_found("Invalid Usage Plan ID specified")
        return plan

    def get_usage_plan(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return public(self._plan(self._account(ctx), p["usagePlanId"]))

    def get_usage_plans(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        plans: list[Doc] = list(self._account(ctx)["usagePlans"].values())
        if p.get("keyId"):
            plans = [pl for pl in plans if p["keyId"] in pl.get("_keys", {})]
        return {"items": [public(pl) for pl in plans]}

    def update_usage_plan(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        acct = self._account(ctx)
        plan = self._plan(acct, p["usagePlanId"])
        for op in p.get("patchOperations") or []:
            if op.get("path") == "/apiStages" and op.get("op") in ("add", "remove"):
                api_id, _, stage = (op.get("value") or "").partition(":")
                if op["op"] == "add":
                    api = self._store.get(api_id)
                    if api is None or stage not in api.get("stages", {}):
                        raise bad_request("Invalid API Stage specified")
                    plan.setdefault("apiStages", []).append({"apiId": api_id, "stage": stage})
                else:
                    plan["apiStages"] = [s for s in plan.get("apiStages", [])
                                         if (s["apiId"], s["stage"]) != (api_id, stage)]
            else:
                apply_patch(plan, [op], allowed=("/name", "/description", "/throttle", "/quota", "/productCode"))
        self._store.put(acct)
        return public(plan)

    def delete_usage_plan(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        acct = self._account(ctx)
        self._plan(acct, p["usagePlanId"])
        del acct["usagePlans"][p["usagePlanId"]]
        self._store.put(acct)

    def create_usage_plan_key(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        acct = self._account(ctx)
        plan = self._plan(acct, p["usagePlanId"])
        key = acct["apiKeys"].get(p["keyId"])
        if key is None:
            raise not_found("Invalid API Key identifier specified")
        plan.setdefault("_keys", {})[key["id"]] = True
        self._store.put(acct)
        return {"id": key["id"], "type": p.get("keyType") or "API_KEY", "value": key["value"],
                "name": key.get("name")}

    def get_usage_plan_keys(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        acct = self._account(ctx)
        plan: Doc = acct["usagePlans"].get(p["usagePlanId"]) or {}  # AWS lists an unknown plan's keys as none
        keys = [acct["apiKeys"][kid] for kid in plan.get("_keys", {}) if kid in acct["apiKeys"]]
        keys.sort(key=lambda k: (-k["createdDate"], k["id"]))  # newest first, as AWS lists them
        items = [_clean({"id": k["id"], "type": "API_KEY", "value": k["value"], "name": k.get("name")})
                 for k in keys if not p.get("nameQuery") or (k.get("name") or "").startswith(p["nameQuery"])]
        return _page(items, p)

    # -- VPC links (stored and reported; Hearth has no load balancers to reach through them) ----------

    def create_vpc_link(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        if not p.get("name"):
            raise bad_request("Name cannot be empty")
        for arn in p.get("targetArns") or []:
            if not re.match(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{0,12}:.+", arn):
                raise bad_request(f"Invalid ARN. ARN is not well formed {arn}")
        acct = self._account(ctx)
        link = _clean({"id": new_id(6), "name": p["name"], "description": p.get("description"),
                       "targetArns": p.get("targetArns") or [], "status": "AVAILABLE",
                       "statusMessage": "Your vpc link is ready for use", "tags": p.get("tags") or {}})
        acct.setdefault("vpcLinks", {})[link["id"]] = link
        self._store.put(acct)
        # AWS answers the creation while the link is still PENDING (no message yet, tags only if given);
        # Hearth's links reach nothing, so the stored link is AVAILABLE at once
        created = {k: v for k, v in link.items() if k != "statusMessage" and not (k == "tags" and not v)}
        return {**copy.deepcopy(created), "status": "PENDING"}

    def _vpc_link(self, acct: Doc, link_id: str) -> Doc:
        link: Doc | None = acct.get("vpcLinks", {}).get(link_id)
        if link is None:
            raise not_found("Invalid Vpc Link identifier specified")
        return link

    def get_vpc_link(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        return copy.deepcopy(self._vpc_link(self._account(ctx), p["vpcLinkId"]))

    def get_vpc_links(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        links = [{k: v for k, v in link.items() if not (k == "tags" and not v)}  # AWS lists no empty tags
                 for link in self._account(ctx).get("vpcLinks", {}).values()]
        return _page(copy.deepcopy(links), p)

    def update_vpc_link(self, ctx: RequestContext, p: dict[str, Any]) -> Doc:
        acct = self._account(ctx)
        link = self._vpc_link(acct, p["vpcLinkId"])
        apply_patch(link, p.get("patchOperations") or [], allowed=("/name", "/description"))
        self._store.put(acct)
        return copy.deepcopy(link)

    def delete_vpc_link(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        acct = self._account(ctx)
        self._vpc_link(acct, p["vpcLinkId"])
        del acct["vpcLinks"][p["vpcLinkId"]]
        self._store.put(acct)

    def delete_usage_plan_key(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        acct = self._account(ctx)
        plan = self._plan(acct, p["usagePlanId"])
        if plan.get("_keys", {}).pop(p["keyId"], None) is None:
            raise not_found("Invalid API Key identifier specified")
        self._store.put(acct)


_NO_INTEGRATION = "Invalid Integration identifier specified"
_DEFAULT_STATUS = {
    "ACCESS_DENIED": "403", "API_CONFIGURATION_ERROR": "500", "AUTHORIZER_CONFIGURATION_ERROR": "500",
    "AUTHORIZER_FAILURE": "500", "BAD_REQUEST_BODY": "400", "BAD_REQUEST_PARAMETERS": "400",
    "EXPIRED_TOKEN": "403", "INTEGRATION_FAILURE": "504", "INTEGRATION_TIMEOUT": "504", "INVALID_API_KEY": "403",
    "INVALID_SIGNATURE": "403", "MISSING_AUTHENTICATION_TOKEN": "403", "QUOTA_EXCEEDED": "429",
    "REQUEST_TOO_LARGE": "413", "RESOURCE_NOT_FOUND": "404", "THROTTLED": "429", "UNAUTHORIZED": "401",
    "UNSUPPORTED_MEDIA_TYPE": "415", "WAF_FILTERED": "403",
}
_DEFAULT_TEMPLATES = {"application/json": '{"message":$context.error.messageString}'}
# Which default response a type falls back to (the rest are 4XX ones).
_5XX_TYPES = frozenset({"API_CONFIGURATION_ERROR", "AUTHORIZER_CONFIGURATION_ERROR", "AUTHORIZER_FAILURE",
                        "INTEGRATION_FAILURE", "INTEGRATION_TIMEOUT", "DEFAULT_5XX"})


def _gateway_response(doc: Doc, rtype: str) -> Doc:
    """A gateway response as AWS answers it: the customized one, else the default, which takes the
    parameters and templates of a customized DEFAULT_4XX / DEFAULT_5XX."""
    found: Doc | None = doc["gatewayResponses"].get(rtype)
    if found is not None:
        return copy.deepcopy(found)
    out: Doc = {"responseType": rtype, "defaultResponse": True, "responseParameters": {},
                "responseTemplates": dict(_DEFAULT_TEMPLATES)}
    if rtype in _DEFAULT_STATUS:
        out["statusCode"] = _DEFAULT_STATUS[rtype]
    fallback = doc["gatewayResponses"].get("DEFAULT_5XX" if rtype in _5XX_TYPES else "DEFAULT_4XX")
    if fallback is not None and rtype not in ("DEFAULT_4XX", "DEFAULT_5XX"):
        out["responseParameters"] = copy.deepcopy(fallback.get("responseParameters") or {})
        if fallback.get("statusCode"):
            out["statusCode"] = fallback["statusCode"]
        out["responseTemplates"] = copy.deepcopy(fallback.get("responseTemplates") or dict(_DEFAULT_TEMPLATES))
    return out


_STAGE_FIELDS = frozenset({"deploymentId", "description", "variables", "tracingEnabled", "accessLogSettings",
                           "cacheClusterEnabled", "cacheClusterSize", "clientCertificateId"})
_STAGE_PATHS = (
    "Invalid method setting path: {path}. Must be one of: [/deploymentId, /description, /cacheClusterEnabled, "
    "/cacheClusterSize, /clientCertificateId, /accessLogSettings, /accessLogSettings/destinationArn, "
    "/accessLogSettings/format, /{{resourcePath}}/{{httpMethod}}/metrics/enabled, "
    "/{{resourcePath}}/{{httpMethod}}/logging/dataTrace, /{{resourcePath}}/{{httpMethod}}/logging/loglevel, "
    "/{{resourcePath}}/{{httpMethod}}/throttling/burstLimit/{{resourcePath}}/{{httpMethod}}/throttling/rateLimit"
    "/{{resourcePath}}/{{httpMethod}}/caching/ttlInSeconds, /{{resourcePath}}/{{httpMethod}}/caching/enabled, "
    "/{{resourcePath}}/{{httpMethod}}/caching/dataEncrypted, "
    "/{{resourcePath}}/{{httpMethod}}/caching/requireAuthorizationForCacheControl, "
    "/{{resourcePath}}/{{httpMethod}}/caching/unauthorizedCacheControlHeaderStrategy, /*/*/metrics/enabled, "
    "/*/*/logging/dataTrace, /*/*/logging/loglevel, /*/*/throttling/burstLimit /*/*/throttling/rateLimit "
    "/*/*/caching/ttlInSeconds, /*/*/caching/enabled, /*/*/caching/dataEncrypted, "
    "/*/*/caching/requireAuthorizationForCacheControl, /*/*/caching/unauthorizedCacheControlHeaderStrategy, "
    "/variables/{{variable_name}}, /tracingEnabled]")


# Method settings: a patch path's last two segments -> (the setting's field, its type); AWS's defaults.
_METHOD_SETTINGS: dict[tuple[str, str], tuple[str, type]] = {
    ("metrics", "enabled"): ("metricsEnabled", bool), ("logging", "dataTrace"): ("dataTraceEnabled", bool),
    ("logging", "loglevel"): ("loggingLevel", str), ("throttling", "burstLimit"): ("throttlingBurstLimit", int),
    ("throttling", "rateLimit"): ("throttlingRateLimit", float),
    ("caching", "ttlInSeconds"): ("cacheTtlInSeconds", int),
    ("caching", "enabled"): ("cachingEnabled", bool), ("caching", "dataEncrypted"): ("cacheDataEncrypted", bool),
    ("caching", "requireAuthorizationForCacheControl"): ("requireAuthorizationForCacheControl", bool),
    ("caching", "unauthorizedCacheControlHeaderStrategy"): ("unauthorizedCacheControlHeaderStrategy", str),
}
_METHOD_SETTING_DEFAULTS: Doc = {
    "metricsEnabled": False, "dataTraceEnabled": False, "throttlingBurstLimit": 5000, "throttlingRateLimit": 10000.0,
    "cachingEnabled": False, "cacheTtlInSeconds": 300, "cacheDataEncrypted": False,
    "requireAuthorizationForCacheControl": True,
    "unauthorizedCacheControlHeaderStrategy": "SUCCEED_WITH_RESPONSE_HEADER",
}


def _method_setting_patch(stage: Doc, op: Doc) -> bool:
    """Apply one `/{resourcePath}/{httpMethod}/<group>/<name>` (or `/*/*/...`) operation, or the removal
    of a method's settings (`/{resourcePath}/{httpMethod}`); False when the path is no such path. A
    method's first setting starts from the `*/*` settings (else AWS's defaults)."""
    segments = (op.get("path") or "").split("/")[1:]
    settings: dict[str, Doc] = stage.setdefault("methodSettings", {})
    if op.get("op") == "remove" and len(segments) == 2:
        key = "/".join(segments)
        if key not in settings:
            raise bad_request(f"Cannot remove method setting {key} because there is no method setting for this method ")
        del settings[key]
        return True
    if len(segments) < 4 or (segments[-2], segments[-1]) not in _METHOD_SETTINGS:
        return False
    field_name, kind = _METHOD_SETTINGS[(segments[-2], segments[-1])]
    key = "/".join(segments[:-2])
    if key not in settings:
        settings[key] = copy.deepcopy(settings.get("*/*") or _METHOD_SETTING_DEFAULTS)
    value = op.get("value")
    try:
        if kind is bool:
            settings[key][field_name] = str(value).lower() == "true"
        elif kind is str:
            settings[key][field_name] = str(value)
        else:
            settings[key][field_name] = kind(value)
    except (TypeError, ValueError):
        raise bad_request(f"Invalid value for {op.get('path')}: {value}") from None
    return True


def new_stage(name: str, deployment_id: str, description: str | None, variables: dict[str, str] | None,
              tracing: bool | None) -> Doc:
    now = time.time()
    return _clean({"stageName": name, "deploymentId": deployment_id, "description": description,
                   "cacheClusterEnabled": False, "cacheClusterStatus": "NOT_AVAILABLE", "methodSettings": {},
                   "variables": variables or None, "tracingEnabled": bool(tracing), "createdDate": now,
                   "lastUpdatedDate": now})


_ACCESS_LOG_PATHS = ("/accessLogSettings/destinationArn", "/accessLogSettings/format")


def _check_access_log_patch(stage: Doc, op: dict[str, Any]) -> None:
    """AWS's rules for UpdateStage on access logging: only its two fields, never empty, removable when set."""
    path = op.get("path") or ""
    if op.get("op") == "remove":
        field = path[len("/accessLogSettings/"):]
        # AWS reads the removal of one field as a method setting's (`{resourcePath}/{httpMethod}`), which
        # never exists, even when the field is set: only `/accessLogSettings` as a whole is removable
        if path != "/accessLogSettings":
            raise bad_request(f"Cannot remove method setting accessLogSettings/{field} because there is no method "
                              "setting for this method ")
        return
    if path not in _ACCESS_LOG_PATHS:
        raise bad_request("Invalid accessLogSettings path. Must be one of : [/accessLogSettings/destinationArn, "
                          "/accessLogSettings/format]")
    if not op.get("value"):
        raise bad_request("Access Log value must not be empty")


def _canary(deployment_id: str, given: dict[str, Any]) -> Doc:
    return _clean({"deploymentId": deployment_id, "percentTraffic": float(given.get("percentTraffic") or 0.0),
                   "stageVariableOverrides": given.get("stageVariableOverrides") or None,
                   "useStageCache": bool(given.get("useStageCache", False))})


_CANARY_FIELDS = ("deploymentId", "percentTraffic", "stageVariableOverrides", "useStageCache")


def _canary_patch(doc: Doc, stage: Doc, op: dict[str, Any]) -> None:
    """One UpdateStage operation on a stage's canary: its settings, or a promotion (`copy` of the canary's
    deployment or variable overrides onto the stage), with AWS's texts."""
    kind, path, value = op.get("op"), op.get("path") or "", op.get("value")
    if kind == "copy":
        pair = (path, op.get("from"))
        if pair not in (("/deploymentId", "/canarySettings/deploymentId"),
                        ("/variables", "/canarySettings/stageVariableOverrides")):
            raise bad_request(f"Invalid copy operation with path: {path} and from {op.get('from')}. Valid copy:path "
                              "are [/deploymentId, /variables] and valid copy:from are [/canarySettings/deploymentId, "
                              "/canarySettings/stageVariableOverrides]")
        canary = stage.get("canarySettings")
        if canary is None:
            raise bad_request("Promotion not available. Canary does not exist.")
        if path == "/deploymentId":
            stage["deploymentId"] = canary["deploymentId"]
        else:
            stage["variables"] = {**(stage.get("variables") or {}), **(canary.get("stageVariableOverrides") or {})}
        return
    parts = path.split("/")[2:]
    field = parts[0] if parts else ""
    canary = stage.get("canarySettings")
    if kind == "remove":
        if not parts:
            stage.pop("canarySettings", None)
            return
        holder = (canary or {}).get(field) if field == "stageVariableOverrides" and len(parts) > 1 else canary
        key = parts[-1]
        # a single field (`/canarySettings/<field>`) reads as a method setting to AWS, which never exists
        if len(parts) == 1 or not isinstance(holder, dict) or key not in holder:
            raise bad_request(f"Cannot remove method setting {path.lstrip('/')} because there is no method setting "
                              "for this method ")
        del holder[key]
        if canary is not None and not canary.get("stageVariableOverrides"):
            canary.pop("stageVariableOverrides", None)
        return
    if field not in _CANARY_FIELDS or (field == "stageVariableOverrides") != (len(parts) == 2) or len(parts) > 2:
        raise bad_request(_STAGE_PATHS.format(path=path))
    if kind != "replace":
        raise bad_request(f"Invalid {kind} operation with path: {path}")
    if field == "deploymentId" and value not in doc["deployments"]:
        raise bad_request("Deployment id does not exist")
    if canary is None:
        canary = stage["canarySettings"] = _canary(stage["deploymentId"], {})
    if field == "stageVariableOverrides":
        canary.setdefault("stageVariableOverrides", {})[parts[1]] = value
    elif field == "percentTraffic":
        canary["percentTraffic"] = float(value or 0)
    elif field == "useStageCache":
        canary["useStageCache"] = str(value).lower() == "true"
    else:
        canary["deploymentId"] = value


def new_authorizer(p: dict[str, Any]) -> Doc:
    return _clean({"id": new_id(6), "name": p.get("name"), "type": p.get("type"),
                   "providerARNs": p.get("providerARNs"), "authType": p.get("authType"),
                   "authorizerUri": p.get("authorizerUri"), "authorizerCredentials": p.get("authorizerCredentials"),
                   "identitySource": p.get("identitySource") or (
                       "method.request.header.Authorization" if p.get("type") == "TOKEN" else None),
                   "identityValidationExpression": p.get("identityValidationExpression"),
                   "authorizerResultTtlInSeconds": p.get("authorizerResultTtlInSeconds", 300)})


def build_integration(p: dict[str, Any], resource_id: str) -> Doc:
    kind = p["type"]
    uri = p.get("uri")
    method = p.get("integrationHttpMethod") or p.get("httpMethod_integration")
    if kind in ("HTTP", "HTTP_PROXY", "AWS", "AWS_PROXY") and not method:
        raise bad_request("Enumeration value for HttpMethod must be non-empty")
    if kind in ("AWS", "AWS_PROXY"):
        if not uri or not uri.startswith("arn:"):
            raise bad_request("Invalid ARN specified in the request")
        service_part = uri.split(":")[5] if uri.count(":") >= 5 else ""
        if not (service_part.startswith("path/") or service_part.startswith("action/")):
            raise bad_request("AWS ARN for integration must contain path or action")
        if kind == "AWS_PROXY" and not re.search(r":lambda:path/\d{4}-\d{2}-\d{2}/functions/.+/invocations$", uri) \
                and ":firehose:action/" not in uri:
            raise bad_request("Integrations of type 'AWS_PROXY' currently only supports Lambda function and "
                              "Firehose stream invocations.")
    if kind in ("HTTP", "HTTP_PROXY") and (not uri or not re.match(r"^https?://", uri)):
        raise bad_request("Invalid HTTP endpoint specified for URI")
    integ = _clean({
        "type": kind, "httpMethod": method, "uri": uri,
        "connectionType": p.get("connectionType") or ("INTERNET" if kind in ("HTTP", "HTTP_PROXY") else None),
        "connectionId": p.get("connectionId"), "credentials": p.get("credentials"),
        "requestParameters": p.get("requestParameters") or None, "requestTemplates": p.get("requestTemplates") or None,
        "passthroughBehavior": p.get("passthroughBehavior") or "WHEN_NO_MATCH",
        "contentHandling": p.get("contentHandling"), "timeoutInMillis": p.get("timeoutInMillis") or 29000,
        "cacheNamespace": p.get("cacheNamespace") or resource_id,
        "cacheKeyParameters": p.get("cacheKeyParameters") or [],
    })
    if p.get("integrationResponses"):
        integ["integrationResponses"] = p["integrationResponses"]
    return integ


def _booleans(params: Doc | None) -> None:
    """Request and response parameters map names to booleans (required or not); patches send text."""
    for key, value in (params or {}).items():
        if isinstance(value, str):
            params[key] = value.lower() == "true"  # type: ignore[index]


def _page(items: list[Doc], p: dict[str, Any]) -> Doc:
    """One page of a list operation: `limit` items from `position` (the next item's id)."""
    start = 0
    if p.get("position"):
        try:
            after = base64.urlsafe_b64decode(str(p["position"]).encode()).decode()
        except (ValueError, UnicodeDecodeError):
            after = ""
        start = next((i for i, item in enumerate(items) if item.get("id") == after), len(items))
    limit = p.get("limit") or 500
    if limit < 1:
        limit = 500
    out: Doc = {"items": items[start:start + limit]}
    if start + limit < len(items):  # an opaque token naming the next item
        out["position"] = base64.urlsafe_b64encode(str(items[start + limit]["id"]).encode()).decode()
    return out


def _drop_empty(obj: Doc, keys: tuple[str, ...]) -> None:
    """AWS leaves a map out once its last entry is removed."""
    for key in keys:
        if key in obj and not obj[key]:
            del obj[key]


def _check_path_part(doc: Doc, parent_id: str, part: str, exclude: str | None = None) -> None:
    parent = doc["resources"].get(parent_id)
    if parent is None:
        raise not_found("Invalid Resource identifier specified")
    if parent.get("pathPart", "").endswith("+}"):
        raise bad_request(f"Cannot create a child of a resource with a greedy path variable: {parent['pathPart']}")
    if not _PATH_PART_RX.match(part):
        raise bad_request("Resource's path part only allow a-zA-Z0-9._- and curly braces at the beginning and "
                          "the end and an optional plus sign before the closing brace.")
    for sib in doc["resources"].values():
        if sib.get("parentId") != parent_id or sib["id"] == exclude:
            continue
        if sib["pathPart"] == part:
            raise conflict(f"Another resource with the same parent already has this name: {part}")
        if part.startswith("{") and sib["pathPart"].startswith("{"):
            raise bad_request(f"A sibling ({sib['pathPart']}) of this resource already has a variable path part "
                              "-- only one is allowed")


def add_resource(doc: Doc, parent_id: str, part: str) -> Doc:
    _check_path_part(doc, parent_id, part)
    rid = new_id(6)
    res = {"id": rid, "parentId": parent_id, "pathPart": part}
    doc["resources"][rid] = res
    return res


def snapshot(doc: Doc) -> Doc:
    """What a deployment freezes: the resource tree with methods, and what the data plane needs."""
    frozen: Doc = json.loads(json.dumps({
        "resources": doc["resources"], "authorizers": doc.get("authorizers", {}),
        "binaryMediaTypes": doc.get("binaryMediaTypes", []), "apiKeySource": doc.get("apiKeySource", "HEADER"),
        "requestValidators": doc.get("requestValidators", {}), "models": doc.get("models", {}),
        "gatewayResponses": doc.get("gatewayResponses", {}),
    }))
    return frozen
