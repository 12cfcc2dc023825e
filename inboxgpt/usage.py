"""Usage reported by the model, summed per day (in TIMEZONE) in the store: replies, tokens and dollars, by channel,
by kind (replies to comments), and by person; and the month's dollars, which SPEND_PER_MONTH caps. Each model call
is counted as it returns; usage the server did not report (a stream cut short, a server that never reports it) is
estimated from the prompt and the answer, high, and counted apart as estimated too."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from inboxgpt import metrics
from inboxgpt.channels import NAMES
from inboxgpt.events import FIRST_CHANNEL
from inboxgpt.model.completion import Completion
from inboxgpt.model.prompt import ChatMessage, estimate_tokens, message_tokens
from inboxgpt.periods import DAY, Periods
from inboxgpt.prices import PriceList
from inboxgpt.store import Store

# Kept a month, so that the console can plot the last 30 days; a month's spend, a little over a month.
DAYS_KEPT = 31
KEEP = DAYS_KEPT * DAY
KEEP_MONTH = 32 * DAY
# Dollars are counted in billionths, as whole numbers (a store's counters are integers): a message's embedding
# costs a ten-millionth of a dollar.
NANO = 1_000_000_000
# The people who spent on a day, kept as records of this kind (for `usage`'s top spenders).
SPENDERS = "spenders:{day}"
# The people a cap stopped on a day, and which cap (its setting's name).
STOPPED = "stopped:{day}"
TOP_PEOPLE = 5
# A day's counters (usage:{day}:{field}) besides those of each channel.
DAY_FIELDS = (
    "replies",
    "prompt_tokens",
    "completion_tokens",
    "replies:kind:comment",
    "spend",
    "estimated:calls",
    "estimated:prompt_tokens",
    "estimated:completion_tokens",
    "estimated:spend",
)


def person_spend_key(day: str, psid: str) -> str:
    return f"usage:{day}:spend:person:{psid}"


def day_spend_key(day: str) -> str:
    return f"usage:{day}:spend"


def month_spend_key(month: str) -> str:
    return f"usage:month:{month}:spend"


@dataclass(frozen=True)
class Hold:
    """What was added to spend counters ahead of a model call (its most likely-high cost), to be taken back when the
    call's cost is counted: (key, billionths, ttl) of each."""

    counters: tuple[tuple[str, int, float], ...] = ()


NO_HOLD = Hold()


@dataclass(frozen=True)
class Spender:
    """A person's spend on a day, their key shortened for display."""

    person: str
    dollars: float


@dataclass(frozen=True)
class Stop:
    """A person a cap stopped on a day, their key shortened for display, and the cap's setting (SPEND_PER_DAY)."""

    person: str
    cap: str


@dataclass(frozen=True)
class Totals:
    """One day's usage."""

    date: str
    replies: int
    prompt_tokens: int
    completion_tokens: int
    replies_by_channel: dict[str, int]
    # Of the replies, the private replies to comments.
    comment_replies: int = 0
    dollars: float = 0.0
    dollars_by_channel: dict[str, float] | None = None
    top_spenders: tuple[Spender, ...] = ()
    stopped: tuple[Stop, ...] = ()
    # Of the figures above, what was estimated: calls whose usage the server did not report, their tokens, dollars.
    estimated_calls: int = 0
    estimated_prompt_tokens: int = 0
    estimated_completion_tokens: int = 0
    estimated_dollars: float = 0.0


