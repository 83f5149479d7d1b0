"""The parameter store of the SSM-compatible service: parameters, their versions, labels and tags.

It owns the schema and every SQL statement of the `ssm` component, and the few rules that are about
storage (versions are numbered from 1 per name and never reused while the parameter exists; a label
names at most one version of a parameter). It never validates names or values and never renders an
API answer (`provider.py` does both).

SecureString values are kept like every other secret of Hearth's, in the 0700 data directory: there is
no KMS here to encrypt them with (see docs/design.md, SSM).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hearth.store.component import ComponentDb
from hearth.store.engine import Connection, Row

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE ssm_parameters (
        account          TEXT NOT NULL,
        region           TEXT NOT NULL,
        name             TEXT NOT NULL,
        version          INTEGER NOT NULL,      -- the newest version
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE ssm_versions (
        account          TEXT NOT NULL,
        region           TEXT NOT NULL,
        name             TEXT NOT NULL,
        version          INTEGER NOT NULL,
        type             TEXT NOT NULL,
        value            TEXT NOT NULL,
        description      TEXT NOT NULL,
        allowed_pattern  TEXT NOT NULL,
        key_id           TEXT NOT NULL,
        tier             TEXT NOT NULL,
        data_type        TEXT NOT NULL,
        policies         TEXT NOT NULL,        -- JSON list of policy documents, as given
        labels           TEXT NOT NULL,        -- JSON list
        modified_at      REAL NOT NULL,
        modified_by      TEXT NOT NULL,
        PRIMARY KEY (account, region, name, version)
    );
    CREATE TABLE ssm_tags (
        account          TEXT NOT NULL,
        region           TEXT NOT NULL,
        name             TEXT NOT NULL,
        key              TEXT NOT NULL,
        value            TEXT NOT NULL,
        PRIMARY KEY (account, region, name, key)
    );
    """,
)


@dataclass(frozen=True)
class ParameterVersion:
    """One stored version of a parameter."""

    account: str
    region: str
    name: str
    version: int
    type: str
    value: str
    description: str
    allowed_pattern: str
    key_id: str
    tier: str
    data_type: str
    policies: list[str]
    labels: list[str]
    modified_at: float
    modified_by: str


@dataclass(frozen=True)
class NewVersion:
    """What a PutParameter stores (the fields not given keep the previous version's, see `put`)."""

    type: str
    value: str
    description: str | None
    allowed_pattern: str | None
    key_id: str | None
    tier: str
    data_type: str
    policies: list[str] | None
    modified_by: str


class VersionLimit(Exception):
    """The parameter has 100 versions and the oldest one carries a label (AWS refuses to drop it)."""


MAX_VERSIONS = 100


