"""Function URL configurations: Create/Get/Update/Delete/ListFunctionUrlConfigs and their storage.

It owns the `function_urls` table (component "function_urls" in hearth.db), the url-id of each
configuration and the AWS rules and texts of the five operations (checked against recorded AWS
responses). It never serves URL requests (`hearth.urls` does, through `UrlConfigStore.lookup`) and never
decides who may invoke a function.

A configuration belongs to the unqualified function (`$LATEST`) or to one alias, never to a version;
AWS's model pattern refuses `$LATEST` and numbers as a Qualifier, and a qualifier derived from a
qualified ARN is held to the same rule here.

The url-id is derived from the account, region, function name and qualifier (a hash, 32 lowercase
alphanumerics): it is stable across restarts and across delete/re-create, so a URL a user wrote down
keeps working after a redeploy.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError, ValidationError
from hearth.functions import errors
from hearth.functions.model import FunctionVersion
from hearth.functions.names import function_arn
from hearth.services.lambda_.errors import maps_domain_errors
from hearth.store.component import ComponentDb

COMPONENT = "function_urls"
MIGRATIONS = [
    """
    CREATE TABLE function_urls (
        url_id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        function_name TEXT NOT NULL,
        qualifier TEXT NOT NULL,          -- '' for the unqualified function
        auth_type TEXT NOT NULL,
        cors TEXT,                        -- JSON of the Cors structure, NULL when none
        invoke_mode TEXT NOT NULL,
        creation_time TEXT NOT NULL,
        last_modified_time TEXT NOT NULL,
        UNIQUE (account, region, function_name, qualifier)
    );
    """,
]

PAGE_LIMIT = 50
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_QUALIFIER_RX = re.compile(r"(?!^\d+$)^[0-9a-zA-Z-_]+$")
_QUALIFIER_PATTERN = r"((?!^\d+$)^[0-9a-zA-Z-_]+$)"

FUNCTION_MISSING = "Function does not exist"
RESOURCE_MISSING = "The resource you requested does not exist."


@dataclass(frozen=True)
class UrlConfig:
    url_id: str
    account: str
    region: str
    function_name: str
    qualifier: str  # "" for the unqualified function
    auth_type: str  # NONE | AWS_IAM
    cors: dict[str, Any] | None
    invoke_mode: str  # BUFFERED | RESPONSE_STREAM
    creation_time: str
    last_modified_time: str

    @property
    def function_arn(self) -> str:
        return function_arn(self.region, self.account, self.function_name, self.qualifier or None)


class FunctionLookup(Protocol):
    def parse_ref(self, account: str, region: str, name_or_arn: str, qualifier: str | None, *,
                  action: str) -> Any: ...
    def get(self, account: str, region: str, name: str) -> Any: ...
    def resolve(self, account: str, region: str, name_or_arn: str, qualifier: str | None) -> FunctionVersion: ...


def url_id_for(account: str, region: str, name: str, qualifier: str) -> str:
    digest = hashlib.sha256(f"hearth-url\0{account}\0{region}\0{name}\0{qualifier}".encode()).digest()
    return "".join(_ALPHABET[b % 36] for b in digest[:32])


def url_for(url_id: str, region: str, endpoint_url: str) -> str:
    port = urlsplit(endpoint_url).port
    return f"http://{url_id}.lambda-url.{region}.localhost{f':{port}' if port else ''}/"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def not_found(message: str) -> AwsError:
    return AwsError("ResourceNotFoundException", message, 404, fields={"Type": "User"}, message_key="Message")


class UrlConfigStore:
    """Durable URL configurations, with every row also in memory (a URL request looks one up)."""

    def __init__(self, data_dir: Path, *, on_hosts: Callable[[tuple[str, ...]], None] | None = None) -> None:
        self._db = ComponentDb(data_dir, COMPONENT, MIGRATIONS)
        self._by_id: dict[str, UrlConfig] = {}
        for row in self._db.query("SELECT * FROM function_urls"):
            cfg = _from_row(row)
            self._by_id[cfg.url_id] = cfg
        # Told every URL host whenever they change: sandboxes resolve them (hearth.sandbox.namespace).
        self._on_hosts = on_hosts or (lambda hosts: None)
        self._on_hosts(self.hosts())

    def hosts(self) -> tuple[str, ...]:
        """Every URL's host name (`<url-id>.lambda-url.<region>.localhost`)."""
        return tuple(sorted(f"{c.url_id}.lambda-url.{c.region}.localhost" for c in self._by_id.values()))

    def lookup(self, url_id: str) -> UrlConfig | None:
        return self._by_id.get(url_id)

    def get(self, account: str, region: str, name: str, qualifier: str) -> UrlConfig | None:
        return self._by_id.get(url_id_for(account, region, name, qualifier))

    def list_for(self, account: str, region: str, name: str) -> list[UrlConfig]:
        found = [c for c in self._by_id.values()
                 if (c.account, c.region, c.function_name) == (account, region, name)]
        return sorted(found, key=lambda c: (c.qualifier, c.creation_time))

    def put(self, cfg: UrlConfig) -> None:
        with self._db.tx() as db:
            db.execute(
                "INSERT INTO function_urls (url_id, account, region, function_name, qualifier, auth_type, cors, "
                "invoke_mode, creation_time, last_modified_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (url_id) DO UPDATE SET auth_type = excluded.auth_type, cors = excluded.cors, "
                "invoke_mode = excluded.invoke_mode, last_modified_time = excluded.last_modified_time",
                (cfg.url_id, cfg.account, cfg.region, cfg.function_name, cfg.qualifier, cfg.auth_type,
                 json.dumps(cfg.cors) if cfg.cors is not None else None, cfg.invoke_mode, cfg.creation_time,
                 cfg.last_modified_time))
        new = cfg.url_id not in self._by_id
        self._by_id[cfg.url_id] = cfg
        if new:
            self._on_hosts(self.hosts())

    def delete(self, url_id: str) -> None:
        with self._db.tx() as db:
            db.execute("DELETE FROM function_urls WHERE url_id = ?", (url_id,))
        if self._by_id.pop(url_id, None) is not None:
            self._on_hosts(self.hosts())

    def delete_function(self, account: str, region: str, name: str) -> None:
        """The function is gone: so are its URLs (AWS deletes them with it)."""
        with self._db.tx() as db:
            db.execute("DELETE FROM function_urls WHERE account = ? AND region = ? AND function_name = ?",
                       (account, region, name))
        gone = self.list_for(account, region, name)
        for cfg in gone:
            self._by_id.pop(cfg.url_id, None)
        if gone:
            self._on_hosts(self.hosts())

    def on_function_change(self, event: str, fv: FunctionVersion) -> None:
        """A FunctionService listener."""
        if event == "deleted" and fv.version == "$LATEST":
            self.delete_function(fv.account_id, fv.region, fv.name)

    def close(self) -> None:
        self._db.close()