class Usage:
    """Counts each reply's usage in the store."""

    def __init__(self, store: Store, periods: Periods):
        self._store = store
        self._periods = periods

    def record(
        self,
        completion: Completion,
        now: float,
        channel: str = FIRST_CHANNEL,
        psid: str = "",
        kind: str = "",
        held: Hold = NO_HOLD,
        reply: bool = True,
    ) -> None:
        """Add one model call's usage (and its cost) to the day's totals, its channel's and its person's, counted as
        a reply (of its kind) if it is one (not a tool round's call); take back what was `held` for it. One store
        step (a call's every counter in one transaction or round trip)."""
        day = self._periods.day(now)
        nano = round(completion.cost * NANO)
        replies = 1 if reply else 0
        amounts = {
            "replies": replies,
            f"replies:{channel}": replies,
            f"replies:kind:{kind}": replies if kind else 0,
            "prompt_tokens": completion.prompt_tokens or 0,
            "completion_tokens": completion.completion_tokens or 0,
            "spend": nano,
            f"spend:{channel}": nano,
        }
        if completion.estimated:
            amounts |= {
                "estimated:calls": 1,
                "estimated:prompt_tokens": completion.prompt_tokens or 0,
                "estimated:completion_tokens": completion.completion_tokens or 0,
                "estimated:spend": nano,
            }
        counters: list[tuple[str, int, float]] = [
            (f"usage:{day}:{field}", amount, KEEP) for field, amount in amounts.items() if amount
        ]
        spent_by_person = bool(nano and psid)
        if spent_by_person:
            counters.append((person_spend_key(day, psid), nano, KEEP))
            counters.append((month_spend_key(self._periods.month(now)), nano, KEEP_MONTH))
        counters += [(key, -amount, ttl) for key, amount, ttl in held.counters]
        if counters:
            self._store.increment_all(counters)
        if spent_by_person:
            self._store.keep_record(SPENDERS.format(day=day), psid, psid, now, ttl=KEEP)
            metrics.SPEND.labels(channel).inc(completion.cost)

    def stopped(self, psid: str, now: float, cap: str) -> None:
        """Note that a cap (its setting's name) stopped this person today: once a day for each cap."""
        stop = json.dumps({"person": psid, "cap": cap})
        self._store.keep_record(STOPPED.format(day=self._periods.day(now)), f"{cap}:{psid}", stop, now, ttl=KEEP)

    def totals(self, now: float) -> Totals:
        """The totals of the day `now` falls in."""
        return self.totals_of(self._periods.day(now))

    def recent(self, now: float, days: int) -> list[Totals]:
        """The totals of the `days` days up to the one `now` falls in, that one first."""
        return [self.totals_of(day) for day in self._periods.days_back(now, days)]

    def top_spenders(self, now: float, days: int) -> tuple[Spender, ...]:
        """The people who spent the most over the `days` days up to the one `now` falls in, summed by their whole key
        (two people whose shortened keys look alike stay apart)."""
        spent: dict[str, int] = {}
        for day in self._periods.days_back(now, days):
            people = self._store.records(SPENDERS.format(day=day), 0)
            for psid, nano in zip(
                people, self._store.counters([person_spend_key(day, p) for p in people]), strict=True
            ):
                spent[psid] = spent.get(psid, 0) + nano
        most = sorted(spent.items(), key=lambda item: -item[1])[:TOP_PEOPLE]
        return tuple(Spender(shortened(psid), nano / NANO) for psid, nano in most)

    def totals_of(self, day: str) -> Totals:
        """The totals of a day (YYYY-MM-DD, in TIMEZONE): its counters read in one step."""
        people = self._store.records(SPENDERS.format(day=day), 0)
        fields = [*DAY_FIELDS, *(f"replies:{channel}" for channel in NAMES), *(f"spend:{channel}" for channel in NAMES)]
        values = self._store.counters(
            [f"usage:{day}:{field}" for field in fields] + [person_spend_key(day, psid) for psid in people]
        )
        counter = dict(zip(fields, values[: len(fields)], strict=True))
        spenders = [
            Spender(shortened(psid), nano / NANO) for psid, nano in zip(people, values[len(fields) :], strict=True)
        ]
        return Totals(
            date=day,
            replies=counter["replies"],
            prompt_tokens=counter["prompt_tokens"],
            completion_tokens=counter["completion_tokens"],
            replies_by_channel={channel: counter[f"replies:{channel}"] for channel in NAMES},
            comment_replies=counter["replies:kind:comment"],
            dollars=counter["spend"] / NANO,
            dollars_by_channel={channel: counter[f"spend:{channel}"] / NANO for channel in NAMES},
            top_spenders=tuple(sorted(spenders, key=lambda s: -s.dollars)[:TOP_PEOPLE]),
            stopped=tuple(_stop(text) for text in self._store.records(STOPPED.format(day=day), 0)),
            estimated_calls=counter["estimated:calls"],
            estimated_prompt_tokens=counter["estimated:prompt_tokens"],
            estimated_completion_tokens=counter["estimated:completion_tokens"],
            estimated_dollars=counter["estimated:spend"] / NANO,
        )


def estimated(completion: Completion, prompt: Sequence[ChatMessage], prices: PriceList) -> Completion:
    """The call with the usage its server did not report estimated as the prompt fitter counts tokens (high): the
    prompt it was sent, and the answer (text and tool calls) as far as it arrived; priced again."""
    if completion.prompt_tokens is not None and completion.completion_tokens is not None:
        return completion
    written = completion.text + "".join(call.name + call.arguments for call in completion.tool_calls)
    prompt_tokens = completion.prompt_tokens
    if prompt_tokens is None:
        prompt_tokens = prompt_estimate(prompt)
    completion_tokens = completion.completion_tokens
    if completion_tokens is None:
        completion_tokens = estimate_tokens(written)
    reported = prices.reply(completion.prompt_tokens, completion.cached_tokens, completion.completion_tokens)
    cost = completion.cost - reported + prices.reply(prompt_tokens, completion.cached_tokens, completion_tokens)
    return replace(
        completion, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost=cost, estimated=True
    )


def prompt_estimate(prompt: Sequence[ChatMessage]) -> int:
    """A prompt's tokens as the prompt fitter counts them; a tool round's calls and results by their JSON."""
    return sum(
        message_tokens(message) if message.get("content") and "tool_calls" not in message else estimate_json(message)
        for message in prompt
    )


def estimate_json(message: ChatMessage) -> int:
    return estimate_tokens(json.dumps(message, ensure_ascii=False))


def _stop(text: str) -> Stop:
    """A stop as kept; one kept before stops named their cap (a plain key) was a money cap's."""
    if not text.startswith("{"):
        return Stop(shortened(text), "a money cap")
    kept = json.loads(text)
    return Stop(shortened(kept["person"]), kept["cap"])


def shortened(psid: str) -> str:
    """A person's key as `usage` shows it: enough to tell people apart, not enough to reach them."""
    return psid if len(psid) <= 8 else f"{psid[:4]}…{psid[-4:]}"
