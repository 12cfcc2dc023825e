"""What an event is, decided once: a command, photos, voice, text, a sticker, an attachment the bot can't use, a button.

`route` is a pure function of the event and the settings; the bot has one handler per `Case`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from config import Settings
from events import Event, Message, Postback
from media import fetchable

RESET_COMMANDS = frozenset({"/reset", "reset"})
HELP_COMMANDS = frozenset({"/help"})


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
    NOTHING = "nothing to answer"


@dataclass(frozen=True)
class Route:
    """What the event is, with what its handler needs from it."""

    case: Case
    text: str = ""
    photos: tuple[str, ...] = ()
    voice_url: str | None = None
    attachment_type: str | None = None


def route(event: Event, settings: Settings) -> Route:
    """Decide what the event is."""
    if isinstance(event, Postback):
        if event.payload == settings.get_started_payload:
            return Route(Case.GET_STARTED)
        # A menu button the page owner set up: answered as if the person typed its title.
        return Route(Case.BUTTON, text=event.title or event.payload)
    return _message_route(event, settings)


def _message_route(message: Message, settings: Settings) -> Route:
    text = (message.text or message.quick_reply_payload or "").strip()
    command = text.lower()
    if command in RESET_COMMANDS:
        return Route(Case.RESET)
    if command in HELP_COMMANDS:
        return Route(Case.HELP)
    photos = tuple(
        a.url
        for a in message.attachments
        if a.type == "image" and a.url and not a.is_sticker and fetchable(a.url, settings.allow_http_media)
    )
    if photos and settings.vision:
        return Route(Case.PHOTOS, text=text, photos=photos[: settings.max_images])
    voice = next((a.url for a in message.attachments if a.type == "audio" and a.url), None)
    if voice and settings.transcribe:
        return Route(Case.VOICE, voice_url=voice)
    if text:
        return Route(Case.TEXT, text=text)
    if message.attachments and all(a.is_sticker for a in message.attachments):
        return Route(Case.STICKER)
    if message.attachments:
        return Route(Case.UNUSABLE, attachment_type=message.attachments[0].type)
    return Route(Case.NOTHING)
