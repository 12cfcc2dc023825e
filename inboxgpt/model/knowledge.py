"""The page's own knowledge: the files in KNOWLEDGE_DIR cut into sections, and the sections each message needs.

Knowledge that fits KNOWLEDGE_MAX_TOKENS goes into every system message whole, in a stable order
(a prefix that stays the same is cheaper: OpenAI caches it). Larger knowledge is searched for each
model call: BM25 through SQLite's FTS5 (no service, no API cost, offline), fused with embeddings
(reciprocal rank fusion) when EMBEDDING_MODEL is set. Files are re-read within KNOWLEDGE_RELOAD_SECONDS
of a change, by modification time, in every process.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import sqlite3
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import mul
from pathlib import Path
from typing import Protocol

import click
import pypdf

from inboxgpt.config import ConfigError, Settings
from inboxgpt.model.gpt import ChatModel
from inboxgpt.model.prompt import estimate_tokens

logger = logging.getLogger(__name__)
# pypdf logs its own complaints about a damaged file; the one warning that names the file is ours.
logging.getLogger("pypdf").setLevel(logging.ERROR)

MARKDOWN = {".md", ".markdown"}
KINDS = MARKDOWN | {".txt", ".pdf"}
# A section is a heading's text, or a few paragraphs of it: small enough to pick precisely,
# large enough to carry a whole answer.
SECTION_TOKENS = 300
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
# Sections a search returns at most: more than any prompt's knowledge budget holds.
MAX_MATCHES = 64
# Embeddings asked for in one call (OpenAI takes up to 2048 inputs).
EMBEDDING_BATCH = 256
# Words that match every section and mean nothing to a search.
STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        """a about am an and any are as at be been but by can could did do does for from had has have hi hello how
        i if in is it its just me my no not of on or our please so than that the their them then there these they
        this to too us was we were what when where which who why will with would you your yours""",
    )
)
# A PDF is read within a budget per file: a file of a few kilobytes can hold pages whose drawing instructions take
# pypdf seconds each to read (one compressed stream of a megabyte, shared by every page). Checked between pages.
PDF_SECONDS = 10.0
PDF_MAX_PAGES = 1000
PDF_MAX_CHARS = 2_000_000
# A page drawn with more instructions than this is skipped: a page of text takes a few tens of kilobytes.
PDF_PAGE_BYTES = 256 * 1024
HEADING = re.compile(r"^(#{1,6})\s+(.+?)[\s#]*$")
FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Section:
    """A piece of one file, with the headings it sits under."""

    source: str  # the file's path inside KNOWLEDGE_DIR
    headings: tuple[str, ...]
    text: str

    @property
    def title(self) -> str:
        """Where the section comes from: file, then headings."""
        return " > ".join((self.source, *self.headings))

    def rendered(self) -> str:
        """The section as the model reads it."""
        return f"## {self.title}\n{self.text}"

    def tokens(self) -> int:
        return estimate_tokens(self.rendered())

    def digest(self) -> str:
        """What an embedding is cached under: the hash of the text it was computed from."""
        return hashlib.sha256(self.rendered().encode()).hexdigest()


@dataclass(frozen=True)
class Library:
    """What one reading of KNOWLEDGE_DIR found."""

    sections: tuple[Section, ...]
    files: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (file, why)
    ignored: int  # files of other kinds (not Markdown, text or PDF)


@dataclass(frozen=True)
class Chosen:
    """The sections one model call carries, and why."""

    sections: tuple[Section, ...]
    tokens: int
    searched: bool
    scores: tuple[float, ...] = ()  # in the order of `sections`, when searched


class Unreadable(Exception):
    """A file that cannot be read as knowledge; the message says why."""


# --- reading files into sections ---


def read_folder(folder: Path, max_bytes: int) -> Library:
    """Read every Markdown, text and PDF file under `folder`; skip (and say why) what cannot be read."""
    sections: list[Section] = []
    files: list[str] = []
    skipped: list[tuple[str, str]] = []
    ignored = 0
    inside = folder.resolve()
    for path in _files(folder):
        name = path.relative_to(folder).as_posix()
        if path.suffix.lower() not in KINDS:
            ignored += 1
            continue
        if not path.resolve().is_relative_to(inside):
            # A link to /etc/passwd or to the bot's own .env would put it in the prompt.
            skipped.append((name, "a link to a file outside KNOWLEDGE_DIR"))
            continue
        try:
            found = _sections_of_file(path, name, max_bytes)
        except Unreadable as why:
            skipped.append((name, str(why)))
            continue
        files.append(name)
        sections += found
    return Library(tuple(sections), tuple(files), tuple(skipped), ignored)


def _files(folder: Path) -> list[Path]:
    """The visible files under `folder`, in a stable order (hidden ones hold caches and editors' files)."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, modification time and size of every visible file: changes when any file does."""
    found = []
    for path in _files(folder):
        try:
            stat = path.stat()
        except OSError:
            continue  # removed while listing: the next look sees it gone
        found.append((path.as_posix(), stat.st_mtime_ns, stat.st_size))
    return tuple(found)


def _sections_of_file(path: Path, name: str, max_bytes: int) -> list[Section]:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise Unreadable(f"cannot be read ({exc.strerror})") from None
    if size == 0:
        raise Unreadable("empty")
    if size > max_bytes:
        raise Unreadable(f"{size:,} bytes, over KNOWLEDGE_MAX_FILE_BYTES ({max_bytes:,})")
    if path.suffix.lower() == ".pdf":
        found = [
            section
            for number, page in enumerate(_pdf_pages(path), 1)
            for section in sections_of(name, page, markdown=False, headings=(f"page {number}",))
        ]
    else:
        found = sections_of(name, _text(path), markdown=path.suffix.lower() in MARKDOWN)
    if not found:
        raise Unreadable("no text in it")
    return found


def _text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Unreadable(f"cannot be read ({exc.strerror})") from None
    if b"\0" in data:
        raise Unreadable("binary, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Unreadable("not UTF-8 text: save it as UTF-8") from None


def _pdf_pages(path: Path) -> list[str]:
    """The text of each page, within the budget (PDF_SECONDS, PDF_MAX_PAGES, PDF_MAX_CHARS, PDF_PAGE_BYTES): what
    is over it is left unread, with a warning."""
    deadline = time.monotonic() + PDF_SECONDS
    pages: list[str] = []
    chars = 0
    over = ""
    try:
        reader = pypdf.PdfReader(path)
        if reader.is_encrypted:
            reader.decrypt("")
        for number, page in enumerate(reader.pages, 1):
            if number > PDF_MAX_PAGES or chars >= PDF_MAX_CHARS or time.monotonic() > deadline:
                over = f"only its first {number - 1} pages were read (a PDF is read within {PDF_SECONDS:g} s, "
                over += f"{PDF_MAX_PAGES:,} pages and {PDF_MAX_CHARS:,} characters)"
                break
            contents = page.get_contents()
            size = len(contents.get_data()) if contents is not None else 0
            if size > PDF_PAGE_BYTES:
                over = f"page {number} was skipped: its {size:,} bytes of drawing are not a page of text"
                pages.append("")
                continue
            text = page.extract_text() or ""
            pages.append(text[: PDF_MAX_CHARS - chars])
            chars += len(text)
    # pypdf raises many kinds of error on a damaged file (PdfReadError, ValueError, KeyError...):
    # any of them means this file is skipped, never that the bot stops.
    except Exception as exc:  # noqa: BLE001
        raise Unreadable(f"not a readable PDF ({type(exc).__name__})") from None
    if over:
        logger.warning("knowledge file %s: %s", path.name, over)
    return pages


def sections_of(source: str, text: str, markdown: bool, headings: tuple[str, ...] = ()) -> list[Section]:
    """Cut a file's text into sections: at Markdown headings (outside code blocks), then at paragraphs."""
    blocks: list[tuple[tuple[str, ...], list[str]]] = [(headings, [])]
    path: list[tuple[int, str]] = []
    in_code = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
        heading = HEADING.match(line) if markdown and not in_code else None
        if heading:
            level = len(heading.group(1))
            path = [(lvl, title) for lvl, title in path if lvl < level] + [(level, heading.group(2))]
            blocks.append((headings + tuple(title for _, title in path), []))
        else:
            blocks[-1][1].append(line)
    return [
        Section(source, under, chunk) for under, lines in blocks for chunk in _chunks("\n".join(lines), SECTION_TOKENS)
    ]


def _chunks(text: str, max_tokens: int) -> list[str]:
    """The text's paragraphs packed into pieces of at most `max_tokens`; a longer paragraph is cut at sentences,
    a longer sentence at words."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    pieces: list[str] = []
    for paragraph in paragraphs:
        if estimate_tokens(paragraph) <= max_tokens:
            pieces.append(paragraph)
            continue
        for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
            too_long = estimate_tokens(sentence) > max_tokens
            pieces += _pack(_words(sentence, max_tokens), max_tokens, " ") if too_long else [sentence]
    return _pack(pieces, max_tokens, "\n\n")


def _words(sentence: str, max_tokens: int) -> Iterable[str]:
    """The sentence's words; one longer than a section (a line of data with no space) cut into pieces that fit."""
    size = (max_tokens - 4) * 3 // 4  # characters that fit even at four bytes each
    for word in sentence.split(" "):
        if estimate_tokens(word) <= max_tokens:
            yield word
        else:
            yield from (word[start : start + size] for start in range(0, len(word), size))


def _pack(pieces: Iterable[str], max_tokens: int, joiner: str) -> list[str]:
    packed: list[str] = []
    for piece in pieces:
        if packed and estimate_tokens(packed[-1] + joiner + piece) <= max_tokens:
            packed[-1] += joiner + piece
        else:
            packed.append(piece)
    return packed


# --- searching ---


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


def _unit(vector: Sequence[float]) -> array:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return array("f", (x / norm for x in vector))


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
            fresh = {digests[number]: _unit(vector) for number, vector in zip(batch, vectors, strict=True)}
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
        """Wait for a look at the files under way to end (tests, and the terminal command)."""
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
        if not self.searched(shelf):
            return Chosen(sections, shelf.tokens, searched=False)
        ranked = self._ranked(shelf, message, context)
        chosen: list[tuple[int, float]] = []
        room = self.max_tokens
        for number, score in ranked:
            tokens = shelf.section_tokens[number]
            if tokens <= room:
                chosen.append((number, score))
                room -= tokens
        chosen.sort()  # in the files' order, which reads better than by score
        return Chosen(
            tuple(sections[n] for n, _ in chosen), self.max_tokens - room, True, tuple(score for _, score in chosen)
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
            query = _unit(self._embed([f"{context}\n{message}".strip()], timeout=self._query_seconds)[0])
        except Exception as exc:  # noqa: BLE001 - whatever the server did, BM25 still answers
            logger.warning("knowledge: the message's embedding failed (%s): searching by words only", exc)
            return None
        similarity = {number: sum(map(mul, query, vector)) for number, vector in shelf.vectors.items()}
        return _over_floor(similarity, EMBEDDING_FLOOR)[:EMBEDDING_CANDIDATES]

    def close(self) -> None:
        self._shelf.index.close()
        if self._cache is not None:
            self._cache.close()


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


def knowledge_command(load: Callable[[], Settings]) -> click.Command:
    """The `knowledge` command, reading its settings with `load`."""

    @click.command("knowledge")
    @click.argument("question", required=False)
    def knowledge(question: str | None) -> None:
        """Show the page's knowledge (KNOWLEDGE_DIR), or the sections QUESTION would bring to the model."""
        try:
            settings = load()
        except ConfigError as error:
            raise click.ClickException(str(error)) from None
        if settings.knowledge_dir is None:
            raise click.ClickException("KNOWLEDGE_DIR is not set: name the folder of the page's documents")
        model = ChatModel(settings) if settings.embedding_model and settings.openai_api_key.reveal() else None
        found = open_knowledge(settings, model.embed if model else None)
        assert found is not None
        try:
            if question is None:
                _describe(found, settings)
            else:
                _explain(found, question)
        finally:
            found.close()
            if model is not None:
                model.close()

    return knowledge


def _describe(found: Knowledge, settings: Settings) -> None:
    shelf = found.shelf
    library = shelf.library
    click.echo(
        f"{settings.knowledge_dir}: {len(library.files)} files, {len(library.sections)} sections, "
        f"about {shelf.tokens} tokens"
    )
    if not found.searched(shelf):
        click.echo(f"mode: whole, in every prompt (within KNOWLEDGE_MAX_TOKENS={found.max_tokens})")
    else:
        how = f"words (BM25) and embeddings ({settings.embedding_model})" if shelf.vectors else "words (BM25)"
        click.echo(f"mode: searched for each message by {how}, up to KNOWLEDGE_MAX_TOKENS={found.max_tokens}")
    if settings.embedding_model and not settings.openai_api_key.reveal():
        click.echo("EMBEDDING_MODEL is set but OPENAI_API_KEY is not: shown as searched by words only")
    for name, why in library.skipped:
        click.echo(f"skipped: {name}: {why}")
    click.echo("sections:")
    for section in library.sections:
        click.echo(f"  {section.title} ({section.tokens()} tokens)")


def _explain(found: Knowledge, question: str) -> None:
    chosen = found.choose(question)
    if not chosen.searched:
        click.echo(f"whole: every message brings all {len(chosen.sections)} sections ({chosen.tokens} tokens)")
        for section in chosen.sections:
            click.echo(f"  {section.title}")
        return
    click.echo(f"searched: {len(chosen.sections)} sections, {chosen.tokens} tokens")
    for section, score in zip(chosen.sections, chosen.scores, strict=True):
        click.echo(f"  {score:7.3f}  {section.title}")
    if not chosen.sections:
        click.echo("  (none: the model is told the knowledge does not cover it)")
