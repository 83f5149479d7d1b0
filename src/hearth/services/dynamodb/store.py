"""Tables, items, secondary indexes and stream records of the DynamoDB-compatible service, durable in
the `dynamodb` component database.

It owns the storage layout and the one rule that makes streams trustworthy: an item write, its
index entries and its stream record are written in ONE transaction (`Writer.put`), so a crash
never leaves a write without its record, nor an index out of step with its table.

Layout. `ddb_items` holds the base table's items (idx = '') and every index's entries (idx = the
index name) as DynamoDB JSON, keyed by sortable text encodings of the key (`values.encode_key`):
`hk` the partition key, `sk` the sort key ('' without one), `pk` the base table's key for index
entries (so several items may share index keys). A Query is then an indexed range on
(idx, hk, sk); a Scan walks `seg` (a hash of the partition key in [0, 2^20), so that a parallel
Scan's segment is a range), then the key. `expires` (base rows only) is the item's TTL time when
the table has TTL enabled. Stream records are rows of `ddb_stream_records`, numbered per table.
Changes bound for a Kinesis streaming destination wait in `ddb_kinesis_outbox` (written in the
item's transaction) until `kinesis_destinations.KinesisForwarder` has appended them to the stream.
A write to a global table is made in each replica (same name, other region) in the same transaction.

It never parses requests or expressions and never decides whether a write may happen (the
provider evaluates conditions inside the transaction `tx()` hands out).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from hearth.services.dynamodb import values as v
from hearth.services.dynamodb.values import Item
from hearth.store.component import ComponentDb

SEGMENT_SPACE = 1 << 20
STREAM_RETENTION_S = 24 * 3600
TTL_HORIZON_S = 5 * 365 * 24 * 3600  # AWS ignores TTL values more than five years in the past

MIGRATIONS = [
    """
    CREATE TABLE ddb_tables (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, doc TEXT NOT NULL,
        next_seq INTEGER NOT NULL,
        PRIMARY KEY (account, region, name));
    CREATE TABLE ddb_items (
        account TEXT NOT NULL, region TEXT NOT NULL, tname TEXT NOT NULL, idx TEXT NOT NULL,
        hk TEXT NOT NULL, sk TEXT NOT NULL, pk TEXT NOT NULL, seg INTEGER NOT NULL,
        item TEXT NOT NULL, size INTEGER NOT NULL, expires REAL,
        PRIMARY KEY (account, region, tname, idx, hk, sk, pk));
    CREATE INDEX ddb_items_scan ON ddb_items (account, region, tname, idx, seg, hk, sk, pk);
    CREATE INDEX ddb_items_expires ON ddb_items (expires);
    CREATE TABLE ddb_streams (
        account TEXT NOT NULL, region TEXT NOT NULL, tname TEXT NOT NULL, label TEXT NOT NULL,
        view_type TEXT NOT NULL, enabled INTEGER NOT NULL, created REAL NOT NULL, key_schema TEXT NOT NULL,
        PRIMARY KEY (account, region, tname, label));
    CREATE TABLE ddb_stream_records (
        account TEXT NOT NULL, region TEXT NOT NULL, tname TEXT NOT NULL, label TEXT NOT NULL,
        seq INTEGER NOT NULL, created REAL NOT NULL, record TEXT NOT NULL,
        PRIMARY KEY (account, region, tname, label, seq));
    CREATE INDEX ddb_stream_records_created ON ddb_stream_records (created);
    CREATE TABLE ddb_tokens (
        account TEXT NOT NULL, region TEXT NOT NULL, token TEXT NOT NULL, digest TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (account, region, token));
    """,
    # Kinesis streaming destinations: each item change bound for a destination stream, written in the
    # item's transaction and removed once the forwarder has appended it to the Kinesis stream.
    """
    CREATE TABLE ddb_kinesis_outbox (
        account TEXT NOT NULL, region TEXT NOT NULL, tname TEXT NOT NULL, id INTEGER NOT NULL,
        stream_arn TEXT NOT NULL, partition_key TEXT NOT NULL, record TEXT NOT NULL, created REAL NOT NULL,
        PRIMARY KEY (account, region, tname, id));
    """,
]


@dataclass(frozen=True)
class Index:
    name: str
    kind: str  # "LSI" or "GSI"
    hash_key: str
    range_key: str | None
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    include: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    account: str
    region: str
    name: str
    doc: dict[str, Any]  # the TableDescription as stored (rendering adds counts and status)

    @property
    def arn(self) -> str:
        return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{self.name}"

    def _key(self, schema: list[dict[str, str]], kind: str) -> str | None:
        return next((k["AttributeName"] for k in schema if k["KeyType"] == kind), None)

    @property
    def hash_key(self) -> str:
        return self._key(self.doc["KeySchema"], "HASH") or ""

    @property
    def range_key(self) -> str | None:
        return self._key(self.doc["KeySchema"], "RANGE")

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(k["AttributeName"] for k in self.doc["KeySchema"])

    @property
    def types(self) -> dict[str, str]:
        return {a["AttributeName"]: a["AttributeType"] for a in self.doc["AttributeDefinitions"]}

    @property
    def indexes(self) -> list[Index]:
        out = []
        for kind, field in (("LSI", "LocalSecondaryIndexes"), ("GSI", "GlobalSecondaryIndexes")):
            for ix in self.doc.get(field) or []:
                projection = ix.get("Projection") or {}
                out.append(Index(ix["IndexName"], kind, self._key(ix["KeySchema"], "HASH") or "",
                                 self._key(ix["KeySchema"], "RANGE"), projection.get("ProjectionType", "ALL"),
                                 tuple(projection.get("NonKeyAttributes") or ())))
        return out

    def index(self, name: str) -> Index | None:
        return next((i for i in self.indexes if i.name == name), None)

    @property
    def stream_view(self) -> str | None:
        spec = self.doc.get("StreamSpecification") or {}
        return str(spec["StreamViewType"]) if spec.get("StreamEnabled") else None

    @property
    def stream_label(self) -> str | None:
        return self.doc.get("LatestStreamLabel")

    @property
    def kinesis_destinations(self) -> list[dict[str, str]]:
        """The Kinesis streaming destinations item changes go to now (ACTIVE ones)."""
        return [d for d in self.doc.get("_kinesis") or [] if d["DestinationStatus"] == "ACTIVE"]

    @property
    def replica_regions(self) -> list[str]:
        """The other regions of this table's global table (version 2019.11.21), where its writes go too."""
        return [r for r in self.doc.get("_replicas") or [] if r != self.region]

    @property
    def ttl_attribute(self) -> str | None:
        ttl = self.doc.get("_ttl") or {}
        return ttl.get("AttributeName") if ttl.get("Enabled") else None

    def key_of(self, item: Item) -> Item:
        return {k: item[k] for k in self.key_names if k in item}

    def index_key_names(self, index: Index) -> tuple[str, ...]:
        names = [index.hash_key] + ([index.range_key] if index.range_key else [])
        for k in self.key_names:
            if k not in names:
                names.append(k)
        return tuple(names)


