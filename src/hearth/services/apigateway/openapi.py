"""OpenAPI 3 and Swagger 2 definitions with API Gateway's `x-amazon-apigateway-*` extensions, turned
into a REST API document (ImportRestApi / PutRestApi) or an HTTP API document (ImportApi / ReimportApi).

It owns the reading of those extensions: `x-amazon-apigateway-integration` (type, uri, httpMethod,
requestTemplates, responses with selection patterns, payloadFormatVersion), `-any-method`,
`-authorizer` in security schemes, `-binary-media-types`, `-api-key-source`, `-request-validators` /
`-request-validator`, `-gateway-responses` and `-cors` (HTTP APIs). It never stores anything: the
providers save the documents it fills in.

What AWS warns about (and refuses with failOnWarnings) is reported as warnings: a method without an
integration, an unknown security scheme.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from hearth.aws.errors import AwsError
from hearth.services.apigateway.store import Doc, new_id

_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "x-amazon-apigateway-any-method")


def invalid() -> AwsError:
    return AwsError("BadRequestException", "Invalid OpenAPI input.", 400)


def load(body: bytes | str) -> dict[str, Any]:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        spec = json.loads(text)
    except ValueError:
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError:
            raise invalid() from None
    if not isinstance(spec, dict) or not ("swagger" in spec or "openapi" in spec):
        raise invalid()
    if not isinstance(spec.get("paths", {}), dict):
        raise invalid()
    return spec


def title(spec: dict[str, Any]) -> str:
    info = spec.get("info")
    return str(info.get("title")) if isinstance(info, dict) and info.get("title") else "imported"


def _model_refs(schema: Any, api_id: str) -> Any:
    """A definition's schema as AWS stores it as a model: references to other definitions
    (`#/definitions/X`, `#/components/schemas/X`) become the models' URLs."""
    if isinstance(schema, list):
        return [_model_refs(item, api_id) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: Doc = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str) and value.startswith(("#/definitions/", "#/components/schemas/")):
            out[key] = f"https://apigateway.amazonaws.com/restapis/{api_id}/models/{value.rsplit('/', 1)[-1]}"
        else:
            out[key] = _model_refs(value, api_id)
    return out


def _schemes(spec: dict[str, Any]) -> dict[str, Any]:
    if "openapi" in spec:
        schemes = (spec.get("components") or {}).get("securitySchemes") or {}
    else:
        schemes = spec.get("securityDefinitions") or {}
    return schemes if isinstance(schemes, dict) else {}


def _schemas(spec: dict[str, Any]) -> dict[str, Any]:
    found = (spec.get("components") or {}).get("schemas") if "openapi" in spec else spec.get("definitions")
    return found if isinstance(found, dict) else {}


def _authorizer(name: str, scheme: dict[str, Any]) -> Doc | None:
    ext = scheme.get("x-amazon-apigateway-authorizer")
    if not isinstance(ext, dict):
        return None
    kind = str(ext.get("type", "token")).upper()
    if kind == "COGNITO_USER_POOLS":
        kind = "COGNITO_USER_POOLS"
    identity = ext.get("identitySource")
    if identity is None and kind == "TOKEN" and scheme.get("in") == "header":
        identity = f"method.request.header.{scheme.get('name', 'Authorization')}"
    auth = {"id": new_id(6), "name": name, "type": kind, "authType": scheme.get("x-amazon-apigateway-authtype"),
            "authorizerUri": ext.get("authorizerUri"), "authorizerCredentials": ext.get("authorizerCredentials"),
            "identitySource": identity, "identityValidationExpression": ext.get("identityValidationExpression"),
            "authorizerResultTtlInSeconds": ext.get("authorizerResultTtlInSeconds", 300),
            "providerARNs": ext.get("providerARNs")}
    return {k: v for k, v in auth.items() if v is not None}


