"""Full-text search over the group log, the same on both engines: the text is folded in Python before it is
indexed or asked for, so SQLite's FTS5 and PostgreSQL's tsvector see identical tokens.

Folding: case-folded, accents removed (café → cafe), and every Chinese, Japanese or Korean character made a
word of its own — those scripts put no spaces between words, so a query for 预算 becomes the phrase
"预 算" and finds it inside 讨论预算 on either engine. Latin words stay whole.
"""

from __future__ import annotations

import re
import unicodedata

MAX_TERMS = 8
"""Words of one /find that count; more only slow the query."""
MAX_TERM_CHARS = 64

_CJK = re.compile(r"([\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\uff66-\uff9f])")
_WORD = re.compile(r"\w+")
_KANA_MARKS = "\u3099\u309a"  # (han)dakuten: で is not て, so these marks stay


def fold(text: str) -> str:
    """The form that is indexed: lower case, no accents, CJK characters spaced, words joined by spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if c in _KANA_MARKS or unicodedata.category(c) != "Mn")
    )
    return " ".join(_WORD.findall(_CJK.sub(r" \1 ", bare)))


def terms(query: str) -> list[str]:
    """A query's words, each folded; a CJK run stays one term (a phrase of its characters)."""
    found: list[str] = []
    for word in query.split():
        folded = fold(word)[: MAX_TERM_CHARS * 2]
        if folded and folded not in found:
            found.append(folded)
    return found[:MAX_TERMS]


def fts5_query(words: list[str]) -> str:
    """FTS5 MATCH text: every term as a quoted phrase (tokens are \\w only, so no quote needs escaping)."""
    return " AND ".join(f'"{w}"' for w in words)
