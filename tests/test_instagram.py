"""Instagram Direct messages through the same webhook, store and bot: what Meta and the model receive."""

from __future__ import annotations

import copy
from http import HTTPStatus

import pytest
import responses
from hypothesis import given
from hypothesis import strategies as st

from inboxgpt import replies
from inboxgpt.channels.instagram import INSTAGRAM_MAX_BYTES
from inboxgpt.channels.text import split_text, utf8_units
from inboxgpt.model import prompt
from tests.fakes import Reply, completion, echo_answer
from tests.helpers import load, page_body, poster, text_event

IGSID = "1122334455667788"
IG_ACCOUNT = "17841400000000001"
KEY = "ig:" + IGSID


def ig(name: str) -> dict:
    return load(f"instagram/{name}")


def ig_text(text: str, mid: str) -> dict:
    body = ig("text.json")
    body["entry"][0]["messaging"][0]["message"].update(text=text, mid=mid)
    return body


def test_an_instagram_message_is_answered_through_the_send_api_with_the_instagram_scoped_id(post, graph, openai_server):
    def answer_once_seen(request: dict) -> Reply:
        # A real model takes longer than the seen and typing calls; this one waits for them to be sure.
        graph.wait_for(lambda: "mark_seen" in graph.sequence(IGSID), timeout=10)
        return echo_answer(request)

    openai_server.default = answer_once_seen
    assert post(ig("text.json")).status_code == HTTPStatus.OK
    assert openai_server.requests[0]["messages"][-1]["content"] == "Hi! Do you ship to Canada?"
    calls = graph.calls
    assert {call["recipient"]["id"] for call in calls} == {IGSID}
    (reply,) = [call for call in calls if "message" in call]
    assert reply["message"] == {"text": "You said: Hi! Do you ship to Canada?"}
    assert "messaging_type" not in reply
    assert sorted(call["sender_action"] for call in calls if "sender_action" in call) == ["mark_seen", "typing_on"]


def test_the_same_id_on_both_channels_is_two_people(post, openai_server):
    post(page_body(text_event("on messenger", psid=IGSID, mid="m_same")))
    post(ig_text("on instagram", mid="m_same"))  # the same mid, too: not a redelivery
    post(page_body(text_event("messenger again", psid=IGSID)))
    post(ig_text("instagram again", mid="m_other"))
    assert len(openai_server.requests) == 4
    histories = [[m["content"] for m in request["messages"][1:]] for request in openai_server.requests[2:]]
    assert histories == [
        ["on messenger", "You said: on messenger", "messenger again"],
        ["on instagram", "You said: on instagram", "instagram again"],
    ]


def test_a_long_answer_is_split_at_1000_utf8_bytes_on_instagram(post, graph, openai_server):
    answer = "Ça coûte 12 €. " * 120  # about 2,000 characters, 2,300 bytes
    openai_server.script.append(completion(answer))
    post(ig("text.json"))
    pieces = graph.texts(IGSID)
    assert len(pieces) == 3
    assert all(len(piece.encode()) <= INSTAGRAM_MAX_BYTES for piece in pieces)
    assert "".join(pieces) == answer.strip()


@given(st.text(alphabet=st.sampled_from("ab é€日本🙂\n."), max_size=4000))
def test_split_at_bytes_keeps_every_character_and_every_piece_fits(text):
    pieces = split_text(text, INSTAGRAM_MAX_BYTES, utf8_units)
    assert "".join(pieces) == text
    assert all(0 < len(piece.encode()) <= INSTAGRAM_MAX_BYTES for piece in pieces)


FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # one emoji of four, joined by ZWJ
FLAG = "\U0001f1eb\U0001f1f7"  # a pair of regional indicators
WAVE = "\U0001f44b\U0001f3fd"  # a hand and its skin tone
ACCENTED = "e\u0301"  # e and a combining acute accent


@pytest.mark.parametrize("unit", [FAMILY, FLAG, WAVE, ACCENTED], ids=["zwj", "flag", "skin-tone", "combining"])
@pytest.mark.parametrize("offset", [0, 1, 2, 3])
def test_split_at_bytes_never_cuts_a_character_a_person_sees_as_one(unit, offset):
    text = "x" * offset + unit * 400  # no space to cut at: the cut falls wherever the bytes run out
    pieces = split_text(text, INSTAGRAM_MAX_BYTES, utf8_units)
    assert "".join(pieces) == text
    assert len(pieces) > 1
    assert all(len(piece.encode()) <= INSTAGRAM_MAX_BYTES for piece in pieces)
    for piece in pieces[1:]:
        assert piece.startswith(unit), "a piece starts inside what a person sees as one character"


def test_a_megabyte_answer_is_split_whole():
    text = "A sentence of a very long answer, written on and on. " * 20_000
    for pieces in (split_text(text), split_text(text, INSTAGRAM_MAX_BYTES, utf8_units)):
        assert "".join(pieces) == text
        assert all(piece.endswith(". ") for piece in pieces[:-1])


def test_a_photo_goes_to_the_model(post, openai_server):
    post(ig("photo.json"))
    content = openai_server.requests[0]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": prompt.PHOTO_PROMPT}
    assert content[1]["image_url"]["url"].startswith("https://lookaside.fbsbx.com/ig_messaging_cdn/")


def test_a_voice_message_is_transcribed(post, graph, openai_server, cdn):
    url = ig("voice.json")["entry"][0]["messaging"][0]["message"]["attachments"][0]["payload"]["url"]
    cdn.add(responses.GET, url, body=b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 4000, content_type="audio/mp4")
    post(ig("voice.json"))
    assert openai_server.requests[-1]["messages"][-1]["content"] == "what time is it in Tokyo"
    assert graph.texts(IGSID)[0].startswith("🎤")


