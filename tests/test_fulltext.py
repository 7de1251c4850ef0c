"""Folding text for search: what is indexed and what is asked for meet on a real SQLite FTS5 index."""

from __future__ import annotations

import sqlite3

import pytest

from storage.fulltext import MAX_TERMS, fold, fts5_query, terms

MESSAGES = [
    "Le café est fermé à cause de la grève",
    "我们下周三开会讨论预算。",
    "明日の会議は十時からです。資料を準備してください。",
    "Die Spendenquittungen sind fertig, ich bringe sie mit.",
    "BUDGET approved: €1,150 for the Straße festival",
    "예산 회의는 내일입니다",
    "The keys are in the shed",
]


def test_folding() -> None:
    assert fold("Le Café est FERMÉ à cause de la grève") == "le cafe est ferme a cause de la greve"
    assert fold("讨论预算。") == "讨 论 预 算"
    assert fold("からです") == "か ら で す"  # the voicing mark stays: で is not て
    assert fold("ｶﾞｲﾄﾞ ﬁle Straße") == "ガ イ ド file strasse"  # width, ligatures and ß folded
    assert fold("  ") == ""


def test_query_terms() -> None:
    assert terms("Café 预算  café") == ["cafe", "预 算"]
    assert terms("l'entrée") == ["l entree"]
    assert terms("!!! ...") == []
    assert len(terms(" ".join(f"w{i}" for i in range(20)))) == MAX_TERMS


def search(query: str) -> list[str]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(search_text, tokenize='unicode61 remove_diacritics 2')")
    db.executemany("INSERT INTO t (rowid, search_text) VALUES (?, ?)", [(i, fold(m)) for i, m in enumerate(MESSAGES)])
    rows = db.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid", (fts5_query(terms(query)),)).fetchall()
    return [MESSAGES[i] for (i,) in rows]


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("cafe", [0]),
        ("CAFÉ greve", [0]),
        ("预算", [1]),
        ("开会 预算", [1]),
        ("会議", [2]),
        ("準備", [2]),
        ("strasse", [4]),
        ("budget", [4]),
        ("예산", [5]),
        ("shed keys", [6]),
        ("budget keys", []),
        ("算预", []),  # characters in another order are another word
    ],
)
def test_fts5_finds_what_people_type(query: str, found: list[int]) -> None:
    assert search(query) == [MESSAGES[i] for i in found]
