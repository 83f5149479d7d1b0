"""Lambda's asynchronous-invocation settings: Put/Get/Update/Delete/ListFunctionEventInvokeConfigs and
Put/GetFunctionRecursionConfig.

It owns the `event_invoke_config` component tables (one config per function and qualifier; one
recursion setting per function), AWS's validation of them (texts checked against
shared/reference/aws-recorded/05_event_invoke_config.json), and the answers the async queue asks for
(`async_policy`, `recursion_allowed`). It never runs or queues events (hearth.invoke.async_queue does)
and never changes functions.

Decisions where AWS is unclear: an unqualified name means `$LATEST`; a config does not inherit from
another qualifier; Update changes only the members it names (OnSuccess / OnFailure one by one); the
destinations accepted are queues, topics, functions and event buses (`sqs`, `sns`, `lambda`,
`events`); only function destinations are checked for existence at Put time (as AWS does).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.functions import errors
from hearth.functions.names import LATEST, InvalidFunctionRef, function_arn, parse_function_ref
from hearth.functions.service import FunctionService
from hearth.invoke.async_queue import DEFAULT_MAX_EVENT_AGE_S, DEFAULT_MAX_RETRIES, AsyncPolicy
from hearth.services.lambda_.errors import maps_domain_errors
from hearth.store.component import ComponentDb

COMPONENT = "event_invoke_config"
MIGRATIONS = [
    """
    CREATE TABLE event_invoke_configs (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        function_name TEXT NOT NULL,
        qualifier TEXT NOT NULL,
        max_retries INTEGER,
        max_age INTEGER,
        on_success TEXT,
        on_failure TEXT,
        last_modified REAL NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (account, region, function_name, qualifier)
    );
    CREATE TABLE recursion_configs (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        function_name TEXT NOT NULL,
        recursive_loop TEXT NOT NULL CHECK (recursive_loop IN ('Allow', 'Terminate')),
        PRIMARY KEY (account, region, function_name)
    );
    """,
]

DESTINATION_SERVICES = frozenset({"sqs", "sns", "lambda", "events"})
MAX_LIST_ITEMS = 50


def _function_doesnt_exist() -> AwsError:
    return AwsError("ResourceNotFoundException", "The function doesn't exist.", 404,
                    fields={"Type": "User"}, message_key="Message")


def _no_config(arn: str) -> AwsError:
    return AwsError("ResourceNotFoundException", f"The function {arn} doesn't have an EventInvokeConfig", 404,
                    fields={"Type": "User"}, message_key="Message")


class EventInvokeConfigStore:
    """Durable configs; also the async queue's `PolicySource`."""

    def __init__(self, data_dir: Path) -> None:
        self._db = ComponentDb(data_dir, COMPONENT, MIGRATIONS)

    def get(self, account: str, region: str, name: str, qualifier: str) -> dict[str, Any] | None:
        rows = self._db.query(
            "SELECT * FROM event_invoke_configs WHERE account = ? AND region = ? AND function_name = ? "
            "AND qualifier = ?", (account, region, name, qualifier))
        return dict(rows[0]) if rows else None

    def put(self, account: str, region: str, name: str, qualifier: str, cfg: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        with self._db.tx() as db:
            db.execute(
                "INSERT INTO event_invoke_configs (account, region, function_name, qualifier, max_retries, max_age, "
                "on_success, on_failure, last_modified, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (account, region, function_name, qualifier) DO UPDATE SET "
                "max_retries = excluded.max_retries, max_age = excluded.max_age, on_success = excluded.on_success, "
                "on_failure = excluded.on_failure, last_modified = excluded.last_modified",
                (account, region, name, qualifier, cfg.get("max_retries"), cfg.get("max_age"),
                 cfg.get("on_success"), cfg.get("on_failure"), now, now),
            )
        row = self.get(account, region, name, qualifier)
        assert row is not None
        return row

    def delete(self, account: str, region: str, name: str, qualifier: str) -> bool:
        with self._db.tx() as db:
            cur = db.execute(
                "DELETE FROM event_invoke_configs WHERE account = ? AND region = ? AND function_name = ? "
                "AND qualifier = ?", (account, region, name, qualifier))
            return cur.rowcount > 0

    def list(self, account: str, region: str, name: str) -> list[dict[str, Any]]:
        rows = self._db.query(
            "SELECT * FROM event_invoke_configs WHERE account = ? AND region = ? AND function_name = ? "
            "ORDER BY created_at, qualifier", (account, region, name))
        return [dict(r) for r in rows]

    def forget_function(self, account: str, region: str, name: str) -> None:
        """The function was deleted: its configs go with it (a new function of that name starts clean)."""
        with self._db.tx() as db:
            for table in ("event_invoke_configs", "recursion_configs"):
                db.execute(f"DELETE FROM {table} WHERE account = ? AND region = ? AND function_name = ?",
                           (account, region, name))

    def recursive_loop(self, account: str, region: str, name: str) -> str:
        rows = self._db.query(
            "SELECT recursive_loop FROM recursion_configs WHERE account = ? AND region = ? AND function_name = ?",
            (account, region, name))
        return str(rows[0]["recursive_loop"]) if rows else "Terminate"

    def set_recursive_loop(self, account: str, region: str, name: str, value: str) -> None:
        with self._db.tx() as db:
            db.execute(
                "INSERT INTO recursion_configs (account, region, function_name, recursive_loop) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (account, region, function_name) DO UPDATE SET recursive_loop = excluded.recursive_loop",
                (account, region, name, value))

    # -- PolicySource ------------------------------------------------------------------------------

    def async_policy(self, account: str, region: str, name: str, qualifier: str | None) -> AsyncPolicy:
        row = self.get(account, region, name, qualifier or LATEST)
        if row is None:
            return AsyncPolicy()
        return AsyncPolicy(
            max_retries=DEFAULT_MAX_RETRIES if row["max_retries"] is None else int(row["max_retries"]),
            max_age_s=DEFAULT_MAX_EVENT_AGE_S if row["max_age"] is None else int(row["max_age"]),
            on_success=row["on_success"] or None,
            on_failure=row["on_failure"] or None,
        )

    def recursion_allowed(self, account: str, region: str, name: str) -> bool:
        return self.recursive_loop(account, region, name) == "Allow"

    def close(self) -> None:
        self._db.close()


def render(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "FunctionArn": function_arn(row["region"], row["account"], row["function_name"], row["qualifier"]),
        "LastModified": float(row["last_modified"]),
        "DestinationConfig": {
            "OnSuccess": {"Destination": row["on_success"]} if row["on_success"] else {},
            "OnFailure": {"Destination": row["on_failure"]} if row["on_failure"] else {},
        },
    }
    if row["max_retries"] is not None:
        out["MaximumRetryAttempts"] = int(row["max_retries"])
    if row["max_age"] is not None:
        out["MaximumEventAgeInSeconds"] = int(row["max_age"])
    return out


@maps_domain_errors
class EventInvokeConfigProvider:
    def __init__(self, functions: FunctionService, store: EventInvokeConfigStore) -> None:
        self._functions = functions
        self._store = store

    # -- helpers -----------------------------------------------------------------------------------

    def _target(self, ctx: RequestContext, params: dict[str, Any], action: str) -> tuple[str, str]:
        ref = self._functions.parse_ref(ctx.account_id, ctx.region, params["FunctionName"],
                                        params.get("Qualifier"), action=action)
        return ref.name, ref.qualifier or LATEST

    def _require_function(self, ctx: RequestContext, name: str, qualifier: str) -> None:
        try:
            self._functions.resolve(ctx.account_id, ctx.region, name, None if qualifier == LATEST else qualifier)
        except errors.NotFound:
            raise _function_doesnt_exist() from None

    def _check_destinations(self, ctx: RequestContext, name: str, config: dict[str, Any] | None) -> None:
        if not config:
            return
        success = _destination(config, "OnSuccess")
        failure = _destination(config, "OnFailure")
        for arn in (success, failure):
            if not arn:
                continue
            parts = arn.split(":", 5)
            if len(parts) < 6 or parts[2] not in DESTINATION_SERVICES:
                raise errors.invalid_parameter(
                    f"The provided destination config DestinationConfig(onSuccess={_describe(config, 'OnSuccess')}, "
                    f"onFailure={_describe(config, 'OnFailure')}) is invalid.")
            if parts[2] == "lambda":
                self._check_function_destination(ctx, name, arn)

    def _check_function_destination(self, ctx: RequestContext, name: str, arn: str) -> None:
        try:
            ref = parse_function_ref(arn)
        except InvalidFunctionRef:
            raise errors.invalid_parameter(f"The destination ARN {arn} is invalid.") from None
        same_place = (ref.account or ctx.account_id) == ctx.account_id and (ref.region or ctx.region) == ctx.region
        if same_place and ref.name == name:
            raise errors.invalid_parameter("You can't specify the function as a destination for itself.")
        try:
            self._functions.resolve(ref.account or ctx.account_id, ref.region or ctx.region, ref.name, ref.qualifier)
        except errors.FunctionsError:
            raise errors.invalid_parameter(f"The destination ARN {arn} is invalid.") from None

    @staticmethod
    def _require_some_setting(params: dict[str, Any]) -> None:
        if all(params.get(k) is None for k in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds",
                                                "DestinationConfig")):
            raise errors.invalid_parameter("You must specify at least one of error handling or destination setting.")

    # -- EventInvokeConfig ---------------------------------------------------------------------------

    def put_function_event_invoke_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, qualifier = self._target(ctx, params, "PutFunctionEventInvokeConfig")
        # A request with no setting is refused before the function is looked up (recorded).
        self._require_some_setting(params)
        self._require_function(ctx, name, qualifier)
        config = params.get("DestinationConfig")
        self._check_destinations(ctx, name, config)
        row = self._store.put(ctx.account_id, ctx.region, name, qualifier, {
            "max_retries": params.get("MaximumRetryAttempts"),
            "max_age": params.get("MaximumEventAgeInSeconds"),
            "on_success": _destination(config, "OnSuccess"),
            "on_failure": _destination(config, "OnFailure"),
        })
        return render(row)

    def update_function_event_invoke_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, qualifier = self._target(ctx, params, "UpdateFunctionEventInvokeConfig")
        self._require_function(ctx, name, qualifier)
        current = self._store.get(ctx.account_id, ctx.region, name, qualifier)
        if current is None:
            raise _no_config(function_arn(ctx.region, ctx.account_id, name, qualifier))
        self._require_some_setting(params)
        config = params.get("DestinationConfig")
        self._check_destinations(ctx, name, config)
        merged = {
            "max_retries": current["max_retries"],
            "max_age": current["max_age"],
            "on_success": current["on_success"],
            "on_failure": current["on_failure"],
        }
        if params.get("MaximumRetryAttempts") is not None:
            merged["max_retries"] = params["MaximumRetryAttempts"]
        if params.get("MaximumEventAgeInSeconds") is not None:
            merged["max_age"] = params["MaximumEventAgeInSeconds"]
        if config is not None:
            for key, column in (("OnSuccess", "on_success"), ("OnFailure", "on_failure")):
                if key in config:
                    merged[column] = _destination(config, key)
        return render(self._store.put(ctx.account_id, ctx.region, name, qualifier, merged))

    def get_function_event_invoke_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, qualifier = self._target(ctx, params, "GetFunctionEventInvokeConfig")
        row = self._store.get(ctx.account_id, ctx.region, name, qualifier)
        if row is None:
            raise _no_config(function_arn(ctx.region, ctx.account_id, name, qualifier))
        return render(row)

    def delete_function_event_invoke_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, qualifier = self._target(ctx, params, "DeleteFunctionEventInvokeConfig")
        if not self._store.delete(ctx.account_id, ctx.region, name, qualifier):
            raise _no_config(function_arn(ctx.region, ctx.account_id, name, qualifier))
        return {}

    def list_function_event_invoke_configs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ref = self._functions.parse_ref(ctx.account_id, ctx.region, params["FunctionName"], None,
                                        action="ListFunctionEventInvokeConfigs")
        try:
            self._functions.get(ctx.account_id, ctx.region, ref.name)
        except errors.NotFound:
            raise _function_doesnt_exist() from None
        rows = self._store.list(ctx.account_id, ctx.region, ref.name)
        try:
            start = max(0, int(params.get("Marker") or 0))
        except ValueError:
            raise errors.invalid_parameter("Invalid pagination token.") from None
        limit = min(int(params.get("MaxItems") or MAX_LIST_ITEMS), MAX_LIST_ITEMS)
        page = rows[start:start + limit]
        out: dict[str, Any] = {"FunctionEventInvokeConfigs": [render(r) for r in page]}
        if start + limit < len(rows):
            out["NextMarker"] = str(start + limit)
        return out

    # -- recursion config ----------------------------------------------------------------------------

    def _recursion_target(self, ctx: RequestContext, params: dict[str, Any], action: str) -> str:
        ref = self._functions.parse_ref(ctx.account_id, ctx.region, params["FunctionName"], None, action=action)
        self._functions.get(ctx.account_id, ctx.region, ref.name)  # 404 Function not found
        return ref.name

    def put_function_recursion_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._recursion_target(ctx, params, "PutFunctionRecursionConfig")
        value = str(params["RecursiveLoop"])
        self._store.set_recursive_loop(ctx.account_id, ctx.region, name, value)
        return {"RecursiveLoop": value}

    def get_function_recursion_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._recursion_target(ctx, params, "GetFunctionRecursionConfig")
        return {"RecursiveLoop": self._store.recursive_loop(ctx.account_id, ctx.region, name)}


def _destination(config: dict[str, Any] | None, key: str) -> str | None:
    if not config:
        return None
    value = (config.get(key) or {}).get("Destination")
    return str(value) if value else None


def _describe(config: dict[str, Any], key: str) -> str:
    """AWS echoes the config in its Java toString form: OnSuccess(destination=arn) or null."""
    if config.get(key) is None:
        return "null"
    value = (config.get(key) or {}).get("Destination")
    return f"{key}(destination={value if value else 'null'})"
