"""What an event is, decided once: a command, photos, voice, text, a sticker, an attachment the bot can't use, a
button; or the page's side: its people writing, the bot's own echoes, handover of the thread.

`route` is a pure function of the event and the settings; the bot has one handler per `Case`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import Enum

from inboxgpt.channels.messenger import BOT_MARKERS
from inboxgpt.config import INSTAGRAM_INBOX_APP_ID, PAGE_INBOX_APP_ID, Settings
from inboxgpt.events import Attachment, Comment, Echo, Event, Handover, Message, Postback, Undelivered
from inboxgpt.media import fetchable
from inboxgpt.model.prompt import CAME_FROM, COMMENTED, STORY_REPLY

RESET_COMMANDS = frozenset({"/reset", "reset"})
HELP_COMMANDS = frozenset({"/help"})
HUMAN_COMMANDS = frozenset({"/human"})
BOT_COMMANDS = frozenset({"/bot"})
# Payloads of the persistent menu's buttons (page_setup.py sets them up).
START_OVER_PAYLOAD = "START_OVER"
HUMAN_PAYLOAD = "TALK_TO_A_PERSON"
# A pass to either inbox is a pass to people, never to this app.
INBOX_APP_IDS = frozenset({PAGE_INBOX_APP_ID, INSTAGRAM_INBOX_APP_ID})
# Scripts written without spaces between words (by the start of their characters' Unicode names): a keyword in them
# is found inside a longer run of text, as a word cannot be told apart from its neighbours there.
UNSPACED_SCRIPTS = (
    "CJK",
    "IDEOGRAPHIC",
    "HIRAGANA",
    "KATAKANA",
    "HALFWIDTH KATAKANA",
    "THAI",
    "LAO",
    "KHMER",
    "MYANMAR",
    "TIBETAN",
    "JAVANESE",
    "BALINESE",
    "YI ",
)


class Case(Enum):
    """The kinds of event the bot answers differently."""

    RESET = "/reset"
    HELP = "/help"
    PHOTOS = "photos"
    VOICE = "voice message"
    TEXT = "text"
    STICKER = "sticker"
    UNUSABLE = "attachment not used"
    GET_STARTED = "get started"
    BUTTON = "button"
    HUMAN = "/human"
    BOT_BACK = "/bot"
    PAGE_WROTE = "a person from the page wrote"
    RECORD = "recorded: another app owns the thread"
    THREAD_BACK = "thread control came back"
    HANDOVER = "handover event"
    COMMENT = "a comment to answer privately"
    LATE = "too late to answer: its channel no longer takes answers to it"
    UNDELIVERED = "a message of the bot's that never arrived"
    NOTHING = "nothing to answer"


# What the person does that the bot stays silent to while a person from the page is talking.
SILENCED = frozenset(
    {
        Case.RESET,
        Case.HELP,
        Case.PHOTOS,
        Case.VOICE,
        Case.TEXT,
        Case.STICKER,
        Case.UNUSABLE,
        Case.GET_STARTED,
        Case.COMMENT,
        Case.BUTTON,
    }
)


@dataclass(frozen=True)
class Route:
    """What the event is, with what its handler needs from it."""

    case: Case
    text: str = ""
    photos: tuple[Attachment, ...] = ()
    voice: Attachment | None = None
    attachment_type: str | None = None


@dataclass(frozen=True)
class Rules:
    """What routing needs of the settings."""

    app_id: str | None
    handover_app_id: str
    get_started_payload: str
    vision: bool
    max_images: int
    transcribe: bool
    allow_http_media: bool
    comments: str = "off"
    # COMMENT_KEYWORDS as matched: lower case, without accents.
    comment_keywords: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(
            app_id=settings.app_id,
            handover_app_id=settings.handover_app_id,
            get_started_payload=settings.get_started_payload,
            vision=settings.vision,
            max_images=settings.max_images,
            transcribe=settings.transcribe,
            allow_http_media=settings.allow_http_media,
            comments=settings.comments,
            comment_keywords=tuple(plain_words(keyword) for keyword in settings.comment_keywords),
        )


def route(event: Event, rules: Rules) -> Route:
    """Decide what the event is."""
    if isinstance(event, Echo):
        if is_own_echo(event, rules.app_id):
            return Route(Case.NOTHING)
        return Route(Case.PAGE_WROTE, text=said_with(event.text, event.attachments))
    if isinstance(event, Handover):
        return _handover_route(event, rules)
    if isinstance(event, Comment):
        return _comment_route(event, rules)
    if isinstance(event, Undelivered):
        return Route(Case.UNDELIVERED)
    if too_late(event):
        return Route(Case.LATE, text=said(event))
    if isinstance(event, Postback):
        return _postback_route(event, rules)
    return _message_route(event, rules)


def too_late(event: Message | Postback) -> bool:
    """Whether the event reached the bot after its channel stopped taking answers to it (Meta redelivered it late):
    anything the bot sent would be refused, or charged and then reported undelivered."""
    return bool(event.answer_by and event.received and event.received * 1000 > event.answer_by)


def _comment_route(comment: Comment, rules: Rules) -> Route:
    """A comment is answered when the owner asked for all, or for those with one of COMMENT_KEYWORDS."""
    if rules.comments == "all" or (rules.comments == "keywords" and _mentions(comment.text, rules.comment_keywords)):
        return Route(Case.COMMENT, text=comment.text.strip())
    return Route(Case.NOTHING)


def plain_words(text: str) -> str:
    """Text as keywords are matched: lower case, accents left out ("Café" and "cafe" match)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _mentions(text: str, keywords: tuple[str, ...]) -> bool:
    """Whether the text has one of the keywords (a word or a phrase), as whole words where words are spaced."""
    words = plain_words(text)
    return any(_found(words, keyword) for keyword in keywords)


