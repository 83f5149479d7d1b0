"""Kinesis-compatible data streams: streams, shards, records, retention, and the stream reader API.

It owns the `kinesis` component's tables in hearth.db, the partition-key hashing (MD5 of the key as a
128-bit integer, shard hash-key ranges split evenly, as Kinesis does), per-shard sequence numbers and
record expiry. It also offers what the stream event source mapping needs: `read()` records of a
shard from a position and `wait_for_records()` to sleep until a put. It never parses API requests and
never knows about functions.

Sequence numbers are 56-digit decimal strings, increasing per shard: "49", the shard's index (6
digits), the stream's creation time in ms (16 digits), and the shard's record counter (32 digits).
Only their order within one shard means anything, as with AWS.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearth.store.component import ComponentDb

HASH_SPACE = 2**128
DEFAULT_RETENTION_HOURS = 24
ON_DEMAND_SHARDS = 4

MIGRATIONS = [
    """
    CREATE TABLE ks_streams (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, mode TEXT NOT NULL,
        retention_hours INTEGER NOT NULL, shard_count INTEGER NOT NULL, created REAL NOT NULL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (account, region, name));
    CREATE TABLE ks_records (
        account TEXT NOT NULL, region TEXT NOT NULL, stream TEXT NOT NULL, shard INTEGER NOT NULL,
        counter INTEGER NOT NULL, partition_key TEXT NOT NULL, data BLOB NOT NULL, arrival REAL NOT NULL,
        PRIMARY KEY (account, region, stream, shard, counter));
    CREATE INDEX ks_records_arrival ON ks_records (arrival);
    CREATE TABLE ks_counters (
        account TEXT NOT NULL, region TEXT NOT NULL, stream TEXT NOT NULL, shard INTEGER NOT NULL,
        next INTEGER NOT NULL,
        PRIMARY KEY (account, region, stream, shard));
    CREATE TABLE ks_tags (
        account TEXT NOT NULL, region TEXT NOT NULL, stream TEXT NOT NULL, key TEXT NOT NULL, value TEXT,
        PRIMARY KEY (account, region, stream, key));
    """,
    """
    CREATE TABLE ks_policies (
        account TEXT NOT NULL, region TEXT NOT NULL, stream TEXT NOT NULL, policy TEXT NOT NULL,
        PRIMARY KEY (account, region, stream));
    CREATE TABLE ks_consumers (
        account TEXT NOT NULL, region TEXT NOT NULL, stream TEXT NOT NULL, name TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (account, region, stream, name));
    """,
]


def shard_id(index: int) -> str:
    return f"shardId-{index:012d}"


def shard_index(text: str) -> int | None:
    if not text.startswith("shardId-") or not text[8:].isdigit():
        return None
    return int(text[8:])


def hash_range(index: int, count: int) -> tuple[int, int]:
    width = HASH_SPACE // count
    start = index * width
    end = HASH_SPACE - 1 if index == count - 1 else start + width - 1
    return start, end


def partition_hash(partition_key: str) -> int:
    return int.from_bytes(hashlib.md5(partition_key.encode(), usedforsecurity=False).digest(), "big")


@dataclass(frozen=True)
class Stream:
    account: str
    region: str
    name: str
    mode: str
    retention_hours: int
    shard_count: int
    created: float
    created_ms: int

    @property
    def arn(self) -> str:
        return f"arn:aws:kinesis:{self.region}:{self.account}:stream/{self.name}"

    def sequence(self, shard: int, counter: int) -> str:
        return f"49{shard:06d}{self.created_ms:016d}{counter:032d}"

    def counter_of(self, sequence: str, shard: int) -> int | None:
        """The per-shard counter of a sequence number issued for `shard` of this stream, else None."""
        if len(sequence) != 56 or not sequence.isdigit() or sequence[:8] != f"49{shard:06d}":
            return None
        return int(sequence[24:])

    def shard_for(self, hash_key: int) -> int:
        for index in range(self.shard_count):
            start, end = hash_range(index, self.shard_count)
            if start <= hash_key <= end:
                return index
        return self.shard_count - 1


@dataclass(frozen=True)
class StoredRecord:
    shard: int
    counter: int
    sequence_number: str
    partition_key: str
    data: bytes
    arrival: float


class StreamService:
    def __init__(self, data_dir: Path, *, clock: Any = time.time) -> None:
        self.db = ComponentDb(data_dir, "kinesis", MIGRATIONS)
        self._clock = clock
        self._events: dict[tuple[str, str, str], asyncio.Event] = {}

    def close(self) -> None:
        self.db.close()

    # -- streams ------------------------------------------------------------------------------------

    def create(self, account: str, region: str, name: str, shard_count: int, mode: str) -> bool:
        now = self._clock()
        with self.db.tx() as db:
            cur = db.execute("INSERT INTO ks_streams VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                             "ON CONFLICT (account, region, name) DO NOTHING",
                             (account, region, name, mode, DEFAULT_RETENTION_HOURS, shard_count, now, int(now * 1000)))
            if cur.rowcount != 1:
                return False
            db.executemany("INSERT INTO ks_counters VALUES (?, ?, ?, ?, 1) "
                           "ON CONFLICT (account, region, stream, shard) DO UPDATE SET next = excluded.next",
                           [(account, region, name, i) for i in range(shard_count)])
            db.execute("DELETE FROM ks_records WHERE account = ? AND region = ? AND stream = ?",
                       (account, region, name))
            db.execute("DELETE FROM ks_tags WHERE account = ? AND region = ? AND stream = ?", (account, region, name))
        return True

    def get(self, account: str, region: str, name: str) -> Stream | None:
        rows = self.db.query("SELECT * FROM ks_streams WHERE account = ? AND region = ? AND name = ?",
                             (account, region, name))
        return _stream(rows[0]) if rows else None

    def all(self, account: str, region: str) -> list[Stream]:
        rows = self.db.query("SELECT * FROM ks_streams WHERE account = ? AND region = ? ORDER BY name",
                             (account, region))
        return [_stream(r) for r in rows]

    def delete(self, stream: Stream) -> None:
        key = (stream.account, stream.region, stream.name)
        with self.db.tx() as db:
            db.execute("DELETE FROM ks_streams WHERE account = ? AND region = ? AND name = ?", key)
            db.execute("DELETE FROM ks_records WHERE account = ? AND region = ? AND stream = ?", key)
            db.execute("DELETE FROM ks_counters WHERE account = ? AND region = ? AND stream = ?", key)
            db.execute("DELETE FROM ks_tags WHERE account = ? AND region = ? AND stream = ?", key)
            db.execute("DELETE FROM ks_policies WHERE account = ? AND region = ? AND stream = ?", key)
            db.execute("DELETE FROM ks_consumers WHERE account = ? AND region = ? AND stream = ?", key)
        self._notify(key)

    # -- resource policies and registered (enhanced fan-out) consumers ------------------------------

    def set_policy(self, stream: Stream, policy: str | None) -> bool:
        """Store (or with None, remove) the stream's resource policy; False when there was none to remove."""
        key = (stream.account, stream.region, stream.name)
        with self.db.tx() as db:
            if policy is None:
                return db.execute("DELETE FROM ks_policies WHERE account = ? AND region = ? AND stream = ?",
                                  key).rowcount > 0
            db.execute("INSERT INTO ks_policies (account, region, stream, policy) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (account, region, stream) DO UPDATE SET policy = excluded.policy", (*key, policy))
        return True

    def policy(self, stream: Stream) -> str | None:
        rows = self.db.query("SELECT policy FROM ks_policies WHERE account = ? AND region = ? AND stream = ?",
                             (stream.account, stream.region, stream.name))
        return str(rows[0]["policy"]) if rows else None

    def register_consumer(self, stream: Stream, name: str) -> bool:
        """False when the stream has a consumer of that name already."""
        key = (stream.account, stream.region, stream.name)
        with self.db.tx() as db:
            return db.execute("INSERT INTO ks_consumers (account, region, stream, name, created) "
                              "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, region, stream, name) DO NOTHING",
                              (*key, name, self._clock())).rowcount > 0

    def consumers(self, stream: Stream) -> list[tuple[str, float]]:
        """(name, registration time) of each registered consumer, oldest first."""
        rows = self.db.query("SELECT name, created FROM ks_consumers WHERE account = ? AND region = ? AND stream = ? "
                             "ORDER BY created, name", (stream.account, stream.region, stream.name))
        return [(str(r["name"]), float(r["created"])) for r in rows]

    def deregister_consumer(self, stream: Stream, name: str) -> bool:
        with self.db.tx() as db:
            return db.execute("DELETE FROM ks_consumers WHERE account = ? AND region = ? AND stream = ? AND name = ?",
                              (stream.account, stream.region, stream.name, name)).rowcount > 0

    def set_retention(self, stream: Stream, hours: int) -> None:
        with self.db.tx() as db:
            db.execute("UPDATE ks_streams SET retention_hours = ? WHERE account = ? AND region = ? AND name = ?",
                       (hours, stream.account, stream.region, stream.name))

    # -- records ------------------------------------------------------------------------------------

    def put(self, stream: Stream, records: list[tuple[str, bytes, int]]) -> list[tuple[int, str]]:
        """Append (partition key, data, hash key) records; return each one's (shard, sequence number).

        One transaction: all the records of a PutRecords call are stored, or none."""
        now = self._clock()
        out: list[tuple[int, str]] = []
        key = (stream.account, stream.region, stream.name)
        with self.db.tx() as db:
            for partition_key, data, hash_key in records:
                shard = stream.shard_for(hash_key)
                (counter,) = db.execute("SELECT next FROM ks_counters WHERE account = ? AND region = ? AND stream = ? "
                                        "AND shard = ?", (*key, shard)).fetchone()
                db.execute("UPDATE ks_counters SET next = next + 1 WHERE account = ? AND region = ? AND stream = ? "
                           "AND shard = ?", (*key, shard))
                db.execute("INSERT INTO ks_records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (*key, shard, counter, partition_key, data, now))
                out.append((shard, stream.sequence(shard, counter)))
        self._notify(key)
        return out

    def next_counter(self, stream: Stream, shard: int) -> int:
        rows = self.db.query("SELECT next FROM ks_counters WHERE account = ? AND region = ? AND stream = ? "
                             "AND shard = ?", (stream.account, stream.region, stream.name, shard))
        return int(rows[0]["next"]) if rows else 1

    def read(self, stream: Stream, shard: int, from_counter: int, limit: int) -> list[StoredRecord]:
        """Unexpired records of `shard` with counter >= `from_counter`, oldest first, at most `limit`."""
        horizon = self._clock() - stream.retention_hours * 3600
        rows = self.db.query(
            "SELECT * FROM ks_records WHERE account = ? AND region = ? AND stream = ? AND shard = ? AND counter >= ? "
            "AND arrival >= ? ORDER BY counter LIMIT ?",
            (stream.account, stream.region, stream.name, shard, from_counter, horizon, limit))
        return [StoredRecord(shard, r["counter"], stream.sequence(shard, r["counter"]), r["partition_key"],
                             bytes(r["data"]), r["arrival"]) for r in rows]

    def first_counter_at(self, stream: Stream, shard: int, timestamp: float) -> int:
        """The counter of the first record that arrived at or after `timestamp` (else the next one)."""
        rows = self.db.query(
            "SELECT MIN(counter) AS c FROM ks_records WHERE account = ? AND region = ? AND stream = ? AND shard = ? "
            "AND arrival >= ?", (stream.account, stream.region, stream.name, shard, timestamp))
        value = rows[0]["c"] if rows else None
        return int(value) if value is not None else self.next_counter(stream, shard)

    def latest_arrival(self, stream: Stream, shard: int) -> float | None:
        rows = self.db.query("SELECT MAX(arrival) AS a FROM ks_records WHERE account = ? AND region = ? AND "
                             "stream = ? AND shard = ?", (stream.account, stream.region, stream.name, shard))
        value = rows[0]["a"] if rows else None
        return float(value) if value is not None else None

    def expire(self) -> int:
        """Delete records older than their stream's retention; return how many."""
        now = self._clock()
        with self.db.tx() as db:
            cur = db.execute(
                "DELETE FROM ks_records WHERE arrival < ? - 3600 * (SELECT retention_hours FROM ks_streams s WHERE "
                "s.account = ks_records.account AND s.region = ks_records.region AND s.name = ks_records.stream)",
                (now,))
            return cur.rowcount

    async def wait_for_records(self, account: str, region: str, name: str, timeout: float) -> bool:
        """Sleep until a put on the stream (True) or `timeout` seconds (False)."""
        event = self._events.setdefault((account, region, name), asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _notify(self, key: tuple[str, str, str]) -> None:
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    # -- tags ---------------------------------------------------------------------------------------

    def tags(self, stream: Stream) -> dict[str, str]:
        rows = self.db.query("SELECT key, value FROM ks_tags WHERE account = ? AND region = ? AND stream = ? "
                             "ORDER BY key", (stream.account, stream.region, stream.name))
        return {r["key"]: r["value"] for r in rows}

    def add_tags(self, stream: Stream, tags: dict[str, str]) -> None:
        with self.db.tx() as db:
            db.executemany("INSERT INTO ks_tags VALUES (?, ?, ?, ?, ?) "
                           "ON CONFLICT (account, region, stream, key) DO UPDATE SET value = excluded.value",
                           [(stream.account, stream.region, stream.name, k, v) for k, v in tags.items()])

    def remove_tags(self, stream: Stream, keys: list[str]) -> None:
        with self.db.tx() as db:
            db.executemany("DELETE FROM ks_tags WHERE account = ? AND region = ? AND stream = ? AND key = ?",
                           [(stream.account, stream.region, stream.name, k) for k in keys])


def _stream(row: Any) -> Stream:
    return Stream(row["account"], row["region"], row["name"], row["mode"], row["retention_hours"],
                  row["shard_count"], row["created"], row["created_ms"])


def lambda_record(stream: Stream, record: StoredRecord, role_arn: str = "") -> dict[str, Any]:
    """One record of the event a stream event source mapping sends to a function, as AWS shapes it."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record.partition_key,
            "sequenceNumber": record.sequence_number,
            "data": base64.b64encode(record.data).decode(),
            "approximateArrivalTimestamp": round(record.arrival, 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id(record.shard)}:{record.sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": role_arn,
        "awsRegion": stream.region,
        "eventSourceARN": stream.arn,
    }
