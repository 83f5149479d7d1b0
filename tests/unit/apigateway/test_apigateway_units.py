"""Unit tests of API Gateway's pieces: routing precedence, PATCH operations, IAM-policy evaluation,
payload 1.0 response mapping, VTL templates, OpenAPI import, usage-plan limits, Host matching."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hearth.aws.errors import AwsError
from hearth.services.apigateway import openapi, proxy, routing, vtl
from hearth.services.apigateway.authorizers import evaluate_policy
from hearth.services.apigateway.front import lambda_arn, match
from hearth.services.apigateway.limits import UsageLimits
from hearth.services.apigateway.patch import apply_patch
from hearth.urls.response import BadResponse


def _resources(*paths: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"root": {"id": "root"}}
    for path in paths:
        parent = "root"
        built = ""
        for part in path.strip("/").split("/"):
            built += "/" + part
            if built not in out:
                out[built] = {"id": built, "parentId": parent, "pathPart": part}
            parent = built
    return out


def test_rest_routing_prefers_literal_then_param_then_greedy() -> None:
    res = _resources("/pets/{id}", "/pets/mine", "/{proxy+}", "/pets/{id}/toys/{toy}")
    root = routing.compile_resources(res)
    assert routing.match_resource(root, "/pets/mine") == ("/pets/mine", {})
    assert routing.match_resource(root, "/pets/7") == ("/pets/{id}", {"id": "7"})
    assert routing.match_resource(root, "/pets/7/toys/b%20all") == (
        "/pets/{id}/toys/{toy}", {"id": "7", "toy": "b all"})
    assert routing.match_resource(root, "/pets/7/other/x/") == ("/{proxy+}", {"proxy": "pets/7/other/x"})
    assert routing.match_resource(root, "/") == ("root", {})
    # A resource that cannot take the request gives way to a less specific one.
    assert routing.match_resource(root, "/pets/7", lambda rid: rid != "/pets/{id}") == (
        "/{proxy+}", {"proxy": "pets/7"})
    assert routing.match_resource(routing.compile_resources(_resources("/a")), "/b") is None


def test_http_routing_method_before_any_and_default_last() -> None:
    routes = routing.compile_routes([
        {"RouteId": "1", "RouteKey": "ANY /items/{id}"}, {"RouteId": "2", "RouteKey": "GET /items/{id}"},
        {"RouteId": "3", "RouteKey": "GET /items/special"}, {"RouteId": "4", "RouteKey": "$default"},
        {"RouteId": "5", "RouteKey": "ANY /{proxy+}"}])
    assert routing.match_route(routes, "GET", "/items/special")[0].route_id == "3"  # type: ignore[index]
    assert routing.match_route(routes, "GET", "/items/9")[0].route_id == "2"  # type: ignore[index]
    assert routing.match_route(routes, "POST", "/items/9")[0].route_id == "1"  # type: ignore[index]
    found = routing.match_route(routes, "POST", "/x/y")
    assert found is not None and found[0].route_id == "5" and found[1] == {"proxy": "x/y"}
    assert routing.match_route(routes, "GET", "/")[0].route_id == "4"  # type: ignore[index]
    assert routing.match_route(routing.compile_routes([{"RouteId": "1", "RouteKey": "GET /a"}]), "GET", "/b") is None


def test_patch_operations() -> None:
    doc: dict[str, Any] = {"name": "a", "variables": {"x": "1"}}
    apply_patch(doc, [{"op": "replace", "path": "/name", "value": "b"},
                      {"op": "add", "path": "/variables/y", "value": "2"},
                      {"op": "remove", "path": "/variables/x"},
                      {"op": "add", "path": "/binaryMediaTypes/image~1png"},
                      {"op": "replace", "path": "/apiKeyRequired", "value": "true"},
                      {"op": "replace", "path": "/timeoutInMillis", "value": "500"}], allowed=None)
    assert doc == {"name": "b", "variables": {"y": "2"}, "binaryMediaTypes": ["image/png"], "apiKeyRequired": True,
                   "timeoutInMillis": 500}
    apply_patch(doc, [{"op": "remove", "path": "/binaryMediaTypes/image~1png"}], allowed=None)
    assert "binaryMediaTypes" not in doc
    with pytest.raises(AwsError) as err:
        apply_patch(doc, [{"op": "replace", "path": "/id", "value": "x"}], allowed=("/name",))
    assert err.value.message == "Invalid patch path /id"


def test_policy_evaluation() -> None:
    arn = "arn:aws:execute-api:us-east-1:000000000000:abc/dev/GET/pets/1"

    def policy(*statements: tuple[str, str]) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": [
            {"Effect": e, "Action": "execute-api:Invoke", "Resource": r} for e, r in statements]}

    assert evaluate_policy(policy(("Allow", arn)), arn) is True
    assert evaluate_policy(policy(("Allow", "arn:aws:execute-api:us-east-1:000000000000:abc/*/GET/*")), arn) is True
    assert evaluate_policy(policy(("Allow", "arn:aws:execute-api:*:*:abc/*"), ("Deny", arn)), arn) is False
    assert evaluate_policy(policy(("Allow", "arn:aws:execute-api:us-east-1:000000000000:abc/dev/POST/*")), arn) is None
    assert evaluate_policy("not a policy", arn) is None


def _req(**kw: Any) -> proxy.ApiRequest:
    base: dict[str, Any] = {"method": "GET", "path": "/p", "raw_query": "", "headers": [], "body": b"",
                            "source_ip": "127.0.0.1", "api_id": "a", "account": "0", "region": "r", "stage": "s",
                            "domain_name": "d", "request_id": "id", "epoch_ms": 0}
    base.update(kw)
    return proxy.ApiRequest(**base)


def test_payload_1_0_response_mapping() -> None:
    answer = proxy.map_v1(json.dumps({"statusCode": "201", "headers": {"A": "1", "flag": True},
                                      "multiValueHeaders": {"a": ["0"]}, "body": "x"}).encode(),
                          binary_media_types=[], accept=None)
    assert (answer.status, answer.body) == (201, b"x")
    assert answer.headers == [("a", "0"), ("a", "1"), ("flag", "true"), ("Content-Type", "application/json")]
    # AWS (recorded by LocalStack's validated tests): an object without a statusCode is a 200, an unknown key a 502.
    empty = proxy.map_v1(b"{}", binary_media_types=[], accept=None)
    assert (empty.status, empty.body) == (200, b"")
    for bad in ({"statusCode": 200, "wrongValue": "value"}, {"statusCode": "abc"},
                {"statusCode": 200, "body": {"a": 1}}, {"statusCode": 200, "multiValueHeaders": {"a": "b"}},
                "text", [1]):
        with pytest.raises(BadResponse):
            proxy.map_v1(json.dumps(bad).encode(), binary_media_types=[], accept=None)
    png = proxy.map_v1(json.dumps({"statusCode": 200, "body": "AAE=", "isBase64Encoded": True}).encode(),
                       binary_media_types=["image/*"], accept="image/png")
    assert png.body == b"\x00\x01"


def test_event_v1_headers_and_queries() -> None:
    req = _req(headers=[("X-A", "1"), ("X-A", "2")], raw_query="q=1&q=2&e")
    rest = proxy.event_v1(req, resource_path="/p", resource_id="r", deployment_id="d", binary_media_types=[],
                          authorizer=None)
    assert rest["headers"] == {"X-A": "2"} and rest["multiValueHeaders"] == {"X-A": ["1", "2"]}
    assert rest["queryStringParameters"] == {"q": "2", "e": ""}
    http = proxy.event_v1(req, resource_path="/p", resource_id="r", deployment_id="d", binary_media_types=[],
                          authorizer=None, http_api=True)
    assert http["headers"] == {"X-A": "1,2"} and http["version"] == "1.0" and "version" not in rest


def test_vtl_templates() -> None:
    out = vtl.render(
        '#set($b = $input.path(\'$\')){"n": $b.items.size(), "empty": $b.items.isEmpty(), "flag": $b.flag, '
        '"first": $input.json(\'$.items[0]\'), "q": "$input.params(\'q\')", "h": "$input.params(\'X-H\')", '
        '"esc": "$util.escapeJavaScript($b.name)", "b64": "$util.base64Encode(\'hi\')", '
        '"stage": "$context.stage", "var": "$stageVariables.v"}',
        body='{"items": [{"a": 1}], "flag": false, "name": "a\\"b"}',
        params={"path": {}, "querystring": {"q": "1"}, "header": {"x-h": "h"}}, context={"stage": "dev"},
        stage_variables={"v": "x"})
    assert json.loads(out) == {"n": 1, "empty": False, "flag": False, "first": {"a": 1}, "q": "1", "h": "h",
                               "esc": 'a"b', "b64": "aGk=", "stage": "dev", "var": "x"}
    assert vtl.json_path({"a": [{"b": 1}, {"b": 2}]}, "$.a[*].b") == [1, 2]
    with pytest.raises(vtl.TemplateError):
        vtl.render("#foreach($x in)", body="", params={}, context={}, stage_variables={})


def test_openapi_import_and_bad_input() -> None:
    doc: dict[str, Any] = {"rootResourceId": "root", "resources": {"root": {"id": "root"}}, "authorizers": {},
                           "models": {}, "requestValidators": {}, "gatewayResponses": {}}
    spec = openapi.load(b"""
