"""A model's Markdown as each channel shows text: WhatsApp's own markers, or plain readable text for Messenger and
Instagram, which render none. Models write `**bold**`, `# headings` and `[text](url)`, which both show as raw
symbols. Code, in a fenced block or between backticks, is never touched: it is shown as written (WhatsApp renders
both kinds; on Messenger the backticks at least mark it).

A streamed answer is converted a message at a time: Markdown's emphasis never spans two paragraphs, and the
paragraph sender never cuts inside a code block.
"""

from __future__ import annotations

import re
from collections.abc import Callable

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)[^`].*?\1")
HEADING = re.compile(r"^(\s{0,3})#{1,6}\s+(.+?)(?:\s+#+)?\s*$")
BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
ITALIC_STAR = re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])")
ITALIC_UNDERSCORE = re.compile(r"(?<![_\w])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![_\w])")
STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
LINK = re.compile(r"\[([^\]\n]+)\]\((\S+?)\)")
# Stands for WhatsApp's bold marker while italics are converted (Markdown's `*x*` is italic, WhatsApp's bold).
BOLD_MARK = "\x00"

# What the model is told, after the owner's prompt, about how the person's channel shows its answer: models write
# Markdown unless told, and the conversion above can only make it readable, not what the model would have written.
PLAIN_NOTE = (
    "This conversation is on {channel}, which shows no formatting: write plain text, without Markdown (no **, no "
    "# headings, no tables); write a link as its address."
)
WHATSAPP_NOTE = (
    "This conversation is on WhatsApp, which shows *bold*, _italic_ and ~strikethrough~ (one marker each side) "
    "but no Markdown headings, tables or [text](link) links: use its markers sparingly and write a link as its "
    "address."
)


def whatsapp(text: str) -> str:
    """Markdown in WhatsApp's markers: `*bold*`, `_italic_`, `~strike~`; headings bold; links as `text (url)`."""
    return _outside_code(text, _whatsapp_line)


def plain(text: str) -> str:
    """Markdown as plain text: emphasis and heading marks left out; links as `text (url)`."""
    return _outside_code(text, _plain_line)


def _whatsapp_line(line: str) -> str:
    line = HEADING.sub(lambda m: f"{m[1]}{BOLD_MARK}{m[2]}{BOLD_MARK}", line)
    line = BOLD.sub(lambda m: f"{BOLD_MARK}{m[1] or m[2]}{BOLD_MARK}", line)
    line = ITALIC_STAR.sub(r"_\1_", line)
    line = STRIKE.sub(r"~\1~", line)
    return _links(line).replace(BOLD_MARK, "*")


def _plain_line(line: str) -> str:
    line = HEADING.sub(r"\1\2", line)
    line = BOLD.sub(lambda m: m[1] or m[2], line)
    line = ITALIC_STAR.sub(r"\1", line)
    line = ITALIC_UNDERSCORE.sub(r"\1", line)
    line = STRIKE.sub(r"\1", line)
    return _links(line)


def _links(line: str) -> str:
    return LINK.sub(lambda m: m[2] if m[1] == m[2] else f"{m[1]} ({m[2]})", line)


def _outside_code(text: str, convert: Callable[[str], str]) -> str:
    """`convert` applied to every line outside fenced code, and to every part of a line outside inline code."""
    lines = text.split("\n")
    fenced = False
    for number, line in enumerate(lines):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and BOLD_MARK not in line:
            lines[number] = _outside_inline_code(line, convert)
    return "\n".join(lines)


def _outside_inline_code(line: str, convert: Callable[[str], str]) -> str:
    parts, last = [], 0
    for code in INLINE_CODE.finditer(line):
        parts += [convert(line[last : code.start()]), code[0]]
        last = code.end()
    return "".join([*parts, convert(line[last:])])
