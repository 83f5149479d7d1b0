"""HTTP APIs end to end: the `apigatewayv2` control plane through boto3 (quick create, routes,
integrations, stages, deployments, authorizers, OpenAPI import), the data plane through plain HTTP —
payload 2.0 and 1.0 events checked against Powertools' models, response mapping, `$default` stage,
CORS, Lambda REQUEST and JWT authorizers (against a JWKS served by the test), HTTP_PROXY, and a
Powertools APIGatewayHttpResolver app."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel, APIGatewayProxyEventV2Model
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.harness import ACCESS_KEY, ACCOUNT, SECRET_KEY, HearthServer, create_function
from tests.integration.test_apigateway_rest import call
from tests.integration.test_layers import site_packages_zip

pytestmark = pytest.mark.integration

ECHO_APP = '''
import json

def handler(event, context):
    q = event.get("queryStringParameters") or {}
    mode = q.get("mode")
    if mode == "bare":
        return {"bare": True}
    if mode == "cookies":
        return {"statusCode": 202, "cookies": ["a=1; Path=/", "b=2"], "headers": {"x-h": "v"}, "body": "c"}
    if mode == "error":
        raise ValueError("boom")
    if event.get("version") == "1.0":
        return {"statusCode": 200, "body": json.dumps(event), "multiValueHeaders": {"x-m": ["1", "2"]}}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}
'''

AUTHORIZER_APP = '''
def handler(event, context):
    token = (event.get("headers") or {}).get("authorization", "")
    if event.get("routeArn", "").endswith("/policy"):
        effect = "Allow" if token == "good" else "Deny"
        return {"principalId": "p1", "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["routeArn"]}]},
            "context": {"via": "policy"}}
    return {"isAuthorized": token == "good", "context": {"user": "u-" + token}}
'''

POWERTOOLS_APP = '''
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

app = APIGatewayHttpResolver()

@app.get("/hello/<name>")
def hello(name):
    return {"hello": name, "cookies": app.current_event.cookies}

def handler(event, context):
    return app.resolve(event, context)
'''


class _Backend(BaseHTTPRequestHandler):
    """The test's HTTP endpoint: an OpenID issuer (discovery + JWKS) and an HTTP_PROXY target."""

    jwks: dict[str, Any] = {}
    issuer = ""
    seen: list[dict[str, Any]] = []

    def _reply(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/.well-known/openid-configuration":
            self._reply(200, json.dumps({"issuer": self.issuer, "jwks_uri": self.issuer + "/jwks.json"}).encode())
        elif self.path in ("/jwks.json", "/nodisco/.well-known/jwks.json"):
            self._reply(200, json.dumps(self.jwks).encode())
        elif ".well-known" in self.path:
            self._reply(404, b"{}")
        else:
            self._answer_proxy()

    def do_POST(self) -> None:
        self._answer_proxy()

    def _answer_proxy(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        _Backend.seen.append({"method": self.command, "path": self.path, "body": body.decode(),
                              "x-test": self.headers.get("x-test")})
        self._reply(207, b"from backend", "text/plain")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def backend() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    _Backend.issuer = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield _Backend.issuer
    srv.shutdown()
    srv.server_close()
    thread.join()


@pytest.fixture(scope="module")
def echo(server: HearthServer) -> str:
    lam = server.client("lambda")
    name = f"httpapi-echo-{uuid.uuid4().hex[:6]}"
    return str(create_function(lam, name, {"app.py": ECHO_APP}, Timeout=10)["FunctionArn"])


def allow(server: HearthServer, arn: str, api_id: str) -> None:
    server.client("lambda").add_permission(
        FunctionName=arn.rsplit(":", 1)[1], StatementId=f"httpapi-{api_id}", Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com", SourceArn=f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}/*")


def test_quick_create_payload_2_0_and_response_mapping(server: HearthServer, echo: str) -> None:
    v2 = server.client("apigatewayv2")
    api = v2.create_api(Name="quick", ProtocolType="HTTP", Target=echo)
    api_id = api["ApiId"]
    assert api["ApiEndpoint"].startswith(f"http://{api_id}.execute-api.localhost")
    [route] = v2.get_routes(ApiId=api_id)["Items"]
    assert route["RouteKey"] == "$default"
    [stage] = v2.get_stages(ApiId=api_id)["Items"]
    assert stage["StageName"] == "$default" and stage["AutoDeploy"] is True
    [integ] = v2.get_integrations(ApiId=api_id)["Items"]
    assert (integ["IntegrationType"], integ["PayloadFormatVersion"]) == ("AWS_PROXY", "2.0")
    status, _, body, _ = call(server, api_id, "GET", "/x")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})  # no permission yet
    allow(server, echo, api_id)

    status, _, body, _ = call(server, api_id, "GET", "/some/path?x=1&x=2&y=a%20b",
                              headers={"Cookie": "c1=v1; c2=v2", "X-Dup": "a", "User-Agent": "tester"})
    assert status == 200, body
    event = json.loads(body)
    model = APIGatewayProxyEventV2Model(**event)
    assert model.rawPath == "/some/path" and model.rawQueryString == "x=1&x=2&y=a%20b"
    assert event["queryStringParameters"] == {"x": "1,2", "y": "a b"}
    assert event["cookies"] == ["c1=v1", "c2=v2"] and "cookie" not in event["headers"]
    assert event["routeKey"] == "$default" and event["version"] == "2.0"
    ctx = event["requestContext"]
    assert ctx["stage"] == "$default" and ctx["http"]["method"] == "GET" and ctx["http"]["path"] == "/some/path"
    assert ctx["http"]["userAgent"] == "tester" and ctx["apiId"] == api_id and ctx["accountId"] == ACCOUNT

    status, headers, body, _ = call(server, api_id, "GET", "/x?mode=bare")
    assert (status, headers["content-type"], json.loads(body)) == (200, "application/json", {"bare": True})
    status, headers, body, raw = call(server, api_id, "GET", "/x?mode=cookies", path_form=True)
    assert status == 202 and body == b"c" and headers["x-h"] == "v"
    assert [v for k, v in raw if k.lower() == "set-cookie"] == ["a=1; Path=/", "b=2"]
    status, _, body, _ = call(server, api_id, "GET", "/x?mode=error")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})


