"""The bot steps back while a person from the page is talking to someone: for HUMAN_PAUSE_MINUTES after their last
hand-written message, or after the person asked for them (/human). Time is Meta's, as stamped on each event."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from inboxgpt import metrics
from inboxgpt.events import Event
from inboxgpt.store import Store

logger = logging.getLogger(__name__)


class Pauses:
    """Each person's pause, kept in the store so that every worker sees it."""

    def __init__(self, store: Store, minutes: float, clock: Callable[[], float] = time.time):
        self._store = store
        self._minutes = minutes
        self._clock = clock

    def event_time(self, event: Event) -> float:
        """When the event happened, in seconds: Meta's stamp, or now if it carries none."""
        return event.timestamp / 1000 if event.timestamp else self._clock()

    def paused(self, event: Event) -> bool:
        """Whether the bot is silent to the person at the event's time."""
        return self._store.paused_until(event.psid) > self.event_time(event)

    @property
    def kept_seconds(self) -> float:
        """How long what a pause depends on is kept: twice the pause, so that events Meta delivers late find it."""
        return 2 * self._minutes * 60

    def pause(self, psid: str, start: float, reason: str) -> None:
        """Stay silent for the person for HUMAN_PAUSE_MINUTES from `start` (or longer, if already paused so)."""
        metrics.PAUSES.labels(reason).inc()
        until = max(self._store.paused_until(psid), start + self._minutes * 60)
        # Kept at least as long as it lasts: a longer pause already there (a take-over) is not cut short.
        self._store.pause(psid, until, ttl=max(self.kept_seconds, until - self._clock()))
        logger.info("psid=%s: the bot stays silent for %g minutes", psid, self._minutes)

    def hold(self, psid: str, seconds: float, reason: str) -> None:
        """Stay silent for the person for `seconds` from now, until ended (the staff took the conversation over)."""
        metrics.PAUSES.labels(reason).inc()
        until = self._clock() + seconds
        self._store.pause(psid, until, ttl=seconds)
        logger.info("psid=%s: the bot stays silent until handed back", psid)

    def end(self, psid: str) -> None:
        """End the person's pause now."""
        self._store.unpause(psid)
