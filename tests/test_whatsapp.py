"""WhatsApp through the same webhook: its bodies read into events, its people answered through the Cloud API."""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import replace
from http import HTTPStatus

import pytest
from prometheus_client import REGISTRY

from inboxgpt import replies
from inboxgpt.channels import page_channels
from inboxgpt.channels.graph import GraphClient, GraphSettings
from inboxgpt.config import ConfigError, settings_from_mapping
from inboxgpt.console.staff import Staff
from inboxgpt.events import Echo, Message, Undelivered
from inboxgpt.web.app import EXTENSION, create_app
from tests.fakes import FakeHook, Media, Reply, completion, echo_answer, streamed
from tests.helpers import WHATSAPP_NUMBER_ID, WHATSAPP_TOKEN, load, page_body, poster, recent, text_event

WA_ID = "16505551234"
# Another number of the same WhatsApp Business Account (another branch of the shop).
OTHER_NUMBER_ID = "106540352243555"
WAMID = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUVCNjY3RkE4NTI3QjE3RjQ1RgA="
FAILED_WAMID = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJCMkMzRDRFNUY2QTdCOEM5RDAA"


def whatsapp(config: dict):
    settings = settings_from_mapping(config)
    channels = page_channels(GraphClient(GraphSettings.from_settings(settings)), settings)
    return next(channel for channel in channels.all if channel.name == "whatsapp")


def wa(name: str) -> dict:
    return load(f"whatsapp/{name}")


# --- reading ---


def test_a_text_is_a_message_from_the_person_keyed_by_their_id_as_sent(config):
    body = wa("text.json")
    parsed = whatsapp(config).read(body)
    (event,) = parsed.events
    assert isinstance(event, Message)
    assert (event.psid, event.mid, event.text) == (f"wa:{WA_ID}", WAMID, "Hi! Do you deliver on Sundays?")
    assert event.timestamp == int(body["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"]) * 1000
    assert event.answer_by == event.timestamp + 24 * 3600 * 1000  # WhatsApp's window for answers
    assert event.event_id == f"wa:{WAMID}"
    assert parsed.channel == "whatsapp"


def test_a_business_scoped_id_is_kept_whole_never_reduced_to_digits(config):
    (event,) = whatsapp(config).read(wa("business_scoped.json")).events
    assert event.psid == "wa:US.13491208655302741918"


def test_receipts_are_counted_and_a_failed_one_is_its_persons_event(config):
    parsed = whatsapp(config).read(wa("statuses.json"))
    (failed,) = parsed.events
    assert isinstance(failed, Undelivered)
    assert (failed.psid, failed.mid, failed.code) == (f"wa:{WA_ID}", FAILED_WAMID, 131047)
    assert "24 hours" in failed.reason
    assert parsed.skipped == {"status_sent": 1, "status_delivered": 1, "status_read": 1}


@pytest.mark.parametrize(
    ("name", "kind"),
    [("group.json", "group"), ("reaction.json", "reaction")],
)
def test_groups_reactions_and_other_fields_are_not_answered(config, name, kind):
    parsed = whatsapp(config).read(wa(name))
    assert parsed.events == ()
    assert parsed.skipped == {kind: 1}


def test_what_the_business_writes_in_the_app_is_an_echo_to_the_person(config):
    (event,) = whatsapp(config).read(wa("echoes.json")).events
    assert isinstance(event, Echo)
    assert (event.psid, event.text) == (f"wa:{WA_ID}", "Hi Ada, this is Sam from the shop.")


def test_what_the_business_writes_in_the_app_pauses_the_bot_for_that_person(post, graph, openai_server):
    post(wa("echoes.json"))
    post(wa("text.json"))
    assert openai_server.requests == []  # the business's people are talking to Ada
    assert graph.texts(WA_ID) == []


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("document.json", replies.CANNOT_USE["file"]),  # its caption is not answered without the file
        ("location.json", replies.CANNOT_USE["location"]),
        ("contacts.json", replies.CANNOT_USE["contacts"]),
        ("sticker.json", replies.STICKER_THANKS),
    ],
)
def test_what_the_bot_cannot_use_gets_the_answers_messenger_gives(post, graph, openai_server, name, answer):
    post(wa(name))
    assert graph.texts(WA_ID) == [answer]
    assert openai_server.requests == []
    assert graph.downloads == []


