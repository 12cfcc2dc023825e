"""What people send besides text: photos seen by the model, voice messages transcribed, replies in context."""

from __future__ import annotations

import base64
import hashlib
import re
import tempfile
from http import HTTPStatus

import pytest
import requests
import responses

from inboxgpt import media, replies
from inboxgpt.model import prompt
from tests.fakes import Trickle, openai_error
from tests.helpers import PSID, load, page_body, text_event

AUDIO_URL = load("audio.json")["entry"][0]["messaging"][0]["message"]["attachments"][0]["payload"]["url"]
PHOTO_URL = load("image.json")["entry"][0]["messaging"][0]["message"]["attachments"][0]["payload"]["url"]
AUDIO = b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 4000  # the start of an MP4 voice clip


def voice_at(url: str) -> dict:
    body = load("audio.json")
    body["entry"][0]["messaging"][0]["message"]["attachments"][0]["payload"]["url"] = url
    return body


# --- photos ---


def test_a_photo_goes_to_the_model_as_an_image_part(post, graph, openai_server):
    post(load("image.json"))
    content = openai_server.requests[0]["messages"][-1]["content"]
    assert content == [
        {"type": "text", "text": prompt.PHOTO_PROMPT},
        {"type": "image_url", "image_url": {"url": PHOTO_URL, "detail": "low"}},
    ]
    assert len(graph.texts(PSID)) == 1


def test_several_photos_go_together_with_the_caption_up_to_the_limit(config, app_with, openai_server):
    config.update(MAX_IMAGES="2", VISION_DETAIL="high")
    post = app_with(config)
    post(load("photos_with_caption.json"))
    content = openai_server.requests[0]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "Which of these is ripe?"}
    assert [part["image_url"]["url"] for part in content[1:]] == [
        "https://scontent.xx.fbcdn.net/v/t1.15752-9/one.jpg?oh=1",
        "https://scontent.xx.fbcdn.net/v/t1.15752-9/two.jpg?oh=2",
    ]
    assert {part["image_url"]["detail"] for part in content[1:]} == {"high"}


def test_later_turns_keep_a_marker_not_the_expiring_link(post, openai_server):
    post(load("photos_with_caption.json"))
    post(page_body(text_event("and the second one?")))
    history = openai_server.requests[-1]["messages"][1:-1]
    assert history[0] == {"role": "user", "content": "[3 photos] Which of these is ripe?"}
    assert "fbcdn" not in str(openai_server.requests[-1]["messages"])


@pytest.mark.parametrize(
    ("setting", "name", "answer"),
    [
        ("VISION", "image.json", replies.CANNOT_USE["image"]),
        ("TRANSCRIBE", "audio.json", replies.CANNOT_USE["audio"]),
    ],
)
def test_with_vision_or_transcription_off_the_bot_says_it_cannot_use_it(
    config, app_with, graph, openai_server, setting, name, answer
):
    config[setting] = "off"
    post = app_with(config)
    post(load(name))
    assert graph.texts(PSID) == [answer]
    assert openai_server.requests == []


def photo_at(url: str, caption: str | None = None) -> dict:
    body = load("image.json")
    message = body["entry"][0]["messaging"][0]["message"]
    message["attachments"][0]["payload"]["url"] = url
    if caption:
        message["text"] = caption
    return body


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "http://169.254.169.254/latest/meta-data", "ftp://cdn.example.com/a.jpg", "/etc/passwd"],
)
def test_a_photo_link_that_is_not_https_never_reaches_the_model(post, graph, openai_server, url):
    post(photo_at(url))
    assert graph.texts(PSID) == [replies.CANNOT_USE["image"]]
    assert openai_server.requests == []


def test_a_caption_beside_a_refused_photo_link_is_answered_as_text(post, openai_server):
    post(photo_at("file:///etc/passwd", caption="is this ripe?"))
    assert openai_server.requests[0]["messages"][-1]["content"] == "is this ripe?"


def test_plain_http_photo_links_can_be_allowed_for_local_tests(config, app_with, openai_server):
    config.update(ALLOW_HTTP_MEDIA="on")
    post = app_with(config)
    post(photo_at("http://127.0.0.1:9999/photo.jpg"))
    parts = openai_server.requests[0]["messages"][-1]["content"]
    assert parts[1]["image_url"]["url"] == "http://127.0.0.1:9999/photo.jpg"


# --- voice messages ---


