"""When a person from the page steps in: the bot notices, steps back, keeps the thread, and hands over on request."""

from __future__ import annotations

import logging
from http import HTTPStatus

import pytest

from inboxgpt import replies
from inboxgpt.channels.messenger import BOT_MARKER
from inboxgpt.model import prompt
from tests.helpers import PSID, load, page_body, text_event

APP_ID = "1517776481860111"  # the app id in tests/data/echo.json and the handover payloads
PAGE_INBOX = "263902037430900"
SENT_AT = 1764064800000  # when the payloads in tests/data were sent, in ms


def at(minutes: float, text: str) -> dict:
    """A text message sent `minutes` after the payloads in tests/data."""
    event = text_event(text)
    event["timestamp"] = SENT_AT + int(minutes * 60_000)
    return page_body(event)


def echo_at(minutes: float, name: str = "echo_page_inbox.json", mid: str | None = None) -> dict:
    body = load(name)
    item = body["entry"][0]["messaging"][0]
    item["timestamp"] = SENT_AT + int(minutes * 60_000)
    if mid:
        item["message"]["mid"] = mid
    return body


@pytest.fixture
def post(config, app_with):
    """The test's app, knowing its own app id."""
    config.update(APP_ID=APP_ID)
    return app_with(config)


# --- noticing the page's people ---


@pytest.mark.parametrize("name", ["echo_page_inbox.json", "echo_business_suite.json"])
def test_a_hand_written_message_silences_the_bot_for_that_person(post, graph, openai_server, name):
    assert post(load(name)).status_code == HTTPStatus.OK
    post(at(1, "thanks! and can I change the address?"))
    assert openai_server.requests == []
    assert graph.calls == []  # no reply, no typing, no seen


def test_the_bots_own_echoes_never_silence_it(post, graph, openai_server):
    post(load("echo_bot.json"))
    post(at(1, "hello again"))
    assert graph.texts(PSID) == ["You said: hello again"]


def test_an_echo_with_this_apps_id_is_the_bots_own_even_without_the_marker(post, graph):
    post(load("echo.json"))  # app_id 1517776481860111, empty metadata
    post(at(1, "hello again"))
    assert graph.texts(PSID) == ["You said: hello again"]


def test_without_app_id_only_the_marker_tells_the_bots_echoes_apart(config, app_with, graph):
    post = app_with(config)
    post(load("echo_bot.json"))
    post(at(1, "still there?"))
    assert graph.texts(PSID) == ["You said: still there?"]
    post(load("echo.json"))  # another app's id, no marker: a person (or another app) wrote
    post(at(2, "hello?"))
    assert graph.texts(PSID) == ["You said: still there?"]


@pytest.mark.parametrize("marker", [BOT_MARKER, "messenger-gpt:bot"])
def test_the_marker_of_this_release_and_of_earlier_ones_tell_the_bots_echoes_apart(post, graph, marker):
    # No APP_ID: only the marker tells. A message sent before a deploy echoes after it, with the older name.
    echo = load("echo_bot.json")
    echo["entry"][0]["messaging"][0]["message"]["metadata"] = marker
    post(echo)
    post(at(1, "still there?"))
    assert graph.texts(PSID) == ["You said: still there?"]


def test_every_message_the_bot_sends_carries_the_marker(post, graph):
    post(at(0, "/help"))
    post(at(1, "hello"))
    assert [call["message"]["metadata"] for call in graph.calls if "message" in call] == [BOT_MARKER] * 2


# --- stepping back, and coming back ---


def test_the_bot_answers_again_once_the_pause_has_passed_knowing_what_was_said(post, graph, openai_server):
    post(at(0, "where is my order?"))
    post(echo_at(1))
    post(at(2, "great, thanks"))
    post(at(32, "one more thing: do you ship abroad?"))
    assert len(openai_server.requests) == 2
    assert len(graph.texts(PSID)) == 2
    anna = prompt.page_words("Hi, this is Anna from the shop. Your order ships tomorrow.")
    # The page's words join the bot's last answer, and the person's two messages join: the roles alternate.
    assert [(m["role"], m["content"]) for m in openai_server.requests[-1]["messages"][1:]] == [
        ("user", "where is my order?"),
        ("assistant", f"You said: where is my order?\n\n{anna}"),
        ("user", "great, thanks\n\none more thing: do you ship abroad?"),
    ]


def test_each_hand_written_message_restarts_the_pause(post, graph, openai_server):
    post(echo_at(0))
    post(echo_at(20, mid="m_echo_inbox_2"))
    post(at(49, "still waiting"))
    assert openai_server.requests == []
    post(at(51, "hello?"))
    assert graph.texts(PSID) == ["You said: still waiting\n\nhello?"]  # what was said while silent joins in


def test_the_pause_lasts_human_pause_minutes_fractions_allowed(config, app_with, graph):
    config.update(HUMAN_PAUSE_MINUTES="0.5")
    post = app_with(config)
    post(echo_at(0))
    post(at(0.4, "anyone?"))
    post(at(0.6, "hello?"))
    assert graph.texts(PSID) == ["You said: anyone?\n\nhello?"]


def test_messages_while_silent_count_against_no_limit(config, app_with, graph):
    config.update(LIMIT_PER_DAY="1", APP_ID=APP_ID)
    post = app_with(config)
    post(echo_at(0))
    post(at(1, "one"))
    post(at(2, "two"))
    post(at(40, "three"))
    assert graph.texts(PSID) == ["You said: one\n\ntwo\n\nthree"]  # one model call, under the limit of one