def test_another_number_of_the_account_is_neither_answered_nor_lets_its_echoes_pause_ours(
    post, graph, openai_server, caplog
):
    caplog.set_level(logging.INFO)
    echo = wa("echoes.json")
    echo["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = OTHER_NUMBER_ID
    labels = {"kind": "other_number", "channel": "whatsapp"}
    before = REGISTRY.get_sample_value("bot_events_total", labels) or 0.0
    post(wa("other_number.json"))  # Ada writes to the other branch's number
    post(echo)  # and its staff answer her there, from the WhatsApp Business app
    assert graph.calls == []  # no reply from our number, no read receipt
    assert openai_server.requests == []
    assert caplog.text.count("skipped {'other_number': 1}") == 2
    assert REGISTRY.get_sample_value("bot_events_total", labels) == before + 2
    post(wa("text.json"))  # then writes to ours: the other branch's staff talking to her is no pause here
    assert graph.texts(WA_ID) == ["You said: Hi! Do you deliver on Sundays?"]


def test_a_webhook_error_is_counted_and_logged_with_its_code(config, caplog):
    parsed = whatsapp(config).read(wa("errors.json"))
    assert parsed.events == ()
    assert parsed.skipped == {"error": 1}
    assert "131051" in caplog.text


def test_a_first_contact_is_greeted_as_get_started_is_on_messenger(post, graph, openai_server):
    post(wa("request_welcome.json"))
    assert openai_server.requests == []
    assert graph.texts(WA_ID) == [replies.GREETING]


def test_a_quote_names_the_message_it_answers(config):
    (event,) = whatsapp(config).read(wa("quote.json")).events
    assert event.reply_to_mid == "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"


def test_malformed_parts_are_skipped_not_raised(config):
    body = wa("text.json")
    body["entry"].append({"changes": "no"})
    body["entry"][0]["changes"].append({"field": "messages", "value": {"messages": [{"type": "text", "from": 5.5}]}})
    parsed = whatsapp(config).read(body)
    assert len(parsed.events) == 1
    assert parsed.skipped == {"malformed": 2}


# --- answering ---


def test_a_whatsapp_text_is_answered_through_the_cloud_api_with_the_number_and_its_token(post, graph, openai_server):
    def answer_once_read(request: dict) -> Reply:
        # A real model takes longer than the read receipt; this one waits for it to be sure.
        graph.wait_for(lambda: f"read+typing:{WAMID}" in graph.sequence(), timeout=10)
        return echo_answer(request)

    openai_server.default = answer_once_read
    assert post(wa("text.json")).status_code == HTTPStatus.OK
    assert openai_server.requests[0]["messages"][-1]["content"] == "Hi! Do you deliver on Sundays?"
    # The read receipt names the message, not the person: it is the one before the reply.
    assert graph.sequence() == [f"read+typing:{WAMID}", "text:You said: Hi! Do you deliver on Sundays?"]
    reply = graph.calls[-1]
    assert {k: v for k, v in reply.items() if k != "params"} == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": WA_ID,
        "type": "text",
        "text": {"body": "You said: Hi! Do you deliver on Sundays?", "preview_url": False},
    }
    assert reply["params"] == {}  # the token goes in a header, never in the address
    assert graph.paths[-1] == f"/v23.0/{WHATSAPP_NUMBER_ID}/messages"
    assert graph.headers[-1]["authorization"] == f"Bearer {WHATSAPP_TOKEN}"


def test_a_long_answer_is_split_at_4096_characters(post, graph, openai_server):
    answer = "Une phrase assez longue, avec des accents et un emoji 🙂. " * 150  # about 8,700 characters
    openai_server.default = lambda request: completion(answer)
    post(wa("text.json"))
    texts = graph.texts(WA_ID)
    assert len(texts) == 3
    assert all(len(text) <= 4096 for text in texts)
    assert " ".join(texts).split() == answer.split()


def test_a_choice_is_answered_as_the_words_on_the_button(post, graph, openai_server):
    post(wa("button_reply.json"))
    post(wa("list_reply.json"))
    post(wa("template_button.json"))
    said = [request["messages"][-1]["content"] for request in openai_server.requests]
    assert said == ["Opening hours", "Medium", "Yes, confirm"]


# --- photos and voice notes ---

IMAGE_ID = wa("image.json")["entry"][0]["changes"][0]["value"]["messages"][0]["image"]["id"]
VOICE_ID = wa("voice.json")["entry"][0]["changes"][0]["value"]["messages"][0]["audio"]["id"]
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x42" * 3000
OGG = b"OggS\x00\x02" + b"\x01" * 3000


