"""S3 metadata: buckets, object versions, multipart uploads and their parts, the notification outbox
(ComponentDb component "s3").

It owns every S3 row and the transactions that keep them consistent: a new object version replaces
the key's latest version and queues its notifications in the SAME transaction, so a committed object
is never without its events. It never touches object bodies (`files` does) and never decides what an
API caller may do. Keys sort in byte order (SQLite's BINARY collation of UTF-8 text; a PostgreSQL
engine needs `COLLATE "C"` on `key`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearth.aws.authz.authorizer import ResourcePolicy
from hearth.store.component import ComponentDb
from hearth.store.engine import Connection, Row

NULL_VERSION = "null"

MIGRATIONS = (
    """
    CREATE TABLE s3_buckets (
        name TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        region TEXT NOT NULL,
        created REAL NOT NULL,
        versioning TEXT NOT NULL,
        config TEXT NOT NULL
    );
    CREATE TABLE s3_objects (
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        version_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        is_latest INTEGER NOT NULL,
        delete_marker INTEGER NOT NULL,
        blobs TEXT NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        last_modified REAL NOT NULL,
        meta TEXT NOT NULL,
        inline BLOB,
        PRIMARY KEY (bucket, key, version_id)
    );
    CREATE INDEX s3_objects_latest ON s3_objects (bucket, is_latest, key);
    CREATE TABLE s3_uploads (
        upload_id TEXT PRIMARY KEY,
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        created REAL NOT NULL,
        meta TEXT NOT NULL
    );
    CREATE TABLE s3_parts (
        upload_id TEXT NOT NULL,
        part_number INTEGER NOT NULL,
        blob TEXT NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        last_modified REAL NOT NULL,
        checksums TEXT NOT NULL,
        PRIMARY KEY (upload_id, part_number)
    );
    CREATE TABLE s3_outbox (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        target TEXT NOT NULL,
        body TEXT NOT NULL,
        source_arn TEXT NOT NULL,
        created REAL NOT NULL,
        attempts INTEGER NOT NULL
    );
    CREATE TABLE s3_counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    """,
)


@dataclass
class Bucket:
    name: str
    account_id: str
    region: str
    created: float
    versioning: str  # "" (never enabled), "Enabled", "Suspended"
    config: dict[str, Any]


@dataclass
class ObjectRow:
    bucket: str
    key: str
    version_id: str
    is_latest: bool
    delete_marker: bool
    segments: list[tuple[str, int]]  # (blob id, size) in order; one for a simple PUT
    size: int
    etag: str
    last_modified: float
    meta: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    inline: bytes | None = None  # a small body kept in the row (no file, one fsync per PUT)


@dataclass
class Part:
    number: int
    blob: str
    size: int
    etag: str
    last_modified: float
    checksums: dict[str, str]


@dataclass(frozen=True)
class Outgoing:
    """A notification to deliver: to `target` (an ARN), `body` (the event JSON)."""

    target: str
    body: str
    source_arn: str


EventsOf = Callable[[ObjectRow], list[Outgoing]]


def _bucket(row: Row) -> Bucket:
    return Bucket(row["name"], row["account_id"], row["region"], row["created"], row["versioning"],
                  json.loads(row["config"]))


def _object(row: Row) -> ObjectRow:
    return ObjectRow(row["bucket"], row["key"], row["version_id"], bool(row["is_latest"]),
                     bool(row["delete_marker"]), [tuple(s) for s in json.loads(row["blobs"])],
                     row["size"], row["etag"], row["last_modified"], json.loads(row["meta"]), row["seq"],
                     bytes(row["inline"]) if row["inline"] is not None else None)


class S3Store:
    """`db` writes; reads go through a second connection so that they never wait behind a commit
    (WAL: readers see the last committed state while a writer fsyncs)."""

    def __init__(self, data_dir: Path) -> None:
        self.db = ComponentDb(data_dir, "s3", MIGRATIONS)
        self._reader = ComponentDb(data_dir, "s3", MIGRATIONS)

    def close(self) -> None:
        self._reader.close()
        self.db.close()

    @staticmethod
    def _next(db: Connection, name: str) -> int:
        db.execute("INSERT INTO s3_counters (name, value) VALUES (?, 1) "
                   "ON CONFLICT (name) DO UPDATE SET value = s3_counters.value + 1", (name,))
        row = db.execute("SELECT value FROM s3_counters WHERE name = ?", (name,)).fetchone()
        return int(row[0])

    # -- buckets ----------------------------------------------------------------------------------

    def bucket(self, name: str) -> Bucket | None:
        rows = self._reader.query("SELECT * FROM s3_buckets WHERE name = ?", (name,))
        return _bucket(rows[0]) if rows else None

    def resource_policy(self, arn: str) -> ResourcePolicy | None:
        """The owner and bucket policy of the bucket an `arn:aws:s3:::bucket[/key]` ARN names, for the
        gateway's authorizer."""
        name = arn.removeprefix("arn:aws:s3:::").split("/", 1)[0]
        bucket = self.bucket(name) if arn.startswith("arn:aws:s3:::") else None
        return None if bucket is None else ResourcePolicy(bucket.account_id, bucket.config.get("policy") or None)

    def create_bucket(self, name: str, account_id: str, region: str, now: float) -> Bucket | None:
        """None when created; the existing bucket when the name is taken."""
        with self.db.tx() as db:
            row = db.execute("SELECT * FROM s3_buckets WHERE name = ?", (name,)).fetchone()
            if row is not None:
                return _bucket(row)
            db.execute("INSERT INTO s3_buckets (name, account_id, region, created, versioning, config) "
                       "VALUES (?, ?, ?, ?, '', '{}')", (name, account_id, region, now))
        return None

    def all_buckets(self) -> list[Bucket]:
        return [_bucket(r) for r in self._reader.query("SELECT * FROM s3_buckets ORDER BY name")]

    def buckets(self, account_id: str) -> list[Bucket]:
        return [_bucket(r) for r in self._reader.query(
            "SELECT * FROM s3_buckets WHERE account_id = ? ORDER BY name", (account_id,))]

    def is_empty(self, name: str) -> bool:
        return not self._reader.query("SELECT 1 FROM s3_objects WHERE bucket = ? LIMIT 1", (name,))

    def delete_bucket(self, name: str) -> list[str]:
        """Deletes the bucket and its abandoned multipart uploads; returns the part bodies to remove."""
        with self.db.tx() as db:
            blobs = [r[0] for r in db.execute(
                "SELECT p.blob FROM s3_parts p JOIN s3_uploads u ON u.upload_id = p.upload_id WHERE u.bucket = ?",
                (name,))]
            db.execute("DELETE FROM s3_parts WHERE upload_id IN (SELECT upload_id FROM s3_uploads WHERE bucket = ?)",
                       (name,))
            db.execute("DELETE FROM s3_uploads WHERE bucket = ?", (name,))
            db.execute("DELETE FROM s3_buckets WHERE name = ?", (name,))
        return blobs

    def set_config(self, name: str, item: str, value: Any) -> None:
        with self.db.tx() as db:
            row = db.execute("SELECT config FROM s3_buckets WHERE name = ?", (name,)).fetchone()
            if row is None:
                return
            config = json.loads(row[0])
            if value is None:
                config.pop(item, None)
            else:
                config[item] = value
            db.execute("UPDATE s3_buckets SET config = ? WHERE name = ?", (json.dumps(config), name))

    def set_versioning(self, name: str, status: str) -> None:
        with self.db.tx() as db:
            db.execute("UPDATE s3_buckets SET versioning = ? WHERE name = ?", (status, name))

    # -- objects ----------------------------------------------------------------------------------

    def get(self, bucket: str, key: str, version_id: str | None = None) -> ObjectRow | None:
        if version_id is None:
            rows = self._reader.query("SELECT * FROM s3_objects WHERE bucket = ? AND key = ? AND is_latest = 1",
                                 (bucket, key))
        else:
            rows = self._reader.query("SELECT * FROM s3_objects WHERE bucket = ? AND key = ? AND version_id = ?",
                                 (bucket, key, version_id))
        return _object(rows[0]) if rows else None

    def put_many(self, batch: list[tuple[ObjectRow, str, EventsOf]]) -> list[list[str]]:
        """Several `put`s in ONE transaction (one fsync: group commit of concurrent small PUTs)."""
        with self.db.tx() as db:
            return [self._put(db, row, versioning, events, None) for row, versioning, events in batch]

    def put(self, row: ObjectRow, versioning: str, events: EventsOf, *,
            upload_id: str | None = None) -> list[str]:
        """Make `row` the key's latest version (replacing the `null` version unless versioning is
        Enabled), queue `events(row)` (built once the row has its sequence number and version) and
        end `upload_id`'s upload, in one transaction; returns bodies no row names any more."""
        with self.db.tx() as db:
            return self._put(db, row, versioning, events, upload_id)

    def _put(self, db: Connection, row: ObjectRow, versioning: str, events: EventsOf,
             upload_id: str | None) -> list[str]:
        freed: list[str] = []
        row.seq = self._next(db, "object")
        if versioning != "Enabled":
            row.version_id = NULL_VERSION
            old = db.execute("SELECT blobs FROM s3_objects WHERE bucket = ? AND key = ? AND version_id = ?",
                             (row.bucket, row.key, NULL_VERSION)).fetchone()
            if old is not None:
                freed = [b for b, _ in json.loads(old[0])]
                db.execute("DELETE FROM s3_objects WHERE bucket = ? AND key = ? AND version_id = ?",
                           (row.bucket, row.key, NULL_VERSION))
        elif not row.version_id:
            row.version_id = uuid.uuid4().hex
        db.execute("UPDATE s3_objects SET is_latest = 0 WHERE bucket = ? AND key = ? AND is_latest = 1",
                   (row.bucket, row.key))
        db.execute(
            "INSERT INTO s3_objects (bucket, key, version_id, seq, is_latest, delete_marker, blobs, size, etag, "
            "last_modified, meta, inline) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)",
            (row.bucket, row.key, row.version_id, row.seq, int(row.delete_marker), json.dumps(row.segments),
             row.size, row.etag, row.last_modified, json.dumps(row.meta), row.inline))
        if upload_id is not None:
            db.execute("DELETE FROM s3_parts WHERE upload_id = ?", (upload_id,))
            db.execute("DELETE FROM s3_uploads WHERE upload_id = ?", (upload_id,))
        self._queue(db, events(row))
        return freed

    def delete_version(self, bucket: str, key: str, version_id: str, events: EventsOf) -> list[str]:
        """Remove one version for good (queueing `events(row)`, the row with a fresh sequence number);
        the newest remaining version becomes the latest."""
        with self.db.tx() as db:
            found = db.execute("SELECT * FROM s3_objects WHERE bucket = ? AND key = ? AND version_id = ?",
                               (bucket, key, version_id)).fetchone()
            if found is None:
                return []
            old = _object(found)
            old.seq = self._next(db, "object")
            db.execute("DELETE FROM s3_objects WHERE bucket = ? AND key = ? AND version_id = ?",
                       (bucket, key, version_id))
            newest = db.execute("SELECT version_id FROM s3_objects WHERE bucket = ? AND key = ? "
                                "ORDER BY seq DESC LIMIT 1", (bucket, key)).fetchone()
            if newest is not None:
                db.execute("UPDATE s3_objects SET is_latest = 1 WHERE bucket = ? AND key = ? AND version_id = ?",
                           (bucket, key, newest[0]))
            self._queue(db, events(old))
        return [b for b, _ in old.segments]

    def list_latest(self, bucket: str, prefix: str, after: str, limit: int) -> list[ObjectRow]:
        """Current (non-deleted) objects with keys > `after` starting with `prefix`, in key order."""
        return [_object(r) for r in self._reader.query(
            "SELECT * FROM s3_objects WHERE bucket = ? AND is_latest = 1 AND delete_marker = 0 AND key > ? "
            "AND substr(key, 1, ?) = ? ORDER BY key LIMIT ?", (bucket, after, len(prefix), prefix, limit))]

    def list_versions(self, bucket: str, prefix: str, after_key: str, limit: int) -> list[ObjectRow]:
        return [_object(r) for r in self._reader.query(
            "SELECT * FROM s3_objects WHERE bucket = ? AND key > ? AND substr(key, 1, ?) = ? "
            "ORDER BY key, seq DESC LIMIT ?", (bucket, after_key, len(prefix), prefix, limit))]

    def referenced_blobs(self) -> set[str]:
        found: set[str] = set()
        for r in self._reader.query("SELECT blobs FROM s3_objects"):
            found.update(b for b, _ in json.loads(r[0]))
        found.update(r[0] for r in self._reader.query("SELECT blob FROM s3_parts"))
        return found

    # -- multipart --------------------------------------------------------------------------------

    def create_upload(self, bucket: str, key: str, now: float, meta: dict[str, Any]) -> str:
        upload_id = uuid.uuid4().hex
        with self.db.tx() as db:
            db.execute("INSERT INTO s3_uploads (upload_id, bucket, key, created, meta) VALUES (?, ?, ?, ?, ?)",
                       (upload_id, bucket, key, now, json.dumps(meta)))
        return upload_id

    def upload(self, upload_id: str) -> tuple[str, str, float, dict[str, Any]] | None:
        rows = self._reader.query("SELECT * FROM s3_uploads WHERE upload_id = ?", (upload_id,))
        if not rows:
            return None
        r = rows[0]
        return r["bucket"], r["key"], r["created"], json.loads(r["meta"])

    def uploads(self, bucket: str) -> list[tuple[str, str, float, dict[str, Any]]]:
        return [(r["upload_id"], r["key"], r["created"], json.loads(r["meta"])) for r in self._reader.query(
            "SELECT * FROM s3_uploads WHERE bucket = ? ORDER BY key, created", (bucket,))]

    def put_part(self, upload_id: str, part: Part) -> list[str] | None:
        """None when the upload is gone; otherwise the replaced part's body (to remove)."""
        with self.db.tx() as db:
            if db.execute("SELECT 1 FROM s3_uploads WHERE upload_id = ?", (upload_id,)).fetchone() is None:
                return None
            old = db.execute("SELECT blob FROM s3_parts WHERE upload_id = ? AND part_number = ?",
                             (upload_id, part.number)).fetchone()
            db.execute(
                "INSERT INTO s3_parts (upload_id, part_number, blob, size, etag, last_modified, checksums) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (upload_id, part_number) DO UPDATE SET "
                "blob = excluded.blob, size = excluded.size, etag = excluded.etag, "
                "last_modified = excluded.last_modified, checksums = excluded.checksums",
                (upload_id, part.number, part.blob, part.size, part.etag, part.last_modified,
                 json.dumps(part.checksums)))
        return [old[0]] if old is not None else []

    def parts(self, upload_id: str) -> list[Part]:
        return [Part(r["part_number"], r["blob"], r["size"], r["etag"], r["last_modified"], json.loads(r["checksums"]))
                for r in self._reader.query("SELECT * FROM s3_parts WHERE upload_id = ? ORDER BY part_number",
                                       (upload_id,))]

    def abort_upload(self, upload_id: str) -> list[str]:
        with self.db.tx() as db:
            blobs = [r[0] for r in db.execute("SELECT blob FROM s3_parts WHERE upload_id = ?", (upload_id,))]
            db.execute("DELETE FROM s3_parts WHERE upload_id = ?", (upload_id,))
            db.execute("DELETE FROM s3_uploads WHERE upload_id = ?", (upload_id,))
        return blobs

    # -- notification outbox ----------------------------------------------------------------------

    def _queue(self, db: Connection, events: list[Outgoing]) -> None:
        for event in events:
            db.execute("INSERT INTO s3_outbox (id, seq, target, body, source_arn, created, attempts) "
                       "VALUES (?, ?, ?, ?, ?, 0, 0)",
                       (uuid.uuid4().hex, self._next(db, "outbox"), event.target, event.body, event.source_arn))

    def queue(self, events: list[Outgoing]) -> None:
        with self.db.tx() as db:
            self._queue(db, events)

    def pending(self, limit: int) -> list[tuple[str, Outgoing, int]]:
        return [(r["id"], Outgoing(r["target"], r["body"], r["source_arn"]), r["attempts"]) for r in self._reader.query(
            "SELECT * FROM s3_outbox ORDER BY seq LIMIT ?", (limit,))]

    def delivered(self, event_id: str) -> None:
        with self.db.tx() as db:
            db.execute("DELETE FROM s3_outbox WHERE id = ?", (event_id,))

    def failed(self, event_id: str) -> None:
        with self.db.tx() as db:
            db.execute("UPDATE s3_outbox SET attempts = attempts + 1 WHERE id = ?", (event_id,))
