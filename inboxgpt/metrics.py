"""Prometheus metrics: the series a dashboard relies on, exposed at `GET /metrics`.

Under gunicorn each worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR (set up by
gunicorn.conf.py before prometheus_client is first imported) and a scrape sums them; under
`flask run` the one process's registry is read. No label ever carries a person's id or text.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import multiprocess as multiprocess_mode
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
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


def exposition(queue_people: Callable[[], int]) -> bytes:
    """Every series, in Prometheus' text format; `queue_people` counts people with events waiting (read now)."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess_mode.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    waiting = CollectorRegistry()
    waiting.register(_QueuePeople(queue_people))
    return generate_latest(registry) + generate_latest(waiting)


class _QueuePeople:
    """`bot_queue_people`, read from the store at scrape time: with a shared store, the same in every worker."""

    def __init__(self, count: Callable[[], int]):
        self._count = count

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("bot_queue_people", "People with events waiting to be answered.", value=self._count())
