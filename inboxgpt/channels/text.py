"""Long replies cut into the messages a channel takes: at paragraphs, lines, sentences or words, within its limit."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

MAX_TEXT_LENGTH = 2000

# Where to cut a long reply, best first: paragraphs, lines, sentences, words.
BREAKS = (
    re.compile(r"\n\s*\n\s*"),
    re.compile(r"\n\s*"),
    re.compile(r"(?:[.!?…]['\"”’)\]]*\s+|[。！？]\s*)"),
    re.compile(r"\s+"),
)


def utf16_units(char: str) -> int:
    # Meta counts Messenger's characters as JavaScript does: an emoji outside the BMP counts twice.
    return 2 if ord(char) > 0xFFFF else 1


def utf8_units(char: str) -> int:
    return len(char.encode("utf-8", "surrogatepass"))


def split_text(text: str, limit: int = MAX_TEXT_LENGTH, units: Callable[[str], int] = utf16_units) -> list[str]:
    """Split text into pieces of at most `limit` units (UTF-16 by default) whose concatenation is `text`.

    One pass: each piece reads only the characters that may go into it, so a long text costs its length.
    A piece never ends inside a character a person sees as one (an emoji joined by ZWJ, a flag, an accent).
    """
    pieces: list[str] = []
    start = 0
    while start < len(text):
        end = _fitting_end(text, start, limit, units)
        if end == len(text):
            pieces.append(text[start:])
            break
        cut = _whole_character_end(text, start, start + _best_cut(text[start:end]))
        pieces.append(text[start:cut])
        start = cut
    return pieces


def _best_cut(window: str) -> int:
    # A break in the first quarter would leave a tiny piece, so a finer kind of break further
    # on is preferred; any break still beats cutting a word in two.
    for shortest in (len(window) // 4, 0):
        for pattern in BREAKS:
            ends = [match.end() for match in pattern.finditer(window) if match.end() > shortest]
            if ends:
                return ends[-1]
    return len(window)


def _fitting_end(text: str, start: int, limit: int, units: Callable[[str], int]) -> int:
    """Where the longest piece from `start` within `limit` units ends."""
    used = 0
    for index in range(start, len(text)):
        used += units(text[index])
        if used > limit:
            return index
    return len(text)


# What joins the character before it into one that a person sees: combining marks, the zero-width joiner
# (on either side), variation selectors, skin tones and tag characters (subdivision flags).
ZWJ = "\u200d"


def _joins(before: str, char: str) -> bool:
    code = ord(char)
    return (
        before == ZWJ
        or char == ZWJ
        or unicodedata.category(char) in ("Mn", "Me", "Mc")
        or 0xFE00 <= code <= 0xFE0F
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _whole_character_end(text: str, start: int, cut: int) -> int:
    """`cut`, moved back to where a character a person sees ends (never back to `start`: a piece is never empty)."""
    while cut - 1 > start and cut < len(text):
        before, char = text[cut - 1], text[cut]
        if _regional(before) and _regional(char):
            # Flags are pairs of regional indicators: the cut is inside one if an odd number precede it.
            run = cut
            while run > start and _regional(text[run - 1]):
                run -= 1
            if (cut - run) % 2 == 0:
                return cut
        elif not _joins(before, char):
            return cut
        cut -= 1
    return cut
