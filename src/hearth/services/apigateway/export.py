"""GetExport: a deployed REST API stage written out as an OpenAPI 3.0.1 (`oas30`) or Swagger 2.0
(`swagger`) definition, JSON or YAML, with API Gateway's `x-amazon-apigateway-*` extensions when asked
(`extensions=apigateway`).

It owns the mapping from the stage's deployment snapshot back to a definition, as AWS writes it: each
method's request parameters as `string` parameters, its request models as the body, each method
response as "<code> response" with its headers and models, the models as definitions / component
schemas (model URLs back to local references), the consumed types from request models and templates,
the produced ones from response models and templates, and — with extensions — the integration with
lower-case type and passthrough behaviour and responses keyed by selection pattern. It never reads or
writes the store: the provider hands it the snapshot.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import yaml

from hearth.services.apigateway.store import Doc

_MODEL_URL = re.compile(r"^https://apigateway\.amazonaws\.com/restapis/[^/]+/models/(.+)$")
_WHERE = {"path": "path", "querystring": "query", "header": "header"}


def _refs(schema: Any, prefix: str) -> Any:
    """A stored model's schema with references to other models as local references."""
    if isinstance(schema, list):
        return [_refs(item, prefix) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: Doc = {}
    for key, value in schema.items():
        m = _MODEL_URL.match(value) if key == "$ref" and isinstance(value, str) else None
        out[key] = prefix + m.group(1) if m else _refs(value, prefix)
    return out


def _model_schema(model: Doc, prefix: str) -> Any:
    try:
        return _refs(json.loads(model.get("schema") or "{}"), prefix)
    except ValueError:
        return {}


def _parameters(method: Doc, oas3: bool) -> list[Doc]:
    out: list[Doc] = []
    for key, required in (method.get("requestParameters") or {}).items():
        parts = key.split(".", 3)
        if len(parts) != 4 or parts[2] not in _WHERE:
            continue
        prm: Doc = {"name": parts[3], "in": _WHERE[parts[2]]}
        if oas3:
            if required:  # OpenAPI 3 leaves the default (false) out
                prm["required"] = True
            prm["schema"] = {"type": "string"}
        else:
            prm["required"] = bool(required)
            prm["type"] = "string"
        out.append(prm)
    return out


def _integration(integ: Doc) -> Doc:
    out: Doc = {"type": str(integ.get("type", "")).lower()}
    for key in ("httpMethod", "uri", "credentials", "connectionId", "contentHandling"):
        if integ.get(key):
            out[key] = integ[key]
    if integ.get("connectionType") and integ["connectionType"] != "INTERNET":
        out["connectionType"] = integ["connectionType"]
    responses: Doc = {}
    for ir in (integ.get("integrationResponses") or {}).values():
        r: Doc = {"statusCode": ir["statusCode"]}
        for key in ("responseParameters", "responseTemplates", "contentHandling"):
            if ir.get(key):
                r[key] = ir[key]
        responses[ir.get("selectionPattern") or "default"] = r
    if responses:
        out["responses"] = responses
    for key in ("requestParameters", "requestTemplates"):
        if integ.get(key):
            out[key] = integ[key]
    if integ.get("passthroughBehavior"):
        out["passthroughBehavior"] = str(integ["passthroughBehavior"]).lower()
    if integ.get("timeoutInMillis") not in (None, 29000):
        out["timeoutInMillis"] = integ["timeoutInMillis"]
    if integ.get("cacheKeyParameters"):
        out["cacheKeyParameters"] = integ["cacheKeyParameters"]
    return out


def _operation(method: Doc, oas3: bool, extensions: bool) -> Doc:
    ref = "#/components/schemas/" if oas3 else "#/definitions/"
    integ: Doc = method.get("methodIntegration") or {}
    responses: dict[str, Doc] = method.get("methodResponses") or {}
    consumes = list(method.get("requestModels") or {})
    consumes += [t for t in integ.get("requestTemplates") or {} if t not in consumes]
    produces: list[str] = []
    for mr in responses.values():
        produces += [t for t in mr.get("responseModels") or {} if t not in produces]
    for ir in (integ.get("integrationResponses") or {}).values():
        produces += [t for t in ir.get("responseTemplates") or {} if t not in produces]
    op: Doc = {}
    if method.get("operationName"):
        op["operationId"] = method["operationName"]
    if not oas3:
        if consumes:
            op["consumes"] = consumes
        if produces:
            op["produces"] = produces
    params = _parameters(method, oas3)
    models: dict[str, str] = method.get("requestModels") or {}
    if models and oas3:
        op["requestBody"] = {"content": {t: {"schema": {"$ref": ref + name}} for t, name in models.items()},
                             "required": True}
    elif models:
        name = next(iter(models.values()))
        params.append({"in": "body", "name": name, "required": True, "schema": {"$ref": ref + name}})
    if params:
        op["parameters"] = params
    out_responses: Doc = {}
    for code, mr in responses.items():
        r: Doc = {"description": f"{code} response"}
        rmodels: dict[str, str] = mr.get("responseModels") or {}
        if not oas3 and rmodels:
            r["schema"] = {"$ref": ref + next(iter(rmodels.values()))}
        headers = [k.split(".", 3)[3] for k in mr.get("responseParameters") or {}
                   if k.startswith("method.response.header.")]
        if headers:
            r["headers"] = {h: {"schema": {"type": "string"}} if oas3 else {"type": "string"} for h in headers}
        if oas3:
            r["content"] = {t: {"schema": {"$ref": ref + name}} for t, name in rmodels.items()}
        out_responses[code] = r
    op["responses"] = out_responses
    if extensions and integ:
        op["x-amazon-apigateway-integration"] = _integration(integ)
    return op


def definition(api: Doc, frozen: Doc, *, stage: str, region: str, export_type: str, extensions: bool,
               deployed_at: float) -> Doc:
    """The definition of `api` (its fields) as deployed in `frozen` (a deployment snapshot) to `stage`."""
    oas3 = export_type == "oas30"
    version = api.get("version") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(deployed_at))
    info: Doc = {"title": api["name"], "version": version}
    if api.get("description"):
        info["description"] = api["description"]
    host = f"{api['id']}.execute-api.{region}.amazonaws.com"
    resources: dict[str, Doc] = frozen.get("resources") or {}
    from hearth.services.apigateway.rest import resource_path

    paths: Doc = {}
    for rid in sorted(resources, key=lambda r: resource_path(resources, r)):
        methods: dict[str, Doc] = resources[rid].get("resourceMethods") or {}
        if not methods:
            continue
        item: Doc = {}
        for verb, method in methods.items():
            key = "x-amazon-apigateway-any-method" if verb == "ANY" else verb.lower()
            item[key] = _operation(method, oas3, extensions)
        paths[resource_path(resources, rid)] = item
    prefix = "#/components/schemas/" if oas3 else "#/definitions/"
    schemas = {name: _model_schema(m, prefix) for name, m in (frozen.get("models") or {}).items()}
    out: Doc
    if oas3:
        out = {"openapi": "3.0.1", "info": info,
               "servers": [{"url": f"https://{host}/{{basePath}}", "variables": {"basePath": {"default": stage}}}],
               "paths": paths, "components": {"schemas": schemas} if schemas else {}}
    else:
        out = {"swagger": "2.0", "info": info, "host": host, "basePath": f"/{stage}", "schemes": ["https"],
               "paths": paths}
        if schemas:
            out["definitions"] = schemas
    if extensions and frozen.get("binaryMediaTypes"):
        out["x-amazon-apigateway-binary-media-types"] = list(frozen["binaryMediaTypes"])
    return out


def render(body: Doc, export_type: str, version: str, accepts: str | None) -> Doc:
    """GetExport's answer: the body as JSON (or YAML when `application/yaml` is accepted)."""
    yaml_out = (accepts or "").lower() == "application/yaml"
    data = yaml.safe_dump(body, sort_keys=False).encode() if yaml_out else json.dumps(body, indent=2).encode()
    ext = "yaml" if yaml_out else "json"
    return {"body": data, "contentType": "application/octet-stream",
            "contentDisposition": f'attachment; filename="{export_type}_{version}.{ext}"'}
