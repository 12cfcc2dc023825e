"""The Send API client: what reaches Meta, splitting, retries, and what each Graph error means."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inboxgpt.channels import page_channels
from inboxgpt.channels.base import Channels
from inboxgpt.channels.graph import MAX_BACKOFF_SECONDS, GraphClient, GraphError, GraphSettings, backoff_delay
from inboxgpt.channels.messenger import BOT_MARKER
from inboxgpt.channels.text import split_text
from inboxgpt.config import settings_from_mapping
from tests.fakes import FakeGraph, Reply
from tests.gunicorn_service import free_port
from tests.helpers import APP_SECRET, PAGE_TOKEN, PSID


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def messenger(config, graph, sleeps) -> Channels:
    config.update(GRAPH_BACKOFF="0.5", GRAPH_MAX_RETRIES="3")
    settings = settings_from_mapping(config)
    return page_channels(GraphClient(GraphSettings.from_settings(settings), sleep=sleeps.append), settings)


def test_text_goes_to_the_send_api_with_token_and_appsecret_proof(messenger, graph):
    assert messenger.send_text(PSID, "Hello!") == [("m_reply_1", "Hello!")]
    (call,) = graph.calls
    assert call == {
        "params": {
            "access_token": PAGE_TOKEN,
            "appsecret_proof": hmac.new(APP_SECRET.encode(), PAGE_TOKEN.encode(), hashlib.sha256).hexdigest(),
        },
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        # The marker comes back in the message's echo: the bot's own, not a person from the page.
        "message": {"text": "Hello!", "metadata": BOT_MARKER},
    }


def test_sender_action_is_sent_alone_with_the_recipient(messenger, graph):
    assert messenger.send_action(PSID, "typing_on") is True
    assert {k: v for k, v in graph.calls[0].items() if k != "params"} == {
        "recipient": {"id": PSID},
        "sender_action": "typing_on",
    }


@pytest.mark.parametrize(
    ("status", "code", "subcode"),
    [
        (500, 1, None),
        (500, 2, None),
        (400, 4, None),
        (400, 613, None),
        (500, 1200, None),
        (429, 613, None),
        (503, None, None),
        (400, 99, None),
    ],
)
def test_transient_failures_are_retried_with_capped_backoff(messenger, graph, sleeps, status, code, subcode):
    if code is None:
        graph.fail_next(status, times=2)
    else:
        graph.fail_next(status, code, subcode, times=2, transient=True if code == 99 else None)
    assert len(messenger.send_text(PSID, "hi")) == 1
    assert len(graph.calls) == 3
    assert sleeps == [0.5, 1.0]


def test_retries_stop_after_the_limit(messenger, graph, sleeps):
    graph.fail_next(500, 2, times=10)
    with pytest.raises(GraphError) as raised:
        messenger.send_text(PSID, "hi")
    assert raised.value.transient
    assert len(graph.calls) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_backoff_doubles_and_is_capped():
    assert [backoff_delay(n, 0.5) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, MAX_BACKOFF_SECONDS]
    assert backoff_delay(30, 0.5) == MAX_BACKOFF_SECONDS


@pytest.mark.parametrize(
    ("status", "code", "subcode", "meaning"),
    [
        (400, 190, 463, "page access token has expired: renew PAGE_ACCESS_TOKEN"),
        (400, 190, 460, "password change: renew PAGE_ACCESS_TOKEN"),
        (400, 190, None, "invalid or expired: renew PAGE_ACCESS_TOKEN"),
        (400, 10, 2018278, "more than 24 hours ago"),
        (400, 551, None, "not available"),
        (400, 100, 2018001, "no person matches"),
        (403, 200, None, "lacks a permission"),
        (403, 230, None, "lacks a permission"),
    ],
)
def test_permanent_failures_are_not_retried_and_logged_once(
    messenger, graph, sleeps, caplog, status, code, subcode, meaning
):
    graph.fail_next(status, code, subcode, times=5)
    with pytest.raises(GraphError) as raised:
        messenger.send_text(PSID, "hi")
    assert not raised.value.transient
    assert raised.value.code == code
    assert len(graph.calls) == 1
    assert sleeps == []
    failures = [r for r in caplog.records if r.name == "inboxgpt.channels.graph"]
    assert len(failures) == 1
    assert meaning in failures[0].getMessage()
    assert PAGE_TOKEN not in caplog.text


def test_a_failed_sender_action_does_not_raise_and_is_not_retried(messenger, graph, sleeps):
    graph.fail_next(500, 2, times=3)
    assert messenger.send_action(PSID, "typing_on") is False
    assert len(graph.calls) == 1
    assert sleeps == []


def test_a_refused_connection_is_retried_without_leaking_the_token(config, sleeps, caplog):
    port = free_port()  # nothing listens there until the first retry's wait
    config.update(GRAPH_API_URL=f"http://127.0.0.1:{port}/v23.0", GRAPH_BACKOFF="0.5", GRAPH_MAX_RETRIES="3")
    settings = settings_from_mapping(config)
    started: list[FakeGraph] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        started.append(FakeGraph(port=port))

    channels = page_channels(GraphClient(GraphSettings.from_settings(settings), sleep=sleep), settings)
    try:
        assert len(channels.send_text(PSID, "hi")) == 1
        assert started[0].texts() == ["hi"]
    finally:
        for graph in started:
            graph.close()
    assert sleeps == [0.5]
    assert PAGE_TOKEN not in caplog.text


def test_a_message_whose_answer_timed_out_is_not_sent_twice(config, graph, sleeps):
    config.update(GRAPH_TIMEOUT="0.2", GRAPH_MAX_RETRIES="3")
    settings = settings_from_mapping(config)
    channels = page_channels(GraphClient(GraphSettings.from_settings(settings), sleep=sleeps.append), settings)
    graph.script.append(Reply(delay=1.0, body={"recipient_id": PSID, "message_id": "m_late"}))
    with pytest.raises(GraphError):
        channels.send_text(PSID, "hi")
    assert graph.texts() == ["hi"]
    assert sleeps == []


def test_long_text_is_sent_as_several_messages_in_order(messenger, graph):
    text = " ".join(f"w{n}" for n in range(1500))
    sent = messenger.send_text(PSID, text)
    assert [piece for _, piece in sent] == graph.texts()
    assert len(sent) > 1
    assert "".join(graph.texts()) == text


# --- splitting ---


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=9000), st.integers(min_value=20, max_value=2000))
def test_split_pieces_fit_and_join_back_to_the_original(text, limit):
    pieces = split_text(text, limit)
    assert "".join(pieces) == text
    assert all(0 < len(piece.encode("utf-16-le")) // 2 <= limit for piece in pieces)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="abcdefgh ", min_size=1, max_size=300), min_size=1, max_size=40))
def test_split_prefers_paragraph_breaks(paragraphs):
    text = "\n\n".join(p.strip() or "x" for p in paragraphs)
    # Every paragraph is shorter than the limit, so every cut can fall between paragraphs.
    assert all(piece.endswith("\n\n") for piece in split_text(text, 700)[:-1])


def test_split_falls_back_to_sentences_then_words_then_characters():
    sentences = "This is a sentence. " * 150
    assert all(piece.endswith(". ") for piece in split_text(sentences.strip())[:-1])
    words = "word " * 600
    assert all(piece.endswith(" ") for piece in split_text(words)[:-1])
    solid = "x" * 4500
    assert [len(p) for p in split_text(solid)] == [2000, 2000, 500]


def test_split_counts_emoji_as_two_units():
    assert [len(p) for p in split_text("😀" * 1500)] == [1000, 500]


def test_short_text_is_one_piece():
    assert split_text("hello") == ["hello"]
    assert split_text("") == []
