"""WebSocket APIs end to end: routes ($connect, $disconnect, $default, a custom route chosen by the
routeSelectionExpression), Lambda integrations whose events match Powertools' models of AWS's shapes,
two-way routes, and the @connections management API — from a function (through its AWS endpoint) and
from boto3."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)
from botocore.exceptions import ClientError
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.integration.harness import ACCOUNT, HearthServer, create_function

pytestmark = pytest.mark.integration

WS_APP = '''
import json, boto3

def handler(event, context):
    ctx = event["requestContext"]
    route = ctx["routeKey"]
    print("EVENT " + json.dumps(event))
    if route == "$connect":
        if (event.get("queryStringParameters") or {}).get("deny"):
            return {"statusCode": 403}
        return {"statusCode": 200}
    if route == "echo":
        client = boto3.client("apigatewaymanagementapi")
        client.post_to_connection(ConnectionId=ctx["connectionId"], Data=json.dumps({"event": event}).encode())
        return {"statusCode": 200}
    if route == "$disconnect":
        return {"statusCode": 200}
    return {"statusCode": 200, "body": "default:" + (event.get("body") or "")}
'''


def function_events(server: HearthServer, name: str, route: str, count: int) -> list[dict[str, Any]]:
    logs = server.client("logs")
    deadline = time.monotonic() + 30
    while True:
        try:
            found = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern="EVENT")["events"]
        except ClientError:
            found = []
        events = [json.loads(e["message"].split("EVENT ", 1)[1]) for e in found if "EVENT " in e["message"]]
        events = [e for e in events if e["requestContext"]["routeKey"] == route]
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def test_websocket_routes_events_and_connections_api(server: HearthServer) -> None:
    lam = server.client("lambda")
    name = f"ws-{uuid.uuid4().hex[:6]}"
    arn = create_function(lam, name, {"app.py": WS_APP}, Timeout=15)["FunctionArn"]
    v2 = server.client("apigatewayv2")
    api = v2.create_api(Name="chat", ProtocolType="WEBSOCKET", RouteSelectionExpression="$request.body.action")
    api_id = api["ApiId"]
    assert api["ApiEndpoint"].startswith(f"ws://{api_id}.execute-api.localhost")
    integ = v2.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY",
                                  IntegrationUri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
                                                 f"{arn}/invocations")
    target = f"integrations/{integ['IntegrationId']}"
    for key in ("$connect", "$disconnect", "echo"):
        v2.create_route(ApiId=api_id, RouteKey=key, Target=target)
    default = v2.create_route(ApiId=api_id, RouteKey="$default", Target=target,
                              RouteResponseSelectionExpression="$default")
    v2.create_route_response(ApiId=api_id, RouteId=default["RouteId"], RouteResponseKey="$default")
    v2.create_stage(ApiId=api_id, StageName="prod", AutoDeploy=True)
    lam.add_permission(FunctionName=name, StatementId="ws", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}/*")
    base = server.endpoint.replace("http://", "ws://") + f"/_hearth/api/{api_id}"

    with pytest.raises(InvalidStatus):  # $connect answered 403: the upgrade is refused
        connect(f"{base}/prod?deny=1", open_timeout=30).close()
    with pytest.raises(InvalidStatus):  # no such stage
        connect(f"{base}/nostage", open_timeout=30).close()

    mgmt = server.client("apigatewaymanagementapi")
    with connect(f"{base}/prod?room=1", open_timeout=30, additional_headers={"User-Agent": "ws-test"}) as ws:
        ws.send(json.dumps({"action": "echo", "text": "hi"}))
        message = json.loads(ws.recv(timeout=30))["event"]
        APIGatewayWebSocketMessageEventModel(**message)
        ctx = message["requestContext"]
        assert ctx["routeKey"] == "echo" and ctx["eventType"] == "MESSAGE" and ctx["stage"] == "prod"
        assert json.loads(message["body"]) == {"action": "echo", "text": "hi"}
        connection_id = ctx["connectionId"]

        ws.send("plain text")  # no action: $default, a two-way route
        assert ws.recv(timeout=30) == "default:plain text"

        got = mgmt.get_connection(ConnectionId=connection_id)
        assert got["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "ws-test"}
        mgmt.post_to_connection(ConnectionId=connection_id, Data=b"pushed")
        assert ws.recv(timeout=30) == "pushed"
        mgmt.delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=30)
    with pytest.raises(ClientError) as err:
        mgmt.post_to_connection(ConnectionId=connection_id, Data=b"late")
    assert err.value.response["Error"]["Code"] == "GoneException"

    connects = function_events(server, name, "$connect", 2)
    ours = [e for e in connects if e["requestContext"]["connectionId"] == connection_id]
    assert len(ours) == 1
    APIGatewayWebSocketConnectEventModel(**ours[0])
    assert ours[0]["queryStringParameters"] == {"room": "1"}
    [gone] = [e for e in function_events(server, name, "$disconnect", 1)
              if e["requestContext"]["connectionId"] == connection_id]
    APIGatewayWebSocketDisconnectEventModel(**gone)


AUTH_APP = '''
def handler(event, context):
    token = (event.get("headers") or {}).get("x-token")
    effect = "Allow" if token == "alice" else "Deny"
    return {"principalId": "user-" + str(token), "context": {"room": "blue"},
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}]}}
'''

ECHO_APP = '''
import json
def handler(event, context):
    return {"statusCode": 200, "body": json.dumps(event["requestContext"].get("authorizer"))}
'''


def test_connect_authorizer(server: HearthServer) -> None:
    lam = server.client("lambda")
    suffix = uuid.uuid4().hex[:6]
    auth_arn = create_function(lam, f"ws-auth-{suffix}", {"app.py": AUTH_APP})["FunctionArn"]
    echo_arn = create_function(lam, f"ws-echo-{suffix}", {"app.py": ECHO_APP})["FunctionArn"]
    v2 = server.client("apigatewayv2")
    api_id = v2.create_api(Name="guarded", ProtocolType="WEBSOCKET",
                           RouteSelectionExpression="$request.body.action")["ApiId"]
    integ = v2.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=echo_arn)
    auth = v2.create_authorizer(ApiId=api_id, Name="a", AuthorizerType="REQUEST", AuthorizerUri=auth_arn,
                                IdentitySource=["route.request.header.x-token"])
    v2.create_route(ApiId=api_id, RouteKey="$connect", AuthorizationType="CUSTOM", AuthorizerId=auth["AuthorizerId"],
                    Target=f"integrations/{integ['IntegrationId']}")
    v2.create_route(ApiId=api_id, RouteKey="$default", Target=f"integrations/{integ['IntegrationId']}",
                    RouteResponseSelectionExpression="$default")
    v2.create_stage(ApiId=api_id, StageName="live", AutoDeploy=True)
    for name in (f"ws-auth-{suffix}", f"ws-echo-{suffix}"):
        lam.add_permission(FunctionName=name, StatementId="ws", Action="lambda:InvokeFunction",
                           Principal="apigateway.amazonaws.com",
                           SourceArn=f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}/*")
    url = server.endpoint.replace("http://", "ws://") + f"/_hearth/api/{api_id}/live"
    for headers in ({}, {"x-token": "mallory"}):
        with pytest.raises(InvalidStatus):
            connect(url, open_timeout=30, additional_headers=headers).close()
    with connect(url, open_timeout=30, additional_headers={"x-token": "alice"}) as ws:
        ws.send("hello")
        authorizer = json.loads(ws.recv(timeout=30))
    assert authorizer["principalId"] == "user-alice" and authorizer["room"] == "blue"
