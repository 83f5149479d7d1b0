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
from hearth.store.component import split_sql
from hearth.store.engine import POSTGRESQL, SQLITE

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
