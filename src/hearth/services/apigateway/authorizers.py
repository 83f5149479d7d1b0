"""Authorizers: Lambda TOKEN/REQUEST authorizers of REST APIs, Lambda REQUEST and JWT authorizers of
HTTP APIs.

It owns: the authorizer events, the identity sources (a missing one is a 401 without calling anything),
result caching by identity-source values for `authorizerResultTtlInSeconds`, the evaluation of an
IAM-policy answer against the method ARN (an explicit Deny wins; no matching Allow is a denial), HTTP
APIs' simple responses (`isAuthorized`), and JWT validation (signature by the issuer's JWKS —
discovered at `<issuer>/.well-known/openid-configuration` — issuer, audience or client_id, expiry,
scopes). It never serves integrations.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt

from hearth.invoke.invoker import InvokeOutcome
from hearth.services.apigateway import proxy
from hearth.urls.response import HttpAnswer

CallFunction = Callable[..., Awaitable[InvokeOutcome | HttpAnswer]]
# (authorizer document, function ARN, request, authorizer id) -> whether API Gateway may invoke it
MayInvoke = Callable[[dict[str, Any], str, proxy.ApiRequest, str], bool]

UNAUTHORIZED = b'{"message":"Unauthorized"}'
FORBIDDEN_HTTP = b'{"message":"Forbidden"}'
EXPLICIT_DENY = b'{"Message":"User is not authorized to access this resource with an explicit deny"}'
NOT_AUTHORIZED = b'{"Message":"User is not authorized to access this resource"}'
CONFIG_ERROR = b'{"message": null}'
JWKS_TTL_S = 300.0
CACHE_LIMIT = 10_000  # cached authorizer answers kept at most (identity values are caller-chosen)


@dataclass
class AuthDecision:
    answer: HttpAnswer | None = None  # set when the request stops here
    context: dict[str, Any] | None = None  # requestContext.authorizer
    usage_key: str | None = None


def _deny(status: int, body: bytes, extra: list[tuple[str, str]] | None = None) -> AuthDecision:
    return AuthDecision(answer=HttpAnswer(status, [("Content-Type", "application/json"), *(extra or [])], body))


def _arn_matches(pattern: str, arn: str) -> bool:
    return fnmatch.fnmatchcase(arn, pattern)


def evaluate_policy(policy: Any, arn: str) -> bool | None:
    """True (allowed), False (explicitly denied) or None (nothing allows it)."""
    if not isinstance(policy, dict):
        return None
    statements = policy.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for s in statements:
        if not isinstance(s, dict):
            continue
        actions = s.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(fnmatch.fnmatchcase("execute-api:Invoke", a) for a in actions if isinstance(a, str)):
            continue
        resources = s.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if not any(_arn_matches(r, arn) for r in resources if isinstance(r, str)):
            continue
        if s.get("Effect") == "Deny":
            return False
        if s.get("Effect") == "Allow":
            allowed = True
    return True if allowed else None


def _stringify(context: Any) -> dict[str, Any]:
    if not isinstance(context, dict):
        return {}
    out: dict[str, Any] = {}
    for k, v in context.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[str(k)] = v
    return out


class Authorizers:
    def __init__(self, call_function: CallFunction, may_invoke: MayInvoke,
                 clock: Callable[[], float] = time.time) -> None:
        self._call = call_function
        self._may_invoke = may_invoke
        self._clock = clock
        self._cache: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._jwks: dict[str, tuple[float, jwt.PyJWKSet]] = {}

    def _cached(self, key: tuple[str, ...]) -> Any:
        hit = self._cache.get(key)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        self._cache.pop(key, None)
        return None

    def _remember(self, key: tuple[str, ...], ttl: int, value: Any) -> None:
        if ttl <= 0:
            return
        now = self._clock()
        if len(self._cache) >= CACHE_LIMIT:  # bounded: expired answers go first, then the oldest
            for stale in [k for k, (expiry, _) in self._cache.items() if expiry <= now]:
                del self._cache[stale]
            while len(self._cache) >= CACHE_LIMIT:
                del self._cache[next(iter(self._cache))]
        self._cache[key] = (now + ttl, value)

    async def _invoke(self, auth: dict[str, Any], uri: str, req: proxy.ApiRequest, event: dict[str, Any], *,
                      http_api: bool) -> dict[str, Any] | str | None:
        """The authorizer's answer (a dict), "Unauthorized", or None on a configuration error (a
        function API Gateway may not invoke is one: its policy or the authorizer's credentials decide)."""
        from hearth.services.apigateway.front import lambda_arn

        arn = lambda_arn(uri, req.stage_variables)
        if arn is None or not self._may_invoke(auth, arn, req, str(auth.get("id") or auth.get("AuthorizerId"))):
            return None
        result = await self._call(arn, req.account, req.region, event, str(uuid.uuid4()), 10.0,
                                  http_api=http_api)
        if isinstance(result, HttpAnswer):
            return None
        try:
            value = json.loads(result.payload)
        except ValueError:
            return None
        if result.function_error:
            if isinstance(value, dict) and value.get("errorMessage") == "Unauthorized":
                return "Unauthorized"
            return None
        return value if isinstance(value, dict) else None

    # -- REST ---------------------------------------------------------------------------------------

    async def rest(self, auth: dict[str, Any], req: proxy.ApiRequest, method_arn: str, resource_path: str,
                   deployment_id: str) -> AuthDecision:
        kind = auth.get("type", "TOKEN")
        if kind not in ("TOKEN", "REQUEST"):
            return _deny(500, CONFIG_ERROR)  # Cognito user pools are not served
        sources = [s.strip() for s in (auth.get("identitySource") or "").split(",") if s.strip()]
        values: list[str] = []
        for source in sources:
            value = self._rest_identity(source, req)
            if value is None:
                return _deny(401, UNAUTHORIZED, [("x-amzn-ErrorType", "UnauthorizedException")])
            values.append(value)
        if kind == "TOKEN":
            token = values[0] if values else ""
            expr = auth.get("identityValidationExpression")
            if expr and re.fullmatch(expr, token) is None:
                return _deny(401, UNAUTHORIZED, [("x-amzn-ErrorType", "UnauthorizedException")])
            event: dict[str, Any] = {"type": "TOKEN", "methodArn": method_arn, "authorizationToken": token}
        else:
            event = {"type": "REQUEST", "methodArn": method_arn,
                     **proxy.event_v1(req, resource_path=resource_path, resource_id="", deployment_id=deployment_id,
                                      binary_media_types=[], authorizer=None)}
            event.pop("body", None)
            event.pop("isBase64Encoded", None)
        ttl = int(auth.get("authorizerResultTtlInSeconds", 300) or 0)
        key = (req.api_id, auth["id"], *values)
        answer = self._cached(key) if values else None
        if answer is None:
            answer = await self._invoke(auth, auth.get("authorizerUri", ""), req, event, http_api=False)
            if answer == "Unauthorized":
                return _deny(401, UNAUTHORIZED, [("x-amzn-ErrorType", "UnauthorizedException")])
            if not isinstance(answer, dict) or "policyDocument" not in answer or "principalId" not in answer:
                return _deny(500, CONFIG_ERROR, [("x-amzn-ErrorType", "AuthorizerConfigurationException")])
            if values:
                self._remember(key, ttl, answer)
        verdict = evaluate_policy(answer.get("policyDocument"), method_arn)
        if verdict is False:
            return _deny(403, EXPLICIT_DENY, [("x-amzn-ErrorType", "AccessDeniedException")])
        if verdict is None:
            return _deny(403, NOT_AUTHORIZED, [("x-amzn-ErrorType", "AccessDeniedException")])
        context = {**_stringify(answer.get("context")), "principalId": answer.get("principalId"),
                   "integrationLatency": 0}
        usage = answer.get("usageIdentifierKey")
        return AuthDecision(context=context, usage_key=usage if isinstance(usage, str) else None)

    @staticmethod
    def _rest_identity(source: str, req: proxy.ApiRequest) -> str | None:
        if source.startswith("method.request.header."):
            return req.header(source[len("method.request.header."):])
        if source.startswith("method.request.querystring."):
            values = proxy.query_lists(req.raw_query).get(source[len("method.request.querystring."):])
            return values[-1] if values else None
        if source.startswith("stageVariables."):
            return req.stage_variables.get(source[len("stageVariables."):])
        if source.startswith("context."):
            return {"httpMethod": req.method, "stage": req.stage, "requestId": req.request_id}.get(
                source[len("context."):])
        return None

    # -- HTTP APIs ----------------------------------------------------------------------------------

    async def http(self, auth: dict[str, Any], req: proxy.ApiRequest, route_key: str, route_arn: str,
                   scopes: list[str] | None) -> AuthDecision:
        sources = auth.get("IdentitySource") or []
        values: list[str] = []
        for source in sources:
            value = self._http_identity(source, req)
            if value is None:
                return _deny(401, UNAUTHORIZED, [("www-authenticate", "Bearer")]
                             if auth.get("AuthorizerType") == "JWT" else [])
            values.append(value)
        if auth.get("AuthorizerType") == "JWT":
            return await self._jwt(auth, values[0] if values else "", scopes)
        version = auth.get("AuthorizerPayloadFormatVersion") or "2.0"
        if version == "2.0":
            event = {"type": "REQUEST", "routeArn": route_arn, "identitySource": values,
                     **proxy.event_v2(req, route_key=route_key, authorizer=None)}
        else:
            event = {"version": "1.0", "type": "REQUEST", "methodArn": route_arn, "identitySource": ",".join(values),
                     **proxy.event_v1(req, resource_path=route_key, resource_id=route_key, deployment_id="",
                                      binary_media_types=[], authorizer=None, http_api=True)}
        event.pop("body", None)
        ttl = int(auth.get("AuthorizerResultTtlInSeconds", 0) or 0)
        key = (req.api_id, auth["AuthorizerId"], *values)
        answer = self._cached(key) if values else None
        if answer is None:
            answer = await self._invoke(auth, auth.get("AuthorizerUri", ""), req, event, http_api=True)
            if answer == "Unauthorized":
                return _deny(401, UNAUTHORIZED)
            if not isinstance(answer, dict):
                return _deny(500, b'{"message":"Internal Server Error"}')
            if values:
                self._remember(key, ttl, answer)
        if auth.get("EnableSimpleResponses") and version == "2.0":
            if answer.get("isAuthorized") is not True:
                return _deny(403, FORBIDDEN_HTTP)
            return AuthDecision(context={"lambda": _stringify(answer.get("context"))})
        verdict = evaluate_policy(answer.get("policyDocument"), route_arn)
        if verdict is not True:
            return _deny(403, FORBIDDEN_HTTP)
        context = _stringify(answer.get("context"))
        if version == "2.0":
            return AuthDecision(context={"lambda": context, "principalId": answer.get("principalId")})
        return AuthDecision(context={**context, "principalId": answer.get("principalId"), "integrationLatency": 0})

    @staticmethod
    def _http_identity(source: str, req: proxy.ApiRequest) -> str | None:
        if source.startswith("$request.header."):
            return req.header(source[len("$request.header."):])
        if source.startswith("$request.querystring."):
            values = proxy.query_lists(req.raw_query).get(source[len("$request.querystring."):])
            return ",".join(values) if values else None
        if source.startswith("$stageVariables."):
            return req.stage_variables.get(source[len("$stageVariables."):])
        if source.startswith("$context."):
            return {"httpMethod": req.method, "stage": req.stage, "requestId": req.request_id}.get(
                source[len("$context."):])
        return None

    async def _jwt(self, auth: dict[str, Any], token: str, scopes: list[str] | None) -> AuthDecision:
        unauthorized = _deny(401, UNAUTHORIZED, [("www-authenticate", 'Bearer error="invalid_token"')])
        token = token.strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        cfg = auth.get("JwtConfiguration") or {}
        issuer = cfg.get("Issuer") or ""
        audiences = list(cfg.get("Audience") or [])
        try:
            header = jwt.get_unverified_header(token)
            keys = await self._keys(issuer)
            kid = header.get("kid")
            key = next((k for k in keys.keys if kid is None or k.key_id == kid), None)
            if key is None:
                return unauthorized
            claims = jwt.decode(token, key.key, algorithms=[header.get("alg", "RS256")], issuer=issuer,
                                options={"verify_aud": False, "require": ["exp", "iss"]})
        except (jwt.PyJWTError, OSError, ValueError, KeyError):
            return unauthorized
        aud = claims.get("aud")
        token_auds = [aud] if isinstance(aud, str) else list(aud or [])
        if claims.get("client_id"):
            token_auds.append(claims["client_id"])
        if audiences and not set(audiences) & set(token_auds):
            return unauthorized
        token_scopes = str(claims.get("scope") or claims.get("scp") or "").split()
        if scopes and not set(scopes) & set(token_scopes):
            return _deny(403, FORBIDDEN_HTTP, [("www-authenticate", 'Bearer error="insufficient_scope"')])
        return AuthDecision(context={"jwt": {
            "claims": {k: v if isinstance(v, str) else json.dumps(v) if isinstance(v, (list, dict)) else str(v)
                       for k, v in claims.items()},
            "scopes": token_scopes or None}})

    async def _keys(self, issuer: str) -> jwt.PyJWKSet:
        hit = self._jwks.get(issuer)
        if hit is not None and hit[0] > self._clock():
            return hit[1]

        def fetch() -> jwt.PyJWKSet:
            base = issuer.rstrip("/")
            try:
                with urllib.request.urlopen(base + "/.well-known/openid-configuration", timeout=5) as r:
                    jwks_uri = str(json.loads(r.read())["jwks_uri"])
            except urllib.error.HTTPError:
                # Decision (AWS requires discovery): an issuer without it, such as a development server
                # that only publishes its keys, is read at the conventional `/.well-known/jwks.json`.
                jwks_uri = base + "/.well-known/jwks.json"
            with urllib.request.urlopen(jwks_uri, timeout=5) as r:
                return jwt.PyJWKSet.from_dict(json.loads(r.read()))

        keys = await asyncio.to_thread(fetch)
        self._jwks[issuer] = (self._clock() + JWKS_TTL_S, keys)
        return keys
