"""EventBridge connections and API destinations: their operations (a part of `EventsProvider`).

It owns these operations' rules and texts as AWS answers them (recorded by LocalStack's AWS-validated
tests): a connection holds the authorization an API destination calls its endpoint with (BASIC, API_KEY
or OAUTH_CLIENT_CREDENTIALS). BASIC and API_KEY connections are AUTHORIZED at once; an OAuth connection
stays AUTHORIZING (Hearth fetches no token: it reaches no authorization server). Describe answers the
parameters without their secret values (password, API key value, client secret, secret invocation
parameters). An API destination is ACTIVE while its connection is AUTHORIZED, INACTIVE otherwise;
its rate limit defaults to 300 invocations per second.

AWS keeps a connection's secret values in a Secrets Manager secret it names
`events!connection/<name>/<uuid>` and answers that secret's ARN; Hearth answers an ARN of that form
but keeps the values with the connection (it serves no Secrets Manager). Events are not yet delivered
to API destinations (docs/design.md). It never delivers anything itself.
"""

from __future__ import annotations

import secrets
import string
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.events.resource_ops import decode_token, encode_token
from hearth.services.events.store import EventStore

DEFAULT_RATE_LIMIT = 300
_OAUTH_METHODS = ("GET", "POST", "PUT")
_SECRET_SUFFIX = string.ascii_letters + string.digits

# Per authorization type: its parameters' key in AuthParameters, and which of its members are secret
# (kept, never described), by the names AWS gives them in the connection's secret.
_AUTH_KEYS = {"BASIC": "BasicAuthParameters", "API_KEY": "ApiKeyAuthParameters",
              "OAUTH_CLIENT_CREDENTIALS": "OAuthParameters"}
_SECRET_MEMBERS = {"BasicAuthParameters": ("Password",), "ApiKeyAuthParameters": ("ApiKeyValue",)}


def _epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _described_http_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Invocation (or OAuth) HTTP parameters as described: values marked secret are left out."""
    out: dict[str, Any] = {}
    for kind, items in params.items():
        out[kind] = [{k: v for k, v in item.items() if not (k == "Value" and item.get("IsValueSecret"))}
                     for item in items] if isinstance(items, list) else items
    return out


def _described_auth(auth: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in auth.items():
        if not isinstance(value, dict):
            out[key] = value
        elif key == "OAuthParameters":
            oauth = {k: v for k, v in value.items() if k not in ("ClientParameters", "OAuthHttpParameters")}
            if "ClientParameters" in value:
                oauth["ClientParameters"] = {"ClientID": value["ClientParameters"].get("ClientID")}
            if "OAuthHttpParameters" in value:
                oauth["OAuthHttpParameters"] = _described_http_parameters(value["OAuthHttpParameters"])
            out[key] = oauth
        elif key == "InvocationHttpParameters":
            out[key] = _described_http_parameters(value)
        else:
            out[key] = {k: v for k, v in value.items() if k not in _SECRET_MEMBERS.get(key, ())}
    return out


def _check_oauth_method(auth: dict[str, Any]) -> None:
    """An OAuth connection's HttpMethod: GET, POST or PUT in any case (AWS accepted "put", recorded), so
    the framework's case-sensitive enum check is left to this (gateway's _JUDGED_BY_SERVICE)."""
    method = (auth.get("OAuthParameters") or {}).get("HttpMethod")
    if method is not None and str(method).upper() not in _OAUTH_METHODS:
        raise AwsError("ValidationException", f"1 validation error detected: Value '{method}' at "
                                              "'authParameters.oAuthParameters.httpMethod' failed to satisfy "
                                              "constraint: Member must satisfy enum value set: [GET, POST, PUT]")


def _merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """UpdateConnection's AuthParameters over the stored ones: members given replace, others stay."""
    out = dict(old)
    for key, value in new.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else value
    return out


