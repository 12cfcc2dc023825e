"""The conversation: what the bot answers to each event, between the webhook and the model."""

from __future__ import annotations

import logging
import time

from typing import Callable, Protocol

import usage
from config import Settings
from events import Event, Message, Postback
from gpt import ChatModel, Failure, ModelError
from limits import Limits
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
    "person: I remember our conversation for a while, so you can ask follow-up questions.\n\n"
    "Commands:\n/reset: forget our conversation and start over\n/help: show this message\n\n"
    "I read text only for now, and I can make mistakes: check anything important."
)
RESET_DONE = "Done: I've forgotten our conversation. What would you like to talk about?"
TEXT_ONLY = "I can only read text for now. Could you type your message?"
STICKER_THANKS = "👍"
EMPTY_REPLY = "Sorry, I don't have an answer to that. Could you put it another way?"
NOT_ALLOWED = "Sorry, this bot is being tested and isn't open to everyone yet."
TRUNCATED = "Your message was long, so I've only read its first {limit:,} characters."

RESET_COMMANDS = {"/reset", "reset"}
HELP_COMMANDS = {"/help"}

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

    def send_text(self, psid: str, text: str) -> int:
        """Send a reply; return how many messages it took. May raise GraphError."""

    def send_action(self, psid: str, action: str) -> bool:
        """Show a sender action such as typing_on; return False if it failed."""


class Bot:
    """Answers one event at a time for a person: commands, attachments, and model replies."""

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
        self._answer(postback.psid, postback.title or postback.payload, postback.timestamp)

    def _handle_message(self, message: Message) -> None:
        psid = message.psid
        text = (message.text or message.quick_reply_payload or "").strip()
        if text.lower() in RESET_COMMANDS:
            self._store.reset(psid)
            logger.info("message psid=%s: /reset", psid)
            self._send(psid, RESET_DONE)
        elif text.lower() in HELP_COMMANDS:
            logger.info("message psid=%s: /help", psid)
            self._send(psid, HELP)
        elif text:
            self._answer(psid, text, message.timestamp)
        elif message.attachments and all(a.is_sticker for a in message.attachments):
            logger.info("message psid=%s: sticker", psid)
            self._send(psid, STICKER_THANKS)
        elif message.attachments:
            kinds = ",".join(sorted({a.type for a in message.attachments}))
            logger.info("message psid=%s: attachment (%s), text only for now", psid, kinds)
            self._send(psid, TEXT_ONLY)

    def _answer(self, psid: str, text: str, timestamp_ms: int) -> None:
        """Ask the model with the person's history, send its reply, and remember the turn."""
        if self._settings.allowed_psids and psid not in self._settings.allowed_psids:
            logger.info("psid=%s is not in ALLOWED_PSIDS", psid)
            self._send(psid, NOT_ALLOWED)
            return
        # Limits count messages by when they were sent, which Meta stamps on each event.
        decision = self._limits.check(psid, timestamp_ms / 1000 if timestamp_ms else self._clock())
        if not decision.allowed:
            logger.info("psid=%s over a limit: %s", psid, "notified" if decision.notice else "silent")
            if decision.notice:
                self._send(psid, decision.notice)
            return
        limit = self._settings.max_message_chars
        if len(text) > limit:
            logger.info("message from psid=%s cut from %d to %d characters", psid, len(text), limit)
            text = text[:limit]
            self._send(psid, TRUNCATED.format(limit=limit))
        started = time.monotonic()
        with self._typing.shown(psid):
            try:
                completion = self._model.complete(self.prompt(psid, text))
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
        pieces = self._send(psid, reply)
        if pieces and completion.text:
            # Kept only once delivered, so the history holds no answer the person never saw.
            self._store.append(psid, Turn(text, completion.text))
        logger.info(
            "replied psid=%s model_ms=%.0f prompt_tokens=%s completion_tokens=%s pieces=%d",
            psid, model_ms, completion.prompt_tokens, completion.completion_tokens, pieces,
        )

    def prompt(self, psid: str, text: str) -> list[dict]:
        """Return the messages for the model: system prompt, newest history that fits, the new text."""
        system = self._settings.system_prompt
        budget = self._settings.history_max_tokens - estimate_tokens(system) - estimate_tokens(text)
        turns = newest_turns_within(self._store.get(psid), self._settings.history_max_messages, budget)
        history = [message for turn in turns for message in turn.messages()]
        return [{"role": "system", "content": system}, *history, {"role": "user", "content": text}]

    def _send(self, psid: str, text: str) -> int:
        """Send a reply; return how many messages went out (0 if Meta refused, already logged)."""
        try:
            return self._channel.send_text(psid, text)
        except GraphError:
            return 0
