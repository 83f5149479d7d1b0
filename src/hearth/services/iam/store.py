"""IAM's durable state: users, groups, roles, customer managed policies, instance profiles, server
certificates, access keys.

It owns the `iam` component database. Each entity is one row (account, kind, name) whose `data` is
the entity as a JSON object (its attributes, inline policies, attached policy ARNs, tags, group
memberships): IAM entities are small, read whole and written whole inside one transaction, so a
document per entity keeps every operation to one or two statements. Access keys have their own
table, because SigV4 verification looks them up by id on every request. It never decides IAM's
rules (the provider does) and never prints a secret.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearth.store.component import ComponentDb
from hearth.store.engine import Connection

USER, GROUP, ROLE, POLICY, INSTANCE_PROFILE = "user", "group", "role", "policy", "instance-profile"
SERVER_CERTIFICATE = "server-certificate"

MIGRATIONS = (
    """
    CREATE TABLE iam_entities (
        account TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (account, kind, name)
    );
    CREATE TABLE iam_access_keys (
        access_key_id TEXT PRIMARY KEY, account TEXT NOT NULL, user_name TEXT NOT NULL,
        secret TEXT NOT NULL, status TEXT NOT NULL, created REAL NOT NULL, last_used REAL
    );
    CREATE INDEX iam_access_keys_user ON iam_access_keys (account, user_name);
    """,
)

_ID_PREFIX = {USER: "AIDA", GROUP: "AGPA", ROLE: "AROA", POLICY: "ANPA", INSTANCE_PROFILE: "AIPA",
              SERVER_CERTIFICATE: "ASCA"}


def new_id(kind: str) -> str:
    """An IAM unique id: the kind's prefix and 17 upper-case base32 characters (AROA...)."""
    return _ID_PREFIX[kind] + base64.b32encode(secrets.token_bytes(15)).decode()[:17]


@dataclass(frozen=True)
class StoredKey:
    access_key_id: str
    account: str
    user_name: str
    secret: str
    status: str
    created: float
    last_used: float | None

    def __repr__(self) -> str:
        return f"StoredKey({self.access_key_id!r}, {self.account!r}, {self.user_name!r}, {self.status!r})"


class IamStore:
    def __init__(self, data_dir: Path) -> None:
        self._db = ComponentDb(data_dir, "iam", MIGRATIONS)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        with self._db.tx() as conn:
            yield conn

    # -- entities ---------------------------------------------------------------------------------

    def get(self, account: str, kind: str, name: str) -> dict[str, Any] | None:
        rows = self._db.query("SELECT data FROM iam_entities WHERE account = ? AND kind = ? AND name = ?",
                              (account, kind, name))
        return json.loads(rows[0]["data"]) if rows else None

    def entities(self, account: str, kind: str) -> list[dict[str, Any]]:
        rows = self._db.query("SELECT data FROM iam_entities WHERE account = ? AND kind = ? ORDER BY name",
                              (account, kind))
        return [json.loads(r["data"]) for r in rows]

    @staticmethod
    def read(conn: Connection, account: str, kind: str, name: str) -> dict[str, Any] | None:
        row = conn.execute("SELECT data FROM iam_entities WHERE account = ? AND kind = ? AND name = ?",
                           (account, kind, name)).fetchone()
        return json.loads(row[0]) if row else None

    @staticmethod
    def write(conn: Connection, account: str, kind: str, name: str, data: dict[str, Any]) -> None:
        conn.execute("INSERT INTO iam_entities (account, kind, name, data) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT (account, kind, name) DO UPDATE SET data = excluded.data",
                     (account, kind, name, json.dumps(data, separators=(",", ":"))))

    @staticmethod
    def insert(conn: Connection, account: str, kind: str, name: str, data: dict[str, Any]) -> bool:
        """False if the entity exists already (names are unique per account and kind)."""
        cur = conn.execute("INSERT INTO iam_entities (account, kind, name, data) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT (account, kind, name) DO NOTHING",
                           (account, kind, name, json.dumps(data, separators=(",", ":"))))
        return cur.rowcount == 1

    @staticmethod
    def remove(conn: Connection, account: str, kind: str, name: str) -> None:
        conn.execute("DELETE FROM iam_entities WHERE account = ? AND kind = ? AND name = ?", (account, kind, name))

    @staticmethod
    def all_of(conn: Connection, account: str, kind: str) -> list[dict[str, Any]]:
        rows = conn.execute("SELECT data FROM iam_entities WHERE account = ? AND kind = ? ORDER BY name",
                            (account, kind)).fetchall()
        return [json.loads(r[0]) for r in rows]

    # -- access keys ------------------------------------------------------------------------------

    @staticmethod
    def add_key(conn: Connection, account: str, user_name: str) -> StoredKey:
        key_id = "AKIA" + base64.b32encode(secrets.token_bytes(10)).decode()[:16]
        secret = base64.b64encode(secrets.token_bytes(30)).decode()[:40]
        key = StoredKey(key_id, account, user_name, secret, "Active", time.time(), None)
        conn.execute("INSERT INTO iam_access_keys (access_key_id, account, user_name, secret, status, created) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (key_id, account, user_name, secret, "Active", key.created))
        return key

    def keys_of(self, account: str, user_name: str) -> list[StoredKey]:
        rows = self._db.query("SELECT * FROM iam_access_keys WHERE account = ? AND user_name = ? "
                              "ORDER BY created", (account, user_name))
        return [_key(r) for r in rows]

    @staticmethod
    def count_keys(conn: Connection, account: str, user_name: str) -> int:
        row = conn.execute("SELECT COUNT(*) FROM iam_access_keys WHERE account = ? AND user_name = ?",
                           (account, user_name)).fetchone()
        return int(row[0])

    def key(self, access_key_id: str) -> StoredKey | None:
        rows = self._db.query("SELECT * FROM iam_access_keys WHERE access_key_id = ?", (access_key_id,))
        return _key(rows[0]) if rows else None

    @staticmethod
    def set_key_status(conn: Connection, access_key_id: str, status: str) -> None:
        conn.execute("UPDATE iam_access_keys SET status = ? WHERE access_key_id = ?", (status, access_key_id))

    @staticmethod
    def delete_key(conn: Connection, access_key_id: str) -> None:
        conn.execute("DELETE FROM iam_access_keys WHERE access_key_id = ?", (access_key_id,))


def _key(row: Any) -> StoredKey:
    return StoredKey(row["access_key_id"], row["account"], row["user_name"], row["secret"], row["status"],
                     float(row["created"]), row["last_used"])