def _response_models(r: Any, spec: Doc) -> dict[str, str]:
    """A response's models by content type: the `$ref`'d schema's name (`Empty` for an inline schema)."""
    if not isinstance(r, dict):
        return {}
    schemas: dict[str, Any] = {}
    if isinstance(r.get("content"), dict):  # OpenAPI 3
        schemas = {ct: (c or {}).get("schema") for ct, c in r["content"].items() if isinstance(c, dict)}
    elif r.get("schema") is not None:  # Swagger 2: the API's (first) produced type
        produces = spec.get("produces") or ["application/json"]
        schemas = {produces[0]: r["schema"]}
    out: dict[str, str] = {}
    for ctype, schema in schemas.items():
        if not isinstance(schema, dict):
            continue
        ref = schema.get("$ref")
        out[ctype] = ref.rsplit("/", 1)[-1] if isinstance(ref, str) else "Empty"
    return out


def _integration(ext: dict[str, Any], resource_id: str) -> Doc:
    kind = str(ext.get("type", "")).upper()
    integ: Doc = {"type": kind, "passthroughBehavior": str(ext.get("passthroughBehavior", "WHEN_NO_MATCH")).upper(),
                  "timeoutInMillis": int(ext.get("timeoutInMillis", 29000)), "cacheNamespace": resource_id,
                  "cacheKeyParameters": list(ext.get("cacheKeyParameters") or [])}
    if kind in ("HTTP", "HTTP_PROXY"):  # AWS names the connection of HTTP integrations only
        integ["connectionType"] = "INTERNET"
    for key in ("uri", "credentials", "contentHandling", "connectionType", "connectionId"):
        if ext.get(key) is not None:
            integ[key] = ext[key]
    if ext.get("httpMethod"):
        integ["httpMethod"] = str(ext["httpMethod"]).upper()
    if isinstance(ext.get("requestTemplates"), dict):
        integ["requestTemplates"] = {k: v if isinstance(v, str) else json.dumps(v)
                                     for k, v in ext["requestTemplates"].items()}
    if isinstance(ext.get("requestParameters"), dict):
        integ["requestParameters"] = {k: v for k, v in ext["requestParameters"].items() if isinstance(v, str)}
    responses = ext.get("responses")
    if isinstance(responses, dict):
        out: dict[str, Doc] = {}
        for pattern, r in responses.items():
            if not isinstance(r, dict):
                continue
            code = str(r.get("statusCode", "200"))
            ir: Doc = {"statusCode": code}
            if pattern != "default":  # the default response has no pattern at all
                ir["selectionPattern"] = pattern
            if isinstance(r.get("responseTemplates"), dict):
                ir["responseTemplates"] = dict(r["responseTemplates"])
            if isinstance(r.get("responseParameters"), dict):
                ir["responseParameters"] = dict(r["responseParameters"])
            if r.get("contentHandling"):
                ir["contentHandling"] = r["contentHandling"]
            out[code] = ir
        integ["integrationResponses"] = out
    return integ


def _find_or_add(doc: Doc, path: str) -> Doc:
    from hearth.services.apigateway.rest import add_resource, resource_path

    by_path: dict[str, Doc] = {resource_path(doc["resources"], rid): r for rid, r in doc["resources"].items()}
    current: Doc = doc["resources"][doc["rootResourceId"]]
    built = ""
    for part in [p for p in path.split("/") if p]:
        built += "/" + part
        found = by_path.get(built)
        if found is None:
            found = add_resource(doc, current["id"], part)
            by_path[built] = found
        current = found
    return current


