"""Handing a conversation to the page's people and back: /human, /bot, what they write by hand, what arrives while
another app owns the thread, and thread control coming back. While they talk, the bot keeps what both sides say."""

from __future__ import annotations

import logging

from inboxgpt import replies
from inboxgpt.channels.base import Channels, Inbox
from inboxgpt.conversation.outbox import Mailbox
from inboxgpt.conversation.pauses import Pauses
from inboxgpt.conversation.routing import Route
from inboxgpt.conversation.transcript import ASKED
from inboxgpt.events import Echo, Event, Handover
from inboxgpt.model import prompt
from inboxgpt.notify import HandoverNotifier
from inboxgpt.store import Store, Turn

logger = logging.getLogger(__name__)

# Why the thread is passed or taken, as Meta shows it to the other app.
PASS_METADATA = "The person asked for a person from the page (/human)."
TAKE_METADATA = "The person asked for the bot again (/bot)."


def reaches_someone(inbox: Inbox | None, notifier: HandoverNotifier, console: bool) -> bool:
    """Whether asking for a person reaches one: the channel hands its conversations to an inbox the business's people
    read, the owner's console has staff to read it (`console`), or the owner is told (HANDOVER_NOTIFY_URL). The one
    place this is decided."""
    return inbox is not None or console or notifier.configured


def unheard(channels: Channels, notifier: HandoverNotifier, console: bool) -> list[str]:
    """The channels that are on where asking for a person reaches no one."""
    return [
        channel.name
        for channel in channels.all
        if channel.enabled and not reaches_someone(channel.inbox, notifier, console)
    ]


class Handovers:
    """One handler for each handover case."""

    def __init__(self, store: Store, channels: Channels, pauses: Pauses, mailbox: Mailbox, notifier: HandoverNotifier):
        self._store = store
        self._channels = channels
        self._pauses = pauses
        self._mailbox = mailbox
        self._notifier = notifier
        self._pass_refusal_logged = False
        if names := unheard(channels, notifier, mailbox.transcripts.read_by_staff()):
            logger.warning(
                "On %s, asking for a person (/human, or the talk_to_a_person tool) reaches no one: there is no inbox, "
                "no staff account for the console and HANDOVER_NOTIFY_URL is not set. The bot says no one is available "
                "and goes on answering; add a staff account or set HANDOVER_NOTIFY_URL to be told instead.",
                ", ".join(names),
            )

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
        inbox = self._channels.inbox(psid)
        if not reaches_someone(inbox, self._notifier, self._mailbox.transcripts.read_by_staff()):
            # Promising a person nobody hears of, then going silent, would leave them with no one.
            logger.info("psid=%s asked for a person, but no one would hear of it: the bot goes on", psid)
            if self._mailbox.send(event, replies.NO_ONE_TO_ANSWER):
                self._mailbox.keep(psid, Turn(said, replies.NO_ONE_TO_ANSWER))
            return
        self._pauses.pause(psid, self._pauses.event_time(event), "human")
        self._notifier.notify(event.channel, psid, "asked_for_human", last_words(self._store, psid))
        self._mailbox.transcripts.needs_person(event, ASKED, notify=False)
        if self._mailbox.send(event, replies.HUMAN_COMING):
            self._mailbox.keep(psid, Turn(said, replies.HUMAN_COMING))
        # Passed after the reply: once the Inbox controls the thread, the bot can no longer send.
        if inbox is None:
            return  # no inbox to hand to (WhatsApp): the owner was told, and the bot stays silent until /bot
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
            self._notifier.notify(event.channel, event.psid, "page_wrote", last_words(self._store, event.psid))
        self._pauses.pause(event.psid, self._pauses.event_time(event), "hand_written")
        self._mailbox.transcripts.page_wrote(event.psid, how.text)
        self._mailbox.keep(event.psid, Turn("", prompt.page_words(how.text)))

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


def last_words(store: Store, psid: str) -> str:
    """What the person last wrote that the history keeps, for the owner's notification."""
    said = [turn.user for turn in store.get(psid) if turn.user]
    return said[-1] if said else ""
