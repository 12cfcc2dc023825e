"""An answer sent as the model writes it: each finished paragraph goes out as soon as the next one starts.

A paragraph is finished once text follows its blank line. Short paragraphs ("Sure!", a heading)
wait to go out with the next; code blocks and lists are never cut inside, nor is a line that
announces what follows ("Here is how:") cut from it. Whatever is left when the model stops goes
out last, so a one-paragraph answer is one message, sent when it is complete.

Paragraphs held back go out joined, as many whole ones in a message as the channel's limit takes (`fits`), a
message at a time; a paragraph is never cut to fill one. They are held for two reasons. A channel that limits how
often one person may be sent a message (WhatsApp: about one every 6 s) gives the sender a pace: after a message
goes out, the paragraphs finished meanwhile wait until the pace has passed. And after an answer's first
OWN_MESSAGES messages, its first paragraphs each sent on its own as soon as written, the rest fill messages: a
message goes once the next paragraph would not fit beside it, so that a long answer takes as few messages as whole
paragraphs allow and arrives whole within the cap on an answer's messages. When the answer ends, all that is held
goes out.

The sender reads each line once, as it is completed, and keeps what it learned (inside a code
block or not, where the last paragraph started and whether it is a list item): the work grows
with the answer's length, never with its square, however long a code block runs.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

# A paragraph shorter than this waits to go out with the next one.
MIN_PIECE_CHARS = 80
# Messages an answer's first paragraphs go out as, each on its own; after them, paragraphs are joined to fill
# messages. Two, not more: an answer of 14 paragraphs of ~370 characters then fits in Instagram's 8 messages of
# 1,000 bytes (two paragraphs a message), and the person has two paragraphs to read while the rest is written.
OWN_MESSAGES = 2
FENCE = re.compile(r"[ \t]*(```|~~~)")
LIST_ITEM = re.compile(r"[ \t]*(?:[-*+•]|\d{1,3}[.)])[ \t]")
# The start of a paragraph that may still become a list item ("-", "12."): whether it is one is not known yet.
LIST_MARK_SO_FAR = re.compile(r"[-*+•]|\d{1,3}[.)]?")


class ParagraphSender:
    """Takes an answer piece by piece as it is written and sends each finished paragraph with `send`."""

    def __init__(
        self,
        send: Callable[[str], list[tuple[str, str]]],
        prefix: str = "",
        pace: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        fits: Callable[[str], bool] = lambda text: True,
    ):
        self._send = send
        self._prefix = prefix
        self._pace = pace  # seconds at least between two messages
        self._clock = clock
        self._fits = fits  # whether a text goes out as one message
        self._last_sent = -math.inf
        # (message id, text) of each message sent so far.
        self.sent: list[tuple[str, str]] = []
        self.refused = False  # Meta refused a piece: nothing more is sent
        self._begin(prefix)

    def _begin(self, text: str) -> None:
        """Start the unsent text afresh with `text`."""
        # The messages waiting to go out: finished paragraphs, joined as many as fit in one.
        self._held: list[str] = []
        self._buffer = ""
        self._line = 0  # where the line still being written starts
        self._in_code = False  # inside a code block, by the fences of the lines read
        self._first = -1  # where the unsent text's first word starts (-1: none yet)
        self._head_end = 0  # just past the last word of the last line read
        self._announces = False  # the last line read ends with ":"
        self._item: bool | None = None  # the last paragraph starts with a list item (None: not known yet)
        self._gap = False  # blank lines follow the last line read: a paragraph may start next
        self._cut: tuple[int, int] | None = None  # where the unsent text may be cut: (end sent, start kept)
        self._take(text)

    def feed(self, text: str) -> bool:
        """Take the next piece of the answer; return True if a paragraph went out."""
        if self.refused or not text:
            return False
        self._take(text)
        if self._cut is not None:
            (end, start), self._cut = self._cut, None
            self._hold(self._buffer[:end])
            self._buffer = self._buffer[start:]
            self._line -= start
            self._head_end = max(0, self._head_end - start)
            self._first = 0
        went = False
        while self._held and not self.refused and self._clock() - self._last_sent >= self._pace:
            if len(self._held) == 1 and len(self.sent) >= OWN_MESSAGES:
                break  # the message being filled: the next paragraph may still fit in it
            went = self._deliver(self._held.pop(0)) or went
        return went

    def finish(self, ending: str = "") -> None:
        """Send what is left (with `ending` after it, if given), with the paragraphs held."""
        held, rest = self._held, self._buffer.strip()
        self._begin("")
        self._held = held
        for text in (rest, ending):
            if text:
                self._hold(text)
        while self._held and not self.refused:
            self._deliver(self._held.pop(0))

    def cut_off(self) -> None:
        """The model stopped midway: send what is left up to its last whole word, marked as cut."""
        held, rest = self._held, self._buffer
        if rest and not rest[-1].isspace():
            rest = rest.rsplit(None, 1)[0] if len(rest.split()) > 1 else ""
        self._begin(f"{rest.rstrip()}…" if rest.strip() else "")
        self._held = held
        self.finish()

    def take_back(self) -> bool:
        """Forget what was fed, if none of it was sent (the answer is to be asked again); False if some was."""
        if self.sent or self.refused:
            return False
        self._begin(self._prefix)
        return True

    def delivered(self) -> str:
        """Everything that reached the person, as one text."""
        return "\n\n".join(text for _, text in self.sent)

    def _take(self, text: str) -> None:
        """Add text to the unsent text, reading each line it completes, and note the last place it may be cut."""
        searched = len(self._buffer)
        self._buffer += text
        buffer = self._buffer
        while (end := buffer.find("\n", searched)) >= 0:
            self._read_line(buffer[self._line : end])
            self._line = searched = end + 1
        if self._gap:
            # The next paragraph has begun: decide as soon as its start shows whether it is a list item.
            started = buffer[self._line :].lstrip()
            if started and not LIST_MARK_SO_FAR.fullmatch(started):
                self._paragraph_starts(len(buffer) - len(started))
        if self._first < 0 and buffer[self._line :].strip():
            self._first = len(buffer) - len(buffer[self._line :].lstrip())

    def _read_line(self, line: str) -> None:
        words = line.rstrip()
        if not words.strip():
            self._gap = self._first >= 0 and self._head_end > 0
            return
        start = self._line + len(line) - len(line.lstrip())
        if self._gap:
            self._paragraph_starts(start)
        elif self._item is None:
            self._first = start if self._first < 0 else self._first
            self._item = bool(LIST_ITEM.match(self._buffer, start))
        if FENCE.match(line):
            self._in_code = not self._in_code
        self._head_end = self._line + len(words)
        self._announces = words.endswith(":")

    def _paragraph_starts(self, start: int) -> None:
        """A paragraph starts at `start`, after blank lines: note whether the text may be cut before it."""
        self._gap = False
        item = bool(LIST_ITEM.match(self._buffer, start))
        if (
            not self._in_code
            and self._head_end - self._first >= MIN_PIECE_CHARS
            and not self._announces  # a line that announces what follows stays with it
            and not (self._item and item)  # two list items in a row are one list, even with a blank line between
        ):
            self._cut = (self._head_end, start)
        self._item = item

    def _hold(self, paragraph: str) -> None:
        """Hold a finished paragraph: in the last message held if it fits there too, else as a message of its own."""
        if self._held and self._fits(joined := f"{self._held[-1]}\n\n{paragraph}"):
            self._held[-1] = joined
        else:
            self._held.append(paragraph)

    def _deliver(self, piece: str) -> bool:
        sent = self._send(piece)
        if not sent:
            self.refused = True
            return False
        self.sent += sent
        self._last_sent = self._clock()
        return True


def ready(text: str) -> tuple[int, int] | None:
    """Where an answer still being written can be cut now: (end of what goes out, start of what stays), at its
    last paragraph break that a new paragraph follows; None if nowhere yet."""
    sender = ParagraphSender(lambda piece: [])
    sender._take(text)
    return sender._cut
