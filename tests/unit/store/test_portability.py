"""Every SQL string in Hearth's source stays in the portable subset `hearth.store.engine` describes, so
that another engine (PostgreSQL) runs every component unchanged."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import hearth

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
               "SELECT json_extract(doc, '$.a') FROM t", "SELECT a FROM t WHERE b = 1 AND 0"]
    for sample in samples:
        assert any(re.search(p, sample, re.IGNORECASE | re.MULTILINE) for p in FORBIDDEN), sample
    assert not any(re.search(p, "INSERT INTO t VALUES (?) ON CONFLICT (a) DO NOTHING", re.IGNORECASE)
                   for p in FORBIDDEN)
