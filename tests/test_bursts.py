"""Bursts: messages a person sends while the bot is answering them are answered together."""

from __future__ import annotations

import threading

import pytest
import responses

from inboxgpt import replies
from inboxgpt.events import Message
from inboxgpt.queues.dispatcher import Dispatcher
from inboxgpt.store import Bounds
from inboxgpt.store.memory import MemoryStore
from inboxgpt.web.app import EXTENSION
from tests.fakes import Reply, completion, echo_answer
from tests.helpers import PSID, load, page_body, poster, text_event
from tests.test_media import AUDIO, AUDIO_URL, PHOTO_URL, photo_at


@pytest.fixture
def held(openai_server):
    """The model holds its first answer until `release` is set; `asked` is set once it is asked."""
    asked, release = threading.Event(), threading.Event()

    def answer(request: dict) -> Reply:
        if not asked.is_set():
            asked.set()
            release.wait(timeout=30)
        return echo_answer(request)

    openai_server.default = answer
    yield asked, release
    release.set()


def while_the_first_is_answered(post, held, first: dict, *later: dict) -> None:
    """Send `first`, then each of `later` while the model is still writing the first answer."""
    asked, release = held
    post(page_body(first), wait=False)
    assert asked.wait(timeout=30)
    for body in later:
        post(body, wait=False)
    release.set()
    post(page_body())  # waits for every reply


def test_a_burst_sent_while_the_first_is_answered_costs_one_more_call_and_one_more_reply(
    post, graph, openai_server, held
):
    later = [page_body(text_event(text)) for text in ("I have a question", "about my order", "it's late")]
    while_the_first_is_answered(post, held, text_event("hi"), *later)
    assert len(openai_server.requests) == 2
    assert openai_server.requests[1]["messages"][-1] == {
        "role": "user",
        "content": "I have a question\n\nabout my order\n\nit's late",
    }
    assert graph.texts(PSID) == ["You said: hi", "You said: I have a question\n\nabout my order\n\nit's late"]
    post(page_body(text_event("thanks")))
    history = [m["content"] for m in openai_server.requests[-1]["messages"][1:-1]]
    assert history == [
        "hi",
        "You said: hi",
        "I have a question\n\nabout my order\n\nit's late",
        "You said: I have a question\n\nabout my order\n\nit's late",
    ]


def test_a_photo_and_a_voice_message_join_the_burst_and_a_command_acts_in_its_place(
    post, graph, openai_server, held, cdn
):
    cdn.add(responses.GET, AUDIO_URL, body=AUDIO, content_type="audio/mpeg")
    photo, voice = load("image.json"), load("audio.json")
    while_the_first_is_answered(
        post,
        held,
        text_event("first"),
        page_body(text_event("look at this")),
        photo,
        voice,
        page_body(text_event("/reset")),
        page_body(text_event("after the reset")),
    )
    chats = [r for path, r in zip(openai_server.paths, openai_server.requests, strict=True) if "chat" in path]
    assert len(chats) == 3
    burst = chats[1]["messages"][-1]["content"]
    assert burst[0] == {"type": "text", "text": "look at this\n\nwhat time is it in Tokyo"}
    assert burst[1] == {"type": "image_url", "image_url": {"url": PHOTO_URL, "detail": "low"}}
    texts = graph.texts(PSID)
    assert texts[1].startswith('🎤 I heard: "what time is it in Tokyo"\n\nYou said: look at this')
    assert texts[2] == replies.RESET_DONE
    # The reset came after the burst: the last message starts a new conversation.
    assert chats[2]["messages"][1:] == [{"role": "user", "content": "after the reset"}]
    assert texts[3] == "You said: after the reset"


def test_the_burst_is_kept_in_the_history_with_markers(post, openai_server, held, cdn):
    cdn.add(responses.GET, AUDIO_URL, body=AUDIO, content_type="audio/mpeg")
    while_the_first_is_answered(post, held, text_event("first"), load("image.json"), load("audio.json"))
    post(page_body(text_event("and now?")))
    kept = openai_server.requests[-1]["messages"][3]["content"]
    assert kept == "[photo]\n\n[voice message] what time is it in Tokyo"


