"""Comments and docstrings say why, not what happened: no issue numbers and no benchmark figures in the
code (those belong in commit messages and the README's Benchmarks), so the code does not rot into a log."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("parley", "bot", "storage", "lab", "bench")

HISTORY = re.compile(
    r"\bissue\s*#?\d+"  # "issue 2", "issue #14"
    r"|\bmeasured\s*:"  # "measured: 56 ms against 23 ms"
    r"|~\s?\d[\d.,]*\s?(?:ms|s|MB|KB|GB)\b"  # "~175 ms", "~50 MB"
    r"|\d[\d.,]*\s?(?:ms|MB)\s+(?:of CPU\s+)?(?:against|→|vs\.?)\s+~?\d",  # "~415 → ~270 ms", "56 ms against 23"
    re.IGNORECASE,
)


def prose(source: str) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring in a module."""
    found = [
        (token.start[0], token.string)
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            for statement in body:  # docstrings, and the string under a constant that documents it
                if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                    if isinstance(statement.value.value, str):
                        found.append((statement.lineno, statement.value.value))
    return found


def offenders() -> list[str]:
    bad = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, text in prose(path.read_text(encoding="utf-8")):
                if match := HISTORY.search(text):
                    bad.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)!r}")
    return bad


def test_the_pattern_catches_history_and_spares_plain_reasons() -> None:
    for narrated in (
        "17.7 s of speech took ~175 ms as voip/10",
        "(measured: 56 ms against 23 ms for 17.7 s)",
        "a minute from the middle of three: ~415 → ~270 ms of CPU",
        "fixed in issue 14",
    ):
        assert HISTORY.search(narrated), narrated
    for reason in ("Opus frames of 60 ms instead of 20", "files up to 2 GB", "the 20 MB download limit"):
        assert not HISTORY.search(reason), reason


def test_no_history_in_comments_or_docstrings() -> None:
    assert offenders() == []


SQL = re.compile(
    r"^\s*(?:SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(?:TABLE|SCHEMA|INDEX)"
    r"|DROP\s+(?:TABLE|SCHEMA)|PRAGMA\s|BEGIN\b|ROLLBACK\b|COMMIT\b)",
    re.DOTALL,
)
"""Statements as Parley writes them: keywords in capitals."""
DRIVERS = re.compile(r"\b(?:sqlite3|aiosqlite|asyncpg)\.connect\(")


def sql_outside_storage() -> list[str]:
    """SQL text and database connections anywhere but storage/ (tests may look at the tables they check)."""
    bad = []
    for package in ("parley", "bot", "lab", "bench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            where = path.relative_to(ROOT)
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value):
                    bad.append(f"{where}:{node.lineno}: {node.value.strip()[:40]!r}")
                elif isinstance(node, ast.JoinedStr) and SQL.match("".join(
                    v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
                )):  # fmt: skip
                    bad.append(f"{where}:{node.lineno}: an f-string of SQL")
            bad += [f"{where}: {m.group(0)}" for m in DRIVERS.finditer(source)]
    return bad


def test_the_sql_pattern_knows_sql_from_prose() -> None:
    for statement in ("SELECT COUNT(*) FROM jobs", "INSERT INTO users (a) VALUES (?)", "PRAGMA journal_mode=WAL"):
        assert SQL.match(statement), statement
    for prose_text in ("Select a voice", "Update your settings", "Begin with a greeting"):
        assert not SQL.match(prose_text + " below."), prose_text


def test_sql_lives_in_storage_only() -> None:
    assert sql_outside_storage() == []
