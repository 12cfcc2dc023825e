"""What each event is: `route`, case by case, and every case has its handler."""

from __future__ import annotations

from dataclasses import replace

import pytest

from inboxgpt.config import settings_from_mapping
from inboxgpt.conversation.routing import HUMAN_PAYLOAD, START_OVER_PAYLOAD, Case, Route, Rules, route
from inboxgpt.events import Attachment, Comment, Echo, Event, Handover, Message, Postback, Undelivered

APP_ID = "1517776481860111"
RULES = Rules.from_settings(
    settings_from_mapping(
        {"PAGE_ACCESS_TOKEN": "t", "VERIFY_TOKEN": "v", "APP_SECRET": "s", "OPENAI_API_KEY": "k", "APP_ID": APP_ID}
    )
)
PHOTO_URL = "https://scontent.xx.fbcdn.net/v/photo.jpg"
VOICE_URL = "https://cdn.fbsbx.com/v/voice.mp4"
PHOTO = Attachment("image", PHOTO_URL)
VOICE = Attachment("audio", VOICE_URL)
# WhatsApp's: behind a media id, found through the channel.
KEPT_PHOTO = Attachment("image", media_id="1037543291543636")
KEPT_VOICE = Attachment("audio", media_id="2212546915828413")


def message(text: str | None = None, *attachments: Attachment, **fields) -> Message:
    return Message(psid="42", mid="m_1", timestamp=1, text=text, attachments=attachments, **fields)


def postback(payload: str, title: str = "", **fields) -> Postback:
    return Postback(psid="42", payload=payload, title=title, timestamp=1, **fields)


def handover(action: str, new_owner: str | None) -> Handover:
    return Handover(psid="42", action=action, timestamp=1, new_owner_app_id=new_owner)


CASES: list[tuple[str, Event, Route]] = [
    ("text", message("  hello  "), Route(Case.TEXT, text="hello")),
    ("quick reply", message(None, quick_reply_payload="YES"), Route(Case.TEXT, text="YES")),
    ("reset", message("/Reset"), Route(Case.RESET)),
    ("help", message("/help"), Route(Case.HELP)),
    ("human", message("/human"), Route(Case.HUMAN)),
    ("bot", message("/bot"), Route(Case.BOT_BACK)),
    ("bot under standby", message("/bot", standby=True), Route(Case.BOT_BACK)),
    ("standby", message("hi", standby=True), Route(Case.RECORD, text="hi")),
    ("photo", message("what is it?", PHOTO), Route(Case.PHOTOS, text="what is it?", photos=(PHOTO,))),
    ("photo kept by its channel", message(None, KEPT_PHOTO), Route(Case.PHOTOS, photos=(KEPT_PHOTO,))),
    ("voice", message(None, VOICE), Route(Case.VOICE, voice=VOICE)),
    ("voice kept by its channel", message(None, KEPT_VOICE), Route(Case.VOICE, voice=KEPT_VOICE)),
    ("sticker", message(None, Attachment("image", "https://x/y.png", sticker_id=369239263222822)), Route(Case.STICKER)),
    ("video", message(None, Attachment("video", "https://x/v.mp4")), Route(Case.UNUSABLE, attachment_type="video")),
    ("empty", message(None), Route(Case.NOTHING)),
    (
        "story reply",
        message("nice!", story_reply=True),
        Route(Case.TEXT, text="[Replying to the page's Instagram story] nice!"),
    ),
    (
        "came from an ad",
        message("Still on?", came_from='ad "Winter sale" (https://fb.me/x)'),
        Route(Case.TEXT, text='[Came to this chat from the business\'s ad "Winter sale" (https://fb.me/x)] Still on?'),
    ),
    ("within its window", message("hi", answer_by=2_000, received=1.999), Route(Case.TEXT, text="hi")),
    ("past its window", message("/human", answer_by=2_000, received=2.001), Route(Case.LATE, text="/human")),
    (
        "tapped past its window",
        postback("GET_STARTED", answer_by=2_000, received=3.0),
        Route(Case.LATE, text="[tapped: GET_STARTED]"),
    ),
    ("undelivered", Undelivered(psid="42", mid="m_4", timestamp=1, code=131047), Route(Case.UNDELIVERED)),
    ("get started", postback("GET_STARTED"), Route(Case.GET_STARTED)),
    ("menu: a person", postback(HUMAN_PAYLOAD), Route(Case.HUMAN)),
    ("menu: start over", postback(START_OVER_PAYLOAD), Route(Case.RESET)),
    ("ice breaker", postback("ICE_1", "Where are you?"), Route(Case.BUTTON, text="Where are you?")),
    ("tapped under standby", postback("X", "Yes", standby=True), Route(Case.RECORD, text="[tapped: Yes]")),
    ("own echo", Echo(psid="42", mid="m_2", timestamp=1, text="hi", app_id=APP_ID), Route(Case.NOTHING)),
    (
        "page wrote",
        Echo(psid="42", mid="m_3", timestamp=1, text="Hi, Anna here"),
        Route(Case.PAGE_WROTE, text="Hi, Anna here"),
    ),
    ("thread passed back", handover("pass_thread_control", APP_ID), Route(Case.THREAD_BACK)),
    ("thread taken back", handover("take_thread_control", APP_ID), Route(Case.THREAD_BACK)),
    ("thread passed to the inbox", handover("pass_thread_control", "263902037430900"), Route(Case.HANDOVER)),
    ("thread requested", handover("request_thread_control", None), Route(Case.HANDOVER)),
]


@pytest.mark.parametrize(("event", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_event_is_routed_to_its_case(event, expected):
    assert route(event, RULES) == expected


def comment(text: str) -> Comment:
    return Comment(psid="42", comment_id="1_2", post_id="1", text=text, timestamp=1)


# COMMENTS=keywords, COMMENT_KEYWORDS="price,ship,how much,café"
KEYWORDS = replace(RULES, comments="keywords", comment_keywords=("price", "ship", "how much", "cafe"))
COMMENT_CASES: list[tuple[str, Event, Route]] = [
    (
        "a keyword",
        comment("What's the PRICE of the sourdough?"),
        Route(Case.COMMENT, text="What's the PRICE of the sourdough?"),
    ),
    ("a phrase", comment("how much for 6?"), Route(Case.COMMENT, text="how much for 6?")),
    ("without its accent", comment("Le Cafe est ouvert ?"), Route(Case.COMMENT, text="Le Cafe est ouvert ?")),
    ("inside another word", comment("shipping??"), Route(Case.NOTHING)),
    ("no keyword", comment("Looks delicious!"), Route(Case.NOTHING)),
]


@pytest.mark.parametrize(
    ("event", "expected"), [case[1:] for case in COMMENT_CASES], ids=[case[0] for case in COMMENT_CASES]
)
def test_comments_with_a_keyword_are_answered(event, expected):
    assert route(event, KEYWORDS) == expected


def test_comments_are_left_alone_unless_the_owner_asks(config):
    assert route(comment("price?"), RULES) == Route(Case.NOTHING)  # COMMENTS=off, the default
    assert route(comment("Looks delicious!"), replace(RULES, comments="all")).case is Case.COMMENT


def test_the_table_covers_every_case():
    assert {expected.case for _, _, expected in CASES + COMMENT_CASES} == set(Case)


def test_every_case_has_a_handler(app):
    from app import EXTENSION

    bot = app.extensions[EXTENSION].bot
    assert set(bot._handlers) == set(Case)
