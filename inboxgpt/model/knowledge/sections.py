"""Reading KNOWLEDGE_DIR: each Markdown, text and PDF file cut into sections at its headings and paragraphs, within
the folder (no link leads out of it) and within a budget per file."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pypdf

from inboxgpt.model.prompt import estimate_tokens

logger = logging.getLogger(__name__)
# pypdf logs its own complaints about a damaged file; the one warning that names the file is ours.
logging.getLogger("pypdf").setLevel(logging.ERROR)

MARKDOWN = {".md", ".markdown"}
KINDS = MARKDOWN | {".txt", ".pdf"}
# A section is a heading's text, or a few paragraphs of it: small enough to pick precisely,
# large enough to carry a whole answer.
SECTION_TOKENS = 300
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


class Unreadable(Exception):
    """A file that cannot be read as knowledge; the message says why."""


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