class ParameterStore:
    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.db = ComponentDb(data_dir, "ssm", MIGRATIONS)
        self._clock = clock

    def close(self) -> None:
        self.db.close()

    # -- reads ----------------------------------------------------------------------------------------

    def latest(self, account: str, region: str, name: str) -> ParameterVersion | None:
        rows = self.db.query(
            "SELECT v.* FROM ssm_parameters p JOIN ssm_versions v ON v.account = p.account AND v.region = p.region "
            "AND v.name = p.name AND v.version = p.version WHERE p.account = ? AND p.region = ? AND p.name = ?",
            (account, region, name))
        return _version(rows[0]) if rows else None

    def version(self, account: str, region: str, name: str, version: int) -> ParameterVersion | None:
        rows = self.db.query("SELECT * FROM ssm_versions WHERE account = ? AND region = ? AND name = ? AND version = ?",
                             (account, region, name, version))
        return _version(rows[0]) if rows else None

    def history(self, account: str, region: str, name: str) -> list[ParameterVersion]:
        rows = self.db.query("SELECT * FROM ssm_versions WHERE account = ? AND region = ? AND name = ? "
                             "ORDER BY version", (account, region, name))
        return [_version(r) for r in rows]

    def all_latest(self, account: str, region: str) -> list[ParameterVersion]:
        """Every parameter's newest version, by name (a region holds at most 10,000 standard parameters)."""
        rows = self.db.query(
            "SELECT v.* FROM ssm_parameters p JOIN ssm_versions v ON v.account = p.account AND v.region = p.region "
            "AND v.name = p.name AND v.version = p.version WHERE p.account = ? AND p.region = ? ORDER BY p.name",
            (account, region))
        return [_version(r) for r in rows]

    def tags(self, account: str, region: str, name: str) -> dict[str, str]:
        rows = self.db.query("SELECT key, value FROM ssm_tags WHERE account = ? AND region = ? AND name = ? "
                             "ORDER BY key", (account, region, name))
        return {r["key"]: r["value"] for r in rows}

    # -- writes ---------------------------------------------------------------------------------------

    def put(self, account: str, region: str, name: str, new: NewVersion, *, tags: dict[str, str] | None = None,
            overwrite: bool) -> int | None:
        """Store a new version; return its number, or None when the parameter exists and `overwrite` is off.

        Unset fields (None) keep the previous version's value, as AWS does for an overwrite."""
        with self.db.tx() as db:
            row = db.execute("SELECT version FROM ssm_parameters WHERE account = ? AND region = ? AND name = ?",
                             (account, region, name)).fetchone()
            previous: ParameterVersion | None = None
            if row is not None:
                if not overwrite:
                    return None
                prev_row = db.execute("SELECT * FROM ssm_versions WHERE account = ? AND region = ? AND name = ? "
                                      "AND version = ?", (account, region, name, row["version"])).fetchone()
                previous = _version(prev_row)
                self._make_room(db, account, region, name)
            number = 1 if previous is None else previous.version + 1

            def keep(given: str | None, old: str) -> str:
                return given if given is not None else old

            db.execute(
                "INSERT INTO ssm_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (account, region, name, number, new.type, new.value,
                 keep(new.description, previous.description if previous else ""),
                 keep(new.allowed_pattern, previous.allowed_pattern if previous else ""),
                 keep(new.key_id, previous.key_id if previous else ""),
                 new.tier, new.data_type,
                 json.dumps(new.policies if new.policies is not None else (previous.policies if previous else [])),
                 "[]", self._clock(), new.modified_by))
            db.execute("INSERT INTO ssm_parameters (account, region, name, version) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (account, region, name) DO UPDATE SET version = excluded.version",
                       (account, region, name, number))
            for key, value in (tags or {}).items():
                db.execute("INSERT INTO ssm_tags VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, region, name, key) "
                           "DO UPDATE SET value = excluded.value", (account, region, name, key, value))
        return number

    @staticmethod
    def _make_room(db: Connection, account: str, region: str, name: str) -> None:
        """At 100 versions the oldest is dropped, unless it carries a label (AWS's rule)."""
        rows = db.execute("SELECT version, labels FROM ssm_versions WHERE account = ? AND region = ? AND name = ? "
                          "ORDER BY version", (account, region, name)).fetchall()
        if len(rows) < MAX_VERSIONS:
            return
        oldest = rows[0]
        if json.loads(oldest["labels"]):
            raise VersionLimit(int(oldest["version"]))
        db.execute("DELETE FROM ssm_versions WHERE account = ? AND region = ? AND name = ? AND version = ?",
                   (account, region, name, oldest["version"]))

    def delete(self, account: str, region: str, names: Sequence[str]) -> list[str]:
        """Delete the named parameters with their versions and tags; return those that existed."""
        deleted: list[str] = []
        with self.db.tx() as db:
            for name in names:
                key = (account, region, name)
                cur = db.execute("DELETE FROM ssm_parameters WHERE account = ? AND region = ? AND name = ?", key)
                if cur.rowcount:
                    deleted.append(name)
                    db.execute("DELETE FROM ssm_versions WHERE account = ? AND region = ? AND name = ?", key)
                    db.execute("DELETE FROM ssm_tags WHERE account = ? AND region = ? AND name = ?", key)
        return deleted

    def label(self, account: str, region: str, name: str, version: int, labels: Sequence[str]) -> None:
        """Attach `labels` to `version`, moving each from whichever version of the parameter had it."""
        with self.db.tx() as db:
            rows = db.execute("SELECT version, labels FROM ssm_versions WHERE account = ? AND region = ? AND name = ?",
                              (account, region, name)).fetchall()
            for row in rows:
                current = json.loads(row["labels"])
                if row["version"] == version:
                    updated = current + [label for label in labels if label not in current]
                else:
                    updated = [label for label in current if label not in labels]
                if updated != current:
                    db.execute("UPDATE ssm_versions SET labels = ? WHERE account = ? AND region = ? AND name = ? "
                               "AND version = ?", (json.dumps(updated), account, region, name, row["version"]))

    def unlabel(self, account: str, region: str, name: str, version: int, labels: Sequence[str]) -> list[str]:
        """Remove `labels` from `version`; return the ones it did not carry."""
        with self.db.tx() as db:
            row = db.execute("SELECT labels FROM ssm_versions WHERE account = ? AND region = ? AND name = ? "
                             "AND version = ?", (account, region, name, version)).fetchone()
            current = json.loads(row["labels"]) if row else []
            db.execute("UPDATE ssm_versions SET labels = ? WHERE account = ? AND region = ? AND name = ? "
                       "AND version = ?", (json.dumps([x for x in current if x not in labels]),
                                           account, region, name, version))
        return [label for label in labels if label not in current]

    def add_tags(self, account: str, region: str, name: str, tags: dict[str, str]) -> None:
        with self.db.tx() as db:
            for key, value in tags.items():
                db.execute("INSERT INTO ssm_tags VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, region, name, key) "
                           "DO UPDATE SET value = excluded.value", (account, region, name, key, value))

    def remove_tags(self, account: str, region: str, name: str, keys: Sequence[str]) -> None:
        with self.db.tx() as db:
            db.executemany("DELETE FROM ssm_tags WHERE account = ? AND region = ? AND name = ? AND key = ?",
                           [(account, region, name, key) for key in keys])


def _version(r: Row) -> ParameterVersion:
    return ParameterVersion(
        account=r["account"], region=r["region"], name=r["name"], version=int(r["version"]), type=r["type"],
        value=r["value"], description=r["description"], allowed_pattern=r["allowed_pattern"], key_id=r["key_id"],
        tier=r["tier"], data_type=r["data_type"], policies=json.loads(r["policies"]), labels=json.loads(r["labels"]),
        modified_at=float(r["modified_at"]), modified_by=r["modified_by"])
