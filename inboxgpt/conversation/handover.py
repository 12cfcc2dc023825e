"""Handing a conversation to the page's people and back: /human, /bot, what they write by hand, what arrives while
another app owns the thread, and thread control coming back. While they talk, the bot keeps what both sides say."""

from __future__ import annotations

import logging

from inboxgpt import replies
from inboxgpt.channels.base import Channels
from inboxgpt.conversation.outbox import Mailbox
from inboxgpt.conversation.pauses import Pauses
from inboxgpt.conversation.routing import Route
from inboxgpt.conversation.transcript import ASKED
from inboxgpt.events import Echo, Event, Handover
from inboxgpt.model import prompt
from inboxgpt.notify import HandoverNotifier
from inboxgpt.queues.store import Store, Turn

logger = logging.getLogger(__name__)

# Why the thread is passed or taken, as Meta shows it to the other app.
PASS_METADATA = "The person asked for a person from the page (/human)."
TAKE_METADATA = "The person asked for the bot again (/bot)."


class Handovers:
    """One handler for each handover case."""

    def __init__(self, store: Store, channels: Channels, pauses: Pauses, mailbox: Mailbox, notifier: HandoverNotifier):
        self._store = store
        self._channels = channels
        self._pauses = pauses
        self._mailbox = mailbox
        self._notifier = notifier
        self._pass_refusal_logged = False

    def human(self, event: Event, how: Route) -> None:
        self.hand_over(event, "/human")

    def hand_over(self, event: Event, said: str) -> None:
        """Hand the person to the page's people: /human, or the model's talk_to_a_person tool after `said`."""
        psid = event.psid
        if self._pauses.paused(event):
            # A person from the page is already talking to them: the bot says nothing over them.
            logger.info("psid=%s asked for a person while one is talking to them: the pause goes on", psid)
            self._pauses.pause(psid, self._pauses.event_time(event), "human")
            self._mailbox.keep(psid, Turn(said, ""))
            return
        self._pauses.pause(psid, self._pauses.event_time(event), "human")
        self._notifier.notify(event.channel, psid, "asked_for_human", self._last_words(psid))
        self._mailbox.transcripts.needs_person(event, ASKED, notify=False)
        if self._mailbox.send(event, replies.HUMAN_COMING):
            self._mailbox.keep(psid, Turn(said, replies.HUMAN_COMING))
        # Passed after the reply: once the Inbox controls the thread, the bot can no longer send.
        inbox = self._channels.inbox(psid)
        if inbox is None:
            return  # no inbox to hand to (the terminal): the bot only stays silent until /bot
        passed = self._channels.pass_thread(psid, inbox.app_id, PASS_METADATA)
        if not passed and not self._pass_refusal_logged:
            self._pass_refusal_logged = True
            logger.warning(
                "Meta refused to pass a conversation to app %s (%s): Conversation Routing may be set up otherwise. "
                "The bot still stays silent for HUMAN_PAUSE_MINUTES. (Logged once.)",
                inbox.app_id,
                inbox.setting,
            )

    def bot_back(self, event: Event, how: Route) -> None:
        psid = event.psid
        self._pauses.end(psid)
        self._mailbox.transcripts.handed_back(psid, "Asked for the assistant again (/bot)")
        if event.standby:
            # Another app controls the thread: the reply below would be refused without it.
            self._channels.take_thread(psid, TAKE_METADATA)
        self._mailbox.send(event, replies.BOT_BACK)

    def page_wrote(self, event: Event, how: Route) -> None:
        """A person from the page wrote by hand: step back, and keep their words for when the bot answers again."""
        if isinstance(event, Echo) and self._store.was_sent(event.psid, event.mid):
            return  # a message the bot sent (Instagram's echoes carry no marker): noted when sent
        if not self._pauses.paused(event):
            self._notifier.notify(event.channel, event.psid, "page_wrote", self._last_words(event.psid))
        self._pauses.pause(event.psid, self._pauses.event_time(event), "hand_written")
        self._mailbox.transcripts.page_wrote(event.psid, how.text)
        self._mailbox.keep(event.psid, Turn("", prompt.page_words(how.text)))

    def _last_words(self, psid: str) -> str:
        """What the person last wrote that the history keeps, for the owner's notification."""
        said = [turn.user for turn in self._store.get(psid) if turn.user]
        return said[-1] if said else ""

    def record(self, event: Event, how: Route) -> None:
        """Something the person said while another app owns the thread: kept in the history, never answered."""
        self._mailbox.keep(event.psid, Turn(how.text, ""))

    def thread_back(self, event: Event, how: Route) -> None:
        self._pauses.end(event.psid)
        self._mailbox.transcripts.handed_back(event.psid, "The conversation's thread came back to the assistant")

    def handover(self, event: Event, how: Route) -> None:
        if isinstance(event, Handover):
            logger.info(
                "handover psid=%s: %s new_owner=%s previous_owner=%s requested_owner=%s",
                event.psid,
                event.action,
                event.new_owner_app_id,
                event.previous_owner_app_id,
                event.requested_owner_app_id,
            )
