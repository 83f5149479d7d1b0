"""Lambda layers: immutable, numbered versions of a shared archive, and who may use them.

It owns the `layers` component tables (layer version counters, versions, their resource policies),
the layer archives' place in the blob store (the same content-addressed store as function code,
extracted world-readable so the sandbox user can read `/opt`), and the rules for referencing layers
from a function (at most 5, same region, one version per layer, cross-account only when granted).
It never renders AWS wire shapes and never mounts anything (the sandbox merges `layer_dirs` at /opt).

Version numbers are never reused: deleting version 3 and publishing again gives 4 (as AWS). A
function keeps the archive of every layer version it references even after that version is deleted
(the function's configuration records the archive hash), again as AWS does.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearth.functions import errors, policy
from hearth.functions.config import aws_timestamp
from hearth.functions.store import RevisionMismatch
from hearth.store.blobs import BlobStore, ZipRejected, inspect_zip
from hearth.store.component import ComponentDb

MAX_LAYERS = 5
MAX_PAGE = 50
ACTION = "lambda:GetLayerVersion"

_MIGRATIONS = (
    """
    CREATE TABLE layers (
        account_id    TEXT NOT NULL,
        region        TEXT NOT NULL,
        layer_name    TEXT NOT NULL,
        last_version  INTEGER NOT NULL,
        PRIMARY KEY (account_id, region, layer_name)
    );
    CREATE TABLE layer_versions (
        account_id       TEXT NOT NULL,
        region           TEXT NOT NULL,
        layer_name       TEXT NOT NULL,
        version          INTEGER NOT NULL,
        document         TEXT NOT NULL,
        statements       TEXT NOT NULL,
        policy_revision  TEXT,
        PRIMARY KEY (account_id, region, layer_name, version)
    );
    """,
)

_LAYER_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):layer:(?P<name>[a-zA-Z0-9-_]+)"
    r"(?::(?P<version>\d+))?"
)


def layer_arn(region: str, account: str, name: str, version: int | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account}:layer:{name}"
    return arn if version is None else f"{arn}:{version}"


@dataclass(frozen=True)
class LayerVersion:
    account_id: str
    region: str
    name: str
    version: int
    code_sha256: str
    code_size: int
    unzipped_size: int
    created_date: str
    description: str = ""
    license_info: str | None = None
    # None: the publisher named none (AWS then leaves the member out); () : it named an empty list.
    compatible_runtimes: tuple[str, ...] | None = None
    compatible_architectures: tuple[str, ...] | None = None
    statements: list[dict[str, Any]] = field(default_factory=list)
    policy_revision: str | None = None

    @property
    def layer_arn(self) -> str:
        return layer_arn(self.region, self.account_id, self.name)

    @property
    def arn(self) -> str:
        return layer_arn(self.region, self.account_id, self.name, self.version)

    def matches(self, runtime: str | None, architecture: str | None) -> bool:
        return (runtime is None or runtime in (self.compatible_runtimes or ())) and (
            architecture is None or architecture in (self.compatible_architectures or ())
        )


def _document(lv: LayerVersion) -> str:
    return json.dumps({
        "code_sha256": lv.code_sha256, "code_size": lv.code_size, "unzipped_size": lv.unzipped_size,
        "created_date": lv.created_date, "description": lv.description, "license_info": lv.license_info,
        "compatible_runtimes": _listed(lv.compatible_runtimes),
        "compatible_architectures": _listed(lv.compatible_architectures),
    })


def _listed(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


def _tupled(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


def _from_row(r: Any) -> LayerVersion:
    d = json.loads(r["document"])
    return LayerVersion(
        account_id=r["account_id"], region=r["region"], name=r["layer_name"], version=int(r["version"]),
        code_sha256=d["code_sha256"], code_size=int(d["code_size"]), unzipped_size=int(d["unzipped_size"]),
        created_date=d["created_date"], description=d.get("description") or "",
        license_info=d.get("license_info"), compatible_runtimes=_tupled(d.get("compatible_runtimes")),
        compatible_architectures=_tupled(d.get("compatible_architectures")),
        statements=json.loads(r["statements"]), policy_revision=r["policy_revision"],
    )


def parse_layer_name(text: str, account: str, region: str) -> tuple[str, str, str]:
    """(account, region, name) of a LayerName parameter (a name or a layer ARN)."""
    match = _LAYER_ARN.fullmatch(text)
    if match is None:
        return account, region, text
    return match["account"], match["region"], match["name"]


def parse_layer_version_arn(text: str) -> tuple[str, str, str, int] | None:
    match = _LAYER_ARN.fullmatch(text)
    if match is None or match["version"] is None:
        return None
    return match["account"], match["region"], match["name"], int(match["version"])


def check_version_number(version: int) -> None:
    if version < 1:
        raise errors.invalid_parameter("Layer Version Cannot be less than 1")


class LayerService:
    """Layer versions of every account, durable in the `layers` component of hearth.db."""

    def __init__(self, data_dir: Path, blobs: BlobStore) -> None:
        self._db = ComponentDb(data_dir, "layers", _MIGRATIONS)
        self._blobs = blobs

    def close(self) -> None:
        self._db.close()

    # -- versions ----------------------------------------------------------------------------------

    async def publish(
        self,
        account: str,
        region: str,
        name: str,
        zip_file: bytes,
        *,
        description: str = "",
        license_info: str | None = None,
        runtimes: Sequence[str] | None = None,
        architectures: Sequence[str] | None = None,
    ) -> LayerVersion:
        try:
            unzipped = inspect_zip(zip_file)
        except ZipRejected as exc:
            raise errors.invalid_parameter(str(exc)) from None
        sha = await asyncio.to_thread(self._blobs.put, zip_file)
        try:
            await asyncio.to_thread(self._blobs.extract, sha)
        except ZipRejected as exc:
            raise errors.invalid_parameter(str(exc)) from None
        key = (account, region, name)
        # No await from here on: the counter and the row are written in one transaction.
        with self._db.tx() as db:
            row = db.execute(
                "SELECT last_version FROM layers WHERE account_id = ? AND region = ? AND layer_name = ?", key
            ).fetchone()
            number = (int(row["last_version"]) if row else 0) + 1
            db.execute(
                "INSERT INTO layers (account_id, region, layer_name, last_version) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (account_id, region, layer_name) DO UPDATE SET last_version = excluded.last_version",
                (*key, number),
            )
            lv = LayerVersion(
                account_id=account, region=region, name=name, version=number, code_sha256=sha,
                code_size=len(zip_file), unzipped_size=unzipped, created_date=aws_timestamp(),
                description=description, license_info=license_info,
                compatible_runtimes=None if runtimes is None else tuple(runtimes),
                compatible_architectures=None if architectures is None else tuple(architectures),
            )
            db.execute(
                "INSERT INTO layer_versions (account_id, region, layer_name, version, document, statements, "
                "policy_revision) VALUES (?, ?, ?, ?, ?, '[]', NULL)",
                (*key, number, _document(lv)),
            )
        return lv

    def get(self, account: str, region: str, name: str, version: int) -> LayerVersion | None:
        rows = self._db.query(
            "SELECT * FROM layer_versions WHERE account_id = ? AND region = ? AND layer_name = ? AND version = ?",
            (account, region, name, version),
        )
        return _from_row(rows[0]) if rows else None

    def versions(self, account: str, region: str, name: str) -> list[LayerVersion]:
        """Newest first."""
        rows = self._db.query(
            "SELECT * FROM layer_versions WHERE account_id = ? AND region = ? AND layer_name = ? "
            "ORDER BY version DESC",
            (account, region, name),
        )
        return [_from_row(r) for r in rows]

    def total_code_size(self, account: str, region: str) -> int:
        """The zipped size of every layer version of one account in one region (AWS counts them in
        GetAccountSettings' TotalCodeSize)."""
        rows = self._db.query("SELECT * FROM layer_versions WHERE account_id = ? AND region = ?", (account, region))
        return sum(_from_row(r).code_size for r in rows)

    def list_versions(
        self, account: str, region: str, name: str, *, runtime: str | None, architecture: str | None,
        marker: str | None, max_items: int | None,
    ) -> tuple[list[LayerVersion], str | None]:
        found = [lv for lv in self.versions(account, region, name) if lv.matches(runtime, architecture)]
        if marker and marker.isdigit():
            found = [lv for lv in found if lv.version < int(marker)]
        limit = min(max_items or MAX_PAGE, MAX_PAGE)
        page = found[:limit]
        return page, (str(page[-1].version) if len(found) > limit else None)

    def list_layers(
        self, account: str, region: str, *, runtime: str | None, architecture: str | None,
        marker: str | None, max_items: int | None,
    ) -> tuple[list[LayerVersion], str | None]:
        """The newest matching version of each layer, ordered by layer name."""
        rows = self._db.query(
            "SELECT * FROM layer_versions WHERE account_id = ? AND region = ? AND layer_name > ? "
            "ORDER BY layer_name, version DESC",
            (account, region, marker or ""),
        )
        latest: dict[str, LayerVersion] = {}
        for r in rows:
            lv = _from_row(r)
            if lv.name not in latest and lv.matches(runtime, architecture):
                latest[lv.name] = lv
        found = list(latest.values())
        limit = min(max_items or MAX_PAGE, MAX_PAGE)
        page = found[:limit]
        return page, (page[-1].name if len(found) > limit else None)

    def delete(self, account: str, region: str, name: str, version: int) -> None:
        """Idempotent, as AWS (204 for a version that never existed)."""
        with self._db.tx() as db:
            db.execute(
                "DELETE FROM layer_versions WHERE account_id = ? AND region = ? AND layer_name = ? AND version = ?",
                (account, region, name, version),
            )

    # -- policies ----------------------------------------------------------------------------------

    def _existing(self, account: str, region: str, name: str, version: int) -> LayerVersion:
        lv = self.get(account, region, name, version)
        if lv is None:
            arn = layer_arn(region, account, name, version)
            raise errors.resource_not_found(f"Layer version {arn} does not exist.")
        return lv

    def _write_policy(self, lv: LayerVersion, statements: list[dict[str, Any]], expected: str | None) -> str:
        revision = str(uuid.uuid4()) if statements else None
        with self._db.tx() as db:
            # Compare-and-swap on the policy's revision; "no policy yet" is NULL, which `=` never matches
            # (and `IS ?` is SQLite's alone), so that case is spelled on its own.
            same = "policy_revision IS NULL" if expected is None else "policy_revision = ?"
            cur = db.execute(
                "UPDATE layer_versions SET statements = ?, policy_revision = ? WHERE account_id = ? AND region = ? "
                f"AND layer_name = ? AND version = ? AND {same}",
                (json.dumps(statements), revision, lv.account_id, lv.region, lv.name, lv.version,
                 *(() if expected is None else (expected,))),
            )
            if cur.rowcount != 1:
                raise RevisionMismatch(lv.name)
        return revision or ""

    def add_permission(
        self, account: str, region: str, name: str, version: int, *, sid: str, action: str, principal: str,
        organization_id: str | None, revision_id: str | None,
    ) -> tuple[dict[str, Any], str]:
        lv = self._existing(account, region, name, version)
        if revision_id is not None and revision_id != lv.policy_revision:
            raise errors.precondition_failed_for("GetLayerPolicy")
        if any(s.get("Sid") == sid for s in lv.statements):
            raise errors.statement_exists(sid)
        statement = policy.layer_statement(sid, action, principal, lv.arn, organization_id)
        try:
            revision = self._write_policy(lv, [*lv.statements, statement], lv.policy_revision)
        except RevisionMismatch:
            raise errors.precondition_failed_for("GetLayerPolicy") from None
        return statement, revision

    def remove_permission(
        self, account: str, region: str, name: str, version: int, *, sid: str, revision_id: str | None
    ) -> None:
        lv = self._existing(account, region, name, version)
        if revision_id is not None and revision_id != lv.policy_revision:
            raise errors.precondition_failed_for("GetLayerPolicy")
        if not lv.statements:
            raise errors.resource_not_found(errors.NO_POLICY)
        kept = [s for s in lv.statements if s.get("Sid") != sid]
        if len(kept) == len(lv.statements):
            raise errors.statement_not_found(sid)
        try:
            self._write_policy(lv, kept, lv.policy_revision)
        except RevisionMismatch:
            raise errors.precondition_failed_for("GetLayerPolicy") from None

    def get_policy(self, account: str, region: str, name: str, version: int) -> tuple[str, str]:
        lv = self._existing(account, region, name, version)
        if not lv.statements:
            raise errors.resource_not_found(errors.NO_POLICY)
        return policy.document(lv.statements), lv.policy_revision or ""

    # -- use by functions and other accounts -------------------------------------------------------

    @staticmethod
    def may_use(caller: str, lv: LayerVersion) -> bool:
        return caller == lv.account_id or policy.allows_account(lv.statements, caller, ACTION)

    def resolve_for_function(self, caller: str, region: str, arns: Sequence[str]) -> list[LayerVersion]:
        """The layer versions a function configuration names, checked as AWS checks them."""
        if len(arns) > MAX_LAYERS:
            raise errors.invalid_parameter("Cannot reference more than 5 layers.")
        seen: dict[tuple[str, str], str] = {}
        parsed: list[tuple[str, tuple[str, str, str, int]]] = []
        for arn in arns:
            parts = parse_layer_version_arn(arn)
            if parts is None:
                raise errors.invalid_parameter(f"Layer version {arn} does not exist.")
            parsed.append((arn, parts))
        for arn, (account, layer_region, name, _version) in parsed:
            if layer_region != region:
                raise errors.invalid_parameter(
                    f"Layers are not in the same region as the function. Layers are expected to be in region {region}."
                )
            first = seen.get((account, name))
            if first is not None:
                raise errors.invalid_parameter(
                    "Two different versions of the same layer are not allowed to be referenced in the same "
                    f"function. {first} and {arn} are versions of the same layer."
                )
            seen[(account, name)] = arn
        out: list[LayerVersion] = []
        for arn, (account, layer_region, name, version) in parsed:
            lv = self.get(account, layer_region, name, version)
            if lv is None:
                raise errors.invalid_parameter(f"Layer version {arn} does not exist.")
            if not self.may_use(caller, lv):
                raise errors.access_denied(caller, "GetLayerVersion", arn)
            out.append(lv)
        return out

    def ensure_extracted(self, shas: Sequence[str]) -> list[Path]:
        """Blocking: the extracted directory of each archive (re-extracting any that went missing)."""
        return [self._blobs.extract(sha) for sha in shas]
