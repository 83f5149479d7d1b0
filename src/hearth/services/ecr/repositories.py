"""The repository store of the ECR-compatible service: repositories, their settings, policies and tags.

It owns the schema and every SQL statement of the `ecr` component. It never validates names or
policies and never renders an API answer (`provider.py` does both). There are no images: Hearth
has no container registry, so a repository is its record and settings only (docs/design.md, ECR).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hearth.store.component import ComponentDb
from hearth.store.engine import Row

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE ecr_repositories (
        account           TEXT NOT NULL,
        region            TEXT NOT NULL,
        name              TEXT NOT NULL,
        created_at        REAL NOT NULL,
        tag_mutability    TEXT NOT NULL,
        scan_on_push      INTEGER NOT NULL,
        encryption_type   TEXT NOT NULL,
        kms_key           TEXT NOT NULL,   -- empty: none
        lifecycle_policy  TEXT NOT NULL,   -- empty: none
        policy            TEXT NOT NULL,   -- empty: none
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE ecr_tags (
        account           TEXT NOT NULL,
        region            TEXT NOT NULL,
        name              TEXT NOT NULL,
        key               TEXT NOT NULL,
        value             TEXT NOT NULL,
        PRIMARY KEY (account, region, name, key)
    );
    """,
)

# The settings a repository has besides its name; `update` changes one of them.
SETTINGS = ("tag_mutability", "scan_on_push", "lifecycle_policy", "policy")


@dataclass(frozen=True)
class Repository:
    account: str
    region: str
    name: str
    created_at: float
    tag_mutability: str
    scan_on_push: bool
    encryption_type: str
    kms_key: str
    lifecycle_policy: str
    policy: str


class RepositoryStore:
    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.db = ComponentDb(data_dir, "ecr", MIGRATIONS)
        self._clock = clock

    def close(self) -> None:
        self.db.close()

    def get(self, account: str, region: str, name: str) -> Repository | None:
        rows = self.db.query("SELECT * FROM ecr_repositories WHERE account = ? AND region = ? AND name = ?",
                             (account, region, name))
        return _repository(rows[0]) if rows else None

    def all(self, account: str, region: str) -> list[Repository]:
        rows = self.db.query("SELECT * FROM ecr_repositories WHERE account = ? AND region = ? ORDER BY name",
                             (account, region))
        return [_repository(r) for r in rows]

    def create(self, account: str, region: str, name: str, *, tag_mutability: str, scan_on_push: bool,
               encryption_type: str, kms_key: str, tags: dict[str, str]) -> Repository | None:
        """The new repository, or None when one of that name exists."""
        with self.db.tx() as db:
            cur = db.execute(
                "INSERT INTO ecr_repositories VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', '') "
                "ON CONFLICT (account, region, name) DO NOTHING",
                (account, region, name, self._clock(), tag_mutability, int(scan_on_push), encryption_type, kms_key))
            if not cur.rowcount:
                return None
            db.executemany("INSERT INTO ecr_tags VALUES (?, ?, ?, ?, ?)",
                           [(account, region, name, k, v) for k, v in tags.items()])
        return self.get(account, region, name)

    def update(self, account: str, region: str, name: str, setting: str, value: str | int) -> bool:
        """Change one of SETTINGS; False when the repository does not exist."""
        if setting not in SETTINGS:
            raise ValueError(setting)
        with self.db.tx() as db:
            cur = db.execute(f"UPDATE ecr_repositories SET {setting} = ? WHERE account = ? AND region = ? AND name = ?",
                             (value, account, region, name))
            return bool(cur.rowcount)

    def delete(self, account: str, region: str, name: str) -> Repository | None:
        """Delete a repository with its tags; return what it was (None: there was none)."""
        found = self.get(account, region, name)
        if found is None:
            return None
        with self.db.tx() as db:
            key = (account, region, name)
            db.execute("DELETE FROM ecr_repositories WHERE account = ? AND region = ? AND name = ?", key)
            db.execute("DELETE FROM ecr_tags WHERE account = ? AND region = ? AND name = ?", key)
        return found

    def tags(self, account: str, region: str, name: str) -> dict[str, str]:
        rows = self.db.query("SELECT key, value FROM ecr_tags WHERE account = ? AND region = ? AND name = ? "
                             "ORDER BY key", (account, region, name))
        return {r["key"]: r["value"] for r in rows}

    def add_tags(self, account: str, region: str, name: str, tags: dict[str, str]) -> None:
        with self.db.tx() as db:
            for key, value in tags.items():
                db.execute("INSERT INTO ecr_tags VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, region, name, key) "
                           "DO UPDATE SET value = excluded.value", (account, region, name, key, value))

    def remove_tags(self, account: str, region: str, name: str, keys: Sequence[str]) -> None:
        with self.db.tx() as db:
            db.executemany("DELETE FROM ecr_tags WHERE account = ? AND region = ? AND name = ? AND key = ?",
                           [(account, region, name, key) for key in keys])


def _repository(r: Row) -> Repository:
    return Repository(
        account=r["account"], region=r["region"], name=r["name"], created_at=float(r["created_at"]),
        tag_mutability=r["tag_mutability"], scan_on_push=bool(r["scan_on_push"]),
        encryption_type=r["encryption_type"], kms_key=r["kms_key"], lifecycle_policy=r["lifecycle_policy"],
        policy=r["policy"])
