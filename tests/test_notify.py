"""HANDOVER_NOTIFY_URL: the owner hears when a person asks for someone or the bot steps back, on any channel."""

from __future__ import annotations

import logging

import pytest

from inboxgpt import notify, replies
from inboxgpt.web.app import EXTENSION
from tests.fakes import FakeHook, Reply
from tests.helpers import PSID, load, page_body, poster, text_event


@pytest.fixture
def hook():
    server = FakeHook()
    yield server
    server.close()


@pytest.fixture
def notified(config, make_app, hook, monkeypatch):
    """POST as Meta would to an app that notifies `hook`; return (post, the notices received once sent)."""
    monkeypatch.setattr(notify, "RETRY_WAIT_SECONDS", 0.01)
    config.update(HANDOVER_NOTIFY_URL=hook.url + "/hooks/T0123/secret-key")
    app = make_app(config)

    def notices() -> list[dict]:
        app.extensions[EXTENSION].notifier.close()  # sends what is waiting
        return hook.requests

    return poster(app), notices


def test_asking_for_a_human_on_whatsapp_tells_the_owner(notified, graph):
    post, notices = notified
    body = load("whatsapp/text.json")
    post(body)
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    message.update(id="wamid.human", text={"body": "/human"})
    post(body)
    assert graph.texts("16505551234")[-1] == replies.HUMAN_COMING
    (notice,) = notices()
    assert {k: v for k, v in notice.items() if k != "time"} == {
        "channel": "whatsapp",
        "person": "wa:16505551234",
        "why": "asked_for_human",
        "last_message": "Hi! Do you deliver on Sundays?",
        "console": "",
    }


def test_the_page_writing_by_hand_tells_the_owner_once(notified):
    post, notices = notified
    post(page_body(text_event("Do you have it in blue?")))
    for mid in ("m_hand_1", "m_hand_2"):
        post(
            page_body(
                {
                    "sender": {"id": "1234567890"},
                    "recipient": {"id": PSID},
                    "timestamp": 1,
                    "message": {"is_echo": True, "mid": mid, "text": "Yes, we do!", "app_id": 263902037430900},
                }
            )
        )
    (notice,) = notices()
    assert (notice["channel"], notice["person"], notice["why"]) == ("messenger", PSID, "page_wrote")
    assert notice["last_message"] == "Do you have it in blue?"


def test_a_notifier_that_fails_never_costs_the_reply_nor_shows_its_address(notified, hook, graph, caplog):
    post, notices = notified
    hook.default = lambda request: Reply(status=500, body={"error": "down"})
    caplog.set_level(logging.WARNING)
    post(page_body(text_event("/human")))
    assert graph.texts(PSID) == [replies.HUMAN_COMING]
    assert len(notices()) == notify.ATTEMPTS  # tried again, then given up
    assert "handover notification" in caplog.text
    assert "secret-key" not in caplog.text


def test_a_notification_refused_once_is_posted_again(notified, hook):
    post, notices = notified
    hook.script.append(Reply(status=503, body={"error": "restarting"}))
    post(page_body(text_event("/human")))
    refused, taken = notices()
    assert refused == taken
