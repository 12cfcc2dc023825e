"""An answer sent as the model writes it: each finished paragraph goes out as soon as the next one starts.

A paragraph is finished once text follows its blank line. Short paragraphs ("Sure!", a heading)
wait to go out with the next; code blocks and lists are never cut inside, nor is a line that
announces what follows ("Here is how:") cut from it. Whatever is left when the model stops goes
out last, so a one-paragraph answer is one message, sent when it is complete.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# A paragraph shorter than this waits to go out with the next one.
MIN_PIECE_CHARS = 80
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
FENCE = re.compile(r"^[ \t]*(```|~~~)", re.MULTILINE)
LIST_ITEM = re.compile(r"[ \t]*(?:[-*+•]|\d{1,3}[.)])[ \t]")


def ready(text: str) -> tuple[int, int] | None:
    """Where an answer still being written can be cut now: (end of what goes out, start of what stays), at its
    last paragraph break that a new paragraph follows; None if nowhere yet."""
    found = None
    for brk in PARAGRAPH_BREAK.finditer(text):
        if brk.end() == len(text):
            break  # nothing follows yet: the next paragraph may still be a list item or a code block's end
        head, rest = text[: brk.start()], text[brk.end() :]
        if len(head.strip()) >= MIN_PIECE_CHARS and _may_cut_between(head, rest):
            found = (brk.start(), brk.end())
    return found


def _may_cut_between(head: str, rest: str) -> bool:
    if len(FENCE.findall(head)) % 2:
        return False  # inside a code block
    last_line = head.rsplit("\n", 1)[-1]
    if last_line.rstrip().endswith(":"):
        return False  # it announces what follows
    # Two list items in a row are one list, even with a blank line between them.
    return not (LIST_ITEM.match(_last_paragraph(head)) and LIST_ITEM.match(rest))


def _last_paragraph(head: str) -> str:
    return PARAGRAPH_BREAK.split(head)[-1]


class ParagraphSender:
    """Takes an answer piece by piece as it is written and sends each finished paragraph with `send`."""

    def __init__(self, send: Callable[[str], list[tuple[str, str]]], prefix: str = ""):
        self._send = send
        self._buffer = prefix
        # (message id, text) of each message sent so far.
        self.sent: list[tuple[str, str]] = []
        self.refused = False  # Meta refused a piece: nothing more is sent

    def feed(self, text: str) -> bool:
        """Take the next piece of the answer; return True if a paragraph went out."""
        self._buffer += text
        # Cheap tests first: this runs for every few characters the model writes.
        if self.refused or not text.strip() or "\n" not in self._buffer:
            return False
        cut = ready(self._buffer)
        if cut is None:
            return False
        piece, self._buffer = self._buffer[: cut[0]], self._buffer[cut[1] :]
        return self._deliver(piece)

    def finish(self, ending: str = "") -> None:
        """Send what is left (with `ending` after it, if given)."""
        rest = self._buffer.strip()
        self._buffer = ""
        text = f"{rest}\n\n{ending}" if rest and ending else rest or ending
        if text and not self.refused:
            self._deliver(text)

    def cut_off(self) -> None:
        """The model stopped midway: send what is left up to its last whole word, marked as cut."""
        rest = self._buffer
        if rest and not rest[-1].isspace():
            rest = rest.rsplit(None, 1)[0] if len(rest.split()) > 1 else ""
        self._buffer = f"{rest.rstrip()}…" if rest.strip() else ""
        self.finish()

    def delivered(self) -> str:
        """Everything that reached the person, as one text."""
        return "\n\n".join(text for _, text in self.sent)

    def _deliver(self, piece: str) -> bool:
        sent = self._send(piece)
        if not sent:
            self.refused = True
            return False
        self.sent += sent
        return True
