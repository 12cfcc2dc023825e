"""Prometheus metrics: the series a dashboard relies on, exposed at `GET /metrics`.

Under gunicorn each worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR (set up by
gunicorn.conf.py before prometheus_client is first imported) and a scrape sums them; under
`flask run` the one process's registry is read. No label ever carries a person's id or text.

The conversations' outcomes of the last OUTCOME_DAYS (docs/outcomes.md) are computed from the transcripts by a
scrape, at most once every OUTCOME_EVERY seconds in each process, never by a webhook.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Generic, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import multiprocess as multiprocess_mode
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from inboxgpt.store import StoreUnavailable

if TYPE_CHECKING:  # at run time, outcomes.py's imports would come back here through the channels
    from inboxgpt.conversation.outcomes import Outcomes

T = TypeVar("T")

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# The outcomes' window, as `flask report --days 7`; and how long their figures serve scrapes before they are
# computed again: they read every transcript of the window, too much for each scrape.
OUTCOME_DAYS = 7
OUTCOME_EVERY = 300.0
# A chat reply takes seconds: buckets from a quarter second to two minutes.
SECONDS_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120)

WEBHOOK_REQUESTS = Counter("bot_webhook_requests", "Webhook POSTs, by the HTTP status Meta got.", ["status"])
EVENTS = Counter(
    "bot_events", "Webhook events by kind (message, postback, echo, standby, redelivered...).", ["kind", "channel"]
)
REPLIES = Counter(
    "bot_replies",
    "Answers by outcome: sent, apology, refused_by_meta, limited, silent, late, undelivered.",
    ["outcome", "channel"],
)
REPLY_LATENCY = Histogram(
    "bot_reply_latency_seconds",
    "From the webhook taking an event to Meta accepting its last reply.",
    buckets=SECONDS_BUCKETS,
)
MODEL_LATENCY = Histogram("bot_model_latency_seconds", "One model call, retries included.", buckets=SECONDS_BUCKETS)
MODEL_TOKENS = Counter("bot_model_tokens", "Tokens the model reported: prompt, completion, cached.", ["type"])
MODEL_FAILURES = Counter("bot_model_failures", "Model calls that gave no reply, by why.", ["failure"])
GRAPH_ERRORS = Counter("bot_graph_errors", "Graph API calls that failed for good, by Meta's error code.", ["code"])
LIMITED = Counter("bot_limited", "Model calls refused by a limit: minute, day, global.", ["limit"])
TOOL_CALLS = Counter(
    "bot_tool_calls",
    "Tool calls the model asked for, by tool and outcome: ok, failed, invalid, unknown.",
    ["tool", "outcome"],
)
COMMENTS = Counter(
    "bot_comments",
    "Comments to answer, by outcome: answered, answered_before, too_old, paused, limited, moderated, model_failed, "
    "refused_by_meta, throttled.",
    ["outcome", "channel"],
)
MODERATION = Counter(
    "bot_moderation",
    "Messages and answers the moderation endpoint flagged, by what and category (failed: it gave no answer).",
    ["what", "category"],
)
SPEND = Counter("bot_spend_dollars", "Dollars the model's work cost, by channel (prices.py).", ["channel"])
LEADS = Counter("bot_leads", "New leads saved (the save_contact tool), by channel.", ["channel"])
PAUSES = Counter(
    "bot_pauses",
    "Times the bot stepped back for the page's people: hand_written, human, thread_elsewhere, console.",
    ["reason"],
)
# The most recent call in any worker says whether the token works: a later success clears a 190.
PAGE_TOKEN_VALID = Gauge(
    "bot_page_token_valid",
    "1 while the page token works; 0 after Meta refused it (code 190).",
    multiprocess_mode="mostrecent",
)
WHATSAPP_TOKEN_VALID = Gauge(
    "bot_whatsapp_token_valid",
    "1 while the WhatsApp token works; 0 after Meta refused it (code 190).",
    multiprocess_mode="mostrecent",
)


def exposition(queue_people: Callable[[], int], outcomes: Callable[[], Outcomes | None]) -> bytes:
    """Every series, in Prometheus' text format; `queue_people` counts people with events waiting (read now),
    `outcomes` gives the last OUTCOME_DAYS' outcomes (cached by an `Every`; None while the store cannot say)."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess_mode.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    read = CollectorRegistry()
    read.register(_QueuePeople(queue_people))
    read.register(_Outcomes(outcomes))
    return generate_latest(registry) + generate_latest(read)


class Every(Generic[T]):
    """`compute`'s value, computed again at most once every `seconds` (the last one served meanwhile) and by one
    caller at a time: concurrent scrapes wait for it rather than compute it twice. A failure (StoreUnavailable)
    serves the last value, or None, and is tried again on the next call."""

    def __init__(self, compute: Callable[[], T], seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._compute = compute
        self._seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._value: T | None = None
        self._at: float | None = None

    def __call__(self) -> T | None:
        with self._lock:
            if self._at is None or self._clock() - self._at >= self._seconds:
                try:
                    self._value = self._compute()
                    self._at = self._clock()
                except StoreUnavailable:
                    pass
            return self._value


class _QueuePeople:
    """`bot_queue_people`, read from the store at scrape time: with a shared store, the same in every worker."""

    def __init__(self, count: Callable[[], int]):
        self._count = count

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("bot_queue_people", "People with events waiting to be answered.", value=self._count())


class _Outcomes:
    """`bot_outcome_conversations{outcome}` and `bot_outcome_resolution_rate`: the outcomes of the conversations
    started in the last OUTCOME_DAYS, as `flask report` counts them (gauges: the window moves)."""

    def __init__(self, figures: Callable[[], Outcomes | None]):
        self._figures = figures

    def collect(self) -> Iterator[Metric]:
        figures = self._figures()
        if figures is None:
            return
        counted = GaugeMetricFamily(
            "bot_outcome_conversations",
            f"Conversations started in the last {OUTCOME_DAYS} days: all, and by outcome (docs/outcomes.md).",
            labels=["outcome"],
        )
        for outcome in ("conversations", "resolved", "handed_over", "reopened", "greetings_only", "open"):
            counted.add_metric([outcome], getattr(figures, outcome))
        yield counted
        yield GaugeMetricFamily(
            "bot_outcome_resolution_rate",
            f"Resolved by the assistant, of the last {OUTCOME_DAYS} days' conversations beyond greetings.",
            value=figures.resolution_rate,
        )
        yield GaugeMetricFamily(
            "bot_outcome_not_covered",
            f"Answers of the last {OUTCOME_DAYS} days that said the knowledge did not cover the question "
            "(of the 20 questions asked most).",
            value=sum(group.count for group in figures.not_covered),
        )
