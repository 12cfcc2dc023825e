"""Caps on model calls, per person and for the whole page, so a busy or abusive chat cannot run up the bill: in
counts of calls (per UTC minute and day), and in dollars (per person a day, the page a day and a month, in
TIMEZONE). A message is refused once what was spent is at a cap; each model call then holds its most likely-high
cost against the caps, atomically in the store, and its real cost replaces the hold as the call returns, so calls
in flight at once on every worker count against a cap before they are paid (see Bill)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from inboxgpt import metrics
from inboxgpt.config import Settings
from inboxgpt.model.completion import Completion
from inboxgpt.model.prompt import ChatMessage
from inboxgpt.periods import DAY, Periods
from inboxgpt.prices import PriceList
from inboxgpt.replies import BACK_NEXT_MONTH, BACK_TOMORROW, DAILY_LIMIT, SPENT_TODAY, TOO_FAST
from inboxgpt.store import Store
from inboxgpt.usage import (
    KEEP,
    KEEP_MONTH,
    NANO,
    NO_HOLD,
    Hold,
    Usage,
    day_spend_key,
    estimated,
    month_spend_key,
    person_spend_key,
    prompt_estimate,
)

logger = logging.getLogger(__name__)

MINUTE = 60
CAP_SETTINGS = {"person_day": "SPEND_PER_PERSON_PER_DAY", "day": "SPEND_PER_DAY", "month": "SPEND_PER_MONTH"}
# The setting of each cap on counts, by its name in the metrics.
COUNT_SETTINGS = {
    "minute": "LIMIT_PER_MINUTE",
    "day": "LIMIT_PER_DAY",
    "global": "LIMIT_GLOBAL_PER_DAY",
    "comments_day": "COMMENTS_PER_DAY",
}


@dataclass(frozen=True)
class Decision:
    """Whether a model call may be made, and if not, the notice to send (None: stay silent)."""

    allowed: bool
    notice: str | None = None


ALLOW = Decision(True)


class CapReached(Exception):
    """A money cap refused a model call's hold: the call was not made; `decision` says what to tell the person."""

    def __init__(self, decision: Decision):
        super().__init__("a money cap was reached")
        self.decision = decision


@dataclass(frozen=True)
class Cap:
    """One money cap as it applies now: its name, dollars, the counter of what was spent, its period."""

    name: str
    dollars: float
    key: str
    period: str
    ttl: float
    notice: str


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
            if (refused := self._count(psid, name, limit, key, ttl, notice)) is not None:
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
                if told == 1:
                    self._usage.stopped(psid, self._clock(), COUNT_SETTINGS["global"])
                return Decision(False, BACK_TOMORROW if told == 1 else None)
        return self._money(psid, self._clock())

    def _money(self, psid: str, now: float) -> Decision:
        """Whether the money spent so far in this period (now, not when the message was sent: the spend is counted
        when it is made), with what calls in flight hold, leaves room for one more call: a cap is reached once the
        spend is at it or past it."""
        for cap in self._caps(psid, now):  # every model call passes here: no dates worked out when no cap is set
            if self._store.counter(cap.key) >= round(cap.dollars * NANO):
                return self._reached(cap, psid, now)
        return ALLOW

    def hold(self, psid: str, dollars: float, now: float) -> tuple[Decision, Hold]:
        """Hold `dollars` (a call's most likely cost) against the money caps that apply, atomically across workers:
        refused, holding nothing, if what is spent and held is at a cap already."""
        caps = self._caps(psid, now)
        if not caps:
            return ALLOW, NO_HOLD
        nano = round(dollars * NANO)
        refused = self._store.increment_below([(cap.key, nano, cap.ttl, round(cap.dollars * NANO)) for cap in caps])
        if refused is not None:
            return self._reached(next(cap for cap in caps if cap.key == refused), psid, now), NO_HOLD
        return ALLOW, Hold(tuple((cap.key, nano, cap.ttl) for cap in caps))

    def bill(self, psid: str, channel: str, prices: PriceList, reply_tokens: int, carried: float = 0.0) -> Bill:
        """The bill of one answer's model calls for a person (see Bill)."""
        return Bill(self, self._usage, self._clock, prices, reply_tokens, psid, channel, carried)

    def _caps(self, psid: str, now: float) -> list[Cap]:
        """The money caps set, as they apply to this person now."""
        settings = self._settings
        if not (settings.spend_per_person_per_day or settings.spend_per_day or settings.spend_per_month):
            return []
        day, month = self._periods.day(now), self._periods.month(now)
        person = person_spend_key(day, psid)
        caps = (
            Cap("person_day", settings.spend_per_person_per_day, person, day, KEEP, SPENT_TODAY),
            Cap("day", settings.spend_per_day, day_spend_key(day), day, KEEP, BACK_TOMORROW),
            Cap("month", settings.spend_per_month, month_spend_key(month), month, KEEP_MONTH, BACK_NEXT_MONTH),
        )
        return [cap for cap in caps if cap.dollars]

    def _reached(self, cap: Cap, psid: str, now: float) -> Decision:
        """A refusal by a money cap: counted, logged once a period, the person noted as stopped and told once."""
        metrics.LIMITED.labels(f"spend_{cap.name}").inc()
        scope = psid if cap.name == "person_day" else "page"
        if self._store.increment(f"limit:spend:{cap.name}:{scope}:{cap.period}:reached", 1, cap.ttl) == 1:
            logger.error(
                "money cap reached: %s of $%.2f for %s (psid=%s); no more model calls until it turns",
                CAP_SETTINGS[cap.name],
                cap.dollars,
                cap.period,
                psid if cap.name == "person_day" else "everyone",
            )
        self._usage.stopped(psid, now, CAP_SETTINGS[cap.name])
        told = self._store.increment(f"limit:{psid}:told-spend:{cap.name}:{cap.period}", 1, cap.ttl)
        return Decision(False, cap.notice if told == 1 else None)

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
                self._usage.stopped(psid, now, COUNT_SETTINGS["comments_day"])
                return Decision(False)
        return Decision(self._money(psid, now).allowed)

    def check_canned(self, psid: str, sent_at: float) -> Decision:
        """Count one reply that needs no model (/help, a sticker's thanks...) for a message sent at `sent_at`: within
        LIMIT_PER_MINUTE, so that a flood of them is not answered message for message."""
        key = f"limit:{psid}:canned:{int(sent_at // MINUTE)}"
        return self._count(psid, "minute", self._per_minute, key, 2 * MINUTE, TOO_FAST) or ALLOW

    def _count(self, psid: str, name: str, limit: int, key: str, ttl: float, notice: str) -> Decision | None:
        """Count one against a limit (0: off); the refusal once it is passed, else None."""
        if limit and (count := self._store.increment(key, 1, ttl)) > limit:
            metrics.LIMITED.labels(name).inc()
            # One notice (and one note of who was stopped) when the limit is first passed; the messages after it get
            # none, so that a flood costs no more writes than the count.
            if count != limit + 1:
                return Decision(False)
            self._usage.stopped(psid, self._clock(), COUNT_SETTINGS[name])
            return Decision(False, notice)
        return None


