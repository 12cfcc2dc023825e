"""The page's own knowledge: the files in KNOWLEDGE_DIR cut into sections, and the sections each message needs.

Knowledge that fits KNOWLEDGE_MAX_TOKENS goes into every system message whole, in a stable order
(a prefix that stays the same is cheaper: OpenAI caches it). Larger knowledge is searched for each
model call: BM25 through SQLite's FTS5 (no service, no API cost, offline), fused with embeddings
(reciprocal rank fusion) when EMBEDDING_MODEL is set. Files are re-read within KNOWLEDGE_RELOAD_SECONDS
of a change, by modification time, in every process.
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from dataclasses import dataclass
from operator import mul
from pathlib import Path

from inboxgpt.config import Settings
from inboxgpt.model.knowledge.embeddings import EMBEDDING_BATCH, Embed, EmbeddingCache, unit
from inboxgpt.model.knowledge.index import LexicalIndex
from inboxgpt.model.knowledge.sections import SECTION_TOKENS, Library, Section, fingerprint, read_folder, sections_of
from inboxgpt.model.prompt import PageKnowledge

__all__ = ["SECTION_TOKENS", "Chosen", "Knowledge", "Section", "open_knowledge", "read_folder", "sections_of"]

logger = logging.getLogger(__name__)

# How much the previous exchange counts beside the new message ("and on Sundays?").
FOLLOW_UP_WEIGHT = 0.5
# Sections scoring under this share of the best one are left out rather than padding the prompt.
RELATIVE_FLOOR = 0.3
# Embedding matches taken into the fusion: the best few, within this share of the best similarity.
# Relative, since models place unrelated texts anywhere from 0.0 to 0.5 of cosine similarity.
EMBEDDING_CANDIDATES = 5
EMBEDDING_FLOOR = 0.8
# Reciprocal rank fusion's constant, as in its paper: damps the weight of the very first ranks.
RRF_K = 60


@dataclass(frozen=True)
class Chosen:
    """The sections one model call carries, and why."""

    sections: tuple[Section, ...]
    tokens: int
    searched: bool
    scores: tuple[float, ...] = ()  # in the order of `sections`, when searched
    # Indices into `sections`, the most relevant to the message first: what a small context window keeps.
    ranking: tuple[int, ...] = ()

    def for_prompt(self) -> PageKnowledge:
        """The sections as the prompt carries them."""
        return PageKnowledge(tuple(section.rendered() for section in self.sections), self.searched, self.ranking)


class Shelf:
    """One reading of the folder, ready to answer: its sections, their index, and their embeddings."""

    def __init__(self, library: Library):
        self.library = library
        self.section_tokens = [section.tokens() for section in library.sections]
        self.tokens = sum(self.section_tokens)
        self.index = LexicalIndex(library.sections)
        self.vectors: dict[int, array] = {}

    def embed(self, cache: EmbeddingCache, embed: Embed) -> int:
        """Give each section its embedding, from the cache or in batches from the model; return the calls made."""
        sections = self.library.sections
        digests = [section.digest() for section in sections]
        known = cache.get(digests)
        missing = [number for number, digest in enumerate(digests) if digest not in known]
        calls = 0
        for start in range(0, len(missing), EMBEDDING_BATCH):
            batch = missing[start : start + EMBEDDING_BATCH]
            vectors = embed([sections[number].rendered() for number in batch])
            calls += 1
            fresh = {digests[number]: unit(vector) for number, vector in zip(batch, vectors, strict=True)}
            cache.put(fresh)
            known.update(fresh)
        self.vectors = {number: known[digest] for number, digest in enumerate(digests)}
        cache.keep_only(digests)
        return calls


class Knowledge:
    """The page's knowledge, kept current: what each model call should carry."""

    def __init__(
        self,
        folder: Path,
        max_tokens: int,
        max_file_bytes: int,
        reload_seconds: float,
        embed: Embed | None = None,
        cache: EmbeddingCache | None = None,
        query_seconds: float | None = None,
    ):
        self._folder = folder
        self.max_tokens = max_tokens
        self._max_file_bytes = max_file_bytes
        self._reload_seconds = reload_seconds
        self._embed = embed
        self._cache = cache
        # A message's embedding waits this long at most before the search goes by words alone.
        self._query_seconds = query_seconds
        self._lock = threading.Lock()
        self._fingerprint = fingerprint(folder)
        self._shelf = self._read()
        self._checked = time.monotonic()
        self._reloader: threading.Thread | None = None

    @property
    def shelf(self) -> Shelf:
        """The current reading. At most every KNOWLEDGE_RELOAD_SECONDS, a thread of its own looks for changed files
        and reads them: the new reading is used once it is ready, and no reply waits for it."""
        if time.monotonic() - self._checked >= self._reload_seconds:
            with self._lock:
                if self._reloader is None and time.monotonic() - self._checked >= self._reload_seconds:
                    self._reloader = threading.Thread(target=self._look_aside, name="knowledge-reload", daemon=True)
                    self._reloader.start()
        return self._shelf

    def settle(self, timeout: float | None = None) -> None:
        """Wait for a look at the files under way to end (tests wait on it)."""
        with self._lock:
            reloader = self._reloader
        if reloader is not None:
            reloader.join(timeout)

    def _look_aside(self) -> None:
        try:
            self._look()
        except Exception:
            logger.exception("knowledge: looking at KNOWLEDGE_DIR again failed; the last reading stays in use")
        finally:
            with self._lock:
                self._checked = time.monotonic()
                self._reloader = None

    def _look(self) -> None:
        now = fingerprint(self._folder)
        if now != self._fingerprint:
            self._fingerprint = now
            # The old shelf is not closed: a thread may be searching it; it closes when dropped.
            self._shelf = self._read()
        elif self._embeds(self._shelf) and len(self._shelf.vectors) < len(self._shelf.library.sections):
            self._embed_shelf(self._shelf)  # the embedding server failed before: try again

    def searched(self, shelf: Shelf) -> bool:
        """Whether this reading is searched for each message (over the budget), rather than sent whole."""
        return shelf.tokens > self.max_tokens

    def _embeds(self, shelf: Shelf) -> bool:
        """Whether this reading needs embeddings: searched, with EMBEDDING_MODEL set."""
        return self._embed is not None and self.searched(shelf)

    def _read(self) -> Shelf:
        library = read_folder(self._folder, self._max_file_bytes)
        for name, why in library.skipped:
            logger.warning("knowledge file %s skipped: %s", name, why)
        shelf = Shelf(library)
        mode = "searched for each message" if self.searched(shelf) else "whole in every prompt"
        logger.info(
            "knowledge: %d files, %d sections, about %d tokens: %s%s",
            len(library.files),
            len(library.sections),
            shelf.tokens,
            mode,
            f" ({library.ignored} files of other kinds ignored)" if library.ignored else "",
        )
        if self._embeds(shelf):
            self._embed_shelf(shelf)
        return shelf

    def _embed_shelf(self, shelf: Shelf) -> None:
        assert self._embed is not None
        assert self._cache is not None
        try:
            calls = shelf.embed(self._cache, self._embed)
        except Exception as exc:  # noqa: BLE001 - whatever the server did, BM25 still answers
            logger.warning("knowledge embeddings failed (%s): searching by words only until the next look", exc)
            return
        logger.info("knowledge embeddings ready: %d embedding calls", calls)

    def choose(self, message: str, context: str = "") -> Chosen:
        """The sections for a model call about `message`, the previous exchange (`context`) helping."""
        shelf = self.shelf
        sections = shelf.library.sections
        ranked = self._ranked(shelf, message, context)
        if not self.searched(shelf):
            return Chosen(sections, shelf.tokens, searched=False, ranking=_whole_ranking(len(sections), ranked))
        chosen: list[tuple[int, float]] = []
        room = self.max_tokens
        for number, score in ranked:
            tokens = shelf.section_tokens[number]
            if tokens <= room:
                chosen.append((number, score))
                room -= tokens
        chosen.sort()  # in the files' order, which reads better than by score
        return Chosen(
            tuple(sections[n] for n, _ in chosen),
            self.max_tokens - room,
            True,
            tuple(score for _, score in chosen),
            tuple(sorted(range(len(chosen)), key=lambda place: -chosen[place][1])),
        )

    def _ranked(self, shelf: Shelf, message: str, context: str) -> list[tuple[int, float]]:
        """Sections over the relevance floor, best first, with their scores (BM25, or fused with embeddings)."""
        scores = shelf.index.scores(message)
        for number, score in shelf.index.scores(context).items():
            scores[number] = scores.get(number, 0.0) + FOLLOW_UP_WEIGHT * score
        lexical = _over_floor(scores, RELATIVE_FLOOR)
        similar = self._similar(shelf, message, context)
        if similar is None:
            return lexical
        fused: dict[int, float] = {}
        for ranking in (lexical, similar):
            for rank, (number, _) in enumerate(ranking):
                fused[number] = fused.get(number, 0.0) + 1 / (RRF_K + rank + 1)
        return sorted(fused.items(), key=lambda item: -item[1])

    def _similar(self, shelf: Shelf, message: str, context: str) -> list[tuple[int, float]] | None:
        """The sections most similar to the message by embedding, best first; None without embeddings."""
        if not self._embed or not shelf.vectors:
            return None
        try:
            query = unit(self._embed([f"{context}\n{message}".strip()], timeout=self._query_seconds)[0])
        except Exception as exc:  # noqa: BLE001 - whatever the server did, BM25 still answers
            logger.warning("knowledge: the message's embedding failed (%s): searching by words only", exc)
            return None
        similarity = {number: sum(map(mul, query, vector)) for number, vector in shelf.vectors.items()}
        return _over_floor(similarity, EMBEDDING_FLOOR)[:EMBEDDING_CANDIDATES]

    def close(self) -> None:
        self._shelf.index.close()
        if self._cache is not None:
            self._cache.close()


