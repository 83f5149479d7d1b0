"""Code signing configurations: Create/Get/Update/Delete/ListCodeSigningConfigs,
ListFunctionsByCodeSigningConfig and Put/Get/DeleteFunctionCodeSigningConfig.

It owns the `code_signing` component tables (the configurations, and which function uses which),
AWS's answers for them (texts and body casing checked against LocalStack's AWS-validated snapshots,
shared/conformance/.../test_lambda_api.snapshot.json, `TestCodeSigningConfig`), and forgetting a
deleted function's association.

It never checks a signature: that needs AWS Signer's signing profiles and signed packages, which
Hearth does not have (a documented non-goal, docs/design.md "Code signing"). A configuration is stored
and reported exactly as AWS would; deployments are accepted whatever its policy says.

Decisions where AWS is unclear: an association belongs to the function (all its versions), as on AWS,
so a qualified name is answered for its function; deleting a configuration some function still uses
is refused with ResourceConflictException (AWS documents the refusal, not its text); Update changes
only the members it names and keeps LastModified when it names none.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.functions import errors
from hearth.functions.config import aws_timestamp
from hearth.functions.model import FunctionVersion
from hearth.functions.names import function_arn
from hearth.functions.service import FunctionService
from hearth.services.lambda_.errors import maps_domain_errors
from hearth.store.component import ComponentDb

COMPONENT = "code_signing"
MIGRATIONS = (
    """
    CREATE TABLE code_signing_configs (
        arn TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        csc_id TEXT NOT NULL,
        description TEXT NOT NULL,
        publishers TEXT NOT NULL,          -- JSON list of signing profile version ARNs
        untrusted_artifact TEXT NOT NULL,  -- Warn | Enforce
        tags TEXT NOT NULL,                -- JSON object
        last_modified TEXT NOT NULL,
        created_seq INTEGER NOT NULL       -- creation order, for stable listing
    );
    CREATE TABLE function_code_signing (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        function_name TEXT NOT NULL,
        csc_arn TEXT NOT NULL,
        PRIMARY KEY (account, region, function_name)
    );
    """,
)

PAGE_LIMIT = 50
_ID_ALPHABET = "0123456789abcdef"  # the model allows csc-[a-z0-9]{17}; AWS's ids are hex digits


def _csc_not_found(arn: str) -> AwsError:
    # AWS's body for this one carries `Message` and no `Type`.
    return AwsError("ResourceNotFoundException", f"The Lambda code signing configuration {arn} can not be found.",
                    404, fields={"Type": None}, message_key="Message")  # None: the renderer leaves it out


def _csc_missing_for_function(arn: str) -> AwsError:
    return AwsError("CodeSigningConfigNotFoundException",
                    "The code signing configuration cannot be found. Check that the provided configuration is "
                    f"not deleted: {arn}.", 404, fields={"Type": "User"}, message_key="Message")


def _in_use(arn: str, functions: list[str]) -> errors.Conflict:
    return errors.conflict(f"The code signing configuration {arn} cannot be deleted because it is used by "
                           f"{len(functions)} function(s): {', '.join(functions)}.")


class CodeSigningStore:
    """Durable configurations and associations (one ComponentDb)."""

    def __init__(self, data_dir: Path) -> None:
        self._db = ComponentDb(data_dir, COMPONENT, MIGRATIONS)

    def create(self, account: str, region: str, description: str, publishers: list[str], untrusted: str,
               tags: dict[str, str]) -> dict[str, Any]:
        csc_id = "csc-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))
        arn = f"arn:aws:lambda:{region}:{account}:code-signing-config:{csc_id}"
        with self._db.tx() as db:
            (seq,) = db.execute("SELECT COALESCE(MAX(created_seq), 0) + 1 FROM code_signing_configs").fetchone()
            db.execute(
                "INSERT INTO code_signing_configs (arn, account, region, csc_id, description, publishers, "
                "untrusted_artifact, tags, last_modified, created_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (arn, account, region, csc_id, description, json.dumps(publishers), untrusted, json.dumps(tags),
                 aws_timestamp(), seq))
        found = self.get(account, region, arn)
        assert found is not None
        return found

    def get(self, account: str, region: str, arn: str) -> dict[str, Any] | None:
        rows = self._db.query("SELECT * FROM code_signing_configs WHERE arn = ? AND account = ? AND region = ?",
                              (arn, account, region))
        return dict(rows[0]) if rows else None

    def update(self, arn: str, description: str, publishers: list[str], untrusted: str) -> None:
        with self._db.tx() as db:
            db.execute("UPDATE code_signing_configs SET description = ?, publishers = ?, untrusted_artifact = ?, "
                       "last_modified = ? WHERE arn = ?",
                       (description, json.dumps(publishers), untrusted, aws_timestamp(), arn))

    def delete(self, arn: str) -> list[str]:
        """Delete unless a function uses it; the names of the functions that do (nothing deleted then)."""
        with self._db.tx() as db:
            users = [str(r[0]) for r in db.execute(
                "SELECT function_name FROM function_code_signing WHERE csc_arn = ? ORDER BY function_name", (arn,))]
            if not users:
                db.execute("DELETE FROM code_signing_configs WHERE arn = ?", (arn,))
            return users

    def configs(self, account: str, region: str) -> list[dict[str, Any]]:
        rows = self._db.query("SELECT * FROM code_signing_configs WHERE account = ? AND region = ? "
                              "ORDER BY created_seq", (account, region))
        return [dict(r) for r in rows]

    def functions_using(self, arn: str) -> list[tuple[str, str, str]]:
        rows = self._db.query("SELECT account, region, function_name FROM function_code_signing WHERE csc_arn = ? "
                              "ORDER BY function_name", (arn,))
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def function_config(self, account: str, region: str, name: str) -> str | None:
        rows = self._db.query("SELECT csc_arn FROM function_code_signing WHERE account = ? AND region = ? "
                              "AND function_name = ?", (account, region, name))
        return str(rows[0][0]) if rows else None

    def attach(self, account: str, region: str, name: str, arn: str) -> bool:
        """Attach, unless the configuration was deleted meanwhile (checked in the same transaction)."""
        with self._db.tx() as db:
            if db.execute("SELECT 1 FROM code_signing_configs WHERE arn = ?", (arn,)).fetchone() is None:
                return False
            db.execute("INSERT INTO function_code_signing (account, region, function_name, csc_arn) "
                       "VALUES (?, ?, ?, ?) ON CONFLICT (account, region, function_name) "
                       "DO UPDATE SET csc_arn = excluded.csc_arn", (account, region, name, arn))
            return True

    def detach(self, account: str, region: str, name: str) -> None:
        with self._db.tx() as db:
            db.execute("DELETE FROM function_code_signing WHERE account = ? AND region = ? AND function_name = ?",
                       (account, region, name))

    def on_function_change(self, event: str, fv: FunctionVersion) -> None:
        """A FunctionService listener: a deleted function's association goes with it."""
        if event == "deleted" and fv.version == "$LATEST":
            self.detach(fv.account_id, fv.region, fv.name)

    def close(self) -> None:
        self._db.close()