swagger: "2.0"
info: {title: t}
x-amazon-apigateway-binary-media-types: ["image/png"]
paths:
  /a/{b}:
    get:
      parameters: [{name: q, in: query, required: true}]
      responses: {"200": {headers: {X-Y: {type: string}}}}
      x-amazon-apigateway-integration:
        type: aws
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:0:function:f/x
        httpMethod: POST
        requestTemplates: {application/json: '{"b": "$input.params(''b'')"}'}
        responses:
          default: {statusCode: "200"}
          "Err.*": {statusCode: "400"}
    post: {}
""")
    warnings = openapi.import_rest(doc, spec, mode="overwrite")
    assert warnings == []  # a method without an integration imports without a warning, as on AWS
    assert doc["binaryMediaTypes"] == ["image/png"] and doc["name"] == "t"
    method = doc["resources"][next(r for r, v in doc["resources"].items() if v.get("pathPart") == "{b}")][
        "resourceMethods"]["GET"]
    assert method["requestParameters"] == {"method.request.querystring.q": True}
    assert method["methodResponses"]["200"]["responseParameters"] == {"method.response.header.X-Y": False}
    integ = method["methodIntegration"]
    assert integ["type"] == "AWS" and integ["integrationResponses"]["400"]["selectionPattern"] == "Err.*"
    for bad in (b"[1, 2]", b"{not yaml: [", b'{"info": {}}', b'{"openapi": "3.0.1", "paths": []}'):
        with pytest.raises(AwsError) as err:
            openapi.load(bad)
        assert err.value.message == "Invalid OpenAPI input."


def test_usage_limits() -> None:
    now = [1000.0]
    limits = UsageLimits(lambda: now[0])
    account = {"apiKeys": {"k": {"id": "k", "value": "v" * 20, "enabled": True}},
               "usagePlans": {"p": {"id": "p", "_keys": {"k": True}, "apiStages": [{"apiId": "a", "stage": "s"}],
                                    "throttle": {"rateLimit": 1, "burstLimit": 2}, "quota": {"limit": 3,
                                                                                             "period": "DAY"}}}}
    assert limits.check(account, None, "a", "s") == (403, b'{"message":"Forbidden"}')
    assert limits.check(account, "v" * 20, "a", "other") == (403, b'{"message":"Forbidden"}')
    assert limits.check(account, "v" * 20, "a", "s") is None
    assert limits.check(account, "v" * 20, "a", "s") is None
    assert limits.check(account, "v" * 20, "a", "s") == (429, b'{"message":"Too Many Requests"}')
    now[0] += 1.0
    assert limits.check(account, "v" * 20, "a", "s") is None
    now[0] += 5.0
    assert limits.check(account, "v" * 20, "a", "s") == (429, b'{"message":"Limit Exceeded"}')


def test_host_and_path_matching() -> None:
    def scope(host: str, path: str) -> dict[str, Any]:
        return {"headers": [(b"host", host.encode())], "raw_path": path.encode(), "path": path}

    assert match(scope("abcdefghij.execute-api.localhost:4566", "/dev/x")) == ("abcdefghij", None, "/dev/x")
    assert match(scope("abcdefghij.execute-api.eu-west-1.amazonaws.com", "/x")) == ("abcdefghij", "eu-west-1", "/x")
    assert match(scope("localhost:4566", "/_hearth/api/abcdefghij/dev/x")) == ("abcdefghij", None, "/dev/x")
    assert match(scope("localhost:4566", "/2015-03-31/functions")) is None
    arn = "arn:aws:lambda:us-east-1:000000000000:function:f"
    assert lambda_arn(f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations", {}) == arn
    assert lambda_arn(arn + ":${stageVariables.alias}", {"alias": "live"}) == arn + ":live"
    assert lambda_arn("https://example.com", {}) is None


def test_openapi_import_http_api() -> None:
    spec = openapi.load(json.dumps({
        "openapi": "3.0.1", "info": {"title": "h"},
        "components": {"securitySchemes": {"jwt": {"type": "oauth2", "x-amazon-apigateway-authorizer": {
            "type": "jwt", "identitySource": "$request.header.Authorization",
            "jwtConfiguration": {"issuer": "https://issuer", "audience": ["a"]}}}}},
        "paths": {
            "/$default": {"x-amazon-apigateway-any-method": {"x-amazon-apigateway-integration": {
                "type": "aws_proxy", "uri": "arn:aws:lambda:us-east-1:0:function:f", "payloadFormatVersion": "1.0"}}},
            "/me": {"get": {"security": [{"jwt": []}], "x-amazon-apigateway-integration": {
                "type": "http_proxy", "uri": "http://backend/me", "httpMethod": "GET"}}}}}))
    fields, routes, integrations, authorizers, warnings = openapi.import_http(spec)
    assert fields == {"Name": "h"} and warnings == []
    by_key = {r["RouteKey"]: r for r in routes}
    assert set(by_key) == {"$default", "GET /me"}
    assert by_key["GET /me"]["AuthorizationType"] == "JWT"
    assert authorizers[0]["JwtConfiguration"] == {"Audience": ["a"], "Issuer": "https://issuer"}
    kinds = {i["IntegrationType"]: i for i in integrations}
    assert kinds["AWS_PROXY"]["PayloadFormatVersion"] == "1.0" and kinds["HTTP_PROXY"]["IntegrationMethod"] == "GET"


def test_localstack_path_forms_are_api_requests() -> None:
    def scope(path: str) -> dict[str, Any]:
        return {"headers": [(b"host", b"localhost:4566")], "raw_path": path.encode(), "path": path}

    assert match(scope("/restapis/abcdefghij/dev/_user_request_/pets/1")) == ("abcdefghij", None, "/dev/pets/1")
    assert match(scope("/restapis/abcdefghij/dev/_user_request_/")) == ("abcdefghij", None, "/dev/")
    assert match(scope("/_aws/execute-api/abcdefghij/dev/pets")) == ("abcdefghij", None, "/dev/pets")
    assert match(scope("/restapis/abcdefghij/resources")) is None  # the control plane's own path


def test_vtl_overrides_bracketed_and_hyphenated_sets() -> None:
    ctx: dict[str, Any] = {"requestOverride": {"header": {}, "querystring": {}, "path": {}},
                           "responseOverride": {"header": {}}}
    template = (
        '#set($name = "foo")\n'
        '#set($context.requestOverride.querystring[$name] = "bar")\n'
        '#set($context["requestOverride"].querystring["nested"] = "x")\n'
        '#set($context.requestOverride.header.X-Amz-Target = "AWSEvents.PutEvents")\n'
        '#set($context.responseOverride.status = 444)\n'
        '{"missing": "$stageVariables.nope", "set": "$stageVariables.here"}')
    out = vtl.render(template, body="", params={}, context=ctx, stage_variables={"here": "yes"})
    assert json.loads(out) == {"missing": "", "set": "yes"}
    assert ctx["requestOverride"]["querystring"] == {"foo": "bar", "nested": "x"}
    assert ctx["requestOverride"]["header"] == {"X-Amz-Target": "AWSEvents.PutEvents"}
    from hearth.services.apigateway import mapped
    from hearth.urls.response import HttpAnswer
    answer = mapped.override(HttpAnswer(200, [("Content-Type", "application/json")], b"{}"),
                             {"responseOverride": {"status": 444, "header": {"foo": "bar"}}})
    assert answer.status == 444 and ("foo", "bar") in answer.headers


def test_binary_media_type_patches_name_items() -> None:
    doc: dict[str, Any] = {}
    apply_patch(doc, [{"op": "add", "path": "/binaryMediaTypes/image~1png"},
                      {"op": "add", "path": "/binaryMediaTypes/image~1jpeg"}], allowed=None)
    assert doc["binaryMediaTypes"] == ["image/png", "image/jpeg"]
    apply_patch(doc, [{"op": "replace", "path": "/binaryMediaTypes/image~1png", "value": "image/gif"}],
                allowed=None)
    assert doc["binaryMediaTypes"] == ["image/jpeg", "image/gif"]


def test_http_integrations_reach_localhost_names() -> None:
    from hearth.services.apigateway.httpfwd import loopback
    assert loopback("http://abc.lambda-url.us-east-1.localhost:4566/x?y=1") == (
        "http://127.0.0.1:4566/x?y=1", "abc.lambda-url.us-east-1.localhost:4566")
    assert loopback("https://example.com/x") == ("https://example.com/x", None)


def test_models_reference_each_other_by_url() -> None:
    from hearth.services.apigateway import mapped
    spec: dict[str, Any] = {"openapi": "3.0.1", "info": {"title": "t", "version": "2.1"}, "paths": {},
            "components": {"schemas": {
                "House": {"type": "object", "required": ["rooms"]},
                "Person": {"type": "object", "properties": {"house": {"$ref": "#/components/schemas/House"}}}}}}
    doc: dict[str, Any] = {"id": "abcdefghij", "rootResourceId": "r", "resources": {"r": {"id": "r"}},
                           "authorizers": {}, "models": {}, "requestValidators": {}, "gatewayResponses": {}}
    openapi.import_rest(doc, spec, mode="overwrite")
    assert doc["version"] == "2.1"
    person = json.loads(doc["models"]["Person"]["schema"])
    assert person["properties"]["house"]["$ref"] == (
        "https://apigateway.amazonaws.com/restapis/abcdefghij/models/House")
    import jsonschema
    validator = jsonschema.Draft4Validator(person, registry=mapped._models_registry(doc, "abcdefghij"))
    assert validator.is_valid({"house": {"rooms": 3}}) and not validator.is_valid({"house": {}})


def test_null_references_render_empty() -> None:
    # AWS renders a reference without a value as nothing (Velocity itself would print its text).
    out = vtl.render('{"a": "$nope", "b": "$input.path(\'$.missing\')", "c": "$context.identity.get(\'k\')"}',
                     body="{}", params={}, context={"identity": {}}, stage_variables={})
    assert json.loads(out) == {"a": "", "b": "", "c": ""}


def test_velocity_string_literals_keep_backslashes() -> None:
    # LocalStack's EventBridge test (validated on AWS): `replaceAll("\'","'")` parses and runs as in Java.
    template = '"$util.escapeJavaScript($text).replaceAll("\\\'","\'")"'
    assert vtl.render(template, body="", params={}, context={}, stage_variables={}) == '""'


def test_content_handling_converts_bodies_as_aws_does() -> None:
    """Request bodies: binary media types pass as bytes (base64 with CONVERT_TO_TEXT); other bodies are
    text with invalid UTF-8 replaced, or base64-decoded with CONVERT_TO_BINARY (not base64: 500).
    Answers: by the integration response's handling, else by whether Accept names a binary type."""
    from hearth.services.apigateway import mapped

    raw = b"\x1f\x8bbin"
    png = [("Content-Type", "image/png")]
    assert mapped.converted_body({}, _req(body=raw, headers=png), ["image/png"]) == raw
    assert mapped.converted_body({"contentHandling": "CONVERT_TO_TEXT"}, _req(body=raw, headers=png),
                                 ["image/png"]) == b"H4tiaW4="
    assert mapped.converted_body({}, _req(body=raw, headers=png), []) == "\x1f\ufffdbin".encode()
    assert mapped.converted_body({"contentHandling": "CONVERT_TO_BINARY"}, _req(body=b"H4tiaW4="), []) == raw
    with pytest.raises(mapped.ConversionFailed):
        mapped.converted_body({"contentHandling": "CONVERT_TO_BINARY"}, _req(body=raw), [])

    accept_png = _req(headers=[("Accept", "image/png")])
    octet = [("Content-Type", "binary/octet-stream")]
    assert mapped.converted_answer({}, b"H4tiaW4=", octet, accept_png, ["image/png"]) == raw
    with pytest.raises(mapped.ConversionFailed):
        mapped.converted_answer({}, raw, octet, accept_png, ["image/png"])
    assert mapped.converted_answer({}, raw, png, accept_png, ["image/png"]) == raw
    assert mapped.converted_answer({}, raw, png, _req(headers=[("Accept", "text/plain")]), ["image/png"]) == b"H4tiaW4="
    assert mapped.converted_answer({"contentHandling": "CONVERT_TO_TEXT"}, raw, octet, accept_png,
                                   ["image/png"]) == "\x1f\ufffdbin".encode()
    assert mapped.converted_answer({}, b"text", octet, _req(), []) == b"text"