def _found(words: str, keyword: str) -> bool:
    """Whether `keyword` is in `words` with no spaced letter glued to an edge of it that is one: "ship" is not in
    "shipping", but "多少钱" is in "这个多少钱" and "€" in "10€" (Chinese, Thai or a sign leave no space to find)."""
    start = words.find(keyword)
    while start >= 0:
        end = start + len(keyword)
        glued_before = start > 0 and _spaced_letter(keyword[0]) and _spaced_letter(words[start - 1])
        glued_after = end < len(words) and _spaced_letter(keyword[-1]) and _spaced_letter(words[end])
        if not (glued_before or glued_after):
            return True
        start = words.find(keyword, start + 1)
    return False


def _spaced_letter(char: str) -> bool:
    """A letter or digit of a script that puts spaces between its words (Latin, Cyrillic, Arabic, Korean...)."""
    return (char.isalnum() or char == "_") and not unicodedata.name(char, "").startswith(UNSPACED_SCRIPTS)


def is_own_echo(echo: Echo, app_id: str | None) -> bool:
    """True for the echo of a message this bot sent: it carries the bot's marker, or this app's id (APP_ID)."""
    return echo.metadata in BOT_MARKERS or (app_id is not None and echo.app_id == app_id)


def said_with(text: str | None, attachments: tuple[Attachment, ...]) -> str:
    """What a message said, for the history: its text, or what it carried."""
    if text and text.strip():
        return text.strip()
    kinds = [("sticker" if a.is_sticker else a.type) for a in attachments]
    return " ".join(f"[{kind}]" for kind in kinds) or "[message]"


def said(event: Event) -> str:
    """What the person did, for the history when the bot does not answer it."""
    if isinstance(event, Postback):
        return f"[tapped: {event.title or event.payload}]"
    if isinstance(event, Message):
        return said_with(event.text or event.quick_reply_payload, event.attachments)
    if isinstance(event, Comment):
        return COMMENTED.format(comment=event.text.strip())
    return ""


def _handover_route(event: Handover, rules: Rules) -> Route:
    """A pass to this app, or a take by it, gives the thread back; every other handover is only logged."""
    new_owner = event.new_owner_app_id
    if rules.app_id is not None:
        ours = new_owner == rules.app_id
    else:
        # Without APP_ID, Meta sends pass_thread_control to the app receiving the thread: any pass
        # that is not to an inbox is to this app. A take cannot be told apart, so it is only logged.
        ours = event.action == "pass_thread_control" and new_owner not in INBOX_APP_IDS | {rules.handover_app_id}
    if event.action in ("pass_thread_control", "take_thread_control") and ours:
        return Route(Case.THREAD_BACK)
    return Route(Case.HANDOVER)


def _postback_route(event: Postback, rules: Rules) -> Route:
    if event.standby:
        return Route(Case.RECORD, text=said(event))
    if event.payload == rules.get_started_payload:
        return Route(Case.GET_STARTED)
    if event.payload == HUMAN_PAYLOAD:
        return Route(Case.HUMAN)
    if event.payload == START_OVER_PAYLOAD:
        return Route(Case.RESET)
    # A menu button or ice breaker the page owner set up: answered as if the person typed its title.
    return Route(Case.BUTTON, text=event.title or event.payload)


def _message_route(message: Message, rules: Rules) -> Route:
    text = (message.text or message.quick_reply_payload or "").strip()
    command = text.lower()
    if command in BOT_COMMANDS:
        return Route(Case.BOT_BACK)
    if message.standby:
        return Route(Case.RECORD, text=said(message))
    if command in HUMAN_COMMANDS:
        return Route(Case.HUMAN)
    if command in RESET_COMMANDS:
        return Route(Case.RESET)
    if command in HELP_COMMANDS:
        return Route(Case.HELP)
    photos = tuple(a for a in message.attachments if a.type == "image" and _findable(a, rules) and not a.is_sticker)
    if message.story_reply and text:
        text = STORY_REPLY.format(text=text)
    if message.came_from and text:
        text = CAME_FROM.format(came_from=message.came_from, text=text)
    if photos and rules.vision:
        return Route(Case.PHOTOS, text=text, photos=photos[: rules.max_images])
    voice = next((a for a in message.attachments if a.type == "audio" and (a.url or a.media_id)), None)
    if voice and rules.transcribe:
        return Route(Case.VOICE, voice=voice)
    if text:
        return Route(Case.TEXT, text=text)
    if message.attachments and all(a.is_sticker for a in message.attachments):
        return Route(Case.STICKER)
    if message.attachments:
        return Route(Case.UNUSABLE, attachment_type=message.attachments[0].type)
    return Route(Case.NOTHING)


def _findable(attachment: Attachment, rules: Rules) -> bool:
    """Whether the bot may look for the file: its channel keeps it behind an id, or its link is one it may fetch."""
    if attachment.media_id is not None:
        return True
    return attachment.url is not None and fetchable(attachment.url, rules.allow_http_media)