def render(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "CodeSigningConfigId": row["csc_id"],
        "CodeSigningConfigArn": row["arn"],
        "Description": row["description"],
        "AllowedPublishers": {"SigningProfileVersionArns": json.loads(row["publishers"])},
        "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": row["untrusted_artifact"]},
        "LastModified": row["last_modified"],
    }


def _page(items: list[Any], params: dict[str, Any]) -> tuple[list[Any], str | None]:
    try:
        start = max(0, int(params.get("Marker") or 0))
    except ValueError:
        raise errors.invalid_parameter("Invalid pagination token.") from None
    limit = min(int(params.get("MaxItems") or PAGE_LIMIT), PAGE_LIMIT)
    end = start + limit
    return items[start:end], (str(end) if end < len(items) else None)


@maps_domain_errors
class CodeSigningProvider:
    """The nine code signing operations of the Lambda API."""

    def __init__(self, functions: FunctionService, store: CodeSigningStore) -> None:
        self._functions = functions
        self._store = store

    def _config(self, ctx: RequestContext, arn: str) -> dict[str, Any]:
        row = self._store.get(ctx.account_id, ctx.region, arn)
        if row is None:
            raise _csc_not_found(arn)
        return row

    def _function(self, ctx: RequestContext, params: dict[str, Any], action: str) -> tuple[str, str, str]:
        """(owner account, region, name) of an existing function; AWS's 404 texts otherwise."""
        ref = self._functions.parse_ref(ctx.account_id, ctx.region, params["FunctionName"], None, action=action)
        account, region = ref.account or ctx.account_id, ref.region or ctx.region
        self._functions.get(account, region, ref.name)  # "Function not found: <unqualified ARN>"
        return account, region, ref.name

    # -- configurations ----------------------------------------------------------------------------

    def create_code_signing_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        publishers = list(params["AllowedPublishers"].get("SigningProfileVersionArns") or [])
        policies = params.get("CodeSigningPolicies") or {}
        row = self._store.create(ctx.account_id, ctx.region, str(params.get("Description") or ""), publishers,
                                 str(policies.get("UntrustedArtifactOnDeployment") or "Warn"),
                                 dict(params.get("Tags") or {}))
        return {"CodeSigningConfig": render(row)}

    def get_code_signing_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"CodeSigningConfig": render(self._config(ctx, params["CodeSigningConfigArn"]))}

    def update_code_signing_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["CodeSigningConfigArn"]
        row = self._config(ctx, arn)
        changes = [k for k in ("Description", "AllowedPublishers", "CodeSigningPolicies") if params.get(k) is not None]
        if changes:
            description = str(params["Description"]) if "Description" in changes else row["description"]
            publishers = (list(params["AllowedPublishers"].get("SigningProfileVersionArns") or [])
                          if "AllowedPublishers" in changes else json.loads(row["publishers"]))
            untrusted = str((params.get("CodeSigningPolicies") or {}).get("UntrustedArtifactOnDeployment")
                            or row["untrusted_artifact"])
            self._store.update(arn, description, publishers, untrusted)
            row = self._config(ctx, arn)
        return {"CodeSigningConfig": render(row)}

    def delete_code_signing_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["CodeSigningConfigArn"]
        self._config(ctx, arn)
        users = self._store.delete(arn)
        if users:
            raise _in_use(arn, [function_arn(ctx.region, ctx.account_id, name) for name in users])
        return {}

    def list_code_signing_configs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        page, marker = _page(self._store.configs(ctx.account_id, ctx.region), params)
        out: dict[str, Any] = {"CodeSigningConfigs": [render(r) for r in page]}
        if marker is not None:
            out["NextMarker"] = marker
        return out

    def list_functions_by_code_signing_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["CodeSigningConfigArn"]
        self._config(ctx, arn)
        arns = [function_arn(region, account, name) for account, region, name in self._store.functions_using(arn)]
        page, marker = _page(arns, params)
        out: dict[str, Any] = {"FunctionArns": page}
        if marker is not None:
            out["NextMarker"] = marker
        return out

    # -- a function's configuration ------------------------------------------------------------------

    def put_function_code_signing_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["CodeSigningConfigArn"]
        # AWS names a missing configuration before a missing function (recorded: both missing).
        if self._store.get(ctx.account_id, ctx.region, arn) is None:
            raise _csc_missing_for_function(arn)
        account, region, name = self._function(ctx, params, "PutFunctionCodeSigningConfig")
        if not self._store.attach(account, region, name, arn):
            raise _csc_missing_for_function(arn)
        return {"CodeSigningConfigArn": arn, "FunctionName": name}

    def get_function_code_signing_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        account, region, name = self._function(ctx, params, "GetFunctionCodeSigningConfig")
        arn = self._store.function_config(account, region, name)
        # A function without one: AWS answers 200 with an empty body (Terraform asks on every refresh).
        return {} if arn is None else {"CodeSigningConfigArn": arn, "FunctionName": name}

    def delete_function_code_signing_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        account, region, name = self._function(ctx, params, "DeleteFunctionCodeSigningConfig")
        self._store.detach(account, region, name)  # nothing attached: 204 all the same (recorded)
        return {}