def test_a_voice_message_is_transcribed_and_answered_as_if_typed(post, graph, openai_server, cdn):
    cdn.add(responses.GET, AUDIO_URL, body=AUDIO, content_type="audio/mpeg")
    post(load("audio.json"))
    upload, chat = openai_server.requests
    assert openai_server.paths[0] == "/v1/audio/transcriptions"
    assert AUDIO in upload["_body"]
    assert re.search(rb'name="model"\r\n\r\ngpt-4o-mini-transcribe', upload["_body"])
    assert chat["messages"][-1] == {"role": "user", "content": "what time is it in Tokyo"}
    assert graph.texts(PSID) == ['🎤 I heard: "what time is it in Tokyo"\n\nYou said: what time is it in Tokyo']


def test_a_voice_message_stays_in_the_history_as_its_transcript(post, openai_server, cdn):
    cdn.add(responses.GET, AUDIO_URL, body=AUDIO, content_type="video/mp4")
    post(load("audio.json"))
    post(page_body(text_event("thanks")))
    assert openai_server.requests[-1]["messages"][1]["content"] == "[voice message] what time is it in Tokyo"


def test_the_transcription_model_is_a_setting(config, app_with, openai_server, cdn):
    config.update(TRANSCRIBE_MODEL="whisper-1")
    post = app_with(config)
    cdn.add(responses.GET, AUDIO_URL, body=AUDIO, content_type="audio/mp4")
    post(load("audio.json"))
    assert b"whisper-1" in openai_server.requests[0]["_body"]


@pytest.mark.parametrize(
    "reply",
    [
        {"body": b"x" * 5000, "content_type": "audio/mpeg"},  # over MAX_AUDIO_BYTES
        {"body": b"x" * 5000, "content_type": "audio/mpeg", "headers": {"Content-Length": "5000"}},
        {"body": b"<html>", "content_type": "text/html"},  # not audio
        {"status": 404, "body": b"", "content_type": "audio/mpeg"},
        {"body": requests.ReadTimeout("read timed out")},
        {"body": requests.ConnectionError("connection refused")},
    ],
)
def test_a_voice_message_that_cannot_be_fetched_gets_a_friendly_answer(
    config, app_with, graph, openai_server, cdn, reply
):
    config.update(MAX_AUDIO_BYTES="4096")
    post = app_with(config)
    cdn.add(responses.GET, AUDIO_URL, **reply)
    post(load("audio.json"))
    assert graph.texts(PSID) == [replies.VOICE_FAILED]
    assert openai_server.requests == []


def test_media_is_fetched_over_https_only(post, graph, openai_server, cdn):
    post(voice_at("http://cdn.example.com/clip.mp4"))
    assert graph.texts(PSID) == [replies.VOICE_FAILED]
    assert not [c for c in cdn.calls if c.request.method == "GET"]


def test_plain_http_media_can_be_allowed_for_local_tests(config, app_with, graph, cdn):
    config.update(ALLOW_HTTP_MEDIA="on")
    post = app_with(config)
    cdn.add(responses.GET, "http://127.0.0.1:9999/clip.mp4", body=AUDIO, content_type="audio/mpeg")
    post(voice_at("http://127.0.0.1:9999/clip.mp4"))
    assert graph.texts(PSID)[0].startswith("🎤 I heard:")


SLOW_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\nX-Slow: " + b"a" * 100 + b"\r\nContent-Length: 2\r\n\r\nab"
SLOW_BODY = b"HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\nContent-Length: 100\r\n\r\n" + b"a" * 100


@pytest.mark.parametrize(("answer", "fast"), [(SLOW_HEAD, 17), (SLOW_BODY, len(SLOW_BODY) - 100)])
def test_a_download_sent_a_byte_at_a_time_is_cut_at_the_media_timeout(
    config, app_with, graph, openai_server, answer, fast
):
    slow = Trickle(answer, fast)  # 100 bytes, 5 s in all: well over the timeout
    try:
        config.update(ALLOW_HTTP_MEDIA="on", MEDIA_TIMEOUT="0.3")
        post = app_with(config)
        post(voice_at(slow.url + "/clip.mp4"))
        assert graph.texts(PSID) == [replies.VOICE_FAILED]
        assert openai_server.requests == []
        assert slow.done.wait(timeout=30)
        assert slow.outcome == "cut"  # hung up on, not read to the end
    finally:
        slow.close()