@pytest.fixture
def post_media(config, app_with, graph):
    """POST to an app that may fetch the fake's plain-HTTP media links, with a photo and a voice note at Meta."""
    config.update(ALLOW_HTTP_MEDIA="on")
    graph.media[IMAGE_ID] = Media(JPEG, "image/jpeg")
    graph.media[VOICE_ID] = Media(OGG, "audio/ogg; codecs=opus")
    return app_with(config)


def test_a_photo_is_found_with_the_token_and_shown_to_the_model_inline_with_its_caption(
    post_media, graph, openai_server
):
    post_media(wa("image.json"))
    content = openai_server.requests[0]["messages"][-1]["content"]
    inline = "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()
    assert content == [
        {"type": "text", "text": "Is this the right part?"},
        {"type": "image_url", "image_url": {"url": inline, "detail": "low"}},
    ]
    lookup = graph.paths.index(f"/v23.0/{IMAGE_ID}")
    assert graph.headers[lookup]["authorization"] == f"Bearer {WHATSAPP_TOKEN}"
    assert WHATSAPP_TOKEN not in graph.paths[lookup]
    ((_, headers),) = graph.downloads
    assert headers["authorization"] == f"Bearer {WHATSAPP_TOKEN}"
    assert graph.texts(WA_ID) == ["You said: Is this the right part?"]


def test_the_history_keeps_a_marker_not_the_photo(post_media, openai_server):
    post_media(wa("image.json"))
    post_media(wa("text.json"))
    history = openai_server.requests[-1]["messages"][1:-1]
    assert history[0] == {"role": "user", "content": "[photo] Is this the right part?"}
    assert "base64" not in str(openai_server.requests[-1]["messages"])


def test_a_voice_note_is_downloaded_with_the_token_and_transcribed(post_media, graph, openai_server):
    post_media(wa("voice.json"))
    upload, chat = openai_server.requests
    assert openai_server.paths[0] == "/v1/audio/transcriptions"
    assert OGG in upload["_body"]
    assert re.search(rb'filename="[^"]+\.ogg"', upload["_body"])
    assert chat["messages"][-1] == {"role": "user", "content": "what time is it in Tokyo"}
    assert graph.texts(WA_ID) == ['🎤 I heard: "what time is it in Tokyo"\n\nYou said: what time is it in Tokyo']


def test_a_download_served_without_its_type_takes_the_type_meta_gave(post_media, graph, openai_server):
    graph.media[IMAGE_ID].served_as = "application/octet-stream"
    post_media(wa("image.json"))
    assert openai_server.requests[0]["messages"][-1]["content"][1]["image_url"]["url"].startswith("data:image/jpeg;")


def test_the_token_is_never_sent_to_a_link_that_is_not_https(config, app_with, graph, openai_server):
    graph.media[IMAGE_ID] = Media(JPEG, "image/jpeg")
    post = app_with(config)  # the fake's links are plain HTTP, and ALLOW_HTTP_MEDIA is off
    post(wa("image.json"))
    assert graph.downloads == []
    assert graph.texts(WA_ID) == [replies.PHOTO_FAILED]


@pytest.mark.parametrize(
    ("spoil", "name", "answer"),
    [
        ("expired", "image.json", replies.PHOTO_FAILED),
        ("expired", "voice.json", replies.VOICE_FAILED),
        ("checksum", "image.json", replies.PHOTO_FAILED),
        ("checksum", "voice.json", replies.VOICE_FAILED),
        ("too big", "image.json", replies.PHOTO_FAILED),
        ("not a photo", "image.json", replies.PHOTO_FAILED),
        ("gone from the media server", "image.json", replies.PHOTO_FAILED),
    ],
)
def test_media_that_cannot_be_had_gets_an_honest_answer_and_no_model_call(
    config, app_with, graph, openai_server, caplog, spoil, name, answer
):
    config.update(ALLOW_HTTP_MEDIA="on", MAX_IMAGE_BYTES="2048")
    media_id = IMAGE_ID if name == "image.json" else VOICE_ID
    small = Media(b"\xff\xd8" + b"\x42" * 1000, "image/jpeg") if name == "image.json" else Media(OGG, "audio/ogg")
    if spoil == "expired":
        graph.expired_media.add(media_id)
    elif spoil == "checksum":
        graph.media[media_id] = replace(small, sha256="00" * 32)
    elif spoil == "too big":
        graph.media[media_id] = Media(JPEG, "image/jpeg")
    elif spoil == "not a photo":
        graph.media[media_id] = Media(b"<html></html>", "text/html")
    else:
        graph.media[media_id] = replace(small, gone=True)
    post = app_with(config)
    post(wa(name))
    assert graph.texts(WA_ID) == [answer]
    assert [path for path in openai_server.paths if "chat" in path] == []
    assert WHATSAPP_TOKEN not in caplog.text
    assert "whatsapp_business/attachments" not in caplog.text


