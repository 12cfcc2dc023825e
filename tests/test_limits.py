"""Limits on model calls: per person per minute and per day, a global daily cap, input bounds, allowed people."""

from __future__ import annotations

import pytest

from inboxgpt import replies
from tests.helpers import PSID, page_body, text_event

NOON = 1764072000  # 2025-11-25 12:00:00 UTC


def at(seconds: float, text: str, psid: str = PSID) -> dict:
    """A text message sent at a given Unix time."""
    return {**text_event(text, psid=psid), "timestamp": int(seconds * 1000)}


@pytest.fixture
def limited(config, app_with):
    config.update(LIMIT_PER_MINUTE="3", LIMIT_PER_DAY="5", LIMIT_GLOBAL_PER_DAY="0")
    return app_with(config)


def one_by_one(post, events) -> None:
    """Each message on its own, answered before the next is sent (messages sent together are answered together)."""
    for event in events:
        post(page_body(event))


def test_per_minute_limit_trips_at_its_threshold_with_one_notice(limited, graph, openai_server):
    one_by_one(limited, (at(NOON + n, f"m{n}") for n in range(6)))
    assert len(openai_server.requests) == 3
    assert graph.texts(PSID) == ["You said: m0", "You said: m1", "You said: m2", replies.TOO_FAST]


def test_per_minute_limit_resets_in_the_next_minute(limited, graph, openai_server):
    one_by_one(limited, (at(NOON + n, f"m{n}") for n in range(4)))
    limited(page_body(at(NOON + 60, "a new minute")))
    assert graph.texts(PSID)[-1] == "You said: a new minute"
    assert len(openai_server.requests) == 4


def test_per_day_limit_trips_at_its_threshold_and_resets_tomorrow(limited, graph, openai_server):
    one_by_one(limited, (at(NOON + 60 * n, f"m{n}") for n in range(7)))  # one a minute: under the minute limit
    assert len(openai_server.requests) == 5
    assert graph.texts(PSID)[5:] == [replies.DAILY_LIMIT]
    limited(page_body(at(NOON + 12 * 3600, "tomorrow, UTC")))
    assert graph.texts(PSID)[-1] == "You said: tomorrow, UTC"


def test_limits_are_per_person(limited, graph):
    limited(page_body(*(at(NOON, f"a{n}", psid="111") for n in range(4)), at(NOON, "b0", psid="222")))
    assert graph.texts("222") == ["You said: b0"]


def test_global_daily_cap_tells_each_person_once_and_logs_once(config, app_with, graph, openai_server, caplog):
    config.update(LIMIT_GLOBAL_PER_DAY="2")
    post = app_with(config)
    # One at a time: the cap counts model calls in the order they are made, across people.
    for event in (
        at(NOON, "1", psid="111"),
        at(NOON, "2", psid="222"),
        at(NOON + 1, "3", psid="111"),
        at(NOON + 2, "4", psid="111"),
        at(NOON + 3, "5", psid="333"),
    ):
        post(page_body(event))
    assert len(openai_server.requests) == 2
    assert graph.texts("111") == ["You said: 1", replies.BACK_TOMORROW]
    assert graph.texts("333") == [replies.BACK_TOMORROW]
    assert caplog.text.count("daily cap of 2 model calls reached") == 1
    post(page_body(at(NOON + 86400, "next day", psid="333")))
    assert graph.texts("333")[-1] == "You said: next day"


def test_commands_do_not_count_against_limits(limited, graph, openai_server):
    limited(page_body(*(at(NOON, "/help") for _ in range(5)), at(NOON, "question")))
    assert graph.texts(PSID)[-1] == "You said: question"


def test_zero_turns_a_limit_off(config, app_with, graph, openai_server):
    config.update(LIMIT_PER_MINUTE="0", LIMIT_PER_DAY="0", LIMIT_GLOBAL_PER_DAY="0")
    post = app_with(config)
    one_by_one(post, (at(NOON, f"m{n}") for n in range(30)))
    assert len(openai_server.requests) == 30


def test_a_long_message_is_cut_before_the_model_and_the_person_told(config, app_with, graph, openai_server):
    config.update(MAX_MESSAGE_CHARS="50")
    post = app_with(config)
    post(page_body(text_event("x" * 80)))
    assert openai_server.requests[0]["messages"][-1]["content"] == "x" * 50
    assert graph.texts(PSID) == [replies.TRUNCATED.format(limit=50), "You said: " + "x" * 50]


def test_events_beyond_the_cap_of_one_post_are_dropped(config, app_with, graph, caplog):
    config.update(MAX_EVENTS_PER_POST="3")
    post = app_with(config)
    post(page_body(*(text_event(f"m{n}", psid=str(500 + n)) for n in range(5))))
    assert len(graph.texts()) == 3
    assert "2 events over MAX_EVENTS_PER_POST dropped" in caplog.text


def test_only_allowed_people_get_model_answers(config, app_with, graph, openai_server):
    config.update(ALLOWED_PSIDS="111, 222")
    post = app_with(config)
    post(page_body(text_event("hi", psid="111"), text_event("hi", psid="999")))
    assert graph.texts("111") == ["You said: hi"]
    assert graph.texts("999") == [replies.NOT_ALLOWED]
    assert len(openai_server.requests) == 1


def test_a_bad_allowed_list_stops_start_up(config, make_app):
    from inboxgpt.config import ConfigError

    config.update(ALLOWED_PSIDS="111, bob")
    with pytest.raises(ConfigError, match="ALLOWED_PSIDS is invalid"):
        make_app(config)


@pytest.mark.parametrize("text", ["/help", "/reset"])
def test_replies_that_need_no_model_are_held_to_the_limit_a_minute_too(limited, graph, openai_server, text):
    one_by_one(limited, (at(NOON + n, text) for n in range(40)))
    texts = graph.texts(PSID)
    assert len(texts) == 4
    assert texts[-1] == replies.TOO_FAST
    one_by_one(limited, [at(NOON + 61, text)])  # the next minute
    assert len(graph.texts(PSID)) == 5


def test_stickers_are_held_to_the_limit_a_minute(limited, graph):
    from tests.helpers import load

    for n in range(30):
        body = load("sticker.json")
        body["entry"][0]["messaging"][0]["timestamp"] = (NOON + n) * 1000
        body["entry"][0]["messaging"][0]["message"]["mid"] = f"m_sticker_{n}"
        limited(body)
    assert graph.texts(PSID) == [replies.STICKER_THANKS] * 3 + [replies.TOO_FAST]
