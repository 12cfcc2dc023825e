"""What the business's staff do to a conversation from the console: take it over (the assistant stays silent), send a
message through its channel (past WhatsApp's window, an approved template), hand it back, add a private note,
resolve it. Each is kept in the transcript with the staff member's name, and logged with their name and the person's
key, never the text."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from inboxgpt.channels.base import Channels, Template, Window
from inboxgpt.channels.graph import GraphError
from inboxgpt.conversation.pauses import Pauses
from inboxgpt.conversation.transcript import Transcripts
from inboxgpt.model import prompt
from inboxgpt.store import Store, Turn

logger = logging.getLogger(__name__)

# A take-over lasts until handed back, or at most this long: past Messenger's HUMAN_AGENT days no one can answer.
TAKE_OVER_SECONDS = 7 * 24 * 3600.0
TAKE_METADATA = "One of the page's people took the conversation over in the console."


class NotSent(Exception):
    """A staff message that did not reach the person; the message says why, for the staff."""


@dataclass(frozen=True)
class Reach:
    """How the staff may write to a person now, and since when the person has been silent."""

    window: Window
    since_last_message: float | None  # seconds; None when the person never wrote (kept)


class Desk:
    """The staff's actions on one person's conversation."""

    def __init__(
        self,
        store: Store,
        channels: Channels,
        pauses: Pauses,
        transcripts: Transcripts,
        history_max_tokens: int,
        clock: Callable[[], float] = time.time,
    ):
        self._store = store
        self._channels = channels
        self._pauses = pauses
        self._transcripts = transcripts
        self._history_max_tokens = history_max_tokens
        self._clock = clock

    def reach(self, psid: str) -> Reach:
        """How the staff may write to the person now."""
        person_at = self._store.transcript_summary(psid).get("person_at")
        if not person_at:
            return Reach(Window.CLOSED, None)
        since = max(0.0, self._clock() - float(person_at))
        return Reach(self._channels.staff_window(psid, since), since)

    def take_over(self, psid: str, staff: str) -> None:
        """The assistant stays silent for the person until handed back (the pause hand-written messages start); the
        thread is taken from the page's inbox, where one holds it, so the staff's messages are not refused."""
        self._pauses.hold(psid, TAKE_OVER_SECONDS, "console")
        self._channels.take_thread(psid, TAKE_METADATA)
        self._transcripts.taken_over(psid, staff)
        logger.info("console: staff=%s took over psid=%s", staff, psid)

    def send(self, psid: str, staff: str, text: str) -> None:
        """Send the staff's message through the person's channel, as its window allows; it joins the history the
        model reads (as the page's words) and the transcript (with the staff's name). NotSent if it could not go."""
        window = self.reach(psid).window
        if window is Window.CLOSED:
            raise NotSent("The person last wrote too long ago: their channel no longer lets the page write to them.")
        self._deliver(psid, staff, text, window.value, lambda: self._channels.send_staff(psid, text, window))

    def templates(self, psid: str) -> list[Template]:
        """The approved templates the staff may send the person past the reply window (none on most channels).
        NotSent if they could not be read."""
        try:
            return self._channels.templates(psid)
        except GraphError as error:
            logger.warning("console: the templates could not be read: %s", error.meaning)
            raise NotSent(f"The templates could not be read: {error.meaning}.") from None

    def send_template(self, psid: str, staff: str, name: str, language: str, values: Sequence[str]) -> None:
        """Send one of the approved templates, every parameter filled, as `send` sends a message. NotSent if there
        is no such template, a parameter is empty, or it could not go."""
        template = next((t for t in self.templates(psid) if (t.name, t.language) == (name, language)), None)
        if template is None:
            raise NotSent("There is no such approved template (any more): reload the page.")
        values = [value.strip() for value in values]
        if len(values) != template.parameters or not all(values):
            raise NotSent(f"Fill in all {template.parameters} fields of the template.")
        text = template.filled(values)
        self._deliver(psid, staff, text, "template", lambda: self._channels.send_template(psid, template, values))

    def _deliver(self, psid: str, staff: str, text: str, how: str, send: Callable[[], list[tuple[str, str]]]) -> None:
        """Send, then keep what went where the assistant's words go; NotSent (and kept as failed) if Meta refused."""
        try:
            sent = send()
        except GraphError as error:
            self._transcripts.not_delivered(psid, text, error.meaning, by=staff)
            logger.info("console: staff=%s message to psid=%s refused", staff, psid)
            raise NotSent(f"Meta refused the message: {error.meaning}.") from None
        # As a message written in the Page Inbox does, it quiets the assistant for HUMAN_PAUSE_MINUTES.
        self._pauses.pause(psid, self._clock(), "console")
        # Noted as sent by this app, so that its echo is not taken for a message written elsewhere.
        self._store.remember_sent(
            psid, [(mid, piece[: prompt.REMEMBERED_CHARS]) for mid, piece in sent], self._pauses.kept_seconds
        )
        self._store.append(psid, prompt.within_history(Turn("", prompt.page_words(text)), self._history_max_tokens))
        for mid, piece in sent:
            self._transcripts.sent(psid, piece, by=staff, mid=mid)
        logger.info("console: staff=%s sent %d message(s) to psid=%s (%s)", staff, len(sent), psid, how)

    def hand_back(self, psid: str, staff: str) -> None:
        """The assistant answers the person's next message."""
        self._pauses.end(psid)
        self._transcripts.handed_back(psid, "Handed back to the assistant", by=staff)
        logger.info("console: staff=%s handed back psid=%s", staff, psid)

    def note(self, psid: str, staff: str, text: str) -> None:
        """A private note: kept in the transcript, never sent."""
        self._transcripts.note(psid, text, by=staff)
        logger.info("console: staff=%s noted on psid=%s", staff, psid)

    def resolve(self, psid: str, staff: str) -> None:
        """Nobody waits any more; the assistant answers what comes next."""
        self._pauses.end(psid)
        self._transcripts.resolved(psid, staff)
        logger.info("console: staff=%s resolved psid=%s", staff, psid)