def test_a_refusal_because_another_app_controls_the_thread_starts_a_pause(post, graph, openai_server, caplog):
    graph.fail_next(400, code=10, subcode=2018300, messages_only=True)
    with caplog.at_level(logging.INFO):
        post(at(0, "hello"))
        post(at(1, "hello?"))
    assert len(openai_server.requests) == 1
    assert graph.texts(PSID) == ["You said: hello"]  # refused: nothing more was sent
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    post(at(40, "anyone?"))
    assert graph.texts(PSID)[1:] == ["You said: hello?\n\nanyone?"]


# --- the thread of the conversation ---


def test_standby_messages_are_recorded_and_never_answered(post, graph, openai_server):
    post(load("standby.json"))
    post(load("standby_echo.json"))
    assert graph.calls == []
    assert openai_server.requests == []
    post(at(31, "hello bot"))
    history = [(m["role"], m["content"]) for m in openai_server.requests[-1]["messages"][1:]]
    assert history == [
        ("user", "I'm talking to the human agent"),
        ("assistant", prompt.page_words("Anna here, I'm on it.")),
        ("user", "hello bot"),
    ]


# --- asking for a person, and for the bot ---


@pytest.mark.parametrize("ask", ["/human", "menu"])
def test_asking_for_a_person_passes_the_thread_to_the_page_inbox(post, graph, openai_server, ask):
    if ask == "menu":
        body = load("postback_menu.json")
        body["entry"][0]["messaging"][0]["postback"].update(payload="TALK_TO_A_PERSON", title="Talk to a person")
        post(body)
    else:
        post(at(0, "/human"))
    assert graph.texts(PSID) == [replies.HUMAN_COMING]
    assert graph.thread_calls() == [
        (
            "pass_thread_control",
            {
                "recipient": {"id": PSID},
                "target_app_id": PAGE_INBOX,
                "metadata": "The person asked for a person from the page (/human).",
            },
        )
    ]
    post(at(1, "hello?"))
    assert openai_server.requests == []
    assert graph.texts(PSID) == [replies.HUMAN_COMING]


def test_handover_app_id_chooses_where_the_thread_goes(config, app_with, graph):
    config.update(HANDOVER_APP_ID="777")
    post = app_with(config)
    post(at(0, "/human"))
    assert graph.thread_calls()[0][1]["target_app_id"] == "777"


def test_a_refused_pass_is_logged_once_and_the_pause_still_holds(post, graph, openai_server, caplog):
    graph.fail_next(400, code=10, subcode=2018500, times=2, endpoint="pass_thread_control")
    with caplog.at_level(logging.WARNING):
        post(at(0, "/human"))
        post(at(31, "/human"))  # once the first pause is over
    refusals = [r for r in caplog.records if "refused to pass" in r.getMessage()]
    assert len(refusals) == 1
    assert [endpoint for endpoint, _ in graph.thread_calls()] == ["pass_thread_control"] * 2
    post(at(32, "hello?"))
    assert openai_server.requests == []
    assert graph.texts(PSID) == [replies.HUMAN_COMING] * 2


def test_slash_bot_ends_the_pause(post, graph, openai_server):
    post(echo_at(0))
    post(at(1, "/bot"))
    post(at(2, "hello"))
    assert graph.texts(PSID) == [replies.BOT_BACK, "You said: hello"]
    assert graph.thread_calls() == []


def test_slash_bot_under_standby_takes_the_thread_back(post, graph):
    body = load("standby.json")
    body["entry"][0]["standby"][0]["message"]["text"] = "/bot"
    post(body)
    assert graph.thread_calls() == [
        ("take_thread_control", {"recipient": {"id": PSID}, "metadata": "The person asked for the bot again (/bot)."})
    ]
    assert graph.texts(PSID) == [replies.BOT_BACK]


@pytest.mark.parametrize("name", ["pass_thread_control_to_bot.json", "take_thread_control_by_bot.json"])
def test_the_thread_coming_back_to_this_app_ends_the_pause(post, graph, name):
    post(echo_at(0))
    post(load(name))
    post(at(1, "hello"))
    assert graph.texts(PSID) == ["You said: hello"]


def test_without_app_id_a_pass_to_anything_but_an_inbox_is_to_this_app(config, app_with, graph):
    post = app_with(config)
    post(echo_at(0))
    post(load("pass_thread_control_from_bot.json"))  # to the Page Inbox: not back
    post(at(1, "hello"))
    post(load("pass_thread_control_to_bot.json"))
    post(at(2, "hello again"))
    assert graph.texts(PSID) == ["You said: hello\n\nhello again"]  # what was said while silent joins in


@pytest.mark.parametrize(
    "name",
    [
        "pass_thread_control_from_bot.json",
        "take_thread_control_by_inbox.json",
        "request_thread_control.json",
        "app_roles.json",
    ],
)
def test_other_handover_events_are_logged_and_change_nothing(post, graph, openai_server, caplog, name):
    with caplog.at_level(logging.INFO):
        assert post(load(name)).status_code == HTTPStatus.OK
    assert graph.all_calls == []
    assert any("handover" in r.getMessage() or "app_roles" in r.getMessage() for r in caplog.records)
    post(at(1, "hello"))
    assert graph.texts(PSID) == ["You said: hello"]


def test_the_bots_own_echoes_never_reach_the_queue(post, caplog):
    with caplog.at_level(logging.INFO, logger="inboxgpt.web.app"):
        post(load("echo_bot.json"))
    assert "webhook (messenger): 0 queued, 0 redelivered, skipped {'own_echo': 1}" in caplog.messages


def test_asking_for_a_person_while_one_is_talking_says_nothing_over_them(post, graph, openai_server):
    post(echo_at(0))
    post(at(1, "/human"))
    assert graph.texts(PSID) == []
    assert graph.thread_calls() == []
    post(at(30.5, "hello?"))  # the pause started again at the /human
    assert openai_server.requests == []
