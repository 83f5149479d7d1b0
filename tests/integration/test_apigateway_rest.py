"""REST APIs end to end: the `apigateway` control plane through boto3, the execute-api data plane
through plain HTTP (Host header and path form), the payload 1.0 event checked against Powertools'
model of AWS's shape, AWS's response mapping and error bodies, OpenAPI import (SAM's way), Lambda
authorizers, API keys and usage plans, MOCK integrations, and a Powertools APIGatewayRestResolver app."""

from __future__ import annotations

import base64
import http.client
import json
import uuid
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.integration.harness import (
    ACCESS_KEY,
    ACCOUNT,
    OTHER_ACCESS_KEY,
    OTHER_SECRET_KEY,
    SECRET_KEY,
    HearthServer,
    create_function,
)
from tests.integration.test_layers import site_packages_zip

pytestmark = pytest.mark.integration

ECHO_APP = '''
import base64, json

def handler(event, context):
    q = event.get("queryStringParameters") or {}
    mode = q.get("mode")
    if mode == "malformed":  # a key AWS does not know: 502 (an object without statusCode is a 200)
        return {"statusCode": 200, "wrongValue": "value"}
    if mode == "notjson":
        return "plain string"
    if mode == "error":
        raise ValueError("boom")
    if mode == "multi":
        return {"statusCode": 201, "headers": {"x-single": "one", "X-Multi": "solo"},
                "multiValueHeaders": {"x-multi": ["m1", "m2"]}, "body": "ok"}
    if mode == "binary":
        return {"statusCode": 200, "headers": {"Content-Type": "image/png"},
                "body": base64.b64encode(b"\\x89PNG\\x00\\xff").decode(), "isBase64Encoded": True}
    if mode == "b64text":
        return {"statusCode": 200, "body": base64.b64encode(b"test-data").decode(), "isBase64Encoded": True}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(event)}
'''

AUTHORIZER_APP = '''
def handler(event, context):
    token = event.get("authorizationToken") or (event.get("headers") or {}).get("x-token")
    if token == "bad":
        raise Exception("Unauthorized")
    effect = "Deny" if token == "deny" else "Allow"
    return {"principalId": "user-" + str(token),
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}]},
            "context": {"tier": "gold", "count": 3, "flag": True}}
'''

POWERTOOLS_APP = '''
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

app = APIGatewayRestResolver()

@app.get("/todos/<todo_id>")
def get_todo(todo_id):
    return {"id": todo_id, "stage": app.current_event.request_context.stage}

@app.post("/todos")
def create_todo():
    return {"created": app.current_event.json_body["title"]}, 201

def handler(event, context):
    return app.resolve(event, context)
'''


Answer = tuple[int, dict[str, str], bytes, list[tuple[str, str]]]