def test_routes_stages_payload_1_0_and_cors(server: HearthServer, echo: str) -> None:
    v2 = server.client("apigatewayv2")
    api_id = v2.create_api(Name="routes", ProtocolType="HTTP")["ApiId"]
    integ = v2.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=echo,
                                  PayloadFormatVersion="1.0")
    v2.create_route(ApiId=api_id, RouteKey="GET /items/{id}", Target=f"integrations/{integ['IntegrationId']}")
    v2.create_route(ApiId=api_id, RouteKey="ANY /files/{proxy+}", Target=f"integrations/{integ['IntegrationId']}")
    with pytest.raises(ClientError) as err:
        v2.create_route(ApiId=api_id, RouteKey="GET /items/{id}")
    assert err.value.response["Error"]["Code"] == "ConflictException"
    v2.create_stage(ApiId=api_id, StageName="prod", AutoDeploy=True, StageVariables={"env": "p"})
    allow(server, echo, api_id)

    status, _, body, raw = call(server, api_id, "GET", "/prod/items/5?q=1", headers={"X-Dup": "a"})
    assert status == 200, body
    event = json.loads(body)
    APIGatewayProxyEventModel(**event)
    assert event["version"] == "1.0" and event["pathParameters"] == {"id": "5"}
    assert event["resource"] == "/items/{id}" and event["stageVariables"] == {"env": "p"}
    assert event["requestContext"]["stage"] == "prod" and event["requestContext"]["routeKey"] == "GET /items/{id}"
    assert [v for k, v in raw if k.lower() == "x-m"] == ["1", "2"]
    status, _, body, _ = call(server, api_id, "DELETE", "/prod/files/a/b.txt")
    assert status == 200 and json.loads(body)["pathParameters"] == {"proxy": "a/b.txt"}
    for method, path in (("POST", "/prod/items/5"), ("GET", "/prod/other"), ("GET", "/nostage/items/5")):
        status, _, body, _ = call(server, api_id, method, path)
        assert (status, json.loads(body)) == (404, {"message": "Not Found"}), path

    # A stage without AutoDeploy serves its deployment, not later changes.
    dep = v2.create_deployment(ApiId=api_id)
    v2.create_stage(ApiId=api_id, StageName="fixed", DeploymentId=dep["DeploymentId"])
    v2.create_route(ApiId=api_id, RouteKey="GET /late", Target=f"integrations/{integ['IntegrationId']}")
    assert call(server, api_id, "GET", "/prod/late")[0] == 200
    assert call(server, api_id, "GET", "/fixed/late")[0] == 404
    assert call(server, api_id, "GET", "/fixed/items/1")[0] == 200

    v2.update_api(ApiId=api_id, CorsConfiguration={"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET"],
                                                   "AllowHeaders": ["x-token"], "MaxAge": 60})
    status, headers, _, _ = call(server, api_id, "OPTIONS", "/prod/items/5", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
    assert status == 204 and headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-max-age"] == "60"
    status, headers, _, _ = call(server, api_id, "GET", "/prod/items/5", headers={"Origin": "https://app.example"})
    assert status == 200 and headers["access-control-allow-origin"] == "https://app.example"


def test_lambda_authorizers(server: HearthServer, echo: str) -> None:
    lam = server.client("lambda")
    v2 = server.client("apigatewayv2")
    auth_arn = create_function(lam, f"httpapi-auth-{uuid.uuid4().hex[:6]}", {"app.py": AUTHORIZER_APP})["FunctionArn"]
    api_id = v2.create_api(Name="authz", ProtocolType="HTTP")["ApiId"]
    integ = v2.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=echo)
    target = f"integrations/{integ['IntegrationId']}"
    simple = v2.create_authorizer(ApiId=api_id, Name="simple", AuthorizerType="REQUEST", AuthorizerUri=auth_arn,
                                  AuthorizerPayloadFormatVersion="2.0", EnableSimpleResponses=True,
                                  IdentitySource=["$request.header.Authorization"],
                                  AuthorizerResultTtlInSeconds=300)
    policy = v2.create_authorizer(ApiId=api_id, Name="policy", AuthorizerType="REQUEST", AuthorizerUri=auth_arn,
                                  AuthorizerPayloadFormatVersion="2.0",
                                  IdentitySource=["$request.header.Authorization"])
    v2.create_route(ApiId=api_id, RouteKey="GET /simple", Target=target, AuthorizationType="CUSTOM",
                    AuthorizerId=simple["AuthorizerId"])
    v2.create_route(ApiId=api_id, RouteKey="GET /policy", Target=target, AuthorizationType="CUSTOM",
                    AuthorizerId=policy["AuthorizerId"])
    v2.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    allow(server, echo, api_id)
    allow(server, auth_arn, api_id)
    status, _, body, _ = call(server, api_id, "GET", "/simple")
    assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
    status, _, body, _ = call(server, api_id, "GET", "/simple", headers={"Authorization": "nope"})
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    status, _, body, _ = call(server, api_id, "GET", "/simple", headers={"Authorization": "good"})
    assert status == 200, body
    assert json.loads(body)["requestContext"]["authorizer"] == {"lambda": {"user": "u-good"}}
    status, _, body, _ = call(server, api_id, "GET", "/policy", headers={"Authorization": "good"})
    assert status == 200 and json.loads(body)["requestContext"]["authorizer"]["lambda"] == {"via": "policy"}
    assert call(server, api_id, "GET", "/policy", headers={"Authorization": "bad"})[0] == 403