def import_rest(doc: Doc, spec: dict[str, Any], *, mode: str) -> list[str]:
    """Fill `doc` (a REST API document) from `spec`; the warnings AWS would give."""
    warnings: list[str] = []
    if mode == "overwrite":
        root = doc["rootResourceId"]
        doc["resources"] = {root: {"id": root}}
        doc["authorizers"] = {}
        doc["models"] = {}
        doc["requestValidators"] = {}
        doc["gatewayResponses"] = {}
        if spec.get("info", {}).get("description"):
            doc["description"] = spec["info"]["description"]
        if spec.get("info", {}).get("title"):
            doc["name"] = spec["info"]["title"]
    if isinstance(spec.get("info"), dict) and spec["info"].get("version") is not None:
        doc["version"] = str(spec["info"]["version"])
    if isinstance(spec.get("x-amazon-apigateway-binary-media-types"), list):
        kept = doc.get("binaryMediaTypes") or [] if mode == "merge" else []
        doc["binaryMediaTypes"] = kept + [t for t in spec["x-amazon-apigateway-binary-media-types"] if t not in kept]
    if spec.get("x-amazon-apigateway-api-key-source"):
        doc["apiKeySource"] = str(spec["x-amazon-apigateway-api-key-source"]).upper()
    auth_by_name = {a["name"]: a for a in doc["authorizers"].values()}
    api_key_schemes: set[str] = set()
    for name, scheme in _schemes(spec).items():
        if not isinstance(scheme, dict):
            continue
        auth = _authorizer(name, scheme)
        if auth is not None:
            if name in auth_by_name:
                auth["id"] = auth_by_name[name]["id"]
            doc["authorizers"][auth["id"]] = auth
            auth_by_name[name] = auth
        elif scheme.get("type") == "apiKey" and str(scheme.get("in")) == "header" \
                and str(scheme.get("name", "")).lower() == "x-api-key":
            api_key_schemes.add(name)
        elif scheme.get("x-amazon-apigateway-authtype") == "awsSigv4":
            auth_by_name[name] = {"id": "", "type": "AWS_IAM", "name": name}
    for name, schema in _schemas(spec).items():
        model = {"id": new_id(6), "name": name, "contentType": "application/json",
                 "schema": json.dumps(_model_refs(schema, doc["id"]))}
        if isinstance(schema, dict) and isinstance(schema.get("description"), str):
            model["description"] = schema["description"]  # AWS takes the definition's description
        doc["models"][name] = model
    validators_by_name: dict[str, str] = {}
    vspec = spec.get("x-amazon-apigateway-request-validators")
    if isinstance(vspec, dict):
        for name, v in vspec.items():
            vid = new_id(6)
            doc["requestValidators"][vid] = {"id": vid, "name": name,
                                             "validateRequestBody": bool(v.get("validateRequestBody")),
                                             "validateRequestParameters": bool(v.get("validateRequestParameters"))}
            validators_by_name[name] = vid
    default_validator = spec.get("x-amazon-apigateway-request-validator")
    gresp = spec.get("x-amazon-apigateway-gateway-responses")
    if isinstance(gresp, dict):
        for rtype, r in gresp.items():
            if isinstance(r, dict):
                doc["gatewayResponses"][rtype] = {"responseType": rtype, "defaultResponse": False,
                                                  **{k: v for k, v in r.items()
                                                     if k in ("statusCode", "responseParameters",
                                                              "responseTemplates")}}
    global_security = spec.get("security")
    for path, item in (spec.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        res = _find_or_add(doc, path)
        shared_params: list[Any] = item["parameters"] if isinstance(item.get("parameters"), list) else []
        for key, op in item.items():
            if key.lower() not in _METHODS or not isinstance(op, dict):
                continue
            method = "ANY" if key == "x-amazon-apigateway-any-method" else key.upper()
            m: Doc = {"httpMethod": method, "authorizationType": "NONE", "apiKeyRequired": False}
            if op.get("operationId"):
                m["operationName"] = op["operationId"]
            params: dict[str, bool] = {}
            for prm in [*shared_params, *(op.get("parameters") or [])]:
                if isinstance(prm, dict) and prm.get("in") in ("path", "query", "header"):
                    where = {"query": "querystring"}.get(prm["in"], prm["in"])
                    params[f"method.request.{where}.{prm.get('name')}"] = bool(prm.get("required", False))
            if params:
                m["requestParameters"] = params
            security = op.get("security", global_security)
            for requirement in security or []:
                for sname in requirement if isinstance(requirement, dict) else []:
                    if sname in api_key_schemes:
                        m["apiKeyRequired"] = True
                    elif sname in auth_by_name:
                        auth = auth_by_name[sname]
                        if auth["type"] == "AWS_IAM":
                            m["authorizationType"] = "AWS_IAM"
                        else:
                            m["authorizationType"] = "COGNITO_USER_POOLS" if auth["type"] == "COGNITO_USER_POOLS" \
                                else "CUSTOM"
                            m["authorizerId"] = auth["id"]
                            scopes = requirement[sname]
                            if auth["type"] == "COGNITO_USER_POOLS" and isinstance(scopes, list) and scopes:
                                m["authorizationScopes"] = [str(x) for x in scopes]
                    else:
                        warnings.append(f"Unknown security scheme {sname} at path '{path}' ({method})")
            validator = op.get("x-amazon-apigateway-request-validator", default_validator)
            if validator in validators_by_name:
                m["requestValidatorId"] = validators_by_name[validator]
            body = op.get("requestBody")
            if isinstance(body, dict) and isinstance(body.get("content"), dict):
                models = {}
                for ctype, media in body["content"].items():
                    ref = (media or {}).get("schema", {}).get("$ref", "") if isinstance(media, dict) else ""
                    if ref:
                        models[ctype] = ref.rsplit("/", 1)[-1]
                if models:
                    m["requestModels"] = models
            for prm in op.get("parameters") or []:  # Swagger 2: the body parameter's model, by consumed type
                ref = prm.get("schema", {}).get("$ref", "") if isinstance(prm, dict) and prm.get("in") == "body" \
                    and isinstance(prm.get("schema"), dict) else ""
                if ref:
                    consumes = op.get("consumes") or spec.get("consumes") or ["application/json"]
                    m["requestModels"] = {str(consumes[0]): ref.rsplit("/", 1)[-1]}
            responses = op.get("responses")
            if isinstance(responses, dict):
                mr: dict[str, Doc] = {}
                for code, r in responses.items():
                    if not str(code).isdigit():
                        continue
                    headers = (r or {}).get("headers") if isinstance(r, dict) else None
                    out_r: Doc = {"statusCode": str(code)}
                    models = _response_models(r, spec)
                    if models:
                        out_r["responseModels"] = models
                    if headers:
                        out_r["responseParameters"] = {f"method.response.header.{h}": False for h in headers}
                    mr[str(code)] = out_r
                if mr:
                    m["methodResponses"] = mr
            ext = op.get("x-amazon-apigateway-integration")
            if isinstance(ext, dict):
                m["methodIntegration"] = _integration(ext, res["id"])
                for name, value in (ext.get("requestParameters") or {}).items():
                    if not isinstance(value, str):  # AWS leaves the mapping out and says why
                        shown = json.dumps(value)
                        warnings.append(f"Invalid format for 'requestParameters'. Expected type string for property "
                                        f"'{name}' of resource '{path}' and method '{method}' but got '{shown}'")
            # a method without an integration is no warning: AWS imports one with failOnWarnings
            # (LocalStack's recorded test_import_documentation_parts)
            res.setdefault("resourceMethods", {})[method] = m
    import_documentation(doc, spec, mode="overwrite" if mode == "overwrite" else "merge")
    return warnings


def import_documentation(doc: Doc, spec: dict[str, Any], *, mode: str) -> list[str]:
    """The definition's `x-amazon-apigateway-documentation` parts into `doc` (all replaced in overwrite
    mode); their new ids. Properties are stored as the JSON text AWS answers."""
    ext = spec.get("x-amazon-apigateway-documentation")
    parts = ext.get("documentationParts") if isinstance(ext, dict) else None
    if mode == "overwrite":
        doc["documentationParts"] = {}
    ids: list[str] = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict) or not isinstance(part.get("location"), dict):
            continue
        location = {k: str(part["location"][k]) for k in ("type", "path", "method", "statusCode", "name")
                    if part["location"].get(k) is not None}
        if location.get("type") not in ("API", "MODEL", "AUTHORIZER") and "path" not in location:
            location["path"] = "/"
        props = part.get("properties")
        pid = new_id(6)
        doc.setdefault("documentationParts", {})[pid] = {
            "id": pid, "location": location, "properties": props if isinstance(props, str) else json.dumps(props)}
        ids.append(pid)
    return ids


