"""The conversation: what the bot answers to each event, between the webhook and the model."""

from __future__ import annotations

import logging
import time
from typing import Callable, Protocol, Sequence

import requests

import usage
from config import Settings
from events import Attachment, Event, Message, Postback
from gpt import ChatModel, Failure, ModelError
from limits import Limits
from media import MediaError, downloaded
from messenger import GraphError
from store import Store, Turn, estimate_tokens, newest_turns_within
from typing_indicator import TypingIndicator

logger = logging.getLogger(__name__)

GREETING = (
    "Hi! I'm an assistant powered by GPT. Ask me anything and I'll do my best to help. "
    "Send /help to see what I can do."
)
HELP = (
    "I'm an AI assistant (a GPT model) answering on this page. Write to me as you would to a "
    "person: I remember our conversation for a while, so you can ask follow-up questions.{media}\n\n"
    "Commands:\n/reset: forget our conversation and start over\n/help: show this message\n\n"
    "I can make mistakes: check anything important."
)
MEDIA_HELP = {
    (True, True): " You can also send photos and voice messages.",
    (True, False): " You can also send photos.",
    (False, True): " You can also send voice messages.",
    (False, False): "",
}
RESET_DONE = "Done: I've forgotten our conversation. What would you like to talk about?"
STICKER_THANKS = "👍"
EMPTY_REPLY = "Sorry, I don't have an answer to that. Could you put it another way?"
NOT_ALLOWED = "Sorry, this bot is being tested and isn't open to everyone yet."
TRUNCATED = "Your message was long, so I've only read its first {limit:,} characters."
PHOTO_PROMPT = "What's in this photo?"
HEARD = '🎤 I heard: "{transcript}"\n\n{reply}'
VOICE_FAILED = "Sorry, I couldn't listen to that voice message. Could you type it instead?"
VOICE_EMPTY = "I couldn't make out any words in that voice message. Could you try again, or type it?"
# What the bot says to attachments it cannot use, by attachment type.
CANNOT_USE = {
    "image": "I can't see photos here. Could you describe it in words?",
    "audio": "I can't listen to voice messages here. Could you type it?",
    "video": "I can't watch videos yet. Could you tell me what's in it?",
    "file": "I can't open files yet. Could you paste the part you'd like me to read?",
    "location": "Thanks! I can't read locations yet, but you can type the place you mean.",
}
CANNOT_OPEN = "I can't open shared links or posts yet. Could you paste the text, or tell me about it?"

RESET_COMMANDS = {"/reset", "reset"}
HELP_COMMANDS = {"/help"}
# A photo costs the model 85 tokens at low detail and up to about 1,100 at high.
IMAGE_TOKENS = {"low": 85, "auto": 1105, "high": 1105}
QUOTE_CHARS = 300
HEARD_CHARS = 150

APOLOGY_TRY_LATER = "Sorry, I'm having trouble answering right now. Please try again in a minute."
APOLOGY_UNAVAILABLE = "Sorry, I can't answer messages right now. Please try again later."
APOLOGIES = {
    Failure.TIMEOUT: APOLOGY_TRY_LATER,
    Failure.UNREACHABLE: APOLOGY_TRY_LATER,
    Failure.RATE_LIMITED: APOLOGY_TRY_LATER,
    Failure.SERVER: APOLOGY_TRY_LATER,
    Failure.QUOTA: APOLOGY_UNAVAILABLE,
    Failure.AUTH: APOLOGY_UNAVAILABLE,
    Failure.FORBIDDEN: APOLOGY_UNAVAILABLE,
    Failure.NOT_FOUND: APOLOGY_UNAVAILABLE,
    Failure.TOO_LONG: "Sorry, that's too long for me to read. Could you send something shorter? "
    "(Send /reset to start a fresh conversation.)",
    Failure.REJECTED: "Sorry, I couldn't answer that one. Could you put it another way?",
}
# Failures the page owner must fix; the others pass by themselves.
OWNER_MUST_ACT = {Failure.QUOTA, Failure.AUTH, Failure.FORBIDDEN, Failure.NOT_FOUND}


class Channel(Protocol):
    """Where replies go: Messenger's Send API, or the terminal."""

    def send_text(self, psid: str, text: str) -> list[tuple[str, str]]:
        """Send a reply; return (message id, text) for each message it took. May raise GraphError."""

    def send_action(self, psid: str, action: str) -> bool:
        """Show a sender action such as typing_on; return False if it failed."""


