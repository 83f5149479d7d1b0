"""Durable event source mappings and stream checkpoints (ComponentDb component "esm").

It owns the `esm_mappings`, `esm_checkpoints` and `esm_tags` tables. A checkpoint is the per-shard counter of
the next record a stream mapping must deliver: written only after the records before it were
delivered (or sent to the on-failure destination), so a restart redelivers at most one batch per
shard. It never decides states or polls anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from hearth.esm.model import Mapping, MappingConfig, SourceKind
from hearth.store.component import ComponentDb
from hearth.store.engine import Row

COMPONENT = "esm"
MIGRATIONS = [
    """
    CREATE TABLE esm_mappings (
        uuid TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        source_arn TEXT NOT NULL,
        kind TEXT NOT NULL,
        function_arn TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        state TEXT NOT NULL,
        state_reason TEXT NOT NULL,
        config TEXT NOT NULL,
        extra TEXT NOT NULL,
        last_modified REAL NOT NULL,
        last_result TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX esm_mappings_owner ON esm_mappings (account, region, created);
    CREATE TABLE esm_checkpoints (
        uuid TEXT NOT NULL,
        shard INTEGER NOT NULL,
        next_counter INTEGER NOT NULL,
        PRIMARY KEY (uuid, shard)
    );
    """,
    # A mapping's tags (TagResource on its ARN, Tags at creation), apart from the row `put` rewrites.
    """
    CREATE TABLE esm_tags (
        uuid TEXT NOT NULL,
        tag_key TEXT NOT NULL,
        tag_value TEXT NOT NULL,
        PRIMARY KEY (uuid, tag_key)
    );
    """,
]


class MappingStore:
    def __init__(self, data_dir: Path) -> None:
        self._db = ComponentDb(data_dir, COMPONENT, MIGRATIONS)

    def close(self) -> None:
        self._db.close()

    def put(self, m: Mapping) -> None:
        with self._db.tx() as db:
            db.execute(
                "INSERT INTO esm_mappings (uuid, account, region, source_arn, kind, function_arn, enabled, state, "
                "state_reason, config, extra, last_modified, last_result, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (uuid) DO UPDATE SET "
                "function_arn = excluded.function_arn, enabled = excluded.enabled, state = excluded.state, "
                "state_reason = excluded.state_reason, config = excluded.config, extra = excluded.extra, "
                "last_modified = excluded.last_modified, last_result = excluded.last_result",
                (m.uuid, m.account, m.region, m.source_arn, m.kind, m.function_arn, int(m.enabled), m.state,
                 m.state_reason, json.dumps(m.config.to_json()), json.dumps(m.extra), m.last_modified,
                 m.last_result, m.last_modified))

    def set_result(self, uuid: str, result: str) -> None:
        with self._db.tx() as db:
            db.execute("UPDATE esm_mappings SET last_result = ? WHERE uuid = ?", (result, uuid))

    def get(self, uuid: str) -> Mapping | None:
        rows = self._db.query("SELECT * FROM esm_mappings WHERE uuid = ?", (uuid,))
        return _mapping(rows[0]) if rows else None

    def list(self, account: str | None = None, region: str | None = None) -> list[Mapping]:
        if account is None:
            rows = self._db.query("SELECT * FROM esm_mappings ORDER BY created, uuid")
        else:
            rows = self._db.query("SELECT * FROM esm_mappings WHERE account = ? AND region = ? ORDER BY created, uuid",
                                  (account, region))
        return [_mapping(r) for r in rows]

    def delete(self, uuid: str) -> None:
        with self._db.tx() as db:
            db.execute("DELETE FROM esm_mappings WHERE uuid = ?", (uuid,))
            db.execute("DELETE FROM esm_checkpoints WHERE uuid = ?", (uuid,))
            db.execute("DELETE FROM esm_tags WHERE uuid = ?", (uuid,))

    # -- tags ----------------------------------------------------------------------------------------

    def tags(self, uuid: str) -> dict[str, str]:
        rows = self._db.query("SELECT tag_key, tag_value FROM esm_tags WHERE uuid = ? ORDER BY tag_key", (uuid,))
        return {r["tag_key"]: r["tag_value"] for r in rows}

    def set_tags(self, uuid: str, tags: dict[str, str]) -> None:
        with self._db.tx() as db:
            for key, value in tags.items():
                db.execute("INSERT INTO esm_tags (uuid, tag_key, tag_value) VALUES (?, ?, ?) "
                           "ON CONFLICT (uuid, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
                           (uuid, key, value))

    def remove_tags(self, uuid: str, keys: Sequence[str]) -> None:
        with self._db.tx() as db:
            for key in keys:
                db.execute("DELETE FROM esm_tags WHERE uuid = ? AND tag_key = ?", (uuid, key))

    # -- stream checkpoints -------------------------------------------------------------------------

    def checkpoint(self, uuid: str, shard: int) -> int | None:
        rows = self._db.query("SELECT next_counter FROM esm_checkpoints WHERE uuid = ? AND shard = ?", (uuid, shard))
        return int(rows[0]["next_counter"]) if rows else None

    def save_checkpoint(self, uuid: str, shard: int, next_counter: int) -> None:
        with self._db.tx() as db:
            db.execute("INSERT INTO esm_checkpoints (uuid, shard, next_counter) VALUES (?, ?, ?) "
                       "ON CONFLICT (uuid, shard) DO UPDATE SET next_counter = excluded.next_counter",
                       (uuid, shard, next_counter))


def _mapping(row: Row) -> Mapping:
    kind: SourceKind = row["kind"] if row["kind"] in ("kinesis", "dynamodb") else "sqs"
    return Mapping(uuid=row["uuid"], account=row["account"], region=row["region"], source_arn=row["source_arn"],
                   kind=kind, function_arn=row["function_arn"], enabled=bool(row["enabled"]), state=row["state"],
                   config=MappingConfig.from_json(json.loads(row["config"])), last_modified=row["last_modified"],
                   last_result=row["last_result"], state_reason=row["state_reason"], extra=json.loads(row["extra"]))