class ConnectionOperations:
    """CreateConnection, DescribeConnection, ListConnections, UpdateConnection, DeleteConnection,
    DeauthorizeConnection, and the same for API destinations."""

    store: EventStore

    # -- connections --------------------------------------------------------------------------------

    def _connection(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        found = self.store.document("connection", ctx.account_id, ctx.region, name)
        if found is None:
            raise AwsError("ResourceNotFoundException",
                           f"Failed to describe the connection(s). Connection '{name}' does not exist.")
        return found

    @staticmethod
    def _check_auth(kind: str, auth: dict[str, Any]) -> None:
        key = _AUTH_KEYS[kind]
        others = [k for k in _AUTH_KEYS.values() if k != key and k in auth]
        if key not in auth or others:
            raise AwsError("ValidationException", f"The value for the {key} must be provided for the {kind} "
                                                  "authorization type, and only that one.")
        _check_oauth_method(auth)

    @staticmethod
    def _state_for(kind: str) -> str:
        # Hearth reaches no OAuth authorization server: such a connection stays AUTHORIZING, as AWS's
        # does until its endpoint answers (recorded with an unreachable endpoint).
        return "AUTHORIZING" if kind == "OAUTH_CLIENT_CREDENTIALS" else "AUTHORIZED"

    @staticmethod
    def _connection_times(connection: dict[str, Any], *, authorized: bool = True) -> dict[str, Any]:
        out = {"ConnectionArn": connection["ConnectionArn"], "ConnectionState": connection["ConnectionState"],
               "CreationTime": _epoch(connection["CreationTime"])}
        if authorized:
            out["LastAuthorizedTime"] = _epoch(connection["LastAuthorizedTime"])
        out["LastModifiedTime"] = _epoch(connection["LastModifiedTime"])
        return out

    def create_connection(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, kind, auth = params["Name"], params["AuthorizationType"], params["AuthParameters"]
        self._check_auth(kind, auth)
        now = time.time()
        connection: dict[str, Any] = {
            "Name": name, "AuthorizationType": kind, "AuthParameters": auth,
            "ConnectionArn": f"arn:aws:events:{ctx.region}:{ctx.account_id}:connection/{name}/{uuid.uuid4()}",
            "ConnectionState": self._state_for(kind),
            "SecretArn": f"arn:aws:secretsmanager:{ctx.region}:{ctx.account_id}:secret:events!connection/{name}/"
                         f"{uuid.uuid4()}-{''.join(secrets.choice(_SECRET_SUFFIX) for _ in range(6))}",
            "CreationTime": now, "LastModifiedTime": now, "LastAuthorizedTime": now,
        }
        for optional in ("Description", "InvocationConnectivityParameters", "KmsKeyIdentifier"):
            if params.get(optional) is not None:
                connection[optional] = params[optional]
        if not self.store.create_document("connection", ctx.account_id, ctx.region, name, connection):
            raise AwsError("ResourceAlreadyExistsException", f"Connection {name} already exists.")
        return self._connection_times(connection, authorized=False)

    def describe_connection(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        connection = self._connection(ctx, params["Name"])
        out = {k: v for k, v in connection.items() if k not in ("AuthParameters", "CreationTime",
                                                                "LastModifiedTime", "LastAuthorizedTime")}
        out["AuthParameters"] = _described_auth(connection["AuthParameters"])
        return {**out, **self._connection_times(connection)}

    def list_connections(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = [c for c in self.store.documents("connection", ctx.account_id, ctx.region)
                 if c["Name"].startswith(params.get("NamePrefix") or "")
                 and c["ConnectionState"] == params.get("ConnectionState", c["ConnectionState"])]
        start = decode_token(params.get("NextToken"))
        limit = int(params.get("Limit") or 100)
        out: dict[str, Any] = {"Connections": [
            {"AuthorizationType": c["AuthorizationType"], "Name": c["Name"], **self._connection_times(c)}
            for c in found[start:start + limit]]}
        if start + limit < len(found):
            out["NextToken"] = encode_token(start + limit)
        return out

    def update_connection(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        connection = self._connection(ctx, params["Name"])
        kind = params.get("AuthorizationType") or connection["AuthorizationType"]
        if kind != connection["AuthorizationType"]:  # another type: its parameters replace the old ones
            auth = params.get("AuthParameters") or {}
            self._check_auth(kind, auth)
        else:
            auth = _merged(connection["AuthParameters"], params.get("AuthParameters") or {})
            _check_oauth_method(auth)
        now = time.time()
        connection.update(AuthorizationType=kind, AuthParameters=auth, ConnectionState=self._state_for(kind),
                          LastModifiedTime=now, LastAuthorizedTime=now)
        for optional in ("Description", "InvocationConnectivityParameters", "KmsKeyIdentifier"):
            if params.get(optional) is not None:
                connection[optional] = params[optional]
        self.store.update_document("connection", ctx.account_id, ctx.region, connection["Name"], connection)
        return self._connection_times(connection)

    def deauthorize_connection(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        connection = self._connection(ctx, params["Name"])
        connection.update(ConnectionState="DEAUTHORIZED", LastModifiedTime=time.time())
        self.store.update_document("connection", ctx.account_id, ctx.region, connection["Name"], connection)
        return {**self._connection_times(connection), "ConnectionState": "DEAUTHORIZING"}

    def delete_connection(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        connection = self._connection(ctx, params["Name"])
        self.store.delete_document("connection", ctx.account_id, ctx.region, connection["Name"])
        return {**self._connection_times(connection), "ConnectionState": "DELETING"}

    # -- API destinations ---------------------------------------------------------------------------

    def _api_destination(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        found = self.store.document("api-destination", ctx.account_id, ctx.region, name)
        if found is None:
            raise AwsError("ResourceNotFoundException", f"Failed to describe the api-destination(s). An "
                                                        f"api-destination '{name}' does not exist.")
        return found

    def _destination_state(self, ctx: RequestContext, connection_arn: str) -> str:
        """ACTIVE while the connection `connection_arn` names is authorized; AWS's error when it is not
        one of the caller's."""
        name = connection_arn.split(":connection/", 1)[-1].split("/", 1)[0]
        connection = self.store.document("connection", ctx.account_id, ctx.region, name)
        if connection is None or connection["ConnectionArn"] != connection_arn:
            raise AwsError("ResourceNotFoundException", f"Connection '{name}' does not exist.")
        return "ACTIVE" if connection["ConnectionState"] == "AUTHORIZED" else "INACTIVE"

    @staticmethod
    def _destination_times(destination: dict[str, Any]) -> dict[str, Any]:
        return {"ApiDestinationArn": destination["ApiDestinationArn"],
                "ApiDestinationState": destination["ApiDestinationState"],
                "CreationTime": _epoch(destination["CreationTime"]),
                "LastModifiedTime": _epoch(destination["LastModifiedTime"])}

    def create_api_destination(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["Name"]
        now = time.time()
        destination: dict[str, Any] = {
            "Name": name, "ConnectionArn": params["ConnectionArn"],
            "ApiDestinationArn": f"arn:aws:events:{ctx.region}:{ctx.account_id}:api-destination/{name}/"
                                 f"{uuid.uuid4()}",
            "ApiDestinationState": self._destination_state(ctx, params["ConnectionArn"]),
            "InvocationEndpoint": params["InvocationEndpoint"], "HttpMethod": params["HttpMethod"],
            "InvocationRateLimitPerSecond": params.get("InvocationRateLimitPerSecond") or DEFAULT_RATE_LIMIT,
            "CreationTime": now, "LastModifiedTime": now,
        }
        if params.get("Description") is not None:
            destination["Description"] = params["Description"]
        if not self.store.create_document("api-destination", ctx.account_id, ctx.region, name, destination):
            raise AwsError("ResourceAlreadyExistsException", f"An api-destination '{name}' already exists.")
        return self._destination_times(destination)

    def describe_api_destination(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        destination = self._api_destination(ctx, params["Name"])
        return {**destination, **self._destination_times(destination)}

    def list_api_destinations(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = [d for d in self.store.documents("api-destination", ctx.account_id, ctx.region)
                 if d["Name"].startswith(params.get("NamePrefix") or "")
                 and d["ConnectionArn"] == params.get("ConnectionArn", d["ConnectionArn"])]
        start = decode_token(params.get("NextToken"))
        limit = int(params.get("Limit") or 100)
        out: dict[str, Any] = {"ApiDestinations": [
            {**{k: v for k, v in d.items() if k != "Description"}, **self._destination_times(d)}
            for d in found[start:start + limit]]}
        if start + limit < len(found):
            out["NextToken"] = encode_token(start + limit)
        return out

    def update_api_destination(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        destination = self._api_destination(ctx, params["Name"])
        for member in ("Description", "InvocationEndpoint", "HttpMethod", "InvocationRateLimitPerSecond",
                       "ConnectionArn"):
            if params.get(member) is not None:
                destination[member] = params[member]
        destination["ApiDestinationState"] = self._destination_state(ctx, destination["ConnectionArn"])
        destination["LastModifiedTime"] = time.time()
        self.store.update_document("api-destination", ctx.account_id, ctx.region, destination["Name"], destination)
        return self._destination_times(destination)

    def delete_api_destination(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        destination = self._api_destination(ctx, params["Name"])
        self.store.delete_document("api-destination", ctx.account_id, ctx.region, destination["Name"])
        return {}