def test_a_redelivered_message_is_answered_once(post, graph, openai_server):
    post(wa("text.json"))
    post(wa("text.json"))
    assert len(openai_server.requests) == 1
    assert len(graph.texts(WA_ID)) == 1


def test_the_same_id_on_messenger_instagram_and_whatsapp_is_three_people(post, openai_server):
    post(page_body(text_event("on messenger", psid=WA_ID)))
    instagram = load("instagram/text.json")
    instagram["entry"][0]["messaging"][0]["sender"]["id"] = WA_ID
    post(instagram)
    post(wa("text.json"))
    histories = [[m["content"] for m in request["messages"][1:]] for request in openai_server.requests]
    assert histories == [["on messenger"], ["Hi! Do you ship to Canada?"], ["Hi! Do you deliver on Sundays?"]]


def test_outside_the_24_hour_window_the_answer_is_not_retried_and_the_owner_is_told(post, graph, caplog):
    graph.fail_next(400, code=131047, messages_only=True)
    post(wa("text.json"))
    assert graph.texts(WA_ID) == ["You said: Hi! Do you deliver on Sundays?"]  # tried once
    assert "WhatsApp allows only approved templates now" in caplog.text


def test_too_many_messages_to_one_person_is_retried_without_losing_text(config, app_with, graph):
    config.update(GRAPH_MAX_RETRIES="2")
    post = app_with(config)
    graph.fail_next(400, code=131056, messages_only=True)
    post(wa("text.json"))
    assert graph.texts(WA_ID) == ["You said: Hi! Do you deliver on Sundays?"] * 2  # refused, then taken


def test_a_streamed_answer_keeps_to_the_pair_rate_and_arrives_whole(post, graph, openai_server):
    # Six paragraphs written in well under 6 s would be three messages on Messenger (two paragraphs, then the rest
    # filling one); WhatsApp's pair rate (here a burst of 2, then one message every 6 s) would refuse the third.
    graph.pair_burst = 2
    paragraphs = [f"Paragraph {n}: " + " ".join(f"word{n}x{k}" for k in range(30)) + "." for n in range(6)]
    openai_server.default = lambda request: streamed(completion("\n\n".join(paragraphs)))
    post(wa("text.json"))
    texts = graph.texts(WA_ID)
    assert texts == [paragraphs[0], "\n\n".join(paragraphs[1:])]  # none refused: each sent once


def test_a_refusal_for_the_pair_rate_waits_for_it_before_the_retry(config, app_with, graph, openai_server):
    # Doubling backoffs of 0.05 s would retry three times within 0.35 s, before the pair earns a message back.
    config.update(GRAPH_BACKOFF="0.05", GRAPH_MAX_RETRIES="2", STREAM="off")
    graph.pair_burst, graph.pair_refill_seconds = 1, 0.5
    post = app_with(config)
    answer = "A long answer. " * 400  # two messages of at most 4,096 characters, sent back to back
    openai_server.default = lambda request: completion(answer)
    post(wa("text.json"))
    first, refused, taken = graph.texts(WA_ID)
    assert refused == taken
    assert (first + " " + taken).split() == answer.split()


def test_a_dead_whatsapp_token_says_which_token_to_renew(post, graph, client, caplog):
    graph.fail_next(400, code=190, times=10)
    post(wa("text.json"))
    assert "renew WHATSAPP_TOKEN" in caplog.text
    assert WHATSAPP_TOKEN not in caplog.text
    health = client.get("/healthz").get_json()
    assert (health["status"], health["whatsapp_token"], health["page_token"]) == ("degraded", "invalid", "unknown")