class Bill:
    """One answer's model calls for a person (a reply's tool rounds, say): each call held against the money caps
    before it is made, at the most it may cost (its prompt as the fitter counts it, and REPLY_MAX_TOKENS of answer);
    each counted as it returns, whatever happens next (a later round failing, a handover), its usage estimated
    where the server reported none, the hold taken back in the same step. What made the messages readable
    (`carried`: transcriptions) is counted with the first call, or on `close` if no call was made."""

    def __init__(
        self,
        limits: Limits,
        usage: Usage,
        clock: Callable[[], float],
        prices: PriceList,
        reply_tokens: int,
        psid: str,
        channel: str,
        carried: float,
    ):
        self._limits = limits
        self._usage = usage
        self._clock = clock
        self._prices = prices
        self._reply_tokens = reply_tokens
        self._psid = psid
        self._channel = channel
        self._carried = carried

    def call(self, prompt: Sequence[ChatMessage], ask: Callable[[], Completion]) -> Completion:
        """The answer of `ask()`, a model call with this prompt, counted as it returns (with its usage estimated if
        not reported); CapReached, without the call, if a money cap refuses its hold."""
        most = self._prices.reply(prompt_estimate(prompt), 0, self._reply_tokens)
        decision, held = self._limits.hold(self._psid, most, self._clock())
        if not decision.allowed:
            raise CapReached(decision)
        completion = NOTHING
        try:
            completion = estimated(ask(), prompt, self._prices)
            return completion
        finally:
            self._count(completion, held)

    def close(self) -> None:
        """Count what was carried if no call counted it (the message was refused before the model was asked)."""
        if self._carried:
            self._count(NOTHING, NO_HOLD)

    def _count(self, completion: Completion, held: Hold) -> None:
        if completion is NOTHING and not (self._carried or held.counters):
            return
        reply = completion is not NOTHING and not completion.tool_calls
        completion = replace(completion, cost=completion.cost + self._carried)
        self._carried = 0.0
        self._usage.record(completion, self._clock(), self._channel, self._psid, held=held, reply=reply)


# A call that gave no answer (it failed): nothing spent that the server told of.
NOTHING = Completion("", None, None, None)


def today(now: float) -> str:
    """The UTC date of a Unix time, as YYYY-MM-DD."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
