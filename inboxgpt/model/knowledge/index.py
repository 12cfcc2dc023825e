"""Searching the sections by words: BM25 through SQLite's FTS5, in memory (no service, no API cost, offline)."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Sequence

from inboxgpt.model.knowledge.sections import Section

# Sections a search returns at most: more than any prompt's knowledge budget holds.
MAX_MATCHES = 64
# Words that match every section and mean nothing to a search.
STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        """a about am an and any are as at be been but by can could did do does for from had has have hi hello how
        i if in is it its just me my no not of on or our please so than that the their them then there these they
        this to too us was we were what when where which who why will with would you your yours""",
    )
)


def query_terms(text: str) -> list[str]:
    """The words of a message worth searching for, once each, in order."""
    words = re.findall(r"\w+", text.lower())
    return list(dict.fromkeys(word for word in words if word not in STOPWORDS))


class LexicalIndex:
    """BM25 over the sections, by SQLite's FTS5 in memory."""

    def __init__(self, sections: Sequence[Section]):
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        # Porter stemming: "opening" finds "open", "sundays" finds "Sunday".
        self._db.execute("CREATE VIRTUAL TABLE sections USING fts5(title, body, tokenize='porter unicode61')")
        self._db.executemany(
            "INSERT INTO sections (rowid, title, body) VALUES (?, ?, ?)",
            [(number, " ".join(section.headings), section.text) for number, section in enumerate(sections)],
        )
        self._lock = threading.Lock()

    def scores(self, text: str) -> dict[int, float]:
        """BM25 score of each section matching any of the text's words (higher is better)."""
        terms = query_terms(text)[:32]
        if not terms:
            return {}
        match = " OR ".join(f'"{term}"' for term in terms)
        # A heading names what its text is about: a word in it counts twice. More matches than a
        # prompt's budget can hold are of no use.
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid, -bm25(sections, 2.0, 1.0) AS score FROM sections WHERE sections MATCH ? "
                "ORDER BY score DESC LIMIT ?",
                (match, MAX_MATCHES),
            ).fetchall()
        return dict(rows)

    def close(self) -> None:
        self._db.close()