def stream_arn(table_arn: str, label: str) -> str:
    return f"{table_arn}/stream/{label}"


def segment_of(hk: str) -> int:
    return int.from_bytes(hashlib.md5(hk.encode(), usedforsecurity=False).digest()[:4], "big") % SEGMENT_SPACE


def segment_bounds(segment: int, total: int) -> tuple[int, int]:
    """The [low, high) `seg` range of parallel Scan segment `segment` of `total`."""
    return (segment * SEGMENT_SPACE + total - 1) // total, ((segment + 1) * SEGMENT_SPACE + total - 1) // total


def project_for(table: Table, index: Index, item: Item) -> Item:
    if index.projection == "ALL":
        return dict(item)
    keep = set(table.index_key_names(index)) | (set(index.include) if index.projection == "INCLUDE" else set())
    return {k: val for k, val in item.items() if k in keep}


@dataclass(frozen=True)
class Row:
    item: Item
    hk: str
    sk: str
    pk: str
    seg: int
    size: int


class Writer:
    """Reads and writes inside one transaction."""

    def __init__(self, store: TableStore, conn: Any) -> None:
        self.store = store
        self.conn = conn
        self.touched: set[tuple[str, str, str]] = set()
        self.outbox = False  # whether this transaction queued changes for a Kinesis destination

    def get(self, table: Table, key: Item) -> Item | None:
        hk, sk = self.store.encode(table, key)
        row = self.conn.execute(
            "SELECT item FROM ddb_items WHERE account = ? AND region = ? AND tname = ? AND idx = '' AND hk = ? "
            "AND sk = ? AND pk = ''", (table.account, table.region, table.name, hk, sk)).fetchone()
        return v.load_item(row[0]) if row else None

    def put(self, table: Table, old: Item | None, new: Item | None, *, identity: dict[str, str] | None = None,
            replicate: bool = True) -> bool:
        """Write `new` in place of `old` (None: absent); index entries and the stream record follow, and
        so does the same write in each replica of a global table (with its own stream record).
        Returns False (and writes nothing) when the write changes nothing."""
        if old is None and new is None:
            return False
        if old is not None and new is not None and old.keys() == new.keys() and all(
                v.equal(old[k], new[k]) and v.kind_of(old[k]) == v.kind_of(new[k]) for k in old):
            return False
        base = table.key_of(new if new is not None else old)  # type: ignore[arg-type]
        hk, sk = self.store.encode(table, base)
        key = (table.account, table.region, table.name)
        if old is not None:
            for index in table.indexes:
                entry = self.store.index_entry(table, index, old)
                if entry is not None:
                    self.conn.execute("DELETE FROM ddb_items WHERE account = ? AND region = ? AND tname = ? AND "
                                      "idx = ? AND hk = ? AND sk = ? AND pk = ?",
                                      (*key, index.name, entry[0], entry[1], hk + "|" + sk))
        if new is None:
            self.conn.execute("DELETE FROM ddb_items WHERE account = ? AND region = ? AND tname = ? AND idx = '' "
                              "AND hk = ? AND sk = ? AND pk = ''", (*key, hk, sk))
        else:
            size = v.item_size(new)
            self.conn.execute(
                "INSERT INTO ddb_items VALUES (?, ?, ?, '', ?, ?, '', ?, ?, ?, ?) ON CONFLICT (account, region, "
                "tname, idx, hk, sk, pk) DO UPDATE SET item = excluded.item, size = excluded.size, "
                "expires = excluded.expires",
                (*key, hk, sk, segment_of(hk), v.dump_item(new), size, _expires(table, new)))
            for index in table.indexes:
                entry = self.store.index_entry(table, index, new)
                if entry is not None:
                    ihk, isk, projected = entry
                    self.conn.execute("INSERT INTO ddb_items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                                      (*key, index.name, ihk, isk, hk + "|" + sk, segment_of(ihk),
                                       v.dump_item(projected), v.item_size(projected)))
        if table.stream_view is not None and table.stream_label is not None:
            self._record(table, base, old, new, identity)
        if table.kinesis_destinations:
            self._kinesis_records(table, base, old, new, identity)
        self.touched.add(key)
        if replicate:
            for region in table.replica_regions:
                replica = self.store.get_table(table.account, region, table.name)
                if replica is not None:
                    self.put(replica, self.get(replica, base), new, identity=identity, replicate=False)
        return True

    def save_token(self, account: str, region: str, token: str, digest: str) -> None:
        self.conn.execute("INSERT INTO ddb_tokens VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, region, token) DO "
                          "UPDATE SET digest = excluded.digest, created = excluded.created",
                          (account, region, token, digest, self.store.clock()))

    def _record(self, table: Table, keys: Item, old: Item | None, new: Item | None,
                identity: dict[str, str] | None) -> None:
        key = (table.account, table.region, table.name)
        (seq,) = self.conn.execute("SELECT next_seq FROM ddb_tables WHERE account = ? AND region = ? AND name = ?",
                                   key).fetchone()
        self.conn.execute("UPDATE ddb_tables SET next_seq = next_seq + 1 WHERE account = ? AND region = ? AND "
                          "name = ?", key)
        view = table.stream_view or "KEYS_ONLY"
        now = self.store.clock()
        body: dict[str, Any] = {"ApproximateCreationDateTime": int(now), "Keys": v.to_wire(keys)}
        size = v.item_size(keys)
        if new is not None and view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
            body["NewImage"] = v.to_wire(new)
            size += v.item_size(new)
        if old is not None and view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
            body["OldImage"] = v.to_wire(old)
            size += v.item_size(old)
        body["SequenceNumber"] = sequence_number(seq)
        body["SizeBytes"] = size
        body["StreamViewType"] = view
        record: dict[str, Any] = {
            "eventID": uuid.uuid4().hex,
            "eventName": "INSERT" if old is None else "REMOVE" if new is None else "MODIFY",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": table.region,
            "dynamodb": body,
        }
        if identity is not None:
            record["userIdentity"] = identity
        self.conn.execute("INSERT INTO ddb_stream_records VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (*key, table.stream_label, seq, now, json.dumps(record, separators=(",", ":"))))


    def _kinesis_records(self, table: Table, keys: Item, old: Item | None, new: Item | None,
                         identity: dict[str, str] | None) -> None:
        """The change in the record format AWS writes to a Kinesis streaming destination: always both
        images, the table's name, no sequence number or view type, the time in the destination's precision."""
        key = (table.account, table.region, table.name)
        now = self.store.clock()
        (last,) = self.conn.execute("SELECT MAX(id) FROM ddb_kinesis_outbox WHERE account = ? AND region = ? AND "
                                    "tname = ?", key).fetchone()
        next_id = int(last or 0) + 1
        # One item's changes share a partition key, hence a shard: they stay in order as AWS keeps them.
        partition_key = hashlib.md5(json.dumps(v.to_wire(keys), sort_keys=True).encode(),
                                    usedforsecurity=False).hexdigest().upper()
        size = v.item_size(keys)
        body: dict[str, Any] = {"Keys": v.to_wire(keys)}
        if new is not None:
            body["NewImage"] = v.to_wire(new)
            size += v.item_size(new)
        if old is not None:
            body["OldImage"] = v.to_wire(old)
            size += v.item_size(old)
        body["SizeBytes"] = size
        for destination in table.kinesis_destinations:
            precision = destination.get("ApproximateCreationDateTimePrecision") or "MILLISECOND"
            stamp = int(now * 1_000_000) if precision == "MICROSECOND" else int(now * 1000)
            record = {
                "awsRegion": table.region, "eventID": str(uuid.uuid4()),
                "eventName": "INSERT" if old is None else "REMOVE" if new is None else "MODIFY",
                "userIdentity": identity, "recordFormat": "application/json", "tableName": table.name,
                "dynamodb": {"ApproximateCreationDateTime": stamp, **body,
                             "ApproximateCreationDateTimePrecision": precision},
                "eventSource": "aws:dynamodb",
            }
            self.conn.execute("INSERT INTO ddb_kinesis_outbox VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              (*key, next_id, destination["StreamArn"], partition_key,
                               json.dumps(record, separators=(",", ":")), now))
            next_id += 1
        self.outbox = True


