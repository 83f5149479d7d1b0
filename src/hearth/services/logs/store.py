"""Durable function logs: CloudWatch Logs' groups, streams and events (`ComponentDb` component "logs",
in a database of its own, `logs`).

It owns which log groups and streams exist per (account, region), their events,
retention and tags, and the CloudWatch paging tokens over them. It is the invoker's `LogSink` and the
Logs provider's storage. It never raises AWS errors (the provider turns its `LogStoreError`s into
them), never blocks an invocation for long (one short transaction per invocation; existence of groups
and streams is cached) and never lets one account see another's rows: every query is keyed by the
group row, and a group row is found only through (account, region, name).

Its own database (on SQLite, `<data_dir>/logs.db`): appends are many and small, and must not queue
behind the control plane's writes on SQLite's one writer. Data directories from before
`component_schema` hold the version-1 layout without a version row; `adopt` carries them forward.

Durability: WAL with synchronous=FULL. An append is one transaction per invocation, so the cost is one
WAL fsync per invocation (measured: ~0.4 ms per 5-line append with FULL against ~0.1 ms with NORMAL
on the development VM), and what a function wrote survives a crash of the machine, not only of the
server.

Ordering and tokens: events are ordered by (timestamp, row id). A position in that order is written
as a fixed-width decimal "key" (15 digits of timestamp, 20 of row id); GetLogEvents' tokens are
`f/<key>` (return events after key) and `b/<key>` (return events before key), as CloudWatch spells
them, and an eventId is the key of the event. Retention is applied lazily: queries never return
expired events, and expired rows are deleted at most once a minute per group.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearth.services.logs.resources import LogResources
from hearth.store.component import ComponentDb, table_exists
from hearth.store.engine import Connection

# Retention periods CloudWatch accepts (PutRetentionPolicy's retentionInDays).
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                  2922, 3288, 3653)
# CloudWatch's response caps: 10,000 events or 1 MB per GetLogEvents / FilterLogEvents page.
MAX_EVENTS_PER_PAGE = 10_000
MAX_PAGE_BYTES = 1 << 20
# FilterLogEvents looks at no more than this many rows per call and then returns a nextToken, so a
# pattern that matches nothing in a big group never holds the event loop for long (AWS does the same:
# pages may be empty and still carry a nextToken).
FILTER_SCAN_ROWS = 20_000
_PURGE_EVERY_S = 60.0
_DAY_MS = 86_400_000

COMPONENT = "logs"
DATABASE = "logs"

# Append-only: never edit an entry that has shipped.
MIGRATIONS: tuple[str, ...] = ("""
CREATE TABLE IF NOT EXISTS log_groups (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    retention_days INTEGER,
    tags TEXT NOT NULL DEFAULT '{}',
    UNIQUE (account, region, name)
);
CREATE TABLE IF NOT EXISTS log_streams (
    id INTEGER PRIMARY KEY,
    group_id INTEGER NOT NULL REFERENCES log_groups(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    first_event_ms INTEGER,
    last_event_ms INTEGER,
    last_ingestion_ms INTEGER,
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (group_id, name)
);
CREATE TABLE IF NOT EXISTS log_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id INTEGER NOT NULL,
    stream_id INTEGER NOT NULL REFERENCES log_streams(id) ON DELETE CASCADE,
    ts INTEGER NOT NULL,
    ingestion_ms INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_events_by_stream ON log_events (stream_id, ts, id);
CREATE INDEX IF NOT EXISTS log_events_by_group ON log_events (group_id, ts, id);
""", """
CREATE TABLE IF NOT EXISTS log_resources (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (account, region, kind, name)
);
""")


def _adopt(db: Connection) -> int:
    """A logs database written before `component_schema` holds exactly migration 1."""
    return 1 if table_exists(db, "log_groups") else 0


class LogStoreError(Exception):
    """A request the store refuses; `kind` says which AWS error the provider should answer."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "group_not_found" | "stream_not_found" | "group_exists" | "stream_exists"
        self.message = message  # | "invalid_token" | "invalid_parameter"


@dataclass(frozen=True)
class LogGroupInfo:
    account: str
    region: str
    name: str
    created_ms: int
    retention_days: int | None
    stored_bytes: int
    tags: dict[str, str]

    @property
    def arn(self) -> str:
        return f"{self.log_group_arn}:*"

    @property
    def log_group_arn(self) -> str:
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{self.name}"


@dataclass(frozen=True)
class LogStreamInfo:
    group: str
    name: str
    created_ms: int
    first_event_ms: int | None
    last_event_ms: int | None
    last_ingestion_ms: int | None
    stored_bytes: int
    arn: str


@dataclass(frozen=True)
class LogEvent:
    """One stored event; `key` orders it and is its eventId."""

    key: str
    stream: str
    timestamp: int
    ingestion_ms: int
    message: str


@dataclass
class EventPage:
    events: list[LogEvent] = field(default_factory=list)
    next_forward: str = ""
    next_backward: str = ""


@dataclass
class FilterPage:
    events: list[LogEvent] = field(default_factory=list)
    searched_streams: list[str] = field(default_factory=list)
    next_token: str | None = None


def event_key(ts: int, row_id: int) -> str:
    return f"{ts:015d}{row_id:020d}"


def _parse_key(key: str) -> tuple[int, int]:
    if len(key) != 35 or not key.isdigit():
        raise LogStoreError("invalid_token", "The specified nextToken is invalid.")
    return int(key[:15]), int(key[15:])


def _now_ms() -> int:
    return int(time.time() * 1000)


class FilterPattern:
    """CloudWatch's plain-text filter patterns: terms, "quoted phrases", ?alternatives, -exclusions.

    `ERROR timeout` matches events containing both terms; `?ERROR ?WARN` either; `ERROR -retry` ERROR
    but not retry; `"request failed"` the exact phrase. Matching is case-sensitive, as CloudWatch's.
    JSON (`{ ... }`) and space-delimited (`[ ... ]`) patterns are refused explicitly.
    """

    _TOKEN = re.compile(r'([?-]?)(?:"((?:[^"\\]|\\.)*)"|(\S+))')

    def __init__(self, pattern: str | None) -> None:
        self.required: list[str] = []
        self.any_of: list[str] = []
        self.excluded: list[str] = []
        text = (pattern or "").strip()
        if text.startswith(("{", "[")):
            raise LogStoreError("invalid_parameter",
                                "JSON and space-delimited filter patterns are not supported by Hearth; "
                                "use terms, \"quoted phrases\", ?alternatives and -exclusions.")
        pos = 0
        while pos < len(text):
            match = self._TOKEN.match(text, pos)
            if match is None:
                pos += 1
                continue
            pos = match.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
            sign, quoted, bare = match.group(1), match.group(2), match.group(3)
            term = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
            if not term:
                continue
            {"": self.required, "?": self.any_of, "-": self.excluded}[sign].append(term)

    def matches(self, message: str) -> bool:
        if any(term not in message for term in self.required):
            return False
        if self.any_of and not any(term in message for term in self.any_of):
            return False
        return not any(term in message for term in self.excluded)


class LogStore:
    """The log groups, streams and events of every account."""

    def __init__(self, data_dir: Path) -> None:
        # Used from the event loop (the invoker's log writer and the provider both run there).
        self._db = ComponentDb(data_dir, COMPONENT, MIGRATIONS, database=DATABASE, adopt=_adopt)
        if self._db.path.exists():
            self._db.path.chmod(0o600)  # what functions print may be secret
        # Metric and subscription filters, resource policies, destinations: settings kept beside the groups.
        self.resources = LogResources(self._db)
        self._groups: dict[tuple[str, str, str], int] = {}
        self._streams: dict[tuple[int, str], int] = {}
        self._last_purge: dict[int, float] = {}

    def close(self) -> None:
        self._db.close()

    # -- the invoker's LogSink -------------------------------------------------------------------

    def ensure_group(self, account: str, region: str, group: str) -> None:
        if (account, region, group) in self._groups:
            return
        with self._db.tx() as db:
            db.execute(
                "INSERT INTO log_groups (account, region, name, created_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (account, region, name) DO NOTHING",
                (account, region, group, _now_ms()))
        self._group_id(account, region, group)

    def ensure_stream(self, account: str, region: str, group: str, stream: str) -> None:
        group_id = self._group_id(account, region, group)
        if (group_id, stream) in self._streams:
            return
        with self._db.tx() as db:
            db.execute("INSERT INTO log_streams (group_id, name, created_ms) VALUES (?, ?, ?) "
                       "ON CONFLICT (group_id, name) DO NOTHING", (group_id, stream, _now_ms()))
        self._stream_id(group_id, stream)

    def append(self, account: str, region: str, group: str, stream: str,
               events: list[tuple[int, str]]) -> None:
        """Store events of one stream in one transaction (the group and stream must exist)."""
        if not events:
            return
        group_id = self._group_id(account, region, group)
        stream_id = self._stream_id(group_id, stream)
        now = _now_ms()
        size = sum(len(message.encode()) for _, message in events)
        first = min(ts for ts, _ in events)
        last = max(ts for ts, _ in events)
        with self._db.tx() as db:
            db.executemany(
                "INSERT INTO log_events (group_id, stream_id, ts, ingestion_ms, message) VALUES (?, ?, ?, ?, ?)",
                [(group_id, stream_id, ts, now, message) for ts, message in events])
            db.execute(
                "UPDATE log_streams SET "
                "first_event_ms = CASE WHEN first_event_ms IS NULL OR first_event_ms > ? THEN ? "
                "ELSE first_event_ms END, "
                "last_event_ms = CASE WHEN last_event_ms IS NULL OR last_event_ms < ? THEN ? "
                "ELSE last_event_ms END, last_ingestion_ms = ?, "
                "stored_bytes = stored_bytes + ? WHERE id = ?",
                (first, first, last, last, now, size, stream_id))
        self._maybe_purge(group_id)

    # -- groups ----------------------------------------------------------------------------------

    def create_group(self, account: str, region: str, group: str, tags: dict[str, str] | None = None) -> None:
        with self._db.tx() as db:
            created = db.execute(
                "INSERT INTO log_groups (account, region, name, created_ms, tags) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (account, region, name) DO NOTHING",
                (account, region, group, _now_ms(), json.dumps(tags or {}))).rowcount
        if created != 1:
            raise LogStoreError("group_exists", "The specified log group already exists")

    def delete_group(self, account: str, region: str, group: str) -> None:
        group_id = self._group_id(account, region, group)
        with self._db.tx() as db:
            db.execute("DELETE FROM log_events WHERE group_id = ?", (group_id,))
            db.execute("DELETE FROM log_streams WHERE group_id = ?", (group_id,))
            db.execute("DELETE FROM log_groups WHERE id = ?", (group_id,))
            # The group's metric and subscription filters go with it.
            self.resources.delete_group_scoped(db, account, region, group)
        self._groups.pop((account, region, group), None)
        for key in [k for k in self._streams if k[0] == group_id]:
            del self._streams[key]

    def describe_groups(
        self, account: str, region: str, *, prefix: str | None = None, pattern: str | None = None,
        names: Iterable[str] | None = None, limit: int = 50, token: str | None = None,
    ) -> tuple[list[LogGroupInfo], str | None]:
        """Groups ordered by name; the token is the last name returned (opaque to callers)."""
        sql = ["SELECT id, name, created_ms, retention_days, tags FROM log_groups WHERE account = ? AND region = ?"]
        args: list[Any] = [account, region]
        if prefix:
            sql.append("AND substr(name, 1, ?) = ?")
            args += [len(prefix), prefix]
        if pattern:
            sql.append("AND lower(name) LIKE ? ESCAPE '\\'")
            args.append(f"%{_like_escape(pattern.lower())}%")
        if names is not None:
            wanted = list(names)
            sql.append(f"AND name IN ({','.join('?' * len(wanted))})" if wanted else "AND 1 = 0")
            args += wanted
        if token:
            sql.append("AND name > ?")
            args.append(_decode_token(token, "g"))
        sql.append("ORDER BY name LIMIT ?")
        args.append(limit + 1)
        rows = self._db.query(" ".join(sql), args)
        infos = [self._group_info(account, region, *row) for row in rows[:limit]]
        next_token = _encode_token("g", infos[-1].name) if len(rows) > limit else None
        return infos, next_token

    def get_group(self, account: str, region: str, group: str) -> LogGroupInfo:
        group_id = self._group_id(account, region, group)
        row = self._db.query("SELECT id, name, created_ms, retention_days, tags FROM log_groups "
                             "WHERE id = ?", (group_id,))[0]
        return self._group_info(account, region, *row)

    def put_retention(self, account: str, region: str, group: str, days: int | None) -> None:
        group_id = self._group_id(account, region, group)
        with self._db.tx() as db:
            db.execute("UPDATE log_groups SET retention_days = ? WHERE id = ?", (days, group_id))
        self._last_purge.pop(group_id, None)
        self._maybe_purge(group_id)

    def tag_group(self, account: str, region: str, group: str, tags: dict[str, str]) -> None:
        current = self.get_group(account, region, group).tags
        current.update(tags)
        self._set_tags(account, region, group, current)

    def untag_group(self, account: str, region: str, group: str, keys: Iterable[str]) -> None:
        current = self.get_group(account, region, group).tags
        for key in keys:
            current.pop(key, None)
        self._set_tags(account, region, group, current)

    # -- streams ---------------------------------------------------------------------------------

    def create_stream(self, account: str, region: str, group: str, stream: str) -> None:
        group_id = self._group_id(account, region, group)
        with self._db.tx() as db:
            created = db.execute("INSERT INTO log_streams (group_id, name, created_ms) VALUES (?, ?, ?) "
                                 "ON CONFLICT (group_id, name) DO NOTHING", (group_id, stream, _now_ms())).rowcount
        if created != 1:
            raise LogStoreError("stream_exists", "The specified log stream already exists")

    def delete_stream(self, account: str, region: str, group: str, stream: str) -> None:
        group_id = self._group_id(account, region, group)
        stream_id = self._stream_id(group_id, stream)
        with self._db.tx() as db:
            db.execute("DELETE FROM log_events WHERE stream_id = ?", (stream_id,))
            db.execute("DELETE FROM log_streams WHERE id = ?", (stream_id,))
        self._streams.pop((group_id, stream), None)

    def describe_streams(
        self, account: str, region: str, group: str, *, prefix: str | None = None,
        order_by: str = "LogStreamName", descending: bool = False, limit: int = 50, token: str | None = None,
    ) -> tuple[list[LogStreamInfo], str | None]:
        """Streams ordered by name or by last event time; the token is the last row's sort key."""
        group_id = self._group_id(account, region, group)
        self._maybe_purge(group_id)
        by_time = order_by == "LastEventTime"
        if by_time and prefix:
            raise LogStoreError("invalid_parameter", "Cannot order by LastEventTime with a logStreamNamePrefix.")
        sort = "coalesce(last_event_ms, -1)" if by_time else "''"
        direction = "DESC" if descending else "ASC"
        compare = "<" if descending else ">"
        sql = [f"SELECT name, created_ms, first_event_ms, last_event_ms, last_ingestion_ms, stored_bytes, "
               f"{sort} AS k FROM log_streams WHERE group_id = ?"]
        args: list[Any] = [group_id]
        if prefix:
            sql.append("AND substr(name, 1, ?) = ?")
            args += [len(prefix), prefix]
        if token:
            decoded = _decode_token(token, "s")
            k_text, _, after_name = decoded.partition("\n")
            try:
                k_value: Any = int(k_text) if by_time else ""
            except ValueError:
                raise LogStoreError("invalid_token", "The specified nextToken is invalid.") from None
            sql.append(f"AND ({sort}, name) {compare} (?, ?)")
            args += [k_value, after_name]
        sql.append(f"ORDER BY k {direction}, name {direction} LIMIT ?")
        args.append(limit + 1)
        info = self.get_group(account, region, group)
        rows = self._db.query(" ".join(sql), args)
        streams = [
            LogStreamInfo(group, name, created, first, last, ingested, stored,
                          f"{info.log_group_arn}:log-stream:{name}")
            for name, created, first, last, ingested, stored, _ in rows[:limit]
        ]
        next_token = None
        if len(rows) > limit:
            last_row = rows[limit - 1]
            next_token = _encode_token("s", f"{last_row[6] if by_time else ''}\n{last_row[0]}")
        return streams, next_token

    # -- events ----------------------------------------------------------------------------------

    def get_events(
        self, account: str, region: str, group: str, stream: str, *, start: int | None = None,
        end: int | None = None, token: str | None = None, start_from_head: bool = False,
        limit: int = MAX_EVENTS_PER_PAGE,
    ) -> EventPage:
        """GetLogEvents: events of one stream with timestamp in [start, end), one page.

        Without a token, the page is the first `limit` events (start_from_head) or the last `limit`.
        `f/<key>` pages forward after key, `b/<key>` backward before key. A page that finds nothing
        hands back the token it was given, which is how CloudWatch callers detect the end.
        """
        group_id = self._group_id(account, region, group)
        stream_id = self._stream_id(group_id, stream)
        self._maybe_purge(group_id)
        forward = start_from_head
        after: tuple[int, int] | None = None
        before: tuple[int, int] | None = None
        if token:
            direction, _, key = token.partition("/")
            if direction == "f":
                after, forward = _parse_key(key), True
            elif direction == "b":
                before, forward = _parse_key(key), False
            else:
                raise LogStoreError("invalid_token", "The specified nextToken is invalid.")
        sql = ["SELECT id, ts, ingestion_ms, message FROM log_events WHERE stream_id = ?"]
        args: list[Any] = [stream_id]
        lower = self._retention_cutoff(group_id)
        if start is not None:
            lower = max(lower, start)
        sql.append("AND ts >= ?")
        args.append(lower)
        if end is not None:
            sql.append("AND ts < ?")
            args.append(end)
        if after is not None:
            sql.append("AND (ts, id) > (?, ?)")
            args += list(after)
        if before is not None:
            sql.append("AND (ts, id) < (?, ?)")
            args += list(before)
        sql.append(f"ORDER BY ts {'ASC' if forward else 'DESC'}, id {'ASC' if forward else 'DESC'} LIMIT ?")
        args.append(min(limit, MAX_EVENTS_PER_PAGE))
        rows = _cap_bytes(self._db.query(" ".join(sql), args), 3)
        if not forward:
            rows.reverse()
        events = [LogEvent(event_key(ts, rid), stream, ts, ingested, message) for rid, ts, ingested, message in rows]
        if events:
            return EventPage(events, f"f/{events[-1].key}", f"b/{events[0].key}")
        if token:
            key = token.partition("/")[2]
            return EventPage([], f"f/{key}", f"b/{key}")
        # Nothing at all: forward from the very start sees whatever arrives later.
        key = event_key(0, 0)
        return EventPage([], f"f/{key}", f"b/{key}")

    def filter_events(
        self, account: str, region: str, group: str, *, streams: list[str] | None = None,
        stream_prefix: str | None = None, start: int | None = None, end: int | None = None,
        pattern: str | None = None, limit: int = MAX_EVENTS_PER_PAGE, token: str | None = None,
    ) -> FilterPage:
        """FilterLogEvents: events of a group (or some of its streams) in [start, end], oldest first."""
        group_id = self._group_id(account, region, group)
        self._maybe_purge(group_id)
        matcher = FilterPattern(pattern)
        names = self._stream_names(group_id, streams, stream_prefix)
        # Unknown stream names in logStreamNames are simply not searched, as in CloudWatch.
        if (streams is not None or stream_prefix) and not names:
            return FilterPage([], [], None)
        sql = ["SELECT e.id, e.ts, e.ingestion_ms, e.message, s.name FROM log_events e "
               "JOIN log_streams s ON s.id = e.stream_id WHERE e.group_id = ?"]
        args: list[Any] = [group_id]
        if streams is not None or stream_prefix:
            sql.append(f"AND e.stream_id IN ({','.join('?' * len(names))})")
            args += list(names.values())
        lower = self._retention_cutoff(group_id)
        if start is not None:
            lower = max(lower, start)
        sql.append("AND e.ts >= ?")
        args.append(lower)
        if end is not None:
            sql.append("AND e.ts <= ?")
            args.append(end)
        if token:
            ts, rid = _parse_key(_decode_token(token, "e"))
            sql.append("AND (e.ts, e.id) > (?, ?)")
            args += [ts, rid]
        sql.append("ORDER BY e.ts, e.id LIMIT ?")
        args.append(FILTER_SCAN_ROWS + 1)
        limit = min(limit, MAX_EVENTS_PER_PAGE)
        events: list[LogEvent] = []
        size = 0
        scanned_all = True
        last_seen: str | None = None
        with self._db.scan(" ".join(sql), args) as cursor:
            for count, (rid, ts, ingested, message, stream_name) in enumerate(cursor):
                if count >= FILTER_SCAN_ROWS or len(events) >= limit or size >= MAX_PAGE_BYTES:
                    scanned_all = False
                    break
                last_seen = event_key(ts, rid)
                if matcher.matches(message):
                    events.append(LogEvent(last_seen, stream_name, ts, ingested, message))
                    size += len(message.encode()) + 26
        next_token = None if scanned_all or last_seen is None else _encode_token("e", last_seen)
        return FilterPage(events, sorted(names) if names else [], next_token)

    def put_events(self, account: str, region: str, group: str, stream: str,
                   events: list[tuple[int, str]]) -> None:
        """PutLogEvents' storage step (the provider validated order, age and batch span)."""
        group_id = self._group_id(account, region, group)
        self._stream_id(group_id, stream)
        self.append(account, region, group, stream, events)

    def retention_days(self, account: str, region: str, group: str) -> int | None:
        return self.get_group(account, region, group).retention_days

    # -- internals -------------------------------------------------------------------------------

    def _group_id(self, account: str, region: str, group: str) -> int:
        cached = self._groups.get((account, region, group))
        if cached is not None:
            return cached
        rows = self._db.query("SELECT id FROM log_groups WHERE account = ? AND region = ? AND name = ?",
                              (account, region, group))
        row = rows[0] if rows else None
        if row is None:
            raise LogStoreError("group_not_found", "The specified log group does not exist.")
        self._groups[(account, region, group)] = row[0]
        return int(row[0])

    def _stream_id(self, group_id: int, stream: str) -> int:
        cached = self._streams.get((group_id, stream))
        if cached is not None:
            return cached
        rows = self._db.query("SELECT id FROM log_streams WHERE group_id = ? AND name = ?", (group_id, stream))
        row = rows[0] if rows else None
        if row is None:
            raise LogStoreError("stream_not_found", "The specified log stream does not exist.")
        self._streams[(group_id, stream)] = row[0]
        return int(row[0])

    def _stream_names(self, group_id: int, names: list[str] | None, prefix: str | None) -> dict[str, int]:
        sql = "SELECT name, id FROM log_streams WHERE group_id = ?"
        args: list[Any] = [group_id]
        if names is not None:
            sql += f" AND name IN ({','.join('?' * len(names))})" if names else " AND 1 = 0"
            args += names
        if prefix:
            sql += " AND substr(name, 1, ?) = ?"
            args += [len(prefix), prefix]
        return {name: sid for name, sid in self._db.query(sql, args)}

    def _group_info(self, account: str, region: str, group_id: int, name: str, created: int,
                    retention: int | None, tags: str) -> LogGroupInfo:
        stored = self._db.query("SELECT coalesce(sum(stored_bytes), 0) FROM log_streams WHERE group_id = ?",
                                (group_id,))[0][0]
        return LogGroupInfo(account, region, name, created, retention, int(stored), json.loads(tags))

    def _set_tags(self, account: str, region: str, group: str, tags: dict[str, str]) -> None:
        group_id = self._group_id(account, region, group)
        with self._db.tx() as db:
            db.execute("UPDATE log_groups SET tags = ? WHERE id = ?", (json.dumps(tags), group_id))

    def _retention_cutoff(self, group_id: int) -> int:
        rows = self._db.query("SELECT retention_days FROM log_groups WHERE id = ?", (group_id,))
        row = rows[0] if rows else None
        if row is None or row[0] is None:
            return 0
        return max(0, _now_ms() - int(row[0]) * _DAY_MS)

    def _maybe_purge(self, group_id: int) -> None:
        """Delete a group's expired events, at most once a minute (queries already hide them)."""
        now = time.monotonic()
        last = self._last_purge.get(group_id)
        if last is not None and now - last < _PURGE_EVERY_S:
            return
        self._last_purge[group_id] = now
        cutoff = self._retention_cutoff(group_id)
        if cutoff <= 0:
            return
        with self._db.tx() as db:
            # What leaves each stream, in bytes (stream sizes feed storedBytes), counted here rather than
            # with an engine's byte-length function.
            freed: dict[int, int] = {}
            for stream_id, message in db.execute(
                    "SELECT stream_id, message FROM log_events WHERE group_id = ? AND ts < ?", (group_id, cutoff)):
                freed[stream_id] = freed.get(stream_id, 0) + len(message.encode())
            if not freed:
                return
            db.execute("DELETE FROM log_events WHERE group_id = ? AND ts < ?", (group_id, cutoff))
            db.executemany("UPDATE log_streams SET stored_bytes = stored_bytes - ? WHERE id = ?",
                           [(size, stream_id) for stream_id, size in freed.items()])
            db.execute(
                "UPDATE log_streams SET "
                "first_event_ms = (SELECT min(ts) FROM log_events WHERE stream_id = log_streams.id) "
                "WHERE group_id = ?", (group_id,))


def _like_escape(text: str) -> str:
    """`text` as a literal inside a LIKE pattern whose escape character is a backslash."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _cap_bytes(rows: list[Any], message_index: int) -> list[Any]:
    """Keep rows until CloudWatch's 1 MB page size (message bytes + 26 per event) would be passed."""
    size = 0
    for index, row in enumerate(rows):
        size += len(row[message_index].encode()) + 26
        if size > MAX_PAGE_BYTES and index > 0:
            return rows[:index]
    return list(rows)


def _encode_token(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode()


def _decode_token(token: str, kind: str) -> str:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise LogStoreError("invalid_token", "The specified nextToken is invalid.") from None
    found, sep, value = text.partition(":")
    if found != kind or not sep:
        raise LogStoreError("invalid_token", "The specified nextToken is invalid.")
    return value