def call(server: HearthServer, api_id: str, method: str, path: str, *, headers: dict[str, str] | None = None,
         body: bytes | None = None, path_form: bool = False) -> Answer:
    port = int(server.endpoint.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        hdrs = dict(headers or {})
        if path_form:
            path = f"/_hearth/api/{api_id}{path}"
        else:
            hdrs["Host"] = f"{api_id}.execute-api.localhost:{port}"
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        raw = resp.getheaders()
        return resp.status, {k.lower(): v for k, v in raw}, data, raw
    finally:
        conn.close()


def allow_apigateway(lam: Any, name: str, api_id: str) -> None:
    lam.add_permission(FunctionName=name, StatementId=f"apigw-{api_id}", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}/*")


def lambda_uri(arn: str) -> str:
    return f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations"


@pytest.fixture(scope="module")
def echo(server: HearthServer) -> str:
    lam = server.client("lambda")
    name = f"apigw-echo-{uuid.uuid4().hex[:6]}"
    return str(create_function(lam, name, {"app.py": ECHO_APP}, Timeout=10)["FunctionArn"])


@pytest.fixture(scope="module")
def proxy_api(server: HearthServer, echo: str) -> str:
    """An API with `/{proxy+}` and `/items/{id}` (ANY, AWS_PROXY to the echo function), stage `dev`."""
    apigw = server.client("apigateway")
    api = apigw.create_rest_api(name="proxy-api", binaryMediaTypes=["image/png"])
    api_id = api["id"]
    root = api["rootResourceId"]
    proxy_res = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="{proxy+}")
    items = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="items")
    item = apigw.create_resource(restApiId=api_id, parentId=items["id"], pathPart="{id}")
    for res in (proxy_res, item):
        apigw.put_method(restApiId=api_id, resourceId=res["id"], httpMethod="ANY", authorizationType="NONE")
        apigw.put_integration(restApiId=api_id, resourceId=res["id"], httpMethod="ANY", type="AWS_PROXY",
                              integrationHttpMethod="POST", uri=lambda_uri(echo))
    apigw.create_deployment(restApiId=api_id, stageName="dev", variables={"color": "blue"})
    allow_apigateway(server.client("lambda"), echo.rsplit(":", 1)[1], api_id)
    return str(api_id)


def test_control_plane_shapes_and_errors(server: HearthServer, proxy_api: str) -> None:
    apigw = server.client("apigateway")
    api = apigw.get_rest_api(restApiId=proxy_api)
    assert api["apiKeySource"] == "HEADER" and api["endpointConfiguration"] == {"types": ["EDGE"],
                                                                                 "ipAddressType": "ipv4"}
    paths = sorted(r["path"] for r in apigw.get_resources(restApiId=proxy_api)["items"])
    assert paths == ["/", "/items", "/items/{id}", "/{proxy+}"]
    proxy_id = next(r["id"] for r in apigw.get_resources(restApiId=proxy_api)["items"] if r["path"] == "/{proxy+}")
    method = apigw.get_method(restApiId=proxy_api, resourceId=proxy_id, httpMethod="ANY")
    assert method["methodIntegration"]["type"] == "AWS_PROXY"
    assert method["methodIntegration"]["timeoutInMillis"] == 29000
    stage = apigw.get_stage(restApiId=proxy_api, stageName="dev")
    assert stage["variables"] == {"color": "blue"} and stage["cacheClusterStatus"] == "NOT_AVAILABLE"
    with pytest.raises(ClientError) as err:
        apigw.get_rest_api(restApiId="nope000000")
    assert err.value.response["Error"] == {"Code": "NotFoundException",
                                           "Message": f"Invalid API identifier specified {ACCOUNT}:nope000000"}
    root = api["rootResourceId"]
    with pytest.raises(ClientError) as err:
        apigw.create_resource(restApiId=proxy_api, parentId=root, pathPart="{other}")
    assert err.value.response["Error"]["Message"] == (
        "A sibling ({proxy+}) of this resource already has a variable path part -- only one is allowed")
    with pytest.raises(ClientError) as err:
        apigw.create_resource(restApiId=proxy_api, parentId=proxy_id, pathPart="child")
    assert err.value.response["Error"]["Message"] == (
        "Cannot create a child of a resource with a greedy path variable: {proxy+}")
    with pytest.raises(ClientError) as err:
        apigw.delete_deployment(restApiId=proxy_api, deploymentId=stage["deploymentId"])
    assert err.value.response["Error"]["Message"] == (
        "Active stages pointing to this deployment must be moved or deleted")
    updated = apigw.update_stage(restApiId=proxy_api, stageName="dev", patchOperations=[
        {"op": "replace", "path": "/variables/size", "value": "xl"}])
    assert updated["variables"] == {"color": "blue", "size": "xl"}


def test_proxy_event_is_payload_1_0(server: HearthServer, proxy_api: str) -> None:
    status, headers, body, _ = call(server, proxy_api, "POST", "/dev/items/42?a=1&a=2&b=x%20y",
                                    headers={"Content-Type": "application/json", "X-Custom": "v"},
                                    body=b'{"hello": "world"}')
    assert status == 200, body
    assert headers["content-type"] == "application/json" and headers["x-amzn-requestid"]
    event = json.loads(body)
    model = APIGatewayProxyEventModel(**event)  # AWS's shape, as an independent library models it
    assert model.resource == "/items/{id}" and model.path == "/items/42" and model.httpMethod == "POST"
    assert event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"a": "2", "b": "x y"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x y"]}
    assert event["stageVariables"] == {"color": "blue", "size": "xl"} or event["stageVariables"] == {"color": "blue"}
    assert event["body"] == '{"hello": "world"}' and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["resourcePath"] == "/items/{id}" and ctx["stage"] == "dev" and ctx["path"] == "/dev/items/42"
    assert ctx["apiId"] == proxy_api and ctx["accountId"] == ACCOUNT and ctx["httpMethod"] == "POST"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1" and ctx["requestId"] == headers["x-amzn-requestid"]
    assert event["multiValueHeaders"]["x-custom"] == ["v"]
    assert event["headers"]["X-Forwarded-Proto"] == "http" and event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    # The greedy resource takes the rest; the path form needs no wildcard DNS.
    status, _, body, _ = call(server, proxy_api, "GET", "/dev/a/b/c/", path_form=True)
    event = json.loads(body)
    assert status == 200 and event["pathParameters"] == {"proxy": "a/b/c"} and event["resource"] == "/{proxy+}"
    assert event["queryStringParameters"] is None and event["multiValueQueryStringParameters"] is None
    assert event["body"] is None


def test_response_mapping_and_errors(server: HearthServer, proxy_api: str) -> None:
    status, headers, body, raw = call(server, proxy_api, "GET", "/dev/x?mode=multi")
    assert status == 201 and body == b"ok"
    assert [v for k, v in raw if k.lower() == "x-multi"] == ["m1", "m2", "solo"]
    assert headers["x-single"] == "one" and headers["content-type"] == "application/json"
    # The trace the function ran under comes back (a caller's Root and Parent kept).
    trace = "Root=1-3152b799-8954dae64eda91bc9a23a7e8;Parent=7fa8c0f79203be72;Sampled=1"
    _, headers, _, _ = call(server, proxy_api, "GET", "/dev/x?mode=multi", headers={"X-Amzn-Trace-Id": trace})
    assert headers["x-amzn-trace-id"].startswith(trace + ";")
    for mode in ("malformed", "notjson", "error"):
        status, _, body, _ = call(server, proxy_api, "GET", f"/dev/x?mode={mode}")
        assert (status, json.loads(body)) == (502, {"message": "Internal server error"}), mode
    # isBase64Encoded: decoded only for a binary media type of the API (else passed on as text, as AWS does).
    status, _, body, _ = call(server, proxy_api, "GET", "/dev/x?mode=binary", headers={"Accept": "image/png"})
    assert status == 200 and body == b"\x89PNG\x00\xff"
    status, _, body, _ = call(server, proxy_api, "GET", "/dev/x?mode=b64text")
    assert body == base64.b64encode(b"test-data")
    # A binary request body arrives base64-encoded.
    status, _, body, _ = call(server, proxy_api, "PUT", "/dev/up", headers={"Content-Type": "image/png"},
                              body=b"\x00\x01")
    event = json.loads(body)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\x00\x01"
    # Unknown stage or route.
    for path in ("/nostage/x", "/dev"):
        status, headers, body, _ = call(server, proxy_api, "GET", path)
        assert (status, json.loads(body)) == (403, {"message": "Missing Authentication Token"}), path
        assert headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"


def test_permission_is_required(server: HearthServer, echo: str) -> None:
    apigw = server.client("apigateway")
    api = apigw.create_rest_api(name="no-permission")
    res = apigw.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="x")
    apigw.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", type="AWS_PROXY",
                          integrationHttpMethod="POST", uri=lambda_uri(echo))
    apigw.create_deployment(restApiId=api["id"], stageName="v1")
    status, _, body, _ = call(server, api["id"], "GET", "/v1/x")
    assert (status, json.loads(body)) == (500, {"message": "Internal server error"})
    status, _, _, _ = call(server, api["id"], "POST", "/v1/x")  # no POST method
    assert status == 403
    # AWS_PROXY to Lambda is invoked with POST; another integration method is AWS's integration failure.
    apigw.update_integration(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", patchOperations=[
        {"op": "replace", "path": "/httpMethod", "value": "GET"}])
    allow_apigateway(server.client("lambda"), echo.rsplit(":", 1)[1], api["id"])
    apigw.create_deployment(restApiId=api["id"], stageName="v1")
    status, _, body, _ = call(server, api["id"], "GET", "/v1/x")
    assert (status, json.loads(body)) == (500, {"message": "Internal server error"})
    apigw.update_rest_api(restApiId=api["id"], patchOperations=[
        {"op": "replace", "path": "/disableExecuteApiEndpoint", "value": "true"}])
    status, _, body, _ = call(server, api["id"], "GET", "/v1/x")
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})


OPENAPI_YAML = """
openapi: 3.0.1
info: {title: imported-api, version: "1.0"}
x-amazon-apigateway-api-key-source: HEADER
components:
  securitySchemes:
    tokenAuth:
      type: apiKey
      name: Authorization
      in: header
      x-amazon-apigateway-authtype: custom
      x-amazon-apigateway-authorizer:
        type: token
        authorizerUri: AUTH_URI
        authorizerResultTtlInSeconds: 300
    api_key:
      type: apiKey
      name: x-api-key
      in: header
paths:
  /secure:
    get:
      security: [{tokenAuth: []}]
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: ECHO_URI
  /keyed:
    get:
      security: [{api_key: []}]
      x-amazon-apigateway-integration: {type: aws_proxy, httpMethod: POST, uri: ECHO_URI}
  /mock:
    options:
      responses:
        "200":
          headers: {Access-Control-Allow-Origin: {schema: {type: string}}}
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: {application/json: '{"statusCode": 200}'}
        responses:
          default:
            statusCode: "200"
            responseParameters: {method.response.header.Access-Control-Allow-Origin: "'*'"}
            responseTemplates: {application/json: '{"mocked": true}'}
"""


def test_import_openapi_with_authorizer_api_keys_and_mock(server: HearthServer, echo: str) -> None:
    lam = server.client("lambda")
    apigw = server.client("apigateway")
    auth_name = f"apigw-auth-{uuid.uuid4().hex[:6]}"
    auth_arn = create_function(lam, auth_name, {"app.py": AUTHORIZER_APP})["FunctionArn"]
    spec = OPENAPI_YAML.replace("AUTH_URI", lambda_uri(auth_arn)).replace("ECHO_URI", lambda_uri(echo))
    api = apigw.import_rest_api(body=spec.encode())
    api_id = api["id"]
    assert api["name"] == "imported-api"
    paths = {r["path"]: r for r in apigw.get_resources(restApiId=api_id, embed=["methods"])["items"]}
    assert set(paths) == {"/", "/secure", "/keyed", "/mock"}
    assert paths["/secure"]["resourceMethods"]["GET"]["authorizationType"] == "CUSTOM"
    assert paths["/keyed"]["resourceMethods"]["GET"]["apiKeyRequired"] is True
    [authorizer] = apigw.get_authorizers(restApiId=api_id)["items"]
    assert authorizer["type"] == "TOKEN" and authorizer["identitySource"] == "method.request.header.Authorization"
    apigw.create_deployment(restApiId=api_id, stageName="prod")
    allow_apigateway(lam, echo.rsplit(":", 1)[1], api_id)
    allow_apigateway(lam, auth_name, api_id)

    # Authorizer: missing token 401, "Unauthorized" 401, Deny 403, Allow with context.
    status, _, body, _ = call(server, api_id, "GET", "/prod/secure")
    assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
    status, _, body, _ = call(server, api_id, "GET", "/prod/secure", headers={"Authorization": "bad"})
    assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
    status, _, body, _ = call(server, api_id, "GET", "/prod/secure", headers={"Authorization": "deny"})
    assert status == 403
    assert json.loads(body) == {"Message": "User is not authorized to access this resource with an explicit deny"}
    status, _, body, _ = call(server, api_id, "GET", "/prod/secure", headers={"Authorization": "alice"})
    assert status == 200, body
    event = json.loads(body)
    APIGatewayProxyEventModel(**event)
    assert event["requestContext"]["authorizer"]["principalId"] == "user-alice"
    assert event["requestContext"]["authorizer"]["tier"] == "gold"

    # API key and usage plan: 403 without a key, 200 with one, 429 over the quota.
    status, _, body, _ = call(server, api_id, "GET", "/prod/keyed")
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    key = apigw.create_api_key(name="k1", enabled=True, value="k" * 24)
    plan = apigw.create_usage_plan(name="p1", apiStages=[{"apiId": api_id, "stage": "prod"}],
                                   quota={"limit": 2, "period": "DAY"})
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    for _ in range(2):
        status, _, body, _ = call(server, api_id, "GET", "/prod/keyed", headers={"x-api-key": "k" * 24})
        assert status == 200, body
    assert json.loads(body)["requestContext"]["identity"]["apiKeyId"] == key["id"]
    status, _, body, _ = call(server, api_id, "GET", "/prod/keyed", headers={"x-api-key": "k" * 24})
    assert (status, json.loads(body)) == (429, {"message": "Limit Exceeded"})

    # MOCK (how SAM answers CORS preflights): status, static header mapping, template body.
    status, headers, body, _ = call(server, api_id, "OPTIONS", "/prod/mock")
    assert status == 200 and headers["access-control-allow-origin"] == "*" and json.loads(body) == {"mocked": True}


def test_swagger2_put_rest_api_and_bad_input(server: HearthServer, echo: str) -> None:
    apigw = server.client("apigateway")
    api = apigw.create_rest_api(name="swagger")
    spec = {"swagger": "2.0", "info": {"title": "swagger", "version": "1"},
            "paths": {"/pets/{petId}": {"x-amazon-apigateway-any-method": {
                "parameters": [{"name": "petId", "in": "path", "required": True, "type": "string"}],
                "x-amazon-apigateway-integration": {"type": "aws_proxy", "httpMethod": "POST",
                                                    "uri": lambda_uri(echo)}}}}}
    out = apigw.put_rest_api(restApiId=api["id"], mode="overwrite", body=json.dumps(spec).encode())
    assert out["id"] == api["id"]
    res = {r["path"]: r for r in apigw.get_resources(restApiId=api["id"], embed=["methods"])["items"]}
    method = res["/pets/{petId}"]["resourceMethods"]["ANY"]
    assert method["requestParameters"] == {"method.request.path.petId": True}
    with pytest.raises(ClientError) as err:
        apigw.import_rest_api(body=b"not: [valid")
    assert err.value.response["Error"] == {"Code": "BadRequestException", "Message": "Invalid OpenAPI input."}


def test_powertools_rest_resolver_routes(server: HearthServer) -> None:
    lam = server.client("lambda")
    apigw = server.client("apigateway")
    layer = lam.publish_layer_version(
        LayerName="apigw-powertools",
        Content={"ZipFile": site_packages_zip("aws_lambda_powertools", "jmespath", "typing_extensions.py")})
    name = f"apigw-pt-{uuid.uuid4().hex[:6]}"
    arn = create_function(lam, name, {"app.py": POWERTOOLS_APP}, Layers=[layer["LayerVersionArn"]], Timeout=30,
                          MemorySize=256)["FunctionArn"]
    api = apigw.create_rest_api(name="powertools")
    res = apigw.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="{proxy+}")
    apigw.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod="ANY", authorizationType="NONE")
    apigw.put_integration(restApiId=api["id"], resourceId=res["id"], httpMethod="ANY", type="AWS_PROXY",
                          integrationHttpMethod="POST", uri=lambda_uri(arn))
    apigw.create_deployment(restApiId=api["id"], stageName="live")
    allow_apigateway(lam, name, api["id"])
    status, _, body, _ = call(server, api["id"], "GET", "/live/todos/7")
    assert (status, json.loads(body)) == (200, {"id": "7", "stage": "live"})
    status, _, body, _ = call(server, api["id"], "POST", "/live/todos", headers={"Content-Type": "application/json"},
                              body=b'{"title": "write tests"}')
    assert (status, json.loads(body)) == (201, {"created": "write tests"})
    status, _, body, _ = call(server, api["id"], "GET", "/live/nothing-here")
    assert status == 404


MAPPED_APP = '''
import time

def handler(event, context):
    if event.get("action") == "fail":
        raise ValueError("NotFound: no such pet")
    if event.get("action") == "slow":
        time.sleep(2)
    return {"got": event, "list": [1, 2]}
'''


def test_aws_integration_with_vtl_validators_gateway_responses_and_timeout(server: HearthServer) -> None:
    lam = server.client("lambda")
    apigw = server.client("apigateway")
    name = f"apigw-mapped-{uuid.uuid4().hex[:6]}"
    arn = create_function(lam, name, {"app.py": MAPPED_APP}, Timeout=10)["FunctionArn"]
    api = apigw.create_rest_api(name="mapped")
    api_id = api["id"]
    pets = apigw.create_resource(restApiId=api_id, parentId=api["rootResourceId"], pathPart="pets")
    pet = apigw.create_resource(restApiId=api_id, parentId=pets["id"], pathPart="{petId}")
    apigw.create_model(restApiId=api_id, name="Pet", contentType="application/json", schema=json.dumps({
        "$schema": "http://json-schema.org/draft-04/schema#", "type": "object", "required": ["action"],
        "properties": {"action": {"type": "string"}}}))
    validator = apigw.create_request_validator(restApiId=api_id, name="all", validateRequestBody=True,
                                               validateRequestParameters=True)
    apigw.put_method(restApiId=api_id, resourceId=pet["id"], httpMethod="POST", authorizationType="NONE",
                     requestValidatorId=validator["id"], requestModels={"application/json": "Pet"},
                     requestParameters={"method.request.querystring.mode": True,
                                        "method.request.header.x-client": True})
    template = ('{"action": $input.json(\'$.action\'), "pet": "$input.params(\'petId\')", '
                '"mode": "$input.params(\'mode\')", "stage": "$context.stage", "color": "$stageVariables.color", '
                '"client": "$util.escapeJavaScript($input.params().header.get(\'x-client\'))"}')
    apigw.put_integration(restApiId=api_id, resourceId=pet["id"], httpMethod="POST", type="AWS",
                          integrationHttpMethod="POST", uri=lambda_uri(arn), timeoutInMillis=1000,
                          requestTemplates={"application/json": template})
    apigw.put_method_response(restApiId=api_id, resourceId=pet["id"], httpMethod="POST", statusCode="200")
    apigw.put_method_response(restApiId=api_id, resourceId=pet["id"], httpMethod="POST", statusCode="404")
    apigw.put_integration_response(
        restApiId=api_id, resourceId=pet["id"], httpMethod="POST", statusCode="200", selectionPattern="",
        responseParameters={"method.response.header.x-pet": "integration.response.body.got.pet",
                            "method.response.header.x-fixed": "'yes'"},
        responseTemplates={"application/json": '#set($r = $input.path(\'$\'))'
                                               '{"pet": "$r.got.pet", "n": $r.list.size(), "mode": "$r.got.mode"}'})
    apigw.put_integration_response(
        restApiId=api_id, resourceId=pet["id"], httpMethod="POST", statusCode="404", selectionPattern="NotFound:.*",
        responseTemplates={"application/json": '{"error": $input.json(\'$.errorMessage\')}'})
    apigw.put_gateway_response(restApiId=api_id, responseType="BAD_REQUEST_BODY", statusCode="422",
                               responseParameters={"gatewayresponse.header.x-why": "'schema'"},
                               responseTemplates={"application/json": '{"why": $context.error.messageString}'})
    apigw.create_deployment(restApiId=api_id, stageName="v1", variables={"color": "red"})
    allow_apigateway(lam, name, api_id)
    ok_headers = {"Content-Type": "application/json", "x-client": 'c"1'}

    status, headers, body, _ = call(server, api_id, "POST", "/v1/pets/7?mode=fast", headers=ok_headers,
                                    body=b'{"action": "get"}')
    assert status == 200, body
    assert json.loads(body) == {"pet": "7", "n": 2, "mode": "fast"}
    assert headers["x-pet"] == "7" and headers["x-fixed"] == "yes"
    # The function saw what the request template made of the request.
    status, _, body, _ = call(server, api_id, "POST", "/v1/pets/7?mode=fast", headers=ok_headers,
                              body=b'{"action": "fail"}')
    assert (status, json.loads(body)) == (404, {"error": "NotFound: no such pet"})
    status, _, body, _ = call(server, api_id, "POST", "/v1/pets/7", headers={"Content-Type": "application/json"},
                              body=b'{"action": "get"}')
    assert (status, json.loads(body)) == (400, {"message": "Missing required request parameters: [x-client, mode]"})
    status, headers, body, _ = call(server, api_id, "POST", "/v1/pets/7?mode=a", headers=ok_headers,
                                    body=b'{"nope": 1}')
    assert (status, json.loads(body), headers["x-why"]) == (422, {"why": "Invalid request body"}, "schema")
    status, _, body, _ = call(server, api_id, "POST", "/v1/pets/7?mode=a", headers=ok_headers,
                              body=b'{"action": "slow"}')
    assert (status, json.loads(body)) == (504, {"message": "Endpoint request timed out"})


def test_definitions_survive_a_crash(fresh_server: HearthServer) -> None:
    fresh_server.start()
    apigw = fresh_server.client("apigateway")
    api = apigw.create_rest_api(name="durable")
    res = apigw.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="m")
    apigw.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", type="MOCK",
                          requestTemplates={"application/json": '{"statusCode": 200}'})
    apigw.put_integration_response(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", statusCode="200",
                                   responseTemplates={"application/json": '{"stage": "$context.stage"}'})
    apigw.create_deployment(restApiId=api["id"], stageName="s")
    http_api = fresh_server.client("apigatewayv2").create_api(Name="durable-http", ProtocolType="HTTP",
                                                               Target="http://127.0.0.1:9/")
    fresh_server.kill9()
    fresh_server.start()
    status, _, body, _ = call(fresh_server, api["id"], "GET", "/s/m")
    assert (status, json.loads(body)) == (200, {"stage": "s"})
    got = fresh_server.client("apigatewayv2").get_api(ApiId=http_api["ApiId"])
    assert got["Name"] == "durable-http"


def test_aws_iam_authorization_verifies_sigv4(server: HearthServer, echo: str) -> None:
    apigw = server.client("apigateway")
    api = apigw.create_rest_api(name="iam")
    res = apigw.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="me")
    apigw.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", authorizationType="AWS_IAM")
    apigw.put_integration(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", type="AWS_PROXY",
                          integrationHttpMethod="POST", uri=lambda_uri(echo))
    apigw.create_deployment(restApiId=api["id"], stageName="s")
    allow_apigateway(server.client("lambda"), echo.rsplit(":", 1)[1], api["id"])
    port = int(server.endpoint.rsplit(":", 1)[1])
    host = f"{api['id']}.execute-api.localhost:{port}"

    def signed(key: str, secret: str, service: str = "execute-api") -> dict[str, str]:
        request = AWSRequest(method="GET", url=f"http://{host}/s/me", headers={"Host": host})
        SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(request)
        return dict(request.headers.items())

    status, _, body, _ = call(server, api["id"], "GET", "/s/me")
    assert (status, json.loads(body)) == (403, {"message": "Missing Authentication Token"})
    status, _, body, _ = call(server, api["id"], "GET", "/s/me", headers=signed(ACCESS_KEY, SECRET_KEY))
    assert status == 200, body
    identity = json.loads(body)["requestContext"]["identity"]
    assert (identity["accessKey"], identity["accountId"]) == (ACCESS_KEY, ACCOUNT)
    assert call(server, api["id"], "GET", "/s/me", headers=signed(ACCESS_KEY, "wrong" * 8))[0] == 403
    assert call(server, api["id"], "GET", "/s/me", headers=signed(ACCESS_KEY, SECRET_KEY, "lambda"))[0] == 403
    assert call(server, api["id"], "GET", "/s/me", headers=signed(OTHER_ACCESS_KEY, OTHER_SECRET_KEY))[0] == 403


def test_request_authorizer_with_caching(server: HearthServer, echo: str) -> None:
    lam = server.client("lambda")
    apigw = server.client("apigateway")
    auth_name = f"apigw-req-auth-{uuid.uuid4().hex[:6]}"
    auth_arn = create_function(lam, auth_name, {"app.py": AUTHORIZER_APP})["FunctionArn"]
    api = apigw.create_rest_api(name="request-authz")
    authorizer = apigw.create_authorizer(restApiId=api["id"], name="req", type="REQUEST",
                                         authorizerUri=lambda_uri(auth_arn),
                                         identitySource="method.request.header.x-token",
                                         authorizerResultTtlInSeconds=300)
    res = apigw.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="{proxy+}")
    apigw.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod="ANY", authorizationType="CUSTOM",
                     authorizerId=authorizer["id"])
    apigw.put_integration(restApiId=api["id"], resourceId=res["id"], httpMethod="ANY", type="AWS_PROXY",
                          integrationHttpMethod="POST", uri=lambda_uri(echo))
    apigw.create_deployment(restApiId=api["id"], stageName="s")
    allow_apigateway(lam, echo.rsplit(":", 1)[1], api["id"])
    allow_apigateway(lam, auth_name, api["id"])
    assert call(server, api["id"], "GET", "/s/a")[0] == 401  # identity source missing: not even called
    status, _, body, _ = call(server, api["id"], "GET", "/s/a", headers={"x-token": "bob"})
    assert status == 200, body
    assert json.loads(body)["requestContext"]["authorizer"]["principalId"] == "user-bob"
    # The cached policy names only /s/GET/a: another path with the same token is denied without a new call.
    status, _, body, _ = call(server, api["id"], "GET", "/s/b", headers={"x-token": "bob"})
    assert (status, json.loads(body)) == (403, {"Message": "User is not authorized to access this resource"})
    assert call(server, api["id"], "GET", "/s/a", headers={"x-token": "deny"})[0] == 403


def test_tags(server: HearthServer, proxy_api: str) -> None:
    apigw = server.client("apigateway")
    arn = f"arn:aws:apigateway:us-east-1::/restapis/{proxy_api}/stages/dev"
    apigw.tag_resource(resourceArn=arn, tags={"team": "a", "env": "dev"})
    apigw.untag_resource(resourceArn=arn, tagKeys=["env"])
    assert apigw.get_tags(resourceArn=arn)["tags"] == {"team": "a"}
    assert apigw.get_stage(restApiId=proxy_api, stageName="dev")["tags"] == {"team": "a"}
    v2 = server.client("apigatewayv2")
    api = v2.create_api(Name="tagged", ProtocolType="HTTP", Tags={"a": "1"})
    api_arn = f"arn:aws:apigateway:us-east-1::/apis/{api['ApiId']}"
    v2.tag_resource(ResourceArn=api_arn, Tags={"b": "2"})
    assert v2.get_tags(ResourceArn=api_arn)["Tags"] == {"a": "1", "b": "2"}
    with pytest.raises(ClientError) as err:
        apigw.get_tags(resourceArn="arn:aws:apigateway:us-east-1::/restapis/missing000")
    assert err.value.response["Error"]["Code"] == "NotFoundException"


def test_test_invoke_method(server: HearthServer, proxy_api: str) -> None:
    apigw = server.client("apigateway")
    item = next(r for r in apigw.get_resources(restApiId=proxy_api)["items"] if r["path"] == "/items/{id}")
    out = apigw.test_invoke_method(restApiId=proxy_api, resourceId=item["id"], httpMethod="GET",
                                   pathWithQueryString="/items/5?x=1", headers={"h": "v"},
                                   stageVariables={"color": "green"})
    assert out["status"] == 200 and out["headers"]["Content-Type"] == "application/json"
    event = json.loads(out["body"])
    assert event["pathParameters"] == {"id": "5"} and event["queryStringParameters"] == {"x": "1"}
    assert event["requestContext"]["stage"] == "test-invoke-stage" and event["stageVariables"] == {"color": "green"}
    assert out["log"].startswith("Execution log for request ")


def test_aws_service_integrations_sqs_and_eventbridge(server: HearthServer) -> None:
    apigw = server.client("apigateway")
    sqs = server.client("sqs")
    queue = f"apigw-q-{uuid.uuid4().hex[:6]}"
    queue_url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    api = apigw.create_rest_api(name="to-services")
    orders = apigw.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="orders")
    events = apigw.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="events")
    for res in (orders, events):
        apigw.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod="POST", authorizationType="NONE")
    apigw.put_integration(
        restApiId=api["id"], resourceId=orders["id"], httpMethod="POST", type="AWS", integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:us-east-1:sqs:path/{ACCOUNT}/{queue}",
        credentials=f"arn:aws:iam::{ACCOUNT}:role/apigw-sqs",
        requestParameters={"integration.request.header.Content-Type": "'application/x-www-form-urlencoded'"},
        requestTemplates={"application/json": "Action=SendMessage&MessageBody=$util.urlEncode($input.body)"})
    apigw.put_integration_response(restApiId=api["id"], resourceId=orders["id"], httpMethod="POST",
                                   statusCode="200", selectionPattern="2\\d\\d",
                                   responseTemplates={"application/json": '{"queued": true}'})
    apigw.put_integration_response(restApiId=api["id"], resourceId=orders["id"], httpMethod="POST",
                                   statusCode="500", selectionPattern="")
    apigw.put_integration(
        restApiId=api["id"], resourceId=events["id"], httpMethod="POST", type="AWS", integrationHttpMethod="POST",
        uri="arn:aws:apigateway:us-east-1:events:action/PutEvents",
        credentials=f"arn:aws:iam::{ACCOUNT}:role/apigw-events",
        requestTemplates={"application/json": '{"Entries": [{"Source": "shop", "DetailType": "order", '
                                              '"Detail": "$util.escapeJavaScript($input.body)"}]}'})
    apigw.put_integration_response(restApiId=api["id"], resourceId=events["id"], httpMethod="POST",
                                   statusCode="200", selectionPattern="")
    apigw.create_deployment(restApiId=api["id"], stageName="v1")

    status, _, body, _ = call(server, api["id"], "POST", "/v1/orders", headers={"Content-Type": "application/json"},
                              body=b'{"order": 1, "note": "a&b c"}')
    assert (status, json.loads(body)) == (200, {"queued": True})
    got = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=5)["Messages"]
    assert [json.loads(m["Body"]) for m in got] == [{"order": 1, "note": "a&b c"}]
    status, _, body, _ = call(server, api["id"], "POST", "/v1/events", headers={"Content-Type": "application/json"},
                              body=b'{"order": 2}')
    assert status == 200 and json.loads(body)["FailedEntryCount"] == 0, body


def test_s3_integration_with_any_method_sends_the_clients_method(server: HearthServer) -> None:
    """`integrationHttpMethod: ANY` sends the client's own method (the word ANY is no HTTP method), and
    S3's requests are signed with the payload hash S3 requires."""
    apigw = server.client("apigateway")
    s3 = server.client("s3")
    bucket = f"apigw-s3-{uuid.uuid4().hex[:6]}"
    s3.create_bucket(Bucket=bucket)
    api = apigw.create_rest_api(name="to-s3")
    res = apigw.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="{key+}")
    apigw.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod="ANY", authorizationType="NONE",
                     requestParameters={"method.request.path.key": True})
    apigw.put_integration(
        restApiId=api["id"], resourceId=res["id"], httpMethod="ANY", type="AWS", integrationHttpMethod="ANY",
        uri=f"arn:aws:apigateway:us-east-1:s3:path/{bucket}/{{key}}",
        credentials=f"arn:aws:iam::{ACCOUNT}:role/apigw-s3",
        requestParameters={"integration.request.path.key": "method.request.path.key"})
    apigw.put_integration_response(restApiId=api["id"], resourceId=res["id"], httpMethod="ANY", statusCode="200")
    apigw.create_deployment(restApiId=api["id"], stageName="v1")

    status, _, _, _ = call(server, api["id"], "PUT", "/v1/doc.json", headers={"Content-Type": "application/json"},
                           body=b'{"put_id": 1}')
    assert status == 200
    assert s3.get_object(Bucket=bucket, Key="doc.json")["Body"].read() == b'{"put_id": 1}'
    status, _, body, _ = call(server, api["id"], "GET", "/v1/doc.json")
    assert (status, body) == (200, b'{"put_id": 1}')


def test_get_export_writes_the_deployed_api_back_as_a_definition(server: HearthServer) -> None:
    apigw = server.client("apigateway")
    spec = {"swagger": "2.0", "info": {"title": f"exp-{uuid.uuid4().hex[:6]}", "version": "1.0"},
            "paths": {"/pets": {"post": {
                "operationId": "CreatePet", "consumes": ["application/json"],
                "parameters": [{"in": "body", "name": "NewPet", "required": True,
                                "schema": {"$ref": "#/definitions/NewPet"}}],
                "responses": {"200": {"description": "ok", "headers": {"X-Id": {"type": "string"}}}},
                "x-amazon-apigateway-integration": {"type": "mock", "passthroughBehavior": "when_no_match",
                                                    "requestTemplates": {"application/json": "{}"},
                                                    "responses": {"default": {"statusCode": "200"}}}}}},
            "definitions": {"NewPet": {"type": "object", "properties": {"tag": {"$ref": "#/definitions/Tag"}}},
                            "Tag": {"type": "string"}}}
    api_id = apigw.import_rest_api(body=json.dumps(spec).encode(), failOnWarnings=True)["id"]
    apigw.create_deployment(restApiId=api_id, stageName="live")

    out = apigw.get_export(restApiId=api_id, stageName="live", exportType="oas30",
                           parameters={"extensions": "apigateway"})
    assert out["contentType"] == "application/octet-stream"
    assert out["contentDisposition"] == 'attachment; filename="oas30_1.0.json"'
    doc = json.loads(out["body"].read())
    post = doc["paths"]["/pets"]["post"]
    assert post["requestBody"] == {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewPet"}}},
                                   "required": True}
    assert post["responses"]["200"] == {"description": "200 response", "content": {},
                                        "headers": {"X-Id": {"schema": {"type": "string"}}}}
    assert post["x-amazon-apigateway-integration"] == {
        "type": "mock", "passthroughBehavior": "when_no_match", "requestTemplates": {"application/json": "{}"},
        "responses": {"default": {"statusCode": "200"}}}
    assert doc["components"]["schemas"]["NewPet"]["properties"]["tag"] == {"$ref": "#/components/schemas/Tag"}

    swagger = json.loads(apigw.get_export(restApiId=api_id, stageName="live", exportType="swagger")["body"].read())
    assert swagger["basePath"] == "/live" and "x-amazon-apigateway-integration" not in swagger["paths"]["/pets"]["post"]
    assert swagger["paths"]["/pets"]["post"]["parameters"] == spec["paths"]["/pets"]["post"]["parameters"]  # type: ignore[index]
    assert swagger["paths"]["/pets"]["post"]["consumes"] == ["application/json"]


def test_stage_serves_its_deployment_not_the_live_api(server: HearthServer, proxy_api: str, echo: str) -> None:
    apigw = server.client("apigateway")
    root = apigw.get_rest_api(restApiId=proxy_api)["rootResourceId"]
    late = apigw.create_resource(restApiId=proxy_api, parentId=root, pathPart="late")
    apigw.put_method(restApiId=proxy_api, resourceId=late["id"], httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(restApiId=proxy_api, resourceId=late["id"], httpMethod="GET", type="AWS_PROXY",
                          integrationHttpMethod="POST", uri=lambda_uri(echo))
    assert json.loads(call(server, proxy_api, "GET", "/dev/late")[2])["resource"] == "/{proxy+}"
    apigw.create_deployment(restApiId=proxy_api, stageName="dev")
    assert json.loads(call(server, proxy_api, "GET", "/dev/late")[2])["resource"] == "/late"


def test_control_plane_parts_as_aws_answers_them(server: HearthServer) -> None:
    """Texts and shapes recorded by AWS (LocalStack's validated snapshots): an unknown API's parts, update
    operations of responses, models and deployments, documentation parts, API key pages, gateway
    responses listed with their defaults, and the framework's validation text for API Gateway."""
    apigw = server.client("apigateway")

    def error(call: Any, **kwargs: Any) -> dict[str, str]:
        with pytest.raises(ClientError) as err:
            call(**kwargs)
        return dict(err.value.response["Error"])

    assert error(apigw.get_integration, restApiId="nope", resourceId="r", httpMethod="GET")["Message"] == (
        "Invalid Resource identifier specified")
    assert error(apigw.create_request_validator, restApiId="nope", name="v") == {
        "Code": "BadRequestException", "Message": "Invalid REST API identifier specified"}
    assert error(apigw.create_rest_api, name="x", minimumCompressionSize=-1)["Message"] == (
        "Invalid minimum compression size, must be between 0 and 10485760")
    assert error(apigw.put_integration, restApiId="nope", resourceId="r", httpMethod="GET", type="HTTPS_PROXY") == {
        "Code": "ValidationException", "Message": "1 validation error detected: Value 'HTTPS_PROXY' at "
        "'putIntegrationInput.type' failed to satisfy constraint: Member must satisfy enum value set: "
        "[HTTP, MOCK, AWS_PROXY, HTTP_PROXY, AWS]"}
    api = apigw.create_rest_api(name=f"parts-{uuid.uuid4().hex[:6]}")
    api_id, root = api["id"], api["rootResourceId"]
    apigw.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    response = apigw.put_method_response(restApiId=api_id, resourceId=root, httpMethod="GET", statusCode="200")
    assert "responseModels" not in response and "responseParameters" not in response
    response = apigw.update_method_response(restApiId=api_id, resourceId=root, httpMethod="GET", statusCode="200",
                                            patchOperations=[{"op": "add", "value": "true",
                                                              "path": "/responseParameters/method.response.header.a"}])
    assert response["responseParameters"] == {"method.response.header.a": True}
    integration = apigw.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    assert integration["cacheNamespace"] == root and "connectionType" not in integration
    apigw.put_integration_response(restApiId=api_id, resourceId=root, httpMethod="GET", statusCode="200")
    updated = apigw.update_integration_response(
        restApiId=api_id, resourceId=root, httpMethod="GET", statusCode="200",
        patchOperations=[{"op": "replace", "path": "/selectionPattern", "value": "updated"}])
    assert updated["selectionPattern"] == "updated"
    apigw.create_model(restApiId=api_id, name="M", contentType="application/json", schema='{"type": "object"}')
    assert apigw.update_model(restApiId=api_id, modelName="M", patchOperations=[
        {"op": "replace", "path": "/schema", "value": '{"title": "new", "type": "object"}'}])["schema"] == (
        '{"title": "new", "type": "object"}')
    deployment = apigw.create_deployment(restApiId=api_id)
    assert apigw.update_deployment(restApiId=api_id, deploymentId=deployment["id"], patchOperations=[
        {"op": "replace", "path": "/description", "value": "d"}])["description"] == "d"
    part = apigw.create_documentation_part(restApiId=api_id, location={"type": "API"}, properties='{"a": 1}')
    assert apigw.get_documentation_parts(restApiId=api_id)["items"] == [
        {"id": part["id"], "location": {"type": "API"}, "properties": '{"a": 1}'}]
    apigw.delete_documentation_part(restApiId=api_id, documentationPartId=part["id"])
    assert error(apigw.get_documentation_part, restApiId=api_id, documentationPartId=part["id"])["Message"] == (
        "Invalid Documentation part identifier specified")
    responses = apigw.get_gateway_responses(restApiId=api_id)["items"]
    assert len(responses) == 21 and all(r["defaultResponse"] for r in responses)
    keys = [apigw.create_api_key(name=f"k-{api_id}-{i}")["id"] for i in range(2)]
    first = apigw.get_api_keys(nameQuery=f"k-{api_id}", limit=1)
    rest = apigw.get_api_keys(nameQuery=f"k-{api_id}", limit=1, position=first["position"])
    assert [k["id"] for k in first["items"] + rest["items"]] == keys[::-1] and "position" not in rest
    key = apigw.update_api_key(apiKey=keys[0], patchOperations=[{"op": "replace", "path": "/name", "value": "n"}])
    assert key["tags"] == {} and "value" not in key


def test_canary_release(server: HearthServer) -> None:
    """A canary deployment on a stage: settings as AWS reports them, all traffic to the canary at 100 %
    (with its variable overrides), promotion by `copy`, AWS's texts for invalid canary requests."""
    apigw = server.client("apigateway")
    api = apigw.create_rest_api(name=f"canary-{uuid.uuid4().hex[:6]}")
    api_id, root = api["id"], api["rootResourceId"]
    apigw.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK",
                          requestTemplates={"application/json": '{"statusCode": 200}'})
    apigw.put_method_response(restApiId=api_id, resourceId=root, httpMethod="GET", statusCode="200")
    apigw.put_integration_response(restApiId=api_id, resourceId=root, httpMethod="GET", statusCode="200",
                                   responseTemplates={"application/json": '{"v": "$stageVariables.v", '
                                                                          '"canary": "$context.isCanaryRequest"}'})
    apigw.create_deployment(restApiId=api_id, stageName="dev", variables={"v": "main"})
    with pytest.raises(ClientError) as err:
        apigw.create_deployment(restApiId=api_id, canarySettings={"percentTraffic": 50})
    assert err.value.response["Error"]["Message"] == (
        "Invalid deployment content specified.Non null and non empty stageName must be provided for canary "
        "deployment. Provided value is null")
    canary = apigw.create_deployment(restApiId=api_id, stageName="dev", canarySettings={
        "percentTraffic": 100, "stageVariableOverrides": {"v": "canary"}})
    stage = apigw.get_stage(restApiId=api_id, stageName="dev")
    assert stage["canarySettings"] == {"deploymentId": canary["id"], "percentTraffic": 100.0,
                                       "stageVariableOverrides": {"v": "canary"}, "useStageCache": False}
    assert stage["deploymentId"] != canary["id"]
    status, _, body, _ = call(server, api_id, "GET", "/dev/")
    assert (status, json.loads(body)) == (200, {"v": "canary", "canary": "true"})
    with pytest.raises(ClientError) as err:
        apigw.update_stage(restApiId=api_id, stageName="dev", patchOperations=[
            {"op": "add", "path": "/canarySettings/deploymentId", "value": canary["id"]}])
    assert err.value.response["Error"]["Message"] == "Invalid add operation with path: /canarySettings/deploymentId"
    promoted = apigw.update_stage(restApiId=api_id, stageName="dev", patchOperations=[
        {"op": "copy", "path": "/deploymentId", "from": "/canarySettings/deploymentId"},
        {"op": "remove", "path": "/canarySettings"}])
    assert promoted["deploymentId"] == canary["id"] and "canarySettings" not in promoted
    status, _, body, _ = call(server, api_id, "GET", "/dev/")
    assert (status, json.loads(body)) == (200, {"v": "main", "canary": "false"})


def test_vpc_link_is_answered_pending_then_reads_available(server: HearthServer) -> None:
    apigw = server.client("apigateway")
    arn = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/net/nlb/0123456789abcdef"
    created = apigw.create_vpc_link(name=f"link-{uuid.uuid4().hex[:6]}", targetArns=[arn])
    assert created["status"] == "PENDING" and "statusMessage" not in created and "tags" not in created
    got = apigw.get_vpc_link(vpcLinkId=created["id"])
    assert (got["status"], got["statusMessage"], got["tags"]) == ("AVAILABLE", "Your vpc link is ready for use", {})
    listed = next(i for i in apigw.get_vpc_links()["items"] if i["id"] == created["id"])
    assert "tags" not in listed and listed["status"] == "AVAILABLE"
    apigw.delete_vpc_link(vpcLinkId=created["id"])


def test_gateway_response_patch_checks_as_aws_answers_them(server: HearthServer) -> None:
    apigw = server.client("apigateway")
    api_id = apigw.create_rest_api(name=f"gr-{uuid.uuid4().hex[:6]}")["id"]
    header = "/responseParameters/gatewayresponse.header.Access-Control-Allow-Origin"

    def error(response_type: str, op: dict[str, Any]) -> tuple[str, str]:
        with pytest.raises(ClientError) as err:
            apigw.update_gateway_response(restApiId=api_id, responseType=response_type, patchOperations=[op])
        return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]

    assert error("DEFAULT_5XX", {"op": "replace", "path": header, "value": "'x'"}) == (
        "NotFoundException", "Invalid parameter name specified")
    assert error("DEFAULT_4XX", {"op": "replace", "path": "/responseTemplates/application~1xml", "value": ""}) == (
        "BadRequestException", "Invalid null or empty value in responseTemplates")
    apigw.update_gateway_response(restApiId=api_id, responseType="DEFAULT_4XX",
                                  patchOperations=[{"op": "add", "path": header, "value": "'a'"}])
    got = apigw.update_gateway_response(restApiId=api_id, responseType="DEFAULT_4XX",
                                        patchOperations=[{"op": "replace", "path": header, "value": "'b'"}])
    assert got["responseParameters"] == {"gatewayresponse.header.Access-Control-Allow-Origin": "'b'"}


def test_stage_method_settings_start_from_the_wildcard_ones(server: HearthServer, proxy_api: str) -> None:
    apigw = server.client("apigateway")
    apigw.create_deployment(restApiId=proxy_api, stageName="settings")
    with pytest.raises(ClientError) as err:
        apigw.update_stage(restApiId=proxy_api, stageName="settings",
                           patchOperations=[{"op": "remove", "path": "/*/*"}])
    assert err.value.response["Error"]["Message"] == (
        "Cannot remove method setting */* because there is no method setting for this method ")
    got = apigw.update_stage(restApiId=proxy_api, stageName="settings", patchOperations=[
        {"op": "replace", "path": "/*/*/caching/enabled", "value": "true"},
        {"op": "replace", "path": "/items/GET/throttling/burstLimit", "value": "124"}])["methodSettings"]
    assert got["*/*"]["cachingEnabled"] is True and got["*/*"]["throttlingBurstLimit"] == 5000
    assert got["items/GET"]["cachingEnabled"] is True and got["items/GET"]["throttlingBurstLimit"] == 124
    got = apigw.update_stage(restApiId=proxy_api, stageName="settings",
                             patchOperations=[{"op": "remove", "path": "/*/*"}])
    assert list(got["methodSettings"]) == ["items/GET"]


def test_single_access_log_or_canary_fields_are_not_removable(server: HearthServer, proxy_api: str) -> None:
    """AWS reads `/accessLogSettings/<field>` and `/canarySettings/<field>` removals as method settings,
    which never exist, even when the field is set."""
    apigw = server.client("apigateway")
    apigw.create_deployment(restApiId=proxy_api, stageName="logs")
    apigw.update_stage(restApiId=proxy_api, stageName="logs", patchOperations=[
        {"op": "replace", "path": "/accessLogSettings/destinationArn",
         "value": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:g"}])
    apigw.create_deployment(restApiId=proxy_api, stageName="logs", canarySettings={"percentTraffic": 50})
    for path in ("/accessLogSettings/destinationArn", "/canarySettings/percentTraffic"):
        with pytest.raises(ClientError) as err:
            apigw.update_stage(restApiId=proxy_api, stageName="logs", patchOperations=[{"op": "remove", "path": path}])
        assert err.value.response["Error"]["Message"] == (
            f"Cannot remove method setting {path[1:]} because there is no method setting for this method ")


def test_update_method_keeps_no_authorizer_without_custom_authorization(server: HearthServer, proxy_api: str) -> None:
    apigw = server.client("apigateway")
    item = next(r for r in apigw.get_resources(restApiId=proxy_api, embed=["methods"])["items"]
                if r["path"] == "/items/{id}")
    verb = next(iter(item["resourceMethods"]))
    got = apigw.update_method(restApiId=proxy_api, resourceId=item["id"], httpMethod=verb,
                              patchOperations=[{"op": "replace", "path": "/authorizerId", "value": "abc123"}])
    assert got["authorizationType"] == "NONE" and "authorizerId" not in got
