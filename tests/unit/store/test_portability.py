"""Every SQL string in Hearth's source stays in the portable subset `hearth.store.engine` describes, so
that another engine (PostgreSQL) runs every component unchanged."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Sequence
from pathlib import Path

import pglast
import pglast.parser

import hearth
from hearth.services.logs.store import LogStore
from hearth.store.component import split_sql
from hearth.store.engine import POSTGRESQL, SQLITE, Connection, SqliteEngine, use_engine

SOURCE = Path(hearth.__file__).parent
_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE TABLE|CREATE INDEX|ALTER TABLE)\b")
FORBIDDEN = {
    r"\bINSERT\s+OR\s+(REPLACE|IGNORE)\b": "use INSERT ... ON CONFLICT (...) DO UPDATE / DO NOTHING",
    r"\bREPLACE\s+INTO\b": "use INSERT ... ON CONFLICT (...) DO UPDATE",
    r"\browid\b": "declare an explicit key and read it back with RETURNING",
    r"\b(json_extract|json_each|json_group_array|instr|printf|ifnull|group_concat|strftime|julianday)\s*\(":
        "an SQLite-only function: use portable SQL or do it in Python",
    r"\b(min|max)\s*\([^()]*,": "two-argument min/max is SQLite's: use CASE (PostgreSQL spells it LEAST/GREATEST)",
    r"\bAS\s+BLOB\b": "byte lengths differ between engines: count them in Python",
    r"\b(AND|OR|WHERE)\s+[01]\s*$": "a bare 0/1 is not a boolean everywhere: write 1 = 0",
    r"\bPRAGMA\b": "engine settings belong to hearth.store.engine",
    r"\bIS\s+(NOT\s+)?\?": "`IS ?` is SQLite's null-safe comparison: spell the NULL case on its own",
}
# The engine and the one catalogue lookup for adopting old SQLite layouts may speak SQLite.
ENGINE_FILES = {SOURCE / "store" / "engine.py", SOURCE / "store" / "component.py"}


def _sql_strings(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _SQL.search(node.value):
            found.append((node.lineno, node.value))
    return found


def test_component_sql_is_portable() -> None:
    problems = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path in ENGINE_FILES:
            continue
        for line, text in _sql_strings(path):
            for pattern, advice in FORBIDDEN.items():
                if re.search(pattern, text, re.IGNORECASE | re.MULTILINE):
                    problems.append(f"{path.relative_to(SOURCE)}:{line}: {text.strip()[:70]!r}: {advice}")
    assert not problems, "\n".join(problems)


def test_no_component_reaches_past_the_engine() -> None:
    offenders = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path in ENGINE_FILES:
            continue
        text = path.read_text()
        if re.search(r"^\s*(import sqlite3|from sqlite3 )", text, re.MULTILINE) or ".executescript(" in text \
                or ".lastrowid" in text:
            offenders.append(str(path.relative_to(SOURCE)))
    assert not offenders, f"open and write through ComponentDb only: {offenders}"


def test_the_checks_catch_what_they_forbid() -> None:
    samples = ["INSERT OR IGNORE INTO t VALUES (1)", "SELECT rowid FROM t", "UPDATE t SET a = max(a, ?)",
               "SELECT json_extract(doc, '$.a') FROM t", "SELECT a FROM t WHERE b = 1 AND 0",
               "UPDATE t SET a = ? WHERE b IS ?"]
    for sample in samples:
        assert any(re.search(p, sample, re.IGNORECASE | re.MULTILINE) for p in FORBIDDEN), sample
    assert not any(re.search(p, "INSERT INTO t VALUES (?) ON CONFLICT (a) DO NOTHING", re.IGNORECASE)
                   for p in FORBIDDEN)


def _migration_lists() -> dict[str, Sequence[str]]:
    """Every component's MIGRATIONS (module- or class-level), found in the source."""
    found: dict[str, Sequence[str]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        module_name = "hearth." + ".".join(path.relative_to(SOURCE).with_suffix("").parts)
        scopes: list[tuple[str | None, list[ast.stmt]]] = [(None, tree.body)]
        scopes += [(node.name, node.body) for node in tree.body if isinstance(node, ast.ClassDef)]
        for owner, body in scopes:
            for node in body:
                targets = node.targets if isinstance(node, ast.Assign) else \
                    [node.target] if isinstance(node, ast.AnnAssign) else []
                for target in targets:
                    if isinstance(target, ast.Name) and target.id.endswith("MIGRATIONS"):
                        holder: object = importlib.import_module(module_name)
                        if owner is not None:
                            holder = getattr(holder, owner)
                        found[f"{module_name}.{owner + '.' if owner else ''}{target.id}"] = getattr(holder, target.id)
    return found


def test_every_migration_parses_as_postgresql() -> None:
    migrations = _migration_lists()
    assert "hearth.functions.store.MIGRATIONS" in migrations and "hearth.services.logs.store.MIGRATIONS" in migrations
    problems = []
    for name, scripts in migrations.items():
        for number, script in enumerate(scripts, start=1):
            for statement in split_sql(script):
                translated = POSTGRESQL.ddl(statement)
                assert SQLITE.ddl(statement) == statement
                if re.search(r"\b(AUTOINCREMENT|BLOB|REAL)\b", translated):
                    problems.append(f"{name}[{number}]: untranslated type in {translated[:60]!r}")
                try:
                    pglast.parse_sql(translated)
                except pglast.parser.ParseError as exc:
                    problems.append(f"{name}[{number}]: {exc}: {translated[:80]!r}")
    assert not problems, "\n".join(problems)


def test_whole_statements_parse_as_postgresql() -> None:
    """Every SQL string that is a whole statement (not a fragment joined at run time) parses."""
    problems = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path in ENGINE_FILES:
            continue
        tree = ast.parse(path.read_text(), str(path))
        fragments = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in fragments:
                continue
            text = node.value.strip()
            if not re.match(r"(SELECT|INSERT|UPDATE|DELETE)\s", text) or ("?" not in text and "FROM" not in text):
                continue
            try:
                pglast.parse_sql(POSTGRESQL.sql(text))
            except pglast.parser.ParseError as exc:
                problems.append(f"{path.relative_to(SOURCE)}:{node.lineno}: {exc}: {text[:70]!r}")
    assert not problems, "\n".join(problems)


def test_the_postgresql_spelling() -> None:
    assert POSTGRESQL.sql("SELECT a FROM t WHERE b = ? AND c > ?") == "SELECT a FROM t WHERE b = $1 AND c > $2"
    assert POSTGRESQL.ddl("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL, n INTEGER, b BLOB)") == (
        "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, at DOUBLE PRECISION, n BIGINT, "
        "b BYTEA)")


class _TracingEngine(SqliteEngine):
    """SQLite, recording every statement as executed (parameters filled in)."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.seen: list[str] = []

    def connect(self, database: str, component: str | None = None) -> Connection:
        conn = super().connect(database, component)
        conn.set_trace_callback(self.seen.append)
        return conn


def test_statements_built_at_run_time_parse_as_postgresql(tmp_path: Path) -> None:
    """The log store assembles its queries from pieces: run each variant and parse what was sent."""
    engine = _TracingEngine(tmp_path)
    use_engine(tmp_path, engine)  # what the server would do for another engine
    store = LogStore(tmp_path)
    try:
        a, r, g = "111111111111", "us-east-1", "/aws/lambda/f"
        store.create_group(a, r, g, {"team": "a"})
        store.create_group(a, r, "/other/100%")
        for stream, base in (("s1", 1_000), ("s2", 2_000)):
            store.ensure_stream(a, r, g, stream)
            store.append(a, r, g, stream, [(base + i, f"line {i}\n") for i in range(3)])
        _, token = store.describe_groups(a, r, prefix="/aws", pattern="F", limit=1)
        store.describe_groups(a, r, names=[], limit=1)
        store.describe_groups(a, r, names=[g, "/x"], token=token)
        _, token = store.describe_streams(a, r, g, limit=1)
        store.describe_streams(a, r, g, limit=1, token=token)
        _, token = store.describe_streams(a, r, g, order_by="LastEventTime", descending=True, limit=1)
        store.describe_streams(a, r, g, order_by="LastEventTime", descending=True, token=token)
        page = store.get_events(a, r, g, "s1", start=1_000, end=5_000, limit=2)
        store.get_events(a, r, g, "s1", token=page.next_forward)
        store.get_events(a, r, g, "s1", token=page.next_backward, start_from_head=True)
        store.filter_events(a, r, g, streams=["s1", "nope"], pattern="line -2", start=0, end=10_000, limit=1)
        store.filter_events(a, r, g, stream_prefix="s", token=None)
        store.tag_group(a, r, g, {"env": "dev"})
        store.put_retention(a, r, g, 1)  # everything is older than a day: purged
        store.delete_stream(a, r, g, "s2")
        store.delete_group(a, r, g)
    finally:
        store.close()
    statements = [s for s in engine.seen if re.match(r"\s*(SELECT|INSERT|UPDATE|DELETE)\s", s, re.IGNORECASE)]
    assert len(statements) > 30
    problems = []
    for statement in statements:
        try:
            pglast.parse_sql(statement)
        except pglast.parser.ParseError as exc:
            problems.append(f"{exc}: {statement[:100]!r}")
    assert not problems, "\n".join(problems)