@pytest.mark.parametrize("settings", [{"WHATSAPP": "off"}, {"WHATSAPP_TOKEN": "", "WHATSAPP_PHONE_NUMBER_ID": ""}])
def test_whatsapp_off_or_not_set_up_is_acknowledged_and_ignored(config, app_with, graph, openai_server, settings):
    config.update(settings)
    post = app_with(config)
    assert post(wa("text.json")).status_code == HTTPStatus.OK
    assert openai_server.requests == []
    assert graph.calls == []


def test_the_token_and_the_number_go_together(config):
    config.update(WHATSAPP_PHONE_NUMBER_ID="")
    with pytest.raises(ConfigError, match="WHATSAPP_TOKEN and WHATSAPP_PHONE_NUMBER_ID go together"):
        create_app(config)


def test_whatsapp_alone_needs_no_page_and_leaves_messenger_unanswered(config, app_with, graph, openai_server):
    del config["PAGE_ACCESS_TOKEN"]
    post = app_with(config)
    post(wa("text.json"))
    assert graph.texts(WA_ID) == ["You said: Hi! Do you deliver on Sundays?"]
    assert post(page_body(text_event("hello from messenger"))).status_code == HTTPStatus.OK
    assert len(openai_server.requests) == 1  # Messenger's webhook acknowledged, not answered


def test_without_whatsapp_the_page_token_is_still_required(config):
    for name in ("PAGE_ACCESS_TOKEN", "WHATSAPP_TOKEN", "WHATSAPP_PHONE_NUMBER_ID"):
        del config[name]
    with pytest.raises(ConfigError, match="PAGE_ACCESS_TOKEN is missing"):
        create_app(config)


def test_check_and_page_setup_say_what_whatsapp_alone_means(config, make_app, graph):
    del config["PAGE_ACCESS_TOKEN"]
    runner = make_app(config).test_cli_runner()
    checked = runner.invoke(args=["check"])
    assert "! page: no PAGE_ACCESS_TOKEN: WhatsApp alone; Messenger and Instagram are off" in checked.output
    assert "✓ WhatsApp: the token works" in checked.output
    assert checked.exit_code == 0, checked.output
    assert [call["endpoint"] for call in graph.all_calls] == [WHATSAPP_NUMBER_ID]
    setup = runner.invoke(args=["page-setup"])
    assert setup.exit_code == 1
    assert "set PAGE_ACCESS_TOKEN" in setup.output


# --- one person, whether Meta gives their number, their username's id, or both ---

BSUID = "US.13491208655302741918"
ORDER = "Hi, I ordered the blue bike, order 1042."


def test_a_person_known_by_number_and_username_is_the_same_person_when_the_number_is_withheld(
    config, tmp_path, app_with, graph, openai_server
):
    # Two servers on one store, one after the other (a restart, or another machine behind the load balancer).
    config.update(STORE_URL=f"sqlite:///{tmp_path}/bot.db")
    app_with(config)(wa("business_scoped_with_number.json"))  # the number and the username's id together
    app_with(config)(wa("business_scoped.json"))  # later, the username's id alone
    history = [message["content"] for message in openai_server.requests[-1]["messages"][1:]]
    assert history == [ORDER, f"You said: {ORDER}", "Hello from my username"]
    assert graph.texts(WA_ID) == [f"You said: {ORDER}", "You said: Hello from my username"]


def test_the_pause_for_the_business_people_holds_when_the_number_is_withheld(post, graph, openai_server):
    post(wa("business_scoped_with_number.json"))
    post(wa("echoes.json"))  # the shop's staff answer her number from the WhatsApp Business app
    post(wa("business_scoped.json"))  # she writes again, her number withheld
    assert len(openai_server.requests) == 1  # the bot stays quiet while the staff talk to her
    assert graph.texts(WA_ID) == [f"You said: {ORDER}"]


def test_a_person_known_only_by_their_username_is_answered_at_it(post, graph):
    post(wa("business_scoped.json"))
    (reply,) = [call for call in graph.calls if call.get("type") == "text"]
    assert reply["recipient"] == BSUID
    assert "to" not in reply


# --- the 24-hour window ---


