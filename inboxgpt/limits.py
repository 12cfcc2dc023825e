"""Caps on model calls, per person and for the whole page, so a busy or abusive chat cannot run up the bill: in
counts of calls (per UTC minute and day), and in dollars (per person a day, the page a day and a month, in
TIMEZONE), checked before each call from what was spent so far."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from inboxgpt import metrics
from inboxgpt.config import Settings
from inboxgpt.periods import DAY, Periods
from inboxgpt.queues.store import Store
from inboxgpt.replies import BACK_NEXT_MONTH, BACK_TOMORROW, DAILY_LIMIT, SPENT_TODAY, TOO_FAST
from inboxgpt.usage import KEEP_MONTH, NANO, Usage, day_spend_key, month_spend_key, person_spend_key

logger = logging.getLogger(__name__)

MINUTE = 60
CAP_SETTINGS = {"person_day": "SPEND_PER_PERSON_PER_DAY", "day": "SPEND_PER_DAY", "month": "SPEND_PER_MONTH"}


@dataclass(frozen=True)
class Decision:
    """Whether a model call may be made, and if not, the notice to send (None: stay silent)."""

    allowed: bool
    notice: str | None = None


ALLOW = Decision(True)


@dataclass(frozen=True)
class LimitSettings:
    """The caps (0: off): model calls per person a minute and a day, and for the page a day; dollars per person a
    day, for the page a day and a month."""

    per_minute: int
    per_day: int
    global_per_day: int
    spend_per_person_per_day: float = 0.0
    spend_per_day: float = 0.0
    spend_per_month: float = 0.0
    timezone: str = "UTC"
    # Comments' private replies a UTC day, counted apart from the messages' caps (0: off).
    comments_per_day: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> LimitSettings:
        return cls(
            settings.limit_per_minute,
            settings.limit_per_day,
            settings.limit_global_per_day,
            settings.spend_per_person_per_day,
            settings.spend_per_day,
            settings.spend_per_month,
            settings.timezone,
            comments_per_day=settings.comments_per_day,
        )


class Limits:
    """Counts model calls in the store, in fixed windows: the minute and the UTC day of each message."""

    def __init__(self, settings: LimitSettings, store: Store, clock: Callable[[], float] = time.time):
        self._per_minute = settings.per_minute
        self._per_day = settings.per_day
        self._global_per_day = settings.global_per_day
        self._settings = settings
        self._periods = Periods(settings.timezone)
        self._usage = Usage(store, self._periods)
        self._store = store
        self._clock = clock

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
        return self._money(psid, self._clock())

    def _money(self, psid: str, now: float) -> Decision:
        """Whether the money spent so far in this period (now, not when the message was sent: the spend is counted
        when it is made) leaves room for one more call. A call already made may finish, so a cap is reached once
        the spend is at it or past it."""
        settings = self._settings
        if not (settings.spend_per_person_per_day or settings.spend_per_day or settings.spend_per_month):
            return ALLOW  # every model call passes here: no dates worked out when no cap is set
        day, month = self._periods.day(now), self._periods.month(now)
        for name, cap, spent_key, period, ttl, notice in (
            ("person_day", settings.spend_per_person_per_day, person_spend_key(day, psid), day, 2 * DAY, SPENT_TODAY),
            ("day", settings.spend_per_day, day_spend_key(day), day, 2 * DAY, BACK_TOMORROW),
            ("month", settings.spend_per_month, month_spend_key(month), month, KEEP_MONTH, BACK_NEXT_MONTH),
        ):
            if not cap or self._store.counter(spent_key) < round(cap * NANO):
                continue
            metrics.LIMITED.labels(f"spend_{name}").inc()
            scope = psid if name == "person_day" else "page"
            if self._store.increment(f"limit:spend:{name}:{scope}:{period}:reached", 1, ttl) == 1:
                logger.error(
                    "money cap reached: %s of $%.2f for %s (psid=%s); no more model calls until it turns",
                    CAP_SETTINGS[name],
                    cap,
                    period,
                    psid if name == "person_day" else "everyone",
                )
            self._usage.stopped(psid, now)
            told = self._store.increment(f"limit:{psid}:told-spend:{name}:{period}", 1, ttl)
            return Decision(False, notice if told == 1 else None)
        return ALLOW

    def check_comment(self, psid: str) -> Decision:
        """Count one comment's private reply (by its author `psid`) against COMMENTS_PER_DAY, on the day it is
        answered, never against the messages' caps: a viral post cannot close the inbox. The money caps hold for it as
        for any model call. A refusal has no notice: nothing can reach a commenter before their private reply."""
        now = self._clock()
        if self._settings.comments_per_day:
            count = self._store.increment(f"limit:comments:day:{today(now)}", 1, 2 * DAY)
            if count > self._settings.comments_per_day:
                metrics.LIMITED.labels("comments_day").inc()
                if count == self._settings.comments_per_day + 1:
                    logger.warning("COMMENTS_PER_DAY of %d reached: no more comments answered today", count - 1)
                return Decision(False)
        return Decision(self._money(psid, now).allowed)

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