def import_http(spec: dict[str, Any]) -> tuple[Doc, list[Doc], list[Doc], list[Doc], list[str]]:
    """(API fields, routes, integrations, authorizers, warnings) of an HTTP API definition."""
    warnings: list[str] = []
    api: Doc = {"Name": title(spec)}
    if spec.get("info", {}).get("description"):
        api["Description"] = spec["info"]["description"]
    cors = spec.get("x-amazon-apigateway-cors")
    if isinstance(cors, dict):
        api["CorsConfiguration"] = {k[0].upper() + k[1:]: v for k, v in cors.items()}
    authorizers: list[Doc] = []
    auth_ids: dict[str, str] = {}
    for name, scheme in _schemes(spec).items():
        ext = scheme.get("x-amazon-apigateway-authorizer") if isinstance(scheme, dict) else None
        if not isinstance(ext, dict):
            continue
        aid = new_id(6)
        auth_ids[name] = aid
        kind = str(ext.get("type", "request"))
        a: Doc = {"AuthorizerId": aid, "Name": name,
                  "AuthorizerType": "JWT" if kind.lower() == "jwt" else "REQUEST"}
        if kind.lower() == "jwt":
            jwt = ext.get("jwtConfiguration") or {}
            a["JwtConfiguration"] = {"Audience": jwt.get("audience") or [], "Issuer": jwt.get("issuer")}
            a["IdentitySource"] = [ext.get("identitySource", "$request.header.Authorization")]
        else:
            a["AuthorizerUri"] = ext.get("authorizerUri")
            a["AuthorizerPayloadFormatVersion"] = ext.get("authorizerPayloadFormatVersion", "2.0")
            a["EnableSimpleResponses"] = bool(ext.get("enableSimpleResponses", False))
            ident = ext.get("identitySource")
            a["IdentitySource"] = [s.strip() for s in ident.split(",")] if isinstance(ident, str) else ident or []
            a["AuthorizerResultTtlInSeconds"] = int(ext.get("authorizerResultTtlInSeconds", 0))
        authorizers.append(a)
    routes: list[Doc] = []
    integrations: list[Doc] = []
    for path, item in (spec.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for key, op in item.items():
            if key.lower() not in _METHODS or not isinstance(op, dict):
                continue
            method = "ANY" if key == "x-amazon-apigateway-any-method" else key.upper()
            route_key = "$default" if path in ("$default", "/$default") else f"{method} {path}"
            route: Doc = {"RouteId": new_id(7), "RouteKey": route_key, "AuthorizationType": "NONE",
                          "ApiKeyRequired": False}
            for requirement in op.get("security") or spec.get("security") or []:
                for sname in requirement if isinstance(requirement, dict) else []:
                    if sname in auth_ids:
                        route["AuthorizerId"] = auth_ids[sname]
                        kind = next(a["AuthorizerType"] for a in authorizers if a["AuthorizerId"] == auth_ids[sname])
                        route["AuthorizationType"] = "JWT" if kind == "JWT" else "CUSTOM"
            ext = op.get("x-amazon-apigateway-integration")
            if isinstance(ext, dict):
                iid = new_id(7)
                kind = str(ext.get("type", "aws_proxy")).upper()
                integ: Doc = {"IntegrationId": iid, "IntegrationType": kind,
                              "IntegrationUri": ext.get("uri"),
                              "IntegrationMethod": str(ext.get("httpMethod", "POST")).upper(),
                              "PayloadFormatVersion": str(ext.get("payloadFormatVersion",
                                                                  "2.0" if kind == "AWS_PROXY" else "1.0")),
                              "TimeoutInMillis": int(ext.get("timeoutInMillis", 30000)),
                              "ConnectionType": "INTERNET"}
                integrations.append(integ)
                route["Target"] = f"integrations/{iid}"
            else:
                warnings.append(f"No integration defined for method: {method} {path}")
            routes.append(route)
    return api, routes, integrations, authorizers, warnings