def another_text(text: str, mid: str = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQ5OTk5OTk5OTk5OTk5OTk5AA==") -> dict:
    body = wa("text.json")
    body["entry"][0]["changes"][0]["value"]["messages"][0].update(id=mid, text={"body": text})
    return body


@pytest.fixture
def hook():
    server = FakeHook()
    yield server
    server.close()


def test_an_answer_meta_reports_undelivered_leaves_the_history_and_the_owner_is_told(
    config, make_app, hook, graph, openai_server, caplog
):
    config.update(HANDOVER_NOTIFY_URL=hook.url + "/hooks/T0123/secret-key")
    app = make_app(config)
    post = poster(app)
    post(wa("text.json"))
    failed = wa("failed.json")  # WhatsApp took the answer (200, an id), then reports it failed: 131047
    failed["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = graph.message_ids[-1]
    post(failed)
    post(another_text("And on Mondays?"))
    history = [message["content"] for message in openai_server.requests[-1]["messages"][1:]]
    # The answer never arrived: the person's two messages stand together, as unanswered ones do.
    assert history == ["Hi! Do you deliver on Sundays?\n\nAnd on Mondays?"]
    app.extensions[EXTENSION].notifier.close()  # sends what is waiting
    (notice,) = hook.requests
    assert (notice["person"], notice["why"]) == (f"wa:{WA_ID}", "undelivered")
    assert f"psid=wa:{WA_ID}" in caplog.text
    assert "131047" in caplog.text
    assert "You said" not in caplog.text


def test_a_message_redelivered_after_the_window_is_kept_but_never_sent_to_the_model(post, graph, openai_server):
    late = wa("text.json")
    recent(late, -30 * 3600)  # Meta redelivers it 30 hours after it was sent
    post(late)
    assert openai_server.requests == []
    assert graph.calls == []  # no answer, no read receipt: WhatsApp would refuse or charge them
    post(another_text("Are you there?"))
    history = [message["content"] for message in openai_server.requests[-1]["messages"][1:]]
    assert history == ["Hi! Do you deliver on Sundays?\n\nAre you there?"]  # kept, unanswered


# --- asking for a person ---


def test_asking_for_a_person_where_no_one_would_hear_of_it_says_so_and_goes_on(config, make_app, graph, caplog):
    app = make_app(config)  # no inbox on WhatsApp, and HANDOVER_NOTIFY_URL is not set
    assert "On whatsapp, asking for a person (/human, or the talk_to_a_person tool) reaches no one" in caplog.text
    post = poster(app)
    post(another_text("/human"))
    post(wa("text.json"))
    assert graph.texts(WA_ID) == [replies.NO_ONE_TO_ANSWER, "You said: Hi! Do you deliver on Sundays?"]
    checked = app.test_cli_runner().invoke(args=["check"])
    assert "! handover: on whatsapp /human reaches no one" in checked.output


def test_with_a_staff_account_the_console_is_where_a_person_is_heard(config, make_app, graph, openai_server, tmp_path):
    config.update(SECRET_KEY="k" * 40, STORE_URL=f"sqlite:///{tmp_path}/bot.db")  # `check` opens the store anew
    app = make_app(config)
    Staff(app.extensions[EXTENSION].store).add("maria", "correct horse battery staple")
    post = poster(app)
    post(another_text("/human"))
    post(wa("text.json"))
    assert graph.texts(WA_ID) == [replies.HUMAN_COMING]  # and silent after it: someone will read the console
    assert openai_server.requests == []
    checked = app.test_cli_runner().invoke(args=["check"])
    assert "! handover" not in checked.output


# --- what else people send ---


def test_a_message_whatsapp_does_not_pass_on_gets_an_honest_answer_of_its_own(post, graph, openai_server):
    post(wa("unsupported.json"))
    assert graph.texts(WA_ID) == [replies.CANNOT_USE["unsupported"]]
    assert replies.CANNOT_USE["unsupported"] != replies.CANNOT_OPEN  # it is no shared link or post
    assert openai_server.requests == []


def test_a_flows_answer_reaches_the_model_as_the_fields_the_person_filled_in(post, openai_server):
    post(wa("flow_reply.json"))
    assert openai_server.requests[0]["messages"][-1]["content"] == (
        "[Filled in the form]\nappointment_date: 2026-12-08\ntime_slot: 10:30\nnotes: Front brake squeaks"
    )


def test_the_ad_a_person_came_from_reaches_the_model_with_their_message(post, openai_server):
    post(wa("referral.json"))
    assert openai_server.requests[0]["messages"][-1]["content"] == (
        '[Came to this chat from the business\'s ad "Winter service: 20% off" Book a full bike service before '
        "January and save 20%. (https://fb.me/3cr4Wqqkv)] Is the offer still on?"
    )