def test_a_burst_counts_once_against_the_limits(config, app_with, graph, openai_server, held):
    config.update(LIMIT_PER_MINUTE="2")
    post = app_with(config)
    later = [page_body(text_event(f"more {n}")) for n in range(4)]
    while_the_first_is_answered(post, held, text_event("first"), *later)
    assert replies.TOO_FAST not in graph.texts(PSID)
    assert len(graph.texts(PSID)) == 2


def test_messages_sent_apart_are_answered_apart(post, graph, openai_server):
    post(page_body(text_event("one")))
    post(page_body(text_event("two")))
    assert graph.texts(PSID) == ["You said: one", "You said: two"]


# --- the short wait (BURST_WAIT_SECONDS) ---


class FakeClock:
    """Time that moves only when the dispatcher waits; `on_wait` runs at each wait (a message arriving)."""

    def __init__(self, now: float):
        self.now = now
        self.waits: list[float] = []
        self.on_wait = lambda: None

    def wait(self, seconds: float) -> None:
        self.waits.append(round(seconds, 3))
        self.now += seconds
        self.on_wait()


def message(n: int, received: float) -> Message:
    return Message(psid="1", mid=f"m{n}", timestamp=0, text=f"message {n}", received=received)


@pytest.mark.parametrize("wait_seconds", [2.0, 0.0])
def test_the_short_wait_gathers_a_message_sent_during_it(make_app, config, wait_seconds):
    config.update(BURST_WAIT_SECONDS=str(wait_seconds))
    bot = make_app(config).extensions[EXTENSION].bot
    clock = FakeClock(1000.0)
    bot._clock = lambda: clock.now
    store = MemoryStore(Bounds(20, 3000, 3600, 100, 3600, 1000))
    batches: list[list[str]] = []

    def handle(events) -> int:
        batches.append([event.text for event in events])
        return len(events)

    dispatcher = Dispatcher(store, handle, threads=1, lock_ttl=60, gather=bot.gather_seconds, wait=clock.wait)

    def one_more_during_the_first_wait() -> None:
        if len(clock.waits) == 1:
            dispatcher.submit([message(1, clock.now)])

    clock.on_wait = one_more_during_the_first_wait
    dispatcher.submit([message(0, clock.now)])
    assert dispatcher.wait_idle(timeout=10)
    dispatcher.close(finish_queued=True)
    if wait_seconds:
        assert clock.waits == [2.0, 2.0]  # two seconds after the first, then two after the second
        assert batches == [["message 0", "message 1"]]
    else:
        assert clock.waits == []
        assert batches == [["message 0"]]


def test_a_photo_link_that_is_no_url_during_the_short_wait_still_gets_an_answer(make_app, config, graph):
    config.update(BURST_WAIT_SECONDS="0.01")
    post = poster(make_app(config))
    post(photo_at("https://[broken/photo.jpg", caption="what is this?"))
    post(page_body(text_event("hello?")))
    assert len(graph.texts(PSID)) == 2
    assert graph.texts(PSID)[-1] == "You said: hello?"


def test_a_burst_of_long_messages_is_one_turn_within_max_message_chars_and_one_notice(post, graph, openai_server, held):
    long_messages = [page_body(text_event(f"{n} " + "long " * 1000)) for n in range(20)]
    while_the_first_is_answered(post, held, text_event("hi"), *long_messages)
    assert len(openai_server.requests) == 2
    merged = openai_server.requests[1]["messages"][-1]["content"]
    assert len(merged) <= 2000 + 2 * 20  # MAX_MESSAGE_CHARS, and the blank lines between the messages
    assert graph.texts(PSID).count(replies.TRUNCATED.format(limit=2000)) == 1


def test_a_very_long_turn_never_wipes_the_history(post_to_store, graph, openai_server):
    post_to_store(page_body(text_event("my name is Ada")))
    openai_server.script.append(completion("A very long answer, on and on. " * 400))  # about 12,000 characters
    post_to_store(page_body(text_event("tell me everything")))
    post_to_store(page_body(text_event("what is my name?")))
    history = [m["content"] for m in openai_server.requests[-1]["messages"][1:-1]]
    assert history[:2] == ["my name is Ada", "You said: my name is Ada"]
    assert history[2] == "tell me everything"
    assert history[3].startswith("A very long answer")
    assert history[3].endswith("…")
