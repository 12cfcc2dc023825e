"""Transcripts: every message in and out kept for the console, apart from the model's history, on every channel and
store; who needs a person, and why; nothing kept with TRANSCRIPT_DAYS=0."""

from __future__ import annotations

import pytest
import responses

from inboxgpt import notify, replies
from inboxgpt.conversation.transcript import ASKED, LATE_REFUSED, MODEL_FAILED, Entry, Kind
from inboxgpt.web.app import EXTENSION
from tests.fakes import FakeHook, openai_error, tool_calls
from tests.helpers import PSID, load, page_body, poster, text_event
from tests.test_media import AUDIO, AUDIO_URL
from tests.test_tools import api, script, with_tools  # noqa: F401 - the tools' fixtures

WA_PERSON = "wa:16505551234"


def lines(app, psid: str = PSID) -> list[tuple[str, str, str, str]]:
    """The person's transcript as (kind, text, by, state)."""
    return [(e.kind.value, e.text, e.by, e.state) for e in app.extensions[EXTENSION].transcripts.entries(psid)]


def summary(app, psid: str = PSID) -> dict[str, str]:
    return app.extensions[EXTENSION].store.transcript_summary(psid)


@pytest.fixture
def hook():
    server = FakeHook()
    yield server
    server.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_a_message_and_its_answer_are_kept_on_every_store(kind, config, make_app, tmp_path, request):
    if kind == "sqlite":
        config.update(STORE_URL=f"sqlite:///{tmp_path}/bot.db")
    elif kind == "redis":
        config.update(STORE_URL=request.getfixturevalue("redis_url"))
    app = make_app(config)
    poster(app)(page_body(text_event("Do you open on Sundays?")))
    assert lines(app) == [
        ("person", "Do you open on Sundays?", "", ""),
        ("assistant", "You said: Do you open on Sundays?", "", "sent"),
    ]
    kept = summary(app)
    assert kept["state"] == "assistant"
    assert kept["channel"] == "messenger"
    assert kept["last_text"] == "You said: Do you open on Sundays?"
    assert kept["waiting_since"] == ""  # answered


def test_a_photo_is_kept_as_a_photo_with_where_to_find_it(app, post):
    post(load("image.json"))
    (person, *_) = app.extensions[EXTENSION].transcripts.entries(PSID)
    assert person.text == "[photo]"
    assert len(person.photos) == 1
    assert person.photos[0].url is not None


def test_a_voice_message_is_kept_as_what_was_heard(app, post, cdn):
    cdn.add(responses.GET, AUDIO_URL, body=AUDIO, content_type="audio/mpeg")
    post(load("audio.json"))
    assert lines(app)[0] == ("person", "[voice: what time is it in Tokyo]", "", "")


def test_a_voice_message_not_heard_is_kept_too(app, post, cdn):
    cdn.add(responses.GET, AUDIO_URL, status=404)
    post(load("audio.json"))
    assert lines(app) == [("person", "[voice]", "", ""), ("assistant", replies.VOICE_FAILED, "", "sent")]


def test_asking_for_a_person_puts_them_in_needs_a_person_with_a_console_link(config, make_app, hook, monkeypatch):
    monkeypatch.setattr(notify, "RETRY_WAIT_SECONDS", 0.01)
    config.update(HANDOVER_NOTIFY_URL=hook.url + "/hook", CONSOLE_URL="https://bot.example.com/console/")
    app = make_app(config)
    post = poster(app)
    post(page_body(text_event("hello")))
    post(page_body(text_event("/human")))
    assert summary(app)["state"] == "needs_person"
    assert summary(app)["reason"] == ASKED
    assert ("handover", f"Needs a person: {ASKED}", "", "") in lines(app)
    app.extensions[EXTENSION].notifier.close()
    (notice,) = hook.requests
    assert notice["console"] == f"https://bot.example.com/console/c/{PSID}"


def test_a_model_failure_leaves_the_person_to_the_staff_and_tells_the_owner(
    config, make_app, hook, openai_server, monkeypatch
):
    monkeypatch.setattr(notify, "RETRY_WAIT_SECONDS", 0.01)
    config.update(HANDOVER_NOTIFY_URL=hook.url + "/hook", CONSOLE_URL="https://bot.example.com/console")
    app = make_app(config)
    openai_server.script.append(openai_error(500, "The server had an error", "server_error"))
    poster(app)(load("whatsapp/text.json"))
    assert summary(app, WA_PERSON)["state"] == "needs_person"
    assert summary(app, WA_PERSON)["reason"] == MODEL_FAILED
    app.extensions[EXTENSION].notifier.close()
    (notice,) = hook.requests
    assert notice["why"] == "needs_person"
    assert notice["console"] == "https://bot.example.com/console/c/wa%3A16505551234"


def test_what_the_page_wrote_by_hand_is_kept_as_the_staff(app, post):
    post(page_body(text_event("hello")))
    post(load("echo_page_inbox.json"))
    kinds = [line[0] for line in lines(app)]
    assert kinds == ["person", "assistant", "staff"]


def test_an_answer_meta_refused_is_kept_as_failed(app, post, graph):
    graph.fail_next(400, 551, messages_only=True)
    post(page_body(text_event("hello")))
    (_, answer) = lines(app)
    assert answer[0] == "assistant"
    assert answer[3].startswith("failed: this person is not available")


def test_a_late_answer_refused_by_whatsapp_leaves_the_person_to_the_staff(app, post, graph):
    graph.fail_next(400, 131047, messages_only=True)
    post(load("whatsapp/text.json"))
    assert summary(app, WA_PERSON)["state"] == "needs_person"
    assert summary(app, WA_PERSON)["reason"] == LATE_REFUSED


def test_tool_calls_are_kept_by_name_and_outcome_never_their_answers(with_tools, make_app, openai_server):  # noqa: F811
    app = make_app(with_tools)
    script(openai_server, tool_calls(("order_status", {"order_number": "1042"})))
    poster(app)(page_body(text_event("where is my order 1042?")))
    assert ("tool", "order_status: ok", "", "") in lines(app)
    assert not any("out for delivery" in line[1] for line in lines(app) if line[0] == "tool")


def test_nothing_is_kept_with_transcript_days_zero(config, make_app):
    config.update(TRANSCRIPT_DAYS="0")
    app = make_app(config)
    poster(app)(page_body(text_event("hello")))
    assert app.extensions[EXTENSION].store.transcript(PSID) == []
    assert app.extensions[EXTENSION].store.transcript_people(10) == []


def test_an_entry_reads_back_as_it_was_written():
    entry = Entry(Kind.STAFF, "On my way <b>now</b>", 1764064800.5, by="Maria", state="sent")
    assert Entry.decode(entry.encode()) == entry


def test_messages_that_queued_together_while_paused_are_kept_once_each(app, graph):
    post = poster(app)
    post(page_body(text_event("hello")))
    post(load("echo_page_inbox.json"))  # the page's people write: the assistant steps back
    post(page_body(text_event("one"), text_event("two"), text_event("three")))
    said = [line[1] for line in lines(app) if line[0] == "person"]
    assert said == ["hello", "one", "two", "three"]