def test_a_reply_to_the_accounts_story_is_answered_as_about_the_story(post, openai_server):
    post(ig("story_reply.json"))
    assert openai_server.requests[0]["messages"][-1]["content"] == prompt.STORY_REPLY.format(
        text="Love this! Is it still available?"
    )


def test_a_reply_to_an_earlier_message_brings_it_into_context(post, openai_server):
    post(ig("text.json"))
    post(ig("reply_to_message.json"))
    assert openai_server.requests[-1]["messages"][-1]["content"].startswith(
        '[Replying to: "Hi! Do you ship to Canada?"]'
    )


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("story_mention.json", replies.CANNOT_USE["story_mention"]),
        ("ephemeral.json", replies.CANNOT_USE["ephemeral"]),
        ("share.json", replies.CANNOT_OPEN),
        ("ig_post.json", replies.CANNOT_OPEN),
        ("reel.json", replies.CANNOT_OPEN),
        ("video.json", replies.CANNOT_USE["video"]),
        ("file.json", replies.CANNOT_USE["file"]),
    ],
)
def test_what_the_bot_cannot_use_gets_an_honest_answer(post, graph, openai_server, name, answer):
    post(ig(name))
    assert graph.texts(IGSID) == [answer]
    assert openai_server.requests == []


@pytest.mark.parametrize("name", ["deleted.json", "unsupported.json", "reaction.json", "read.json"])
def test_what_needs_no_answer_gets_none(post, graph, openai_server, name):
    assert post(ig(name)).status_code == HTTPStatus.OK
    assert graph.calls == []
    assert openai_server.requests == []


def test_a_hand_written_reply_from_the_instagram_inbox_pauses_the_bot(post, graph, openai_server):
    post(ig("echo.json"))
    post(ig_text("and to the US?", mid="m_after_echo"))
    assert openai_server.requests == []
    assert graph.calls == []


def test_the_bots_own_echo_on_instagram_is_known_by_its_message_id(post, graph, openai_server):
    post(ig("text.json"))
    echo = ig("echo.json")
    (sent,) = graph.message_ids
    echo["entry"][0]["messaging"][0]["message"].update(mid=sent, text="You said: Hi! Do you ship to Canada?")
    post(echo)
    post(ig_text("and to the US?", mid="m_after_own_echo"))
    assert len(openai_server.requests) == 2


def own_echo(mid: str) -> dict:
    echo = ig("echo.json")
    echo["entry"][0]["messaging"][0]["message"].update(mid=mid, text="You said: something")
    return echo


def test_the_bots_own_echo_is_known_after_a_reset_that_came_before_it(post, graph, openai_server):
    post(ig("text.json"))
    (sent,) = graph.message_ids
    post(ig_text("/reset", mid="m_reset"))
    post(own_echo(sent))
    post(ig_text("and to the US?", mid="m_after_own_echo"))
    assert len(openai_server.requests) == 2


def test_the_bots_own_echo_is_known_behind_sixty_quick_messages(post, graph, openai_server):
    post(ig("text.json"))
    (sent,) = graph.message_ids
    for n in range(60):
        post(ig_text(f"quick message {n}", mid=f"m_quick_{n}"))
    post(own_echo(sent))
    post(ig_text("still there?", mid="m_still_there"))
    assert openai_server.requests[-1]["messages"][-1]["content"] == "still there?"
    history = openai_server.requests[-1]["messages"][1:]
    assert not any(str(message["content"]).startswith("[From the page's team]") for message in history)


def test_slash_human_passes_the_thread_to_the_instagram_inbox(post, graph):
    post(ig_text("/human", mid="m_human"))
    assert graph.thread_calls() == [
        (
            "pass_thread_control",
            {
                "recipient": {"id": IGSID},
                "target_app_id": "1217981644879628",
                "metadata": "The person asked for a person from the page (/human).",
            },
        )
    ]


def test_instagram_can_be_turned_off(config, app_with, graph, openai_server):
    config.update(INSTAGRAM="off")
    post = app_with(config)
    assert post(ig("text.json")).status_code == HTTPStatus.OK
    assert graph.calls == []
    assert openai_server.requests == []
    post(page_body(text_event("messenger still works")))
    assert len(openai_server.requests) == 1


def test_one_object_per_body_the_object_decides_the_channel(post, graph):
    messenger = page_body(text_event("from messenger", psid="5555"))
    post(ig("text.json"))
    post(messenger)
    mixed = ig("text.json")
    mixed["entry"] += copy.deepcopy(messenger["entry"])  # Meta never mixes objects in one body
    post(mixed)
    replies_to_5555 = [call for call in graph.calls if call["recipient"]["id"] == "5555" and "message" in call]
    assert [call.get("messaging_type") for call in replies_to_5555] == ["RESPONSE", None]
    assert len(graph.texts(IGSID)) == 1  # the Instagram message in the mixed body was a redelivery


def test_usage_counts_replies_by_channel(config, make_app, tmp_path):
    config.update(STORE_URL=f"sqlite:///{tmp_path}/bot.db")
    app = make_app(config)
    post = poster(app)
    post(ig("text.json"))
    post(page_body(text_event("hello")))
    post(page_body(text_event("hello again")))
    result = app.test_cli_runner().invoke(args=["usage"])
    assert "3 replies (messenger 2, instagram 1, whatsapp 0)" in result.output