def test_import_reads_documentation_parts_and_refuses_non_string_mappings() -> None:
    doc: dict[str, Any] = {"id": "a1", "rootResourceId": "r", "resources": {"r": {"id": "r"}}, "authorizers": {},
                           "models": {}, "requestValidators": {}, "gatewayResponses": {}}
    spec = {"openapi": "3.0.0", "info": {"title": "t", "version": "1"},
            "paths": {"/": {"get": {"x-amazon-apigateway-integration": {
                "type": "mock", "requestParameters": {"integration.request.header.x": True,
                                                      "integration.request.header.y": "'v'"}}}}},
            "x-amazon-apigateway-documentation": {"documentationParts": [
                {"location": {"type": "API"}, "properties": {"description": "d"}},
                {"location": {"type": "METHOD", "method": "GET"}, "properties": {"description": "m"}}]}}
    warnings = openapi.import_rest(doc, spec, mode="overwrite")
    assert warnings == ["Invalid format for 'requestParameters'. Expected type string for property "
                        "'integration.request.header.x' of resource '/' and method 'GET' but got 'true'"]
    assert doc["resources"]["r"]["resourceMethods"]["GET"]["methodIntegration"]["requestParameters"] == {
        "integration.request.header.y": "'v'"}
    parts = sorted(doc["documentationParts"].values(), key=lambda p: p["location"]["type"])
    assert [(p["location"], p["properties"]) for p in parts] == [
        ({"type": "API"}, '{"description": "d"}'),
        ({"type": "METHOD", "method": "GET", "path": "/"}, '{"description": "m"}')]
    assert len(openapi.import_documentation(doc, spec, mode="overwrite")) == 2 and len(doc["documentationParts"]) == 2
