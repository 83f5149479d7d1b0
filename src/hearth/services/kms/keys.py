"""The KMS key registry: the AWS managed keys (`alias/aws/<service>`) that Hearth's services name when
they encrypt "with the AWS managed key", durable in the `kms` component database.

It owns a managed key's identity: one per account, region and service, created the first time a
service asks for it and the same ever after (its id, ARN and creation date). It holds no key material
and never encrypts or decrypts: Hearth stores data unencrypted at the application level, and these
keys exist so that what AWS reports about them (DescribeKey, ListAliases) can be asked and answered.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hearth.store.component import ComponentDb

MIGRATIONS = [
    """
    CREATE TABLE kms_managed_keys (
        account TEXT NOT NULL, region TEXT NOT NULL, service TEXT NOT NULL, key_id TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (account, region, service));
    CREATE UNIQUE INDEX kms_managed_keys_id ON kms_managed_keys (account, region, key_id);
    """,
]

# AWS's descriptions of its managed keys, by service (the AWS-recorded DescribeKey of alias/aws/dynamodb).
DESCRIPTIONS = {"dynamodb": "Default key that protects my DynamoDB data when no other key is defined"}


@dataclass(frozen=True)
class ManagedKey:
    account: str
    region: str
    service: str
    key_id: str
    created: float

    @property
    def arn(self) -> str:
        return f"arn:aws:kms:{self.region}:{self.account}:key/{self.key_id}"

    @property
    def alias(self) -> str:
        return f"alias/aws/{self.service}"

    @property
    def description(self) -> str:
        return DESCRIPTIONS.get(self.service, f"Default master key that protects my {self.service} data when no "
                                              "other key is defined")


class KeyRegistry:
    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.db = ComponentDb(data_dir, "kms", MIGRATIONS)
        self.clock = clock

    def close(self) -> None:
        self.db.close()

    def managed_key(self, account: str, region: str, service: str) -> ManagedKey:
        """The account's AWS managed key for `service`, created on first use."""
        found = self._one("service = ?", (account, region, service))
        if found is not None:
            return found
        with self.db.tx() as db:
            db.execute("INSERT INTO kms_managed_keys VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, region, service) "
                       "DO NOTHING", (account, region, service, str(uuid.uuid4()), self.clock()))
        created = self._one("service = ?", (account, region, service))
        assert created is not None  # just written (or by a concurrent caller)
        return created

    def managed_key_arn(self, account: str, region: str, service: str) -> str:
        return self.managed_key(account, region, service).arn

    def by_id(self, account: str, region: str, key_id: str) -> ManagedKey | None:
        return self._one("key_id = ?", (account, region, key_id))

    def by_service(self, account: str, region: str, service: str) -> ManagedKey | None:
        return self._one("service = ?", (account, region, service))

    def all(self, account: str, region: str) -> list[ManagedKey]:
        rows = self.db.query("SELECT * FROM kms_managed_keys WHERE account = ? AND region = ? ORDER BY key_id",
                             (account, region))
        return [ManagedKey(r["account"], r["region"], r["service"], r["key_id"], r["created"]) for r in rows]

    def _one(self, where: str, args: tuple[str, str, str]) -> ManagedKey | None:
        rows = self.db.query(f"SELECT * FROM kms_managed_keys WHERE account = ? AND region = ? AND {where}", args)
        if not rows:
            return None
        r = rows[0]
        return ManagedKey(r["account"], r["region"], r["service"], r["key_id"], r["created"])
