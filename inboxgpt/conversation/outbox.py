"""What the bot sends a person: each message through their channel, noted so that its echo is known as the bot's own
and a reply to it can quote it; and one answer's messages, within MAX_MESSAGES_PER_REPLY."""

from __future__ import annotations

import logging
from collections.abc import Callable

from inboxgpt.channels.base import Channels
from inboxgpt.channels.graph import GraphError
from inboxgpt.conversation.pauses import Pauses
from inboxgpt.conversation.transcript import LATE_REFUSED, Transcripts
from inboxgpt.events import Event
from inboxgpt.model import prompt
from inboxgpt.store import Store, StoreUnavailable, Turn

logger = logging.getLogger(__name__)


class Mailbox:
    """Sends to people and keeps their history: the two steps every handler ends with."""

    def __init__(
        self,
        channels: Channels,
        store: Store,
        pauses: Pauses,
        history_max_tokens: int,
        transcripts: Transcripts | None = None,
    ):
        self._channels = channels
        self._store = store
        self._pauses = pauses
        self._history_max_tokens = history_max_tokens
        # Every message sent or refused goes into the person's transcript too (the console's).
        self.transcripts = transcripts or Transcripts(store, days=0)

    def split(self, psid: str, text: str) -> list[str]:
        """The messages `text` becomes for this person, within their channel's length limit."""
        return self._channels.split(psid, text)

    def formatting_note(self, psid: str) -> str:
        """What the model is told about how this person's channel shows its answers."""
        return self._channels.formatting_note(psid)

    def message_gap(self, psid: str) -> float:
        """Seconds a streamed answer leaves between its messages to this person."""
        return self._channels.message_gap(psid)

    def send(self, event: Event, text: str) -> list[tuple[str, str]]:
        """Send a reply to the event's person, split as their channel needs; return (message id, text) of each
        message sent (none if Meta refused: already logged)."""
        return self._noted(event, text, lambda: self._channels.send_text(event.psid, text))

    def send_piece(self, event: Event, piece: str, offers: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """Send one message already split to the channel's limit (a piece of `split`), as `send` does, with the
        person's own details offered as quick replies where the channel has them."""
        return self._noted(event, piece, lambda: self._channels.send_message(event.psid, piece, offers))

    def _noted(self, event: Event, text: str, send: Callable[[], list[tuple[str, str]]]) -> list[tuple[str, str]]:
        """Send, then note what went out; a refusal because another app holds the thread starts a pause, one
        because the person wrote too long ago leaves them to the staff."""
        try:
            sent = send()
        except GraphError as error:
            self.transcripts.not_delivered(event.psid, text, error.meaning)
            if error.thread_elsewhere:
                # Another app (the Page Inbox) controls the conversation: its people are answering.
                self._pauses.pause(event.psid, self._pauses.event_time(event), "thread_elsewhere")
            elif error.outside_window:
                self.transcripts.needs_person(event, LATE_REFUSED)
            return []
        for mid, piece in sent:
            self.transcripts.sent(event.psid, piece, mid=mid)
        try:
            # Kept for replies that quote them, and to know their echoes as the bot's own however long they wait
            # in the person's queue: as long as a pause is.
            quotes = [(mid, piece[: prompt.REMEMBERED_CHARS]) for mid, piece in sent]
            self._store.remember_sent(event.psid, quotes, self._pauses.kept_seconds)
        except StoreUnavailable as exc:
            logger.warning("reply to psid=%s was sent but not remembered: %s", event.psid, exc)
        return sent

    def keep(self, psid: str, turn: Turn) -> None:
        """Add a turn to the history; if the store fails now, the turn is lost, not the event answered twice."""
        try:
            self._store.append(psid, prompt.within_history(turn, self._history_max_tokens))
        except StoreUnavailable as exc:
            # Leaving the event queued would answer it again: the person may already have the reply.
            logger.warning("psid=%s: a turn was not kept in the history: %s", psid, exc)


class Outbox:
    """Sends one answer's messages: at most MAX_MESSAGES_PER_REPLY of them (and, when the answer was cut, the
    notice that says so). Past the cap, or once Meta refused a message, the rest of the answer is not sent."""

    def __init__(
        self,
        send: Callable[[str, tuple[str, ...]], list[tuple[str, str]]],
        split: Callable[[str], list[str]],
        cap: int,
    ):
        self._send = send
        # Quick replies offered with the answer's last message, once known (see Replier).
        self.offers: tuple[str, ...] = ()
        self._split = split
        self._room = cap
        # (message id, text) of each message sent, and each text given as it was delivered.
        self.sent: list[tuple[str, str]] = []
        self._delivered: list[str] = []
        self.full = False  # the answer needed more messages than the cap allows
        self.refused = False  # Meta refused a message

    def __call__(self, text: str) -> list[tuple[str, str]]:
        """Send a part of the answer as one or more messages; return those sent (none: nothing more will be)."""
        if self.full or self.refused:
            return []
        pieces = [piece for piece in self._split(text) if piece.strip()]
        if len(pieces) > self._room:
            self.full, pieces = True, pieces[: self._room]
        sent: list[tuple[str, str]] = []
        for number, piece in enumerate(pieces, 1):
            took = self._send(piece, self.offers if number == len(pieces) else ())
            if not took:
                self.refused = True
                break
            sent += took
        self._room -= len(sent)
        self.sent += sent
        if sent:
            self._delivered.append("".join(piece for _, piece in sent))
        return sent

    @property
    def spent(self) -> bool:
        """Every message the answer may have has been sent: any more of it would be cut."""
        return self._room <= 0

    def fits(self, text: str) -> bool:
        """Whether `text` goes out as one message."""
        return len(self._split(text)) <= 1

    def notice(self, text: str) -> None:
        """Say that the answer stops here."""
        if not self.refused:
            self.sent += self._send(text, ())

    def delivered(self) -> str:
        """The answer as it reached the person."""
        return "\n\n".join(self._delivered)
