"""Caps on model calls, per person and for the whole page, so a busy or abusive chat cannot run up the bill."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from inboxgpt import metrics
from inboxgpt.config import Settings
from inboxgpt.queues.store import Store
from inboxgpt.replies import BACK_TOMORROW, DAILY_LIMIT, TOO_FAST

logger = logging.getLogger(__name__)

MINUTE = 60
DAY = 24 * 3600


@dataclass(frozen=True)
class Decision:
    """Whether a model call may be made, and if not, the notice to send (None: stay silent)."""

    allowed: bool
    notice: str | None = None


ALLOW = Decision(True)


@dataclass(frozen=True)
class LimitSettings:
    """The caps (0: off): model calls per person a minute and a day, and for the page a day."""

    per_minute: int
    per_day: int
    global_per_day: int

    @classmethod
    def from_settings(cls, settings: Settings) -> LimitSettings:
        return cls(settings.limit_per_minute, settings.limit_per_day, settings.limit_global_per_day)


class Limits:
    """Counts model calls in the store, in fixed windows: the minute and the UTC day of each message."""

    def __init__(self, settings: LimitSettings, store: Store):
        self._per_minute = settings.per_minute
        self._per_day = settings.per_day
        self._global_per_day = settings.global_per_day
        self._store = store

    def check(self, psid: str, sent_at: float) -> Decision:
        """Count one model call for a message `psid` sent at Unix time `sent_at`; say whether it may go ahead."""
        minute, day = int(sent_at // MINUTE), today(sent_at)
        for name, limit, key, ttl, notice in (
            ("minute", self._per_minute, f"limit:{psid}:minute:{minute}", 2 * MINUTE, TOO_FAST),
            ("day", self._per_day, f"limit:{psid}:day:{day}", 2 * DAY, DAILY_LIMIT),
        ):
            if (refused := self._count(name, limit, key, ttl, notice)) is not None:
                return refused
        if self._global_per_day:
            count = self._store.increment(f"limit:global:day:{day}", 1, 2 * DAY)
            if count > self._global_per_day:
                metrics.LIMITED.labels("global").inc()
                if count == self._global_per_day + 1:
                    logger.warning(
                        "daily cap of %d model calls reached: everyone is told to come back tomorrow",
                        self._global_per_day,
                    )
                told = self._store.increment(f"limit:{psid}:told-tomorrow:{day}", 1, 2 * DAY)
                return Decision(False, BACK_TOMORROW if told == 1 else None)
        return ALLOW

    def check_canned(self, psid: str, sent_at: float) -> Decision:
        """Count one reply that needs no model (/help, a sticker's thanks...) for a message sent at `sent_at`: within
        LIMIT_PER_MINUTE, so that a flood of them is not answered message for message."""
        key = f"limit:{psid}:canned:{int(sent_at // MINUTE)}"
        return self._count("minute", self._per_minute, key, 2 * MINUTE, TOO_FAST) or ALLOW

    def _count(self, name: str, limit: int, key: str, ttl: float, notice: str) -> Decision | None:
        """Count one against a limit (0: off); the refusal once it is passed, else None."""
        if limit and (count := self._store.increment(key, 1, ttl)) > limit:
            metrics.LIMITED.labels(name).inc()
            # One notice when the limit is first passed; the messages after it get none.
            return Decision(False, notice if count == limit + 1 else None)
        return None


def today(now: float) -> str:
    """The UTC date of a Unix time, as YYYY-MM-DD."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