def test_a_redirect_away_from_https_is_refused(post, graph, openai_server, cdn):
    cdn.add(responses.GET, AUDIO_URL, status=302, headers={"Location": "http://cdn.example.com/clip.mp4"})
    cdn.add(responses.GET, "http://cdn.example.com/clip.mp4", body=AUDIO, content_type="audio/mpeg")
    post(load("audio.json"))
    assert graph.texts(PSID) == [replies.VOICE_FAILED]


def test_a_failed_transcription_gets_a_friendly_answer(post, graph, openai_server, cdn):
    cdn.add(responses.GET, AUDIO_URL, body=AUDIO, content_type="audio/mpeg")
    openai_server.script.append(
        openai_error(400, "Audio file might be corrupted or unsupported", "invalid_request_error")
    )
    post(load("audio.json"))
    assert graph.texts(PSID) == [replies.VOICE_FAILED]


def test_silence_gets_asked_again(post, graph, openai_server, cdn):
    cdn.add(responses.GET, AUDIO_URL, body=AUDIO, content_type="audio/mpeg")
    openai_server.transcript = "  "
    post(load("audio.json"))
    assert graph.texts(PSID) == [replies.VOICE_EMPTY]


def test_nothing_downloaded_is_left_on_disk(post, cdn, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cdn.add(responses.GET, AUDIO_URL, body=AUDIO, content_type="audio/mpeg")
    post(load("audio.json"))
    assert list(tmp_path.iterdir()) == []


# --- replies to a message ---


def test_a_reply_to_the_bots_message_brings_it_into_context(post, graph, openai_server):
    post(page_body(text_event("Name a French city")))
    (replied_mid,) = graph.message_ids  # the id Meta gave the bot's answer
    reply = text_event("why that one?")
    reply["message"]["reply_to"] = {"mid": replied_mid}
    post(page_body(reply))
    assert openai_server.requests[-1]["messages"][-1]["content"] == (
        '[Replying to: "You said: Name a French city"]\nwhy that one?'
    )


def test_a_reply_to_the_persons_own_message_brings_it_into_context(post, openai_server):
    post(page_body(text_event("my order number is 4411", mid="m_order")))
    reply = text_event("any news on it?")
    reply["message"]["reply_to"] = {"mid": "m_order"}
    post(page_body(reply))
    assert openai_server.requests[-1]["messages"][-1]["content"].startswith('[Replying to: "my order number is 4411"]')


def test_a_reply_to_a_message_no_longer_kept_is_answered_as_plain_text(post, openai_server):
    post(load("reply_to.json"))
    assert openai_server.requests[0]["messages"][-1]["content"] == "and this one?"


def test_reset_forgets_the_messages_kept_for_quoting(post, openai_server):
    post(page_body(text_event("secret plan", mid="m_plan")))
    post(page_body(text_event("/reset")))
    reply = text_event("what was it?")
    reply["message"]["reply_to"] = {"mid": "m_plan"}
    post(page_body(reply))
    assert openai_server.requests[-1]["messages"][-1]["content"] == "what was it?"


# --- what the bot cannot use yet ---


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("video.json", replies.CANNOT_USE["video"]),
        ("file.json", replies.CANNOT_USE["file"]),
        ("location.json", replies.CANNOT_USE["location"]),
        ("share.json", replies.CANNOT_OPEN),
        ("fallback_null.json", replies.CANNOT_OPEN),
    ],
)
def test_video_files_locations_and_shares_get_an_honest_answer(post, graph, openai_server, name, answer):
    assert post(load(name)).status_code == HTTPStatus.OK
    assert graph.texts(PSID) == [answer]
    assert openai_server.requests == []


# --- checksums ---


@pytest.mark.parametrize(
    ("given", "matches"),
    [
        (hashlib.sha256(AUDIO).hexdigest(), True),
        (hashlib.sha256(AUDIO).hexdigest().upper(), True),
        (base64.b64encode(hashlib.sha256(AUDIO).digest()).decode(), True),  # as WhatsApp's webhooks show it
        (hashlib.sha256(b"another file").hexdigest(), False),
        (base64.b64encode(hashlib.sha256(b"another file").digest()).decode(), False),
        (None, True),
        ("not a checksum in any form", True),  # cannot be checked: let pass, not refused
    ],
)
def test_a_download_is_checked_against_the_checksum_given_in_either_form(given, matches):
    assert media._matches(given, hashlib.sha256(AUDIO).digest()) is matches
