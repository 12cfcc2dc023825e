"""A model's Markdown as each channel shows text: WhatsApp's own markers, or plain readable text for Messenger and
Instagram, which render none. Models write `**bold**`, `# headings` and `[text](url)`, which both show as raw
symbols. Code, in a fenced block or between backticks, and web addresses are never touched: they are shown as
written (WhatsApp renders both kinds of code; on Messenger the backticks at least mark it).

On WhatsApp a single `*` is bold and `_` italic: the model is told to write them, so text already in WhatsApp's
markers is left as it is, and converting twice changes nothing. Neither converter turns an identifier into
emphasis: `snake_case`, `__init__.py` and `2*3*4` stay as written, because emphasis needs its markers at the edges of
words and a double underscore around one bare word is a name, not bold.

A streamed answer is converted a message at a time: Markdown's emphasis never spans two paragraphs, and the
paragraph sender never cuts inside a code block.
"""

from __future__ import annotations

import re
from collections.abc import Callable

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)[^`].*?\1")
# A web address, shown as written (its `_` and `*` are part of it); what closes a sentence or emphasis is not.
ADDRESS = re.compile(r"\b(?:https?://|www\.)[^\s<>`\[\]]*[^\s<>`\[\].,;:!?'\")*_~]")
HEADING = re.compile(r"^(\s{0,3})#{1,6}\s+(.+?)(?:\s+#+)?\s*$")
# Emphasis needs its markers at the edges of words: `2**3` and `snake_case` are no emphasis.
BOLD_STARS = re.compile(r"(?<![*\w])\*\*(?=[^\s*])(.+?)(?<=[^\s*])\*\*(?![*\w])")
# `__x__` around one bare word is a name (`__init__`), never bold.
BOLD_UNDERSCORES = re.compile(r"(?<![_\w])__(?!\w+__(?!_))(?=[^\s_])(.+?)(?<=[^\s_])__(?![_\w])")
ITALIC_STAR = re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])")
ITALIC_UNDERSCORE = re.compile(r"(?<![_\w])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![_\w])")
STRIKE = re.compile(r"(?<![~\w])~~(?=[^\s~])(.+?)(?<=[^\s~])~~(?![~\w])")
LINK = re.compile(r"\[([^\]\n]+)\]\((\S+?)\)")
# Stand for what is shown as written while a line is converted: the n-th such part is OPEN + n + CLOSE. A line that
# holds either character already is left as it is.
OPEN, CLOSE = "\ue000", "\ue001"
HELD = re.compile(f"{OPEN}(\\d+){CLOSE}")

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
    """Markdown in WhatsApp's markers: `**bold**` and headings as `*bold*`, `~~strike~~` as `~strike~`, links as
    `text (url)`; WhatsApp's own `*bold*`, `_italic_` and `~strike~` as they are."""
    return _outside_code(text, _whatsapp_line)


def plain(text: str) -> str:
    """Markdown as plain text: emphasis and heading marks left out; links as `text (url)`."""
    return _outside_code(text, _plain_line)


def _whatsapp_line(line: str) -> str:
    line = HEADING.sub(_bold_heading, line)
    line = BOLD_STARS.sub(r"*\1*", line)
    line = BOLD_UNDERSCORES.sub(r"*\1*", line)
    return STRIKE.sub(r"~\1~", line)


def _bold_heading(heading: re.Match) -> str:
    """A heading in bold as a whole, without the stars inside it (WhatsApp shows no bold within bold)."""
    text = ITALIC_STAR.sub(r"\1", BOLD_STARS.sub(r"\1", heading[2])).strip()
    return f"{heading[1]}*{text}*" if text else heading[0]


def _plain_line(line: str) -> str:
    line = HEADING.sub(r"\1\2", line)
    line = BOLD_STARS.sub(r"\1", line)
    line = BOLD_UNDERSCORES.sub(r"\1", line)
    line = ITALIC_STAR.sub(r"\1", line)
    line = ITALIC_UNDERSCORE.sub(r"\1", line)
    return STRIKE.sub(r"\1", line)


def _outside_code(text: str, convert: Callable[[str], str]) -> str:
    """`convert` applied to every line outside fenced code, with its links written out and its inline code and
    addresses held aside."""
    lines = text.split("\n")
    fenced = False
    for number, line in enumerate(lines):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and OPEN not in line and CLOSE not in line:
            lines[number] = _holding_verbatim(line, convert)
    return "\n".join(lines)


def _holding_verbatim(line: str, convert: Callable[[str], str]) -> str:
    """`convert` applied to the line with its code and addresses held aside (so that emphasis around them still
    converts), then put back; a Markdown link becomes `text (url)`, or its address alone when that is its text."""
    held: list[str] = []

    def hold(text: str) -> str:
        held.append(text)
        return f"{OPEN}{len(held) - 1}{CLOSE}"

    def link(match: re.Match) -> str:
        return hold(match[2]) if match[1] == match[2] else f"{match[1]} ({hold(match[2])})"

    line = INLINE_CODE.sub(lambda code: hold(code[0]), line)
    line = ADDRESS.sub(lambda address: hold(address[0]), LINK.sub(link, line))
    return HELD.sub(lambda m: held[int(m[1])], convert(line))