def _whole_ranking(count: int, ranked: list[tuple[int, float]]) -> tuple[int, ...]:
    """Every section, those matching the message first (best first), then the rest in the files' order."""
    matching = [number for number, _ in ranked]
    found = set(matching)
    return (*matching, *(number for number in range(count) if number not in found))


def _over_floor(scores: dict[int, float], floor: float) -> list[tuple[int, float]]:
    if not scores:
        return []
    best = max(scores.values())
    return sorted(((n, s) for n, s in scores.items() if s >= floor * best), key=lambda item: -item[1])


def open_knowledge(settings: Settings, embed: Embed | None) -> Knowledge | None:
    """The page's knowledge from the settings, read now; None without KNOWLEDGE_DIR. `embed` is used only with
    EMBEDDING_MODEL."""
    folder = settings.knowledge_dir
    if folder is None:
        return None
    cache = None
    if settings.embedding_model and embed is not None:
        cache = EmbeddingCache(settings.embedding_cache or folder / ".embeddings.sqlite3", settings.embedding_model)
    else:
        embed = None
    return Knowledge(
        folder,
        settings.knowledge_max_tokens,
        settings.knowledge_max_file_bytes,
        settings.knowledge_reload_seconds,
        embed,
        cache,
        settings.embedding_query_seconds,
    )