def test_jwt_authorizer(server: HearthServer, echo: str, backend: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    _Backend.jwks = {"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}
    v2 = server.client("apigatewayv2")
    api_id = v2.create_api(Name="jwt", ProtocolType="HTTP")["ApiId"]
    integ = v2.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=echo)
    auth = v2.create_authorizer(ApiId=api_id, Name="jwt", AuthorizerType="JWT",
                                IdentitySource=["$request.header.Authorization"],
                                JwtConfiguration={"Issuer": backend, "Audience": ["my-app"]})
    v2.create_route(ApiId=api_id, RouteKey="GET /me", Target=f"integrations/{integ['IntegrationId']}",
                    AuthorizationType="JWT", AuthorizerId=auth["AuthorizerId"], AuthorizationScopes=["read"])
    v2.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    allow(server, echo, api_id)

    def token(**claims: Any) -> str:
        base = {"iss": backend, "aud": "my-app", "sub": "alice", "exp": int(time.time()) + 300, "scope": "read write"}
        return jwt.encode({**base, **claims}, key, algorithm="RS256", headers={"kid": "k1"})

    status, _, body, _ = call(server, api_id, "GET", "/me", headers={"Authorization": f"Bearer {token()}"})
    assert status == 200, body
    claims = json.loads(body)["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims["sub"] == "alice" and claims["iss"] == backend
    assert json.loads(body)["requestContext"]["authorizer"]["jwt"]["scopes"] == ["read", "write"]
    for bad in ({"aud": "other"}, {"exp": int(time.time()) - 10}, {"iss": "http://elsewhere"}):
        status, _, body, _ = call(server, api_id, "GET", "/me", headers={"Authorization": f"Bearer {token(**bad)}"})
        assert (status, json.loads(body)) == (401, {"message": "Unauthorized"}), bad
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({"iss": backend, "aud": "my-app", "exp": int(time.time()) + 60}, other_key,
                        algorithm="RS256", headers={"kid": "k1"})
    assert call(server, api_id, "GET", "/me", headers={"Authorization": f"Bearer {forged}"})[0] == 401
    assert call(server, api_id, "GET", "/me")[0] == 401
    status, _, _, _ = call(server, api_id, "GET", "/me", headers={"Authorization": token(scope="other")})
    assert status == 403
    # An issuer without OpenID discovery: its keys are read at <issuer>/.well-known/jwks.json.
    plain = v2.create_authorizer(ApiId=api_id, Name="plain", AuthorizerType="JWT",
                                 IdentitySource=["$request.header.Authorization"],
                                 JwtConfiguration={"Issuer": f"{backend}/nodisco", "Audience": ["my-app"]})
    v2.create_route(ApiId=api_id, RouteKey="GET /plain", Target=f"integrations/{integ['IntegrationId']}",
                    AuthorizationType="JWT", AuthorizerId=plain["AuthorizerId"])
    status, _, body, _ = call(server, api_id, "GET", "/plain",
                              headers={"Authorization": token(iss=f"{backend}/nodisco")})
    assert status == 200, body


def test_http_proxy_and_openapi_import(server: HearthServer, echo: str, backend: str) -> None:
    v2 = server.client("apigatewayv2")
    api_id = v2.create_api(Name="proxy", ProtocolType="HTTP", Target=f"{backend}/backend")["ApiId"]
    _Backend.seen.clear()
    status, _, body, _ = call(server, api_id, "POST", "/?k=v", headers={"x-test": "1"}, body=b"payload")
    assert (status, body) == (207, b"from backend")
    assert _Backend.seen == [{"method": "POST", "path": "/backend?k=v", "body": "payload", "x-test": "1"}]
    # Parameter mapping: the path, a query parameter and a header rewritten on the way to the backend.
    [integ] = v2.get_integrations(ApiId=api_id)["Items"]
    v2.update_integration(ApiId=api_id, IntegrationId=integ["IntegrationId"], RequestParameters={
        "overwrite:path": "/mapped$request.path", "append:querystring.stage": "$context.stage",
        "overwrite:header.x-test": "was-${request.header.x-test}"})
    _Backend.seen.clear()
    assert call(server, api_id, "POST", "/p/q?k=v", headers={"x-test": "1"}, body=b"again")[0] == 207
    assert _Backend.seen == [{"method": "POST", "path": "/mapped/p/q?k=v&stage=%24default", "body": "again",
                              "x-test": "was-1"}]

    spec = {"openapi": "3.0.1", "info": {"title": "imported-http", "version": "1"},
            "x-amazon-apigateway-cors": {"allowOrigins": ["*"], "allowMethods": ["GET"]},
            "paths": {"/pets/{id}": {"get": {"x-amazon-apigateway-integration": {
                "type": "aws_proxy", "httpMethod": "POST", "uri": echo, "payloadFormatVersion": "2.0"}}}}}
    imported = v2.import_api(Body=json.dumps(spec))
    assert imported["Name"] == "imported-http" and imported["CorsConfiguration"]["AllowOrigins"] == ["*"]
    assert [r["RouteKey"] for r in v2.get_routes(ApiId=imported["ApiId"])["Items"]] == ["GET /pets/{id}"]
    v2.create_stage(ApiId=imported["ApiId"], StageName="$default", AutoDeploy=True)
    allow(server, echo, imported["ApiId"])
    status, _, body, _ = call(server, imported["ApiId"], "GET", "/pets/9")
    assert status == 200 and json.loads(body)["pathParameters"] == {"id": "9"}
    with pytest.raises(ClientError) as err:
        v2.get_api(ApiId="missing000")
    assert err.value.response["Error"]["Code"] == "NotFoundException"


def test_powertools_http_resolver_routes(server: HearthServer) -> None:
    lam = server.client("lambda")
    layer = lam.publish_layer_version(
        LayerName="httpapi-powertools",
        Content={"ZipFile": site_packages_zip("aws_lambda_powertools", "jmespath", "typing_extensions.py")})
    name = f"httpapi-pt-{uuid.uuid4().hex[:6]}"
    arn = create_function(lam, name, {"app.py": POWERTOOLS_APP}, Layers=[layer["LayerVersionArn"]], Timeout=30,
                          MemorySize=256)["FunctionArn"]
    v2 = server.client("apigatewayv2")
    api_id = v2.create_api(Name="powertools", ProtocolType="HTTP", Target=arn)["ApiId"]
    allow(server, arn, api_id)
    status, _, body, _ = call(server, api_id, "GET", "/hello/bob", headers={"Cookie": "s=1"})
    assert (status, json.loads(body)) == (200, {"hello": "bob", "cookies": ["s=1"]})
    assert call(server, api_id, "GET", "/nope")[0] == 404


def test_access_logs_and_metrics(server: HearthServer, echo: str) -> None:
    v2 = server.client("apigatewayv2")
    api_id = v2.create_api(Name="observed", ProtocolType="HTTP", Target=echo)["ApiId"]
    allow(server, echo, api_id)
    group = f"apigw-access-{api_id}"
    v2.update_stage(ApiId=api_id, StageName="$default", AccessLogSettings={
        "DestinationArn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{group}",
        "Format": '{"id":"$context.requestId","status":"$context.status","route":"$context.routeKey",'
                  '"ip":"$context.identity.sourceIp","nothing":"$context.error.message"}'})
    status, headers, _, _ = call(server, api_id, "GET", "/logged")
    assert status == 200
    logs = server.client("logs")
    deadline = time.monotonic() + 30
    events: list[dict[str, Any]] = []
    while not events and time.monotonic() < deadline:
        try:
            events = logs.filter_log_events(logGroupName=group)["events"]
        except ClientError:
            pass
        if not events:
            time.sleep(0.1)
    assert [json.loads(e["message"]) for e in events] == [
        {"id": headers["x-amzn-requestid"], "status": "200", "route": "$default", "ip": "127.0.0.1", "nothing": "-"}]
    with urllib.request.urlopen(f"{server.endpoint}/_hearth/metrics") as resp:
        text = resp.read().decode()
    assert f'hearth_apigateway_requests_total{{api="{api_id}",stage="$default"}} 1' in text
    assert f'hearth_apigateway_integration_latency_seconds_count{{api="{api_id}",stage="$default"}} 1' in text


def test_aws_iam_route(server: HearthServer, echo: str) -> None:
    v2 = server.client("apigatewayv2")
    api_id = v2.create_api(Name="iam", ProtocolType="HTTP")["ApiId"]
    integ = v2.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=echo)
    v2.create_route(ApiId=api_id, RouteKey="GET /me", AuthorizationType="AWS_IAM",
                    Target=f"integrations/{integ['IntegrationId']}")
    v2.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    allow(server, echo, api_id)
    port = int(server.endpoint.rsplit(":", 1)[1])
    host = f"{api_id}.execute-api.localhost:{port}"
    request = AWSRequest(method="GET", url=f"http://{host}/me", headers={"Host": host})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "execute-api", "us-east-1").add_auth(request)
    status, _, body, _ = call(server, api_id, "GET", "/me", headers=dict(request.headers.items()))
    assert status == 200, body
    assert json.loads(body)["requestContext"]["authorizer"]["iam"]["accessKey"] == ACCESS_KEY
    assert call(server, api_id, "GET", "/me")[0] == 403