def sequence_number(seq: int) -> str:
    return f"{seq:021d}"


def _expires(table: Table, item: Item) -> float | None:
    name = table.ttl_attribute
    if name is None or name not in item or "N" not in item[name]:
        return None
    try:
        return float(Decimal(item[name]["N"]))
    except (ValueError, ArithmeticError):
        return None


@dataclass(frozen=True)
class StreamInfo:
    account: str
    region: str
    table: str
    label: str
    view_type: str
    enabled: bool
    created: float
    key_schema: list[dict[str, str]]

    @property
    def arn(self) -> str:
        return stream_arn(f"arn:aws:dynamodb:{self.region}:{self.account}:table/{self.table}", self.label)

    @property
    def shard_id(self) -> str:
        return f"shardId-{int(self.created * 1000):020d}-{hashlib.md5(self.arn.encode()).hexdigest()[:8]}"


class TableStore:
    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.db = ComponentDb(data_dir, "dynamodb", MIGRATIONS)
        self.clock = clock
        self._events: dict[tuple[str, str, str], asyncio.Event] = {}
        # Table descriptions are read on every item request; this process is their only writer (every
        # change goes through create/update/delete_table below), so a cache is exact. A PostgreSQL
        # engine shared by several nodes must check a version column instead.
        self._tables: dict[tuple[str, str, str], Table | None] = {}
        # Set when a committed write queued changes for a Kinesis streaming destination (the forwarder waits).
        self.outbox_ready = asyncio.Event()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[Writer]:
        with self.db.tx() as conn:
            writer = Writer(self, conn)
            yield writer
        for key in writer.touched:
            self._notify(key)
        if writer.outbox:
            self.outbox_ready.set()

    # -- keys ---------------------------------------------------------------------------------------

    @staticmethod
    def encode(table: Table, key: Item) -> tuple[str, str]:
        hk = v.encode_key(key[table.hash_key])
        rk = table.range_key
        return hk, (v.encode_key(key[rk]) if rk else "")

    @staticmethod
    def index_entry(table: Table, index: Index, item: Item) -> tuple[str, str, Item] | None:
        """(hk, sk, projected item) of an item in an index, or None when the item lacks its keys (sparse)."""
        hv = item.get(index.hash_key)
        if hv is None:
            return None
        rv = item.get(index.range_key) if index.range_key else None
        if index.range_key and rv is None:
            return None
        types = table.types
        if v.kind_of(hv) != types.get(index.hash_key) or (rv is not None and v.kind_of(rv) != types.get(
                index.range_key or "")):
            return None
        return v.encode_key(hv), (v.encode_key(rv) if rv is not None else ""), project_for(table, index, item)

    # -- tables -------------------------------------------------------------------------------------

    def create_table(self, table: Table) -> bool:
        self._tables.pop((table.account, table.region, table.name), None)
        with self.db.tx() as db:
            cur = db.execute("INSERT INTO ddb_tables VALUES (?, ?, ?, ?, 1) ON CONFLICT (account, region, name) "
                             "DO NOTHING", (table.account, table.region, table.name, json.dumps(table.doc)))
            if cur.rowcount != 1:
                return False
            self._stream_row(db, table)
        return True

    def _stream_row(self, db: Any, table: Table) -> None:
        if table.stream_view is not None and table.stream_label is not None:
            db.execute("INSERT INTO ddb_streams VALUES (?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT (account, region, "
                       "tname, label) DO NOTHING",
                       (table.account, table.region, table.name, table.stream_label, table.stream_view,
                        self.clock(), json.dumps(table.doc["KeySchema"])))

    def get_table(self, account: str, region: str, name: str) -> Table | None:
        key = (account, region, name)
        if key in self._tables:
            return self._tables[key]
        rows = self.db.query("SELECT doc FROM ddb_tables WHERE account = ? AND region = ? AND name = ?",
                             (account, region, name))
        found = Table(account, region, name, json.loads(rows[0]["doc"])) if rows else None
        if found is not None:
            self._tables[key] = found
        return found

    def table_names(self, account: str, region: str) -> list[str]:
        rows = self.db.query("SELECT name FROM ddb_tables WHERE account = ? AND region = ? ORDER BY name",
                             (account, region))
        return [r["name"] for r in rows]

    def all_tables(self) -> list[Table]:
        rows = self.db.query("SELECT account, region, name, doc FROM ddb_tables ORDER BY account, region, name")
        return [Table(r["account"], r["region"], r["name"], json.loads(r["doc"])) for r in rows]

    def update_table(self, old: Table, new: Table) -> None:
        """Store a changed description; new indexes are backfilled, dropped ones emptied, in one transaction."""
        key = (old.account, old.region, old.name)
        self._tables.pop(key, None)
        with self.db.tx() as db:
            db.execute("UPDATE ddb_tables SET doc = ? WHERE account = ? AND region = ? AND name = ?",
                       (json.dumps(new.doc), *key))
            old_names = {i.name for i in old.indexes}
            new_names = {i.name for i in new.indexes}
            for name in old_names - new_names:
                db.execute("DELETE FROM ddb_items WHERE account = ? AND region = ? AND tname = ? AND idx = ?",
                           (*key, name))
            added = [i for i in new.indexes if i.name not in old_names]
            if old.stream_label != new.stream_label or old.stream_view != new.stream_view:
                db.execute("UPDATE ddb_streams SET enabled = 0 WHERE account = ? AND region = ? AND tname = ?", key)
                self._stream_row(db, new)
            if added or old.ttl_attribute != new.ttl_attribute:
                for row in db.execute("SELECT hk, sk, item FROM ddb_items WHERE account = ? AND region = ? AND "
                                      "tname = ? AND idx = ''", key).fetchall():
                    item = v.load_item(row[2])
                    db.execute("UPDATE ddb_items SET expires = ? WHERE account = ? AND region = ? AND tname = ? AND "
                               "idx = '' AND hk = ? AND sk = ? AND pk = ''",
                               (_expires(new, item), *key, row[0], row[1]))
                    for index in added:
                        entry = self.index_entry(new, index, item)
                        if entry is not None:
                            ihk, isk, projected = entry
                            db.execute("INSERT INTO ddb_items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                                       (*key, index.name, ihk, isk, row[0] + "|" + row[1], segment_of(ihk),
                                        v.dump_item(projected), v.item_size(projected)))

    def copy_items(self, source: Table, target: Table) -> None:
        """Fill a new replica with the source table's items (one transaction)."""
        with self.tx() as w:
            for row in w.conn.execute("SELECT item FROM ddb_items WHERE account = ? AND region = ? AND tname = ? "
                                      "AND idx = ''", (source.account, source.region, source.name)).fetchall():
                w.put(target, None, v.load_item(row[0]), replicate=False)

    def delete_table(self, table: Table) -> None:
        key = (table.account, table.region, table.name)
        self._tables.pop(key, None)
        with self.db.tx() as db:
            db.execute("DELETE FROM ddb_tables WHERE account = ? AND region = ? AND name = ?", key)
            db.execute("DELETE FROM ddb_items WHERE account = ? AND region = ? AND tname = ?", key)
            db.execute("UPDATE ddb_streams SET enabled = 0 WHERE account = ? AND region = ? AND tname = ?", key)
        self._notify(key)

    def counts(self, table: Table, index: str = "") -> tuple[int, int]:
        rows = self.db.query("SELECT COUNT(*) AS n, SUM(size) AS s FROM ddb_items WHERE account = ? AND region = ? "
                             "AND tname = ? AND idx = ?", (table.account, table.region, table.name, index))
        return int(rows[0]["n"] or 0), int(rows[0]["s"] or 0)

    # -- reads --------------------------------------------------------------------------------------

    def get_item(self, table: Table, key: Item) -> Item | None:
        hk, sk = self.encode(table, key)
        rows = self.db.query("SELECT item FROM ddb_items WHERE account = ? AND region = ? AND tname = ? AND "
                             "idx = '' AND hk = ? AND sk = ? AND pk = ''",
                             (table.account, table.region, table.name, hk, sk))
        return v.load_item(rows[0]["item"]) if rows else None

    def query(self, table: Table, index: str, hk: str, low: tuple[str, bool] | None, high: tuple[str, bool] | None,
              forward: bool, after: tuple[str, str] | None, limit: int) -> list[Row]:
        """Rows of one partition whose sort key is within the bounds, in key order, after a position."""
        sql = ["SELECT * FROM ddb_items WHERE account = ? AND region = ? AND tname = ? AND idx = ? AND hk = ?"]
        args: list[Any] = [table.account, table.region, table.name, index, hk]
        if low is not None:
            sql.append(f"AND sk {'>=' if low[1] else '>'} ?")
            args.append(low[0])
        if high is not None:
            sql.append(f"AND sk {'<=' if high[1] else '<'} ?")
            args.append(high[0])
        if after is not None:
            op = ">" if forward else "<"
            sql.append(f"AND (sk {op} ? OR (sk = ? AND pk {op} ?))")
            args += [after[0], after[0], after[1]]
        order = "ASC" if forward else "DESC"
        sql.append(f"ORDER BY sk {order}, pk {order} LIMIT ?")
        args.append(limit)
        return [_row(r) for r in self.db.query(" ".join(sql), args)]

    def scan(self, table: Table, index: str, seg_range: tuple[int, int], after: tuple[int, str, str, str] | None,
             limit: int) -> list[Row]:
        sql = ["SELECT * FROM ddb_items WHERE account = ? AND region = ? AND tname = ? AND idx = ? AND seg >= ? AND "
               "seg < ?"]
        args: list[Any] = [table.account, table.region, table.name, index, *seg_range]
        if after is not None:
            seg, hk, sk, pk = after
            sql.append("AND (seg > ? OR (seg = ? AND (hk > ? OR (hk = ? AND (sk > ? OR (sk = ? AND pk > ?))))))")
            args += [seg, seg, hk, hk, sk, sk, pk]
        sql.append("ORDER BY seg, hk, sk, pk LIMIT ?")
        args.append(limit)
        return [_row(r) for r in self.db.query(" ".join(sql), args)]

    def expired(self, now: float, limit: int) -> list[tuple[Table, Item]]:
        rows = self.db.query("SELECT account, region, tname, item FROM ddb_items WHERE expires IS NOT NULL AND "
                             "expires < ? AND expires > ? AND idx = '' LIMIT ?", (now, now - TTL_HORIZON_S, limit))
        out = []
        for r in rows:
            table = self.get_table(r["account"], r["region"], r["tname"])
            if table is not None:
                out.append((table, v.load_item(r["item"])))
        return out

    # -- Kinesis streaming destinations' outbox --------------------------------------------------------

    def outbox(self, limit: int) -> list[dict[str, Any]]:
        """The oldest changes waiting for their Kinesis stream, each table's in the order they were written."""
        rows = self.db.query("SELECT account, region, tname, id, stream_arn, partition_key, record FROM "
                             "ddb_kinesis_outbox ORDER BY account, region, tname, id LIMIT ?", (limit,))
        return [{k: r[k] for k in ("account", "region", "tname", "id", "stream_arn", "partition_key", "record")}
                for r in rows]

    def drop_outbox(self, rows: list[dict[str, Any]]) -> None:
        with self.db.tx() as db:
            db.executemany("DELETE FROM ddb_kinesis_outbox WHERE account = ? AND region = ? AND tname = ? AND id = ?",
                           [(r["account"], r["region"], r["tname"], r["id"]) for r in rows])

    # -- idempotency tokens (TransactWriteItems) ------------------------------------------------------

    def token(self, account: str, region: str, token: str, horizon: float) -> str | None:
        rows = self.db.query("SELECT digest FROM ddb_tokens WHERE account = ? AND region = ? AND token = ? AND "
                             "created >= ?", (account, region, token, horizon))
        return rows[0]["digest"] if rows else None

    # -- streams ------------------------------------------------------------------------------------

    def streams(self, account: str, region: str, table: str | None = None) -> list[StreamInfo]:
        sql = "SELECT * FROM ddb_streams WHERE account = ? AND region = ?"
        args: list[Any] = [account, region]
        if table is not None:
            sql += " AND tname = ?"
            args.append(table)
        rows = self.db.query(sql + " ORDER BY tname, created", args)
        return [_stream(r) for r in rows]

    def stream(self, account: str, region: str, table: str, label: str) -> StreamInfo | None:
        rows = self.db.query("SELECT * FROM ddb_streams WHERE account = ? AND region = ? AND tname = ? AND "
                             "label = ?", (account, region, table, label))
        return _stream(rows[0]) if rows else None

    def records(self, stream: StreamInfo, from_seq: int, limit: int) -> list[tuple[int, float, dict[str, Any]]]:
        """(seq, created, record) of unexpired records with seq >= from_seq, oldest first."""
        rows = self.db.query(
            "SELECT seq, created, record FROM ddb_stream_records WHERE account = ? AND region = ? AND tname = ? AND "
            "label = ? AND seq >= ? AND created >= ? ORDER BY seq LIMIT ?",
            (stream.account, stream.region, stream.table, stream.label, from_seq,
             self.clock() - STREAM_RETENTION_S, limit))
        return [(r["seq"], r["created"], json.loads(r["record"])) for r in rows]

    def next_seq(self, stream: StreamInfo) -> int:
        rows = self.db.query("SELECT MAX(seq) AS m FROM ddb_stream_records WHERE account = ? AND region = ? AND "
                             "tname = ? AND label = ?", (stream.account, stream.region, stream.table, stream.label))
        last = rows[0]["m"] if rows else None
        if last is not None:
            return int(last) + 1
        table = self.db.query("SELECT next_seq FROM ddb_tables WHERE account = ? AND region = ? AND name = ?",
                              (stream.account, stream.region, stream.table))
        return int(table[0]["next_seq"]) if table and stream.enabled else 1

    def first_seq_at(self, stream: StreamInfo, timestamp: float) -> int:
        rows = self.db.query("SELECT MIN(seq) AS m FROM ddb_stream_records WHERE account = ? AND region = ? AND "
                             "tname = ? AND label = ? AND created >= ?",
                             (stream.account, stream.region, stream.table, stream.label, timestamp))
        first = rows[0]["m"] if rows else None
        return int(first) if first is not None else self.next_seq(stream)

    def expire_records(self) -> int:
        with self.db.tx() as db:
            cur = db.execute("DELETE FROM ddb_stream_records WHERE created < ?", (self.clock() - STREAM_RETENTION_S,))
            db.execute("DELETE FROM ddb_streams WHERE enabled = 0 AND created < ?",
                       (self.clock() - STREAM_RETENTION_S,))
            db.execute("DELETE FROM ddb_tokens WHERE created < ?", (self.clock() - 600,))
            return int(cur.rowcount)

    async def wait_for_records(self, account: str, region: str, table: str, timeout: float) -> bool:
        event = self._events.setdefault((account, region, table), asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _notify(self, key: tuple[str, str, str]) -> None:
        event = self._events.pop(key, None)
        if event is not None:
            event.set()


def _row(r: Any) -> Row:
    return Row(v.load_item(r["item"]), r["hk"], r["sk"], r["pk"], r["seg"], r["size"])


def _stream(r: Any) -> StreamInfo:
    return StreamInfo(r["account"], r["region"], r["tname"], r["label"], r["view_type"], bool(r["enabled"]),
                      r["created"], json.loads(r["key_schema"]))
