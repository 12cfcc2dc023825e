"""The outcomes of the last 7 days on /metrics, from made-up transcripts: computed by a scrape, at most once every
few minutes, and served from the last computation when the store cannot answer."""

from __future__ import annotations

from inboxgpt import metrics
from inboxgpt.conversation.outcomes import Outcomes
from inboxgpt.conversation.transcript import Transcripts
from inboxgpt.store import StoreUnavailable
from inboxgpt.web.app import EXTENSION
from tests.test_console_outcomes import Clock, talk
from tests.test_metrics import scrape, value


def test_metrics_show_the_outcomes_of_the_last_seven_days(app, client):
    transcripts = Transcripts(app.extensions[EXTENSION].store, 90, clock=(clock := Clock()))
    talk(transcripts, clock, "1", (30, "person", "When do you open on Sunday?"), (29.9, "assistant", "At 9."))
    talk(transcripts, clock, "2", (50, "person", "Do you sell pizza?"), (49.9, "assistant", "Sorry, I don't know."))
    talk(transcripts, clock, "3", (40, "person", "a person please"), (39.9, "handover", "asked for a person"))
    talk(transcripts, clock, "4", (2, "person", "Are you open today?"), (1.9, "assistant", "Until 5."))
    talk(transcripts, clock, "5", (10 * 24, "person", "Hello, any cakes?"), (10 * 24 - 0.1, "assistant", "Yes."))

    samples = scrape(client)

    counted = {
        outcome: value(samples, "bot_outcome_conversations", outcome=outcome)
        for outcome in ("conversations", "resolved", "handed_over", "reopened", "open")
    }
    assert counted == {"conversations": 4, "resolved": 2, "handed_over": 1, "reopened": 0, "open": 1}
    assert value(samples, "bot_outcome_resolution_rate") == 0.5
    assert value(samples, "bot_outcome_not_covered") == 1


def test_the_outcomes_are_computed_at_most_once_every_few_minutes():
    now = [0.0]
    computed: list[float] = []

    def compute() -> Outcomes:
        computed.append(now[0])
        if len(computed) == 3:
            raise StoreUnavailable("down")
        return Outcomes(days=7, conversations=len(computed))

    every = metrics.Every(compute, 300, clock=lambda: now[0])
    assert every() == Outcomes(days=7, conversations=1)
    now[0] = 299
    assert every() == Outcomes(days=7, conversations=1)  # served from the cache
    now[0] = 300
    assert every() == Outcomes(days=7, conversations=2)
    now[0] = 600
    assert every() == Outcomes(days=7, conversations=2)  # the store is down: the last figures still serve
    assert every() == Outcomes(days=7, conversations=4)  # and the next scrape tries again
    assert computed == [0, 300, 600, 600]


def test_with_the_store_down_at_the_first_scrape_the_outcomes_are_left_out():
    def down() -> Outcomes:
        raise StoreUnavailable("down")

    assert b"bot_outcome_conversations" not in metrics.exposition(lambda: 0, metrics.Every(down, 300))
