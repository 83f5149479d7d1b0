"""The networking resources of the EC2-compatible service: VPCs, subnets, security groups, tags.

It owns the schema and every SQL statement of the `ec2` component. A resource is stored as one row
(its kind, its VPC and its attributes as a JSON document: the attributes are read and written whole,
never queried inside SQL); tags have a table of their own. It never validates and never renders an
answer (`provider.py` does both), and never touches the host's network (`hearth.sandbox.network`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearth.store.component import ComponentDb

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE ec2_resources (
        account     TEXT NOT NULL,
        region      TEXT NOT NULL,
        id          TEXT NOT NULL,
        kind        TEXT NOT NULL,          -- vpc, subnet, security-group
        vpc_id      TEXT NOT NULL,          -- the VPC it belongs to (a VPC: itself)
        attrs       TEXT NOT NULL,          -- JSON object, the provider's
        created_at  REAL NOT NULL,
        PRIMARY KEY (account, region, id)
    );
    CREATE TABLE ec2_tags (
        account     TEXT NOT NULL,
        region      TEXT NOT NULL,
        id          TEXT NOT NULL,
        key         TEXT NOT NULL,
        value       TEXT NOT NULL,
        PRIMARY KEY (account, region, id, key)
    );
    """,
)


@dataclass
class Resource:
    id: str
    kind: str
    vpc_id: str
    attrs: dict[str, Any]
    tags: dict[str, str]


class Ec2Store:
    def __init__(self, data_dir: Path) -> None:
        self.db = ComponentDb(data_dir, "ec2", MIGRATIONS)

    def close(self) -> None:
        self.db.close()

    def get(self, account: str, region: str, rid: str) -> Resource | None:
        rows = self.db.query("SELECT * FROM ec2_resources WHERE account = ? AND region = ? AND id = ?",
                             (account, region, rid))
        if not rows:
            return None
        return self._resource(account, region, rows[0])

    def of_kind(self, account: str, region: str, kind: str, vpc_id: str | None = None) -> list[Resource]:
        sql = "SELECT * FROM ec2_resources WHERE account = ? AND region = ? AND kind = ?"
        args: list[Any] = [account, region, kind]
        if vpc_id is not None:
            sql += " AND vpc_id = ?"
            args.append(vpc_id)
        rows = self.db.query(sql + " ORDER BY created_at, id", args)
        tags = self._tags(account, region)
        return [Resource(r["id"], r["kind"], r["vpc_id"], json.loads(r["attrs"]), tags.get(r["id"], {}))
                for r in rows]

    def all_tags(self, account: str, region: str) -> list[tuple[str, str, str, str]]:
        """(resource id, kind, key, value) of every tag in the region."""
        rows = self.db.query(
            "SELECT t.id, r.kind, t.key, t.value FROM ec2_tags t JOIN ec2_resources r ON r.account = t.account "
            "AND r.region = t.region AND r.id = t.id WHERE t.account = ? AND t.region = ? ORDER BY t.id, t.key",
            (account, region))
        return [(r["id"], r["kind"], r["key"], r["value"]) for r in rows]

    def _tags(self, account: str, region: str, rid: str | None = None) -> dict[str, dict[str, str]]:
        sql = "SELECT id, key, value FROM ec2_tags WHERE account = ? AND region = ?"
        args: list[Any] = [account, region]
        if rid is not None:
            sql += " AND id = ?"
            args.append(rid)
        out: dict[str, dict[str, str]] = {}
        for r in self.db.query(sql + " ORDER BY key", args):
            out.setdefault(r["id"], {})[r["key"]] = r["value"]
        return out

    def _resource(self, account: str, region: str, row: Any) -> Resource:
        return Resource(row["id"], row["kind"], row["vpc_id"], json.loads(row["attrs"]),
                        self._tags(account, region, row["id"]).get(row["id"], {}))

    def put(self, account: str, region: str, res: Resource, created_at: float) -> None:
        """Create or replace a resource's attributes (tags, when given, are added)."""
        with self.db.tx() as db:
            db.execute(
                "INSERT INTO ec2_resources (account, region, id, kind, vpc_id, attrs, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, region, id) DO UPDATE SET attrs = excluded.attrs",
                (account, region, res.id, res.kind, res.vpc_id, json.dumps(res.attrs), created_at))
            for key, value in res.tags.items():
                db.execute("INSERT INTO ec2_tags (account, region, id, key, value) VALUES (?, ?, ?, ?, ?) "
                           "ON CONFLICT (account, region, id, key) DO UPDATE SET value = excluded.value",
                           (account, region, res.id, key, value))

    def delete(self, account: str, region: str, rid: str) -> None:
        with self.db.tx() as db:
            db.execute("DELETE FROM ec2_resources WHERE account = ? AND region = ? AND id = ?", (account, region, rid))
            db.execute("DELETE FROM ec2_tags WHERE account = ? AND region = ? AND id = ?", (account, region, rid))

    def set_tags(self, account: str, region: str, ids: Sequence[str], tags: dict[str, str]) -> None:
        with self.db.tx() as db:
            for rid in ids:
                for key, value in tags.items():
                    db.execute("INSERT INTO ec2_tags (account, region, id, key, value) VALUES (?, ?, ?, ?, ?) "
                               "ON CONFLICT (account, region, id, key) DO UPDATE SET value = excluded.value",
                               (account, region, rid, key, value))

    def delete_tags(self, account: str, region: str, ids: Sequence[str], tags: dict[str, str | None]) -> None:
        """Remove tags: a key with value None goes whatever its value; with a value, only if it matches."""
        with self.db.tx() as db:
            for rid in ids:
                for key, value in tags.items():
                    if value is None:
                        db.execute("DELETE FROM ec2_tags WHERE account = ? AND region = ? AND id = ? AND key = ?",
                                   (account, region, rid, key))
                    else:
                        db.execute("DELETE FROM ec2_tags WHERE account = ? AND region = ? AND id = ? AND key = ? "
                                   "AND value = ?", (account, region, rid, key, value))
