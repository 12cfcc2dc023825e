"""Searching the sections by meaning: their embeddings, cached by a hash of each section's text in a SQLite file, so
a restart or an unchanged file costs no call."""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)

# Embeddings asked for in one call (OpenAI takes up to 2048 inputs).
EMBEDDING_BATCH = 256


class Embed(Protocol):
    """The model's embeddings of texts, each call within `timeout` seconds if given (the client's own otherwise)."""

    def __call__(self, texts: list[str], timeout: float | None = None) -> list[list[float]]: ...


class EmbeddingCache:
    """Section embeddings by content hash, in a SQLite file: a restart or an unchanged file costs no call."""

    def __init__(self, path: Path, model: str):
        self._model = model
        self._lock = threading.Lock()
        try:
            self._db: sqlite3.Connection | None = sqlite3.connect(path, check_same_thread=False)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS embeddings "
                "(model TEXT, digest TEXT, vector BLOB, PRIMARY KEY (model, digest))"
            )
        except sqlite3.Error as exc:
            logger.warning("embedding cache %s cannot be used (%s): embeddings are kept in memory only", path, exc)
            self._db = None
        self._memory: dict[str, array] = {}

    def get(self, digests: Iterable[str]) -> dict[str, array]:
        found = {digest: self._memory[digest] for digest in digests if digest in self._memory}
        missing = [digest for digest in digests if digest not in found]
        if self._db is not None and missing:
            with self._lock:
                for digest in missing:
                    row = self._db.execute(
                        "SELECT vector FROM embeddings WHERE model = ? AND digest = ?", (self._model, digest)
                    ).fetchone()
                    if row:
                        found[digest] = array("f", row[0])
        return found

    def put(self, vectors: dict[str, array]) -> None:
        self._memory.update(vectors)
        if self._db is not None:
            with self._lock, self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)",
                    [(self._model, digest, vector.tobytes()) for digest, vector in vectors.items()],
                )

    def keep_only(self, digests: Iterable[str]) -> int:
        """Forget the vectors of sections no longer in the folder (of this model); return how many went."""
        used = set(digests)
        self._memory = {digest: vector for digest, vector in self._memory.items() if digest in used}
        if self._db is None:
            return 0
        with self._lock, self._db:
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS used (digest TEXT PRIMARY KEY)")
            self._db.execute("DELETE FROM used")
            self._db.executemany("INSERT OR IGNORE INTO used VALUES (?)", [(digest,) for digest in used])
            gone = self._db.execute(
                "DELETE FROM embeddings WHERE model = ? AND digest NOT IN (SELECT digest FROM used)", (self._model,)
            ).rowcount
        if gone:
            with self._lock:
                self._db.execute("VACUUM")  # give the space back: a catalogue exported anew leaves every vector stale
        return gone

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def unit(vector: Sequence[float]) -> array:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return array("f", (x / norm for x in vector))