class Bot:
    """Answers one event at a time for a person: commands, photos, voice, attachments, and model replies."""

    def __init__(
        self, settings: Settings, store: Store, channel: Channel, model: ChatModel, limits: Limits,
        clock: Callable[[], float] = time.time,
    ):
        self._settings = settings
        self._store = store
        self._channel = channel
        self._model = model
        self._limits = limits
        self._clock = clock
        self._typing = TypingIndicator(channel.send_action, settings.typing_renew_seconds, settings.worker_threads)
        self._media = requests.Session()

    def handle(self, event: Event) -> None:
        """Answer one event."""
        if isinstance(event, Postback):
            self._handle_postback(event)
        elif isinstance(event, Message):
            self._handle_message(event)

    def _handle_postback(self, postback: Postback) -> None:
        if postback.payload == self._settings.get_started_payload:
            logger.info("postback psid=%s: get started", postback.psid)
            self._send(postback.psid, GREETING)
            return
        # A menu button the page owner set up: answered as if the person typed its title.
        logger.info("postback psid=%s: answered as text", postback.psid)
        if self._admit(postback.psid, postback.timestamp):
            self._reply(postback.psid, postback.title or postback.payload)

    def _handle_message(self, message: Message) -> None:
        psid = message.psid
        text = (message.text or message.quick_reply_payload or "").strip()
        photos = [a.url for a in message.attachments if a.type == "image" and a.url and not a.is_sticker]
        voice = next((a.url for a in message.attachments if a.type == "audio" and a.url), None)
        if text.lower() in RESET_COMMANDS:
            self._store.reset(psid)
            logger.info("message psid=%s: /reset", psid)
            self._send(psid, RESET_DONE)
        elif text.lower() in HELP_COMMANDS:
            logger.info("message psid=%s: /help", psid)
            self._send(psid, HELP.format(media=MEDIA_HELP[self._settings.vision, self._settings.transcribe]))
        elif photos and self._settings.vision:
            logger.info("message psid=%s: %d photo(s)", psid, len(photos))
            if self._admit(psid, message.timestamp):
                self._reply(psid, text, message, photos[: self._settings.max_images])
        elif voice and self._settings.transcribe:
            logger.info("message psid=%s: voice message", psid)
            if self._admit(psid, message.timestamp):
                self._reply_to_voice(message, voice)
        elif text:
            if self._admit(psid, message.timestamp):
                self._reply(psid, text, message)
        elif message.attachments and all(a.is_sticker for a in message.attachments):
            logger.info("message psid=%s: sticker", psid)
            self._send(psid, STICKER_THANKS)
        elif message.attachments:
            logger.info("message psid=%s: attachment (%s) not used", psid, message.attachments[0].type)
            self._send(psid, cannot_use(message.attachments))

    def _admit(self, psid: str, timestamp_ms: int) -> bool:
        """Check that a model call is allowed for this person now; tell them once if not."""
        if self._settings.allowed_psids and psid not in self._settings.allowed_psids:
            logger.info("psid=%s is not in ALLOWED_PSIDS", psid)
            self._send(psid, NOT_ALLOWED)
            return False
        # Limits count messages by when they were sent, which Meta stamps on each event.
        decision = self._limits.check(psid, timestamp_ms / 1000 if timestamp_ms else self._clock())
        if not decision.allowed:
            logger.info("psid=%s over a limit: %s", psid, "notified" if decision.notice else "silent")
            if decision.notice:
                self._send(psid, decision.notice)
        return decision.allowed

    def _reply_to_voice(self, message: Message, url: str) -> None:
        """Transcribe a voice message and answer it as if typed, saying what was heard."""
        settings = self._settings
        try:
            with self._typing.shown(message.psid), downloaded(
                self._media, url, max_bytes=settings.max_audio_bytes, timeout=settings.media_timeout,
                allow_http=settings.allow_http_media,
            ) as audio:
                transcript = self._model.transcribe(audio)
        except (MediaError, ModelError) as error:
            logger.warning("voice message from psid=%s not transcribed: %s", message.psid, error)
            self._send(message.psid, VOICE_FAILED)
            return
        if not transcript:
            self._send(message.psid, VOICE_EMPTY)
            return
        self._reply(message.psid, transcript, message, heard=transcript)

    def _reply(
        self, psid: str, text: str, message: Message | None = None, photos: Sequence[str] = (),
        heard: str | None = None,
    ) -> None:
        """Ask the model with the person's history, send its reply, and remember the turn."""
        limit = self._settings.max_message_chars
        if len(text) > limit:
            logger.info("message from psid=%s cut from %d to %d characters", psid, len(text), limit)
            text = text[:limit]
            self._send(psid, TRUNCATED.format(limit=limit))
        if message and message.text:
            self._store.remember(psid, message.mid, message.text)
        said = self._with_quote(psid, text, message)
        started = time.monotonic()
        with self._typing.shown(psid):
            try:
                completion = self._model.complete(self.prompt(psid, said, photos))
            except ModelError as error:
                level = logging.ERROR if error.failure in OWNER_MUST_ACT else logging.WARNING
                logger.log(level, "model failed for psid=%s: %s (HTTP %s)", psid, error.failure.value, error.status)
                self._send(psid, APOLOGIES[error.failure])
                return
        model_ms = (time.monotonic() - started) * 1000
        usage.record(self._store, completion, self._clock())
        if completion.finish_reason == "length":
            logger.info("reply for psid=%s hit REPLY_MAX_TOKENS and was cut short", psid)
        reply = completion.text or EMPTY_REPLY
        sent = self._send(psid, HEARD.format(transcript=shorten(heard, HEARD_CHARS), reply=reply) if heard else reply)
        if sent and completion.text:
            # Kept only once delivered, so the history holds no answer the person never saw. A
            # photo stays in the history as a marker: Meta's attachment links expire.
            self._store.append(psid, Turn(history_text(said, photos, heard), completion.text))
            for mid, piece in sent:
                self._store.remember(psid, mid, piece)
        logger.info(
            "replied psid=%s model_ms=%.0f prompt_tokens=%s completion_tokens=%s pieces=%d",
            psid, model_ms, completion.prompt_tokens, completion.completion_tokens, len(sent),
        )

    def _with_quote(self, psid: str, text: str, message: Message | None) -> str:
        """The text, preceded by the message it replies to when that one is still remembered."""
        quoted = message and message.reply_to_mid and self._store.recall(psid, message.reply_to_mid)
        return f'[Replying to: "{shorten(quoted, QUOTE_CHARS)}"]\n{text}' if quoted else text

    def prompt(self, psid: str, text: str, photos: Sequence[str] = ()) -> list[dict]:
        """Return the messages for the model: system prompt, newest history that fits, the new message."""
        system = self._settings.system_prompt
        detail = self._settings.vision_detail
        budget = (self._settings.history_max_tokens - estimate_tokens(system) - estimate_tokens(text)
                  - IMAGE_TOKENS[detail] * len(photos))
        turns = newest_turns_within(self._store.get(psid), self._settings.history_max_messages, budget)
        history = [message for turn in turns for message in turn.messages()]
        content: str | list[dict] = text
        if photos:
            content = [{"type": "text", "text": text or PHOTO_PROMPT}] + [
                {"type": "image_url", "image_url": {"url": url, "detail": detail}} for url in photos
            ]
        return [{"role": "system", "content": system}, *history, {"role": "user", "content": content}]

    def _send(self, psid: str, text: str) -> list[tuple[str, str]]:
        """Send a reply; return (message id, text) of each message sent (none if Meta refused: already logged)."""
        try:
            return self._channel.send_text(psid, text)
        except GraphError:
            return []


def cannot_use(attachments: tuple[Attachment, ...]) -> str:
    """An honest answer to attachments the bot cannot use."""
    return CANNOT_USE.get(attachments[0].type, CANNOT_OPEN)


def history_text(said: str, photos: Sequence[str], heard: str | None) -> str:
    """What the history keeps of the person's turn: markers for photos and voice, never links."""
    if photos:
        marker = "[photo]" if len(photos) == 1 else f"[{len(photos)} photos]"
        return f"{marker} {said}".strip()
    return f"[voice message] {said}" if heard else said


def shorten(text: str, limit: int) -> str:
    """The text, cut at a word with an ellipsis if it is longer than `limit`."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"