def _from_row(row: Any) -> UrlConfig:
    return UrlConfig(
        url_id=row["url_id"], account=row["account"], region=row["region"], function_name=row["function_name"],
        qualifier=row["qualifier"], auth_type=row["auth_type"],
        cors=json.loads(row["cors"]) if row["cors"] else None, invoke_mode=row["invoke_mode"],
        creation_time=row["creation_time"], last_modified_time=row["last_modified_time"],
    )


@maps_domain_errors
class FunctionUrlProvider:
    """The five FunctionUrlConfig operations (appended to the "lambda" providers)."""

    def __init__(self, store: UrlConfigStore, functions: FunctionLookup, endpoint_url: str) -> None:
        self._store = store
        self._functions = functions
        self._endpoint = endpoint_url

    # -- operations --------------------------------------------------------------------------------

    def create_function_url_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, qualifier = self._target(ctx, params, missing=FUNCTION_MISSING)
        existing = self._store.get(ctx.account_id, ctx.region, name, qualifier)
        if existing is not None:
            raise AwsError(
                "ResourceConflictException",
                f"Failed to create function url config for [functionArn = {existing.function_arn}]. "
                "Error message:  FunctionUrlConfig exists for this Lambda function",
                409, fields={"Type": "User"})
        now = _now()
        cfg = UrlConfig(
            url_id=url_id_for(ctx.account_id, ctx.region, name, qualifier), account=ctx.account_id,
            region=ctx.region, function_name=name, qualifier=qualifier, auth_type=params["AuthType"],
            cors=_cors(params.get("Cors")), invoke_mode=params.get("InvokeMode") or "BUFFERED",
            creation_time=now, last_modified_time=now,
        )
        self._store.put(cfg)
        out = self._describe(cfg, invoke_mode=bool(params.get("InvokeMode")))
        del out["LastModifiedTime"]  # CreateFunctionUrlConfig answers without it
        return out

    def get_function_url_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, qualifier = self._target(ctx, params, missing=RESOURCE_MISSING)
        cfg = self._existing(ctx, name, qualifier)
        return self._describe(cfg)

    def update_function_url_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, qualifier = self._target(ctx, params, missing=FUNCTION_MISSING)
        cfg = self._existing(ctx, name, qualifier)
        changes: dict[str, Any] = {"last_modified_time": _now()}
        if params.get("AuthType"):
            changes["auth_type"] = params["AuthType"]
        if "Cors" in params and params["Cors"] is not None:
            changes["cors"] = _cors(params["Cors"])
        if params.get("InvokeMode"):
            changes["invoke_mode"] = params["InvokeMode"]
        cfg = replace(cfg, **changes)
        self._store.put(cfg)
        # AWS echoes InvokeMode when it was given, and also when the config streams: an update that leaves
        # a RESPONSE_STREAM config's mode alone still shows it (recorded), a BUFFERED one's does not.
        return self._describe(cfg, invoke_mode=bool(params.get("InvokeMode")) or cfg.invoke_mode != "BUFFERED")

    def delete_function_url_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, qualifier = self._target(ctx, params, missing=RESOURCE_MISSING)
        cfg = self._existing(ctx, name, qualifier)
        self._store.delete(cfg.url_id)
        return {}

    def list_function_url_configs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ref = self._functions.parse_ref(ctx.account_id, ctx.region, params["FunctionName"], None,
                                        action="ListFunctionUrlConfigs")
        self._function_exists(ctx, ref.name, FUNCTION_MISSING)
        configs = self._store.list_for(ctx.account_id, ctx.region, ref.name)
        start = 0
        marker = params.get("Marker")
        if marker:
            start = next((i for i, c in enumerate(configs) if c.url_id == marker), len(configs))
        limit = min(params.get("MaxItems") or PAGE_LIMIT, PAGE_LIMIT)
        page = configs[start:start + limit]
        out: dict[str, Any] = {"FunctionUrlConfigs": [self._describe(c) for c in page]}
        if start + limit < len(configs):
            out["NextMarker"] = configs[start + limit].url_id
        return out

    # -- helpers -----------------------------------------------------------------------------------

    def _target(self, ctx: RequestContext, params: dict[str, Any], *, missing: str) -> tuple[str, str]:
        """(function name, qualifier or "") of an existing function and alias; AWS's errors otherwise."""
        ref = self._functions.parse_ref(ctx.account_id, ctx.region, params["FunctionName"],
                                        params.get("Qualifier"), action=ctx.operation)
        qualifier: str = ref.qualifier or ""
        if qualifier and not _QUALIFIER_RX.fullmatch(qualifier):
            raise ValidationError(f"1 validation error detected: Value '{qualifier}' at 'qualifier' failed to "
                                  f"satisfy constraint: Member must satisfy regular expression pattern: "
                                  f"{_QUALIFIER_PATTERN}")
        self._function_exists(ctx, ref.name, missing)
        if qualifier:
            try:
                self._functions.resolve(ctx.account_id, ctx.region, ref.name, qualifier)
            except errors.NotFound:
                raise not_found(missing) from None
        return ref.name, qualifier

    def _function_exists(self, ctx: RequestContext, name: str, missing: str) -> None:
        try:
            self._functions.get(ctx.account_id, ctx.region, name)
        except errors.NotFound:
            raise not_found(missing) from None

    def _existing(self, ctx: RequestContext, name: str, qualifier: str) -> UrlConfig:
        cfg = self._store.get(ctx.account_id, ctx.region, name, qualifier)
        if cfg is None:
            raise not_found(RESOURCE_MISSING)
        return cfg

    def _url(self, cfg: UrlConfig) -> str:
        return url_for(cfg.url_id, cfg.region, self._endpoint)

    def _describe(self, cfg: UrlConfig, *, invoke_mode: bool = True) -> dict[str, Any]:
        """A URL config as AWS answers it; create and update echo InvokeMode only when it was given."""
        out: dict[str, Any] = {
            "FunctionUrl": self._url(cfg), "FunctionArn": cfg.function_arn, "AuthType": cfg.auth_type,
            "CreationTime": cfg.creation_time, "LastModifiedTime": cfg.last_modified_time,
        }
        if cfg.cors is not None:
            out["Cors"] = cfg.cors
        if invoke_mode:
            out["InvokeMode"] = cfg.invoke_mode
        return out


def _cors(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """The Cors structure as AWS echoes it: the members given, in the model's order."""
    if value is None:
        return None
    order = ("AllowCredentials", "AllowHeaders", "AllowMethods", "AllowOrigins", "ExposeHeaders", "MaxAge")
    return {k: value[k] for k in order if value.get(k) is not None}
