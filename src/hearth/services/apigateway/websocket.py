"""WebSocket APIs: live connections, their route selection and events, and the `@connections`
management API (boto3's `apigatewaymanagementapi`: PostToConnection, GetConnection, DeleteConnection).

It owns the connection registry (in memory: a connection lives as long as its socket; ids are unique
across APIs, so the management API needs only the id), the WebSocket events as AWS builds them
(`requestContext.eventType` CONNECT / MESSAGE / DISCONNECT, `connectionId`, `connectedAt`, `messageId`,
`routeKey`), route selection by the API's `routeSelectionExpression` (`$request.body.<path>`, falling
back to `$default`; without one, AWS's `{"message": "Forbidden", ...}` frame), `$connect` accepting or
refusing the upgrade (a non-2xx answer or a failure refuses it), two-way routes (a route with a
RouteResponseSelectionExpression sends the integration's body back) and `$disconnect`. It never
serves HTTP requests.

Functions reach the management API through Hearth's endpoint (their AWS_ENDPOINT_URL), so
`boto3.client("apigatewaymanagementapi")` works inside a function without an endpoint_url.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.invoke.invoker import InvokeOutcome
from hearth.services.apigateway import proxy
from hearth.services.apigateway.store import Doc
from hearth.services.apigateway.vtl import TemplateError, json_path
from hearth.urls.event import aws_time
from hearth.urls.response import HttpAnswer

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
MAX_FRAME = 128 * 1024  # API Gateway's WebSocket frame limit (32 KB frames, 128 KB messages)


def gone() -> AwsError:
    return AwsError("GoneException", "", 410)


@dataclass
class Connection:
    connection_id: str
    api_id: str
    stage: str
    account: str
    region: str
    source_ip: str
    user_agent: str
    connected_at: float
    send: Send
    last_active: float = 0.0
    closed: bool = False
    authorizer: dict[str, Any] | None = None  # what the $connect authorizer returned, for every event
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def push(self, data: bytes) -> None:
        async with self.lock:
            if self.closed:
                raise gone()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                await self.send({"type": "websocket.send", "bytes": data})
            else:
                await self.send({"type": "websocket.send", "text": text})

    async def close(self, code: int = 1000) -> None:
        async with self.lock:
            if not self.closed:
                self.closed = True
                try:
                    await self.send({"type": "websocket.close", "code": code})
                except Exception:  # the peer went away first
                    pass


class Connections:
    def __init__(self) -> None:
        self._by_id: dict[str, Connection] = {}

    def new_id(self) -> str:
        while True:
            cid = base64.urlsafe_b64encode(secrets.token_bytes(12)).decode().rstrip("=")[:14] + "="
            if cid not in self._by_id:
                return cid

    def add(self, conn: Connection) -> None:
        self._by_id[conn.connection_id] = conn

    def get(self, cid: str) -> Connection | None:
        return self._by_id.get(cid)

    def remove(self, cid: str) -> None:
        self._by_id.pop(cid, None)


class ManagementProvider:
    """`apigatewaymanagementapi`: what a backend does with a connection."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def _conn(self, ctx: RequestContext, cid: str) -> Connection:
        conn = self._connections.get(cid)
        if conn is None or conn.closed:
            raise gone()
        if conn.account != ctx.principal.account_id:
            raise AwsError("ForbiddenException", "Forbidden", 403)
        return conn

    async def post_to_connection(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        conn = self._conn(ctx, p["ConnectionId"])
        data: bytes = p.get("Data") or b""
        if len(data) > MAX_FRAME:
            raise AwsError("PayloadTooLargeException", "Message too long", 413)
        await conn.push(data)

    def get_connection(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        conn = self._conn(ctx, p["ConnectionId"])
        return {"ConnectedAt": conn.connected_at, "LastActiveAt": conn.last_active or conn.connected_at,
                "Identity": {"SourceIp": conn.source_ip, "UserAgent": conn.user_agent}}

    async def delete_connection(self, ctx: RequestContext, p: dict[str, Any]) -> None:
        conn = self._conn(ctx, p["ConnectionId"])
        await conn.close(1000)


def event(conn: Connection, req: proxy.ApiRequest, route_key: str, event_type: str, *,
          body: str | None = None, headers: list[tuple[str, str]] | None = None,
          disconnect: tuple[int, str] | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {
        "routeKey": route_key, "eventType": event_type, "extendedRequestId": req.request_id,
        "requestTime": aws_time(req.epoch_ms), "messageDirection": "IN", "stage": conn.stage,
        "connectedAt": int(conn.connected_at * 1000), "requestTimeEpoch": req.epoch_ms,
        "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
        "requestId": req.request_id, "domainName": req.domain_name, "connectionId": conn.connection_id,
        "apiId": conn.api_id,
    }
    if conn.authorizer is not None:
        context["authorizer"] = conn.authorizer
    if event_type == "MESSAGE":
        context["messageId"] = uuid.uuid4().hex[:16]
    if disconnect is not None:
        context["disconnectStatusCode"], context["disconnectReason"] = disconnect
    out: dict[str, Any] = {}
    if headers is not None:
        single: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for k, v in headers:
            single[k] = v
            multi.setdefault(k, []).append(v)
        out["headers"], out["multiValueHeaders"] = single, multi
        if event_type == "CONNECT":
            queries = proxy.query_lists(req.raw_query)
            if queries:
                out["queryStringParameters"] = {k: v[-1] for k, v in queries.items()}
                out["multiValueQueryStringParameters"] = queries
    out["requestContext"] = context
    if body is not None:
        out["body"] = body
    out["isBase64Encoded"] = False
    return out


def select_route(doc: Doc, body: str) -> str:
    expression = str(doc.get("RouteSelectionExpression") or "$request.body.action")
    keys = {r["RouteKey"] for r in doc.get("routes", {}).values()}
    if expression.startswith("$request.body."):
        try:
            value = json_path(json.loads(body), "$." + expression[len("$request.body."):])
        except (ValueError, TemplateError):
            value = None
        if isinstance(value, str) and value in keys:
            return value
    return "$default"


Invoke = Callable[[Doc, Doc, proxy.ApiRequest, dict[str, Any]], Awaitable[InvokeOutcome | HttpAnswer | None]]
# (api, $connect route, request, method ARN) -> (refusal or None, authorizer context)
Authorize = Callable[[Doc, Doc, proxy.ApiRequest, str], Awaitable[tuple[HttpAnswer | None, dict[str, Any] | None]]]


class WebSocketFront:
    """One ASGI WebSocket session: $connect, messages routed to integrations, $disconnect."""

    def __init__(self, connections: Connections, invoke: Invoke, authorize: Authorize,
                 clock: Callable[[], float] = time.time) -> None:
        self._connections = connections
        self._invoke = invoke
        self._authorize = authorize
        self._clock = clock

    async def serve(self, doc: Doc, stage_name: str, req: proxy.ApiRequest, receive: Callable[[], Awaitable[Any]],
                    send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        routes = {r["RouteKey"]: r for r in doc.get("routes", {}).values()}
        conn = Connection(self._connections.new_id(), doc["ApiId"], stage_name, req.account, req.region,
                          req.source_ip, req.header("user-agent") or "", self._clock(), send)
        req.stage = stage_name
        connect_route = routes.get("$connect")
        if connect_route is not None and connect_route.get("AuthorizationType") == "CUSTOM":
            method_arn = f"arn:aws:execute-api:{req.region}:{req.account}:{conn.api_id}/{stage_name}/$connect"
            refusal, conn.authorizer = await self._authorize(doc, connect_route, req, method_arn)
            if refusal is not None:
                await send({"type": "websocket.close", "code": 1008})
                return
        if connect_route is not None:
            result = await self._invoke(doc, connect_route, req,
                                        event(conn, req, "$connect", "CONNECT", headers=req.headers))
            if not _accepted(result):
                await send({"type": "websocket.close", "code": 1008})
                return
        self._connections.add(conn)
        await send({"type": "websocket.accept"})
        code, reason = 1005, "Client-side close frame status not set"
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    code = int(message.get("code") or 1005)
                    reason = "Client-side close frame status not set" if code == 1005 else "Going away"
                    break
                if message["type"] != "websocket.receive":
                    continue
                conn.last_active = self._clock()
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"").decode("utf-8", "replace")
                await self._message(doc, routes, conn, req, text)
        finally:
            conn.closed = True
            self._connections.remove(conn.connection_id)
            disconnect_route = routes.get("$disconnect")
            if disconnect_route is not None:
                dreq = _fresh(req, self._clock)
                await self._invoke(doc, disconnect_route, dreq,
                                   event(conn, dreq, "$disconnect", "DISCONNECT", headers=req.headers,
                                         disconnect=(code, reason)))

    async def _message(self, doc: Doc, routes: dict[str, Doc], conn: Connection, req: proxy.ApiRequest,
                       text: str) -> None:
        route_key = select_route(doc, text)
        route = routes.get(route_key)
        mreq = _fresh(req, self._clock)
        if route is None:
            await conn.push(json.dumps({"message": "Forbidden", "connectionId": conn.connection_id,
                                        "requestId": mreq.request_id}).encode())
            return
        result = await self._invoke(doc, route, mreq, event(conn, mreq, route_key, "MESSAGE", body=text))
        if not route.get("RouteResponseSelectionExpression"):
            return
        if isinstance(result, InvokeOutcome) and not result.function_error:
            try:
                value = json.loads(result.payload) if result.payload else None
            except ValueError:
                value = result.payload.decode("utf-8", "replace")
            if isinstance(value, dict) and "body" in value:
                reply = value["body"] if isinstance(value["body"], str) else json.dumps(value["body"])
            else:
                reply = value if isinstance(value, str) else json.dumps(value)
            if not conn.closed:
                await conn.push(reply.encode())
        elif not conn.closed:
            await conn.push(json.dumps({"message": "Internal server error", "connectionId": conn.connection_id,
                                        "requestId": mreq.request_id}).encode())


def _accepted(result: InvokeOutcome | HttpAnswer | None) -> bool:
    if result is None:
        return True  # a route without an integration accepts (as a MOCK would)
    if isinstance(result, HttpAnswer) or result.function_error:
        return False
    try:
        value = json.loads(result.payload) if result.payload else None
    except ValueError:
        return True
    status = value.get("statusCode", 200) if isinstance(value, dict) else 200
    return isinstance(status, int) and 200 <= status < 300


def _fresh(req: proxy.ApiRequest, clock: Callable[[], float]) -> proxy.ApiRequest:
    return proxy.ApiRequest(req.method, req.path, req.raw_query, req.headers, b"", req.source_ip, req.api_id,
                            req.account, req.region, req.stage, req.domain_name, str(uuid.uuid4()),
                            int(clock() * 1000), stage_path=req.stage_path, wire_path=req.wire_path)
