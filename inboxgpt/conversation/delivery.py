"""What the bot sent that Meta took and then could not deliver (WhatsApp's `failed` statuses: most often 131047, the
person's 24-hour window had closed): the history keeps only what arrived, the transcript shows the message failed and
the person in "Needs a person", and the owner is told, by HANDOVER_NOTIFY_URL and in the log, with the person's key,
never the text."""

from __future__ import annotations

import logging

from inboxgpt import metrics
from inboxgpt.conversation.handover import last_words
from inboxgpt.conversation.routing import Route
from inboxgpt.conversation.transcript import Transcripts
from inboxgpt.events import Event, Undelivered
from inboxgpt.notify import HandoverNotifier
from inboxgpt.store import Store

logger = logging.getLogger(__name__)


class Deliveries:
    """Handles Meta's word that a message of the bot's never reached its person."""

    def __init__(self, store: Store, notifier: HandoverNotifier, transcripts: Transcripts):
        self._store = store
        self._notifier = notifier
        self._transcripts = transcripts

    def undelivered(self, event: Event, how: Route) -> None:
        """Take the message back out of the history (it and what followed it in that answer: a closed window refuses
        them all), mark it failed in the transcript with the person waiting for the staff, and tell the owner (once).
        A failure of a message the service did not send (one of the business's own, elsewhere) is only logged."""
        assert isinstance(event, Undelivered)
        psid = event.psid
        if not self._store.was_sent(psid, event.mid):
            logger.info("psid=%s: Meta could not deliver a message the bot did not send (error %s)", psid, event.code)
            return
        start = self._store.recall(psid, event.mid)
        taken_back = bool(start) and self._store.take_back(psid, start or "")
        logger.warning(
            "psid=%s: Meta took a message of the bot's but could not deliver it (error %s: %s); %s",
            psid,
            event.code,
            event.reason or "no reason given",
            "the history no longer holds it" if taken_back else "it was not in the history",
        )
        metrics.REPLIES.labels("undelivered", event.channel).inc()
        self._transcripts.undelivered(event, event.reason or f"error {event.code}")
        self._notifier.notify(event.channel, psid, "undelivered", last_words(self._store, psid))
