"""A reply by the model: the person's messages as it reads them, the prompt (history, knowledge, photos), the model
streamed paragraph by paragraph within the answer's deadline and message cap, and the turn kept once delivered."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace

from inboxgpt import metrics, replies
from inboxgpt.config import Settings
from inboxgpt.conversation import moderation, transcript
from inboxgpt.conversation.outbox import Mailbox, Outbox
from inboxgpt.conversation.routing import Case, Route
from inboxgpt.conversation.tool_rounds import ToolRounds, ToolUse
from inboxgpt.events import Event, Message
from inboxgpt.limits import Bill, CapReached, Limits
from inboxgpt.media import Media, MediaError
from inboxgpt.model import prompt
from inboxgpt.model.completion import Completion
from inboxgpt.model.errors import Failure, ModelError
from inboxgpt.model.gpt import ChatModel
from inboxgpt.model.knowledge import Chosen, Knowledge
from inboxgpt.model.streaming import ParagraphSender
from inboxgpt.store import Store, Turn
from inboxgpt.tools.http import Caller
from inboxgpt.tools.leads import contact_offers
from inboxgpt.typing_indicator import TypingIndicator

logger = logging.getLogger(__name__)

HEARD_CHARS = 150
# Failures the page owner must fix; the others pass by themselves.
OWNER_MUST_ACT = {Failure.QUOTA, Failure.AUTH, Failure.FORBIDDEN, Failure.NOT_FOUND}


@dataclass(frozen=True)
class Said:
    """One message of the person's turn, as the model reads it."""

    event: Event
    text: str
    photos: tuple[str, ...] = ()
    heard: bool = False  # the text is a voice message's transcript
    cost: float = 0.0  # what making it readable cost (a transcription), in dollars


@dataclass(frozen=True)
class ReplySettings:
    """What a model reply needs of the settings."""

    system_prompt: str
    history_max_messages: int
    history_max_tokens: int
    vision_detail: str
    max_images: int
    stream: bool
    max_messages_per_reply: int
    max_message_chars: int
    moderation: str
    reply_max_tokens: int = 0  # the most a call's answer may cost (a hold against the money caps)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplySettings:
        return cls(
            system_prompt=settings.system_prompt,
            history_max_messages=settings.history_max_messages,
            history_max_tokens=settings.history_max_tokens,
            vision_detail=settings.vision_detail,
            max_images=settings.max_images,
            stream=settings.stream,
            max_messages_per_reply=settings.max_messages_per_reply,
            max_message_chars=settings.max_message_chars,
            moderation=settings.moderation,
            reply_max_tokens=settings.reply_max_tokens,
        )


class Replier:
    """Answers a person's messages with the model."""

    def __init__(
        self,
        settings: ReplySettings,
        store: Store,
        model: ChatModel,
        typing: TypingIndicator,
        media: Media,
        knowledge: Knowledge | None,
        mailbox: Mailbox,
        limits: Limits,
        rounds: ToolRounds,
        hand_over: Callable[[Event, str], None],
        clock: Callable[[], float] = time.time,
    ):
        self._settings = settings
        self._store = store
        self._model = model
        self._typing = typing
        self._media = media
        self._knowledge = knowledge
        self._mailbox = mailbox
        self._limits = limits
        self._rounds = rounds
        self._hand_over = hand_over
        self._clock = clock
        # The prompt's budget for each channel's note on formatting (see _budget()).
        self._budgets: dict[str, prompt.Budget] = {}

    def said(self, event: Event, how: Route) -> Said | None:
        """The message as the model reads it; None for a voice message that could not be heard, or photos that
        could not be opened (the person was told)."""
        if how.case is Case.PHOTOS:
            photos = self._photos(event, how)
            return Said(event, how.text, photos) if photos else None
        if how.case is not Case.VOICE:
            return Said(event, how.text)
        heard = self._transcript(event, how)
        return Said(event, heard[0], heard=True, cost=heard[1]) if heard else None

    def _photos(self, event: Event, how: Route) -> tuple[str, ...]:
        """What the model is shown of the message's photos (links, or the photos inline); none (the person told
        why) if none could be opened."""
        shown = []
        # Only photos kept behind their channel's ids are downloaded (Messenger's go to the model by link).
        downloads = any(photo.media_id is not None for photo in how.photos)
        typing = self._typing.shown(event.psid, message_id=message_id_of(event)) if downloads else nullcontext()
        with typing:
            for photo in how.photos:
                try:
                    shown.append(self._media.photo_url(event.psid, photo))
                except MediaError as error:
                    logger.warning("photo from psid=%s not opened: %s", event.psid, error)
        if not shown:
            self._mailbox.send(event, replies.PHOTO_FAILED)
        return tuple(shown)

    def _transcript(self, event: Event, how: Route) -> tuple[str, float] | None:
        """What the voice message says, and what hearing it cost; None (the person told why) if it could not be
        heard."""
        if how.voice is None:
            return None
        try:
            with (
                self._typing.shown(event.psid, message_id=message_id_of(event)),
                self._media.audio(event.psid, how.voice) as audio,
            ):
                transcript, cost = self._model.transcribe(audio)
        except (MediaError, ModelError) as error:
            logger.warning("voice message from psid=%s not transcribed: %s", event.psid, error)
            self._mailbox.transcripts.person(event, "[voice]")
            self._mailbox.send(event, replies.VOICE_FAILED)
            return None
        self._mailbox.transcripts.person(event, f"[voice: {transcript}]" if transcript else "[voice]")
        if not transcript:
            self._mailbox.send(event, replies.VOICE_EMPTY)
            return None
        return transcript, cost

    def reply(self, messages: list[Said]) -> None:
        """Ask the model with the person's history, send its reply, and remember the turn: one turn for all of
        `messages` (a burst)."""
        if not messages:
            return
        event = messages[-1].event
        psid = event.psid
        parts = self._as_read(messages)
        said = "\n\n".join(text for text, _ in parts if text)
        photos = tuple(url for message in messages for url in message.photos)[: self._settings.max_images]
        if self._settings.moderation != "off" and self._flagged(event, said, photos, "message"):
            self._mailbox.send(event, replies.MODERATED)
            self._mailbox.transcripts.needs_person(event, transcript.MODERATED)
            return
        heard = [message.text for message in messages if message.heard]
        history = self._store.get(psid)
        chosen = self._knowledge_for(said, history)
        knowledge = chosen.for_prompt() if chosen else None
        # A voice message's answer opens with what was heard.
        opening = replies.HEARD.format(transcript=prompt.shorten(" ".join(heard), HEARD_CHARS), reply="")
        opening = opening if heard else ""
        outbox = Outbox(
            lambda piece, offers: self._mailbox.send_piece(event, piece, offers),
            lambda text: self._mailbox.split(psid, text),
            self._settings.max_messages_per_reply,
        )
        gap = self._mailbox.message_gap(psid)
        # An answer checked before it is sent cannot go out while it is written.
        streamed = self._settings.stream and self._settings.moderation != "both"
        sender = ParagraphSender(outbox, opening, gap, fits=outbox.fits) if streamed else None
        started = time.monotonic()
        messages_for_model = prompt.build(self._budget(psid), history, said, photos, knowledge)
        transcribed = sum(message.cost for message in messages)
        bill = self._limits.bill(psid, event.channel, self._model.prices, self._settings.reply_max_tokens, transcribed)
        try:
            asked = self._ask(event, messages_for_model, sender, outbox, bill)
        finally:
            bill.close()
        if asked is None:
            return
        completion, tools = asked
        if tools.handed_over:
            self._hand_over(event, said)  # as /human does; the person is told someone will answer
            return
        model_ms = (time.monotonic() - started) * 1000
        completion = replace(completion, cost=completion.cost + transcribed)
        if completion.finish_reason == "length":
            logger.info("reply for psid=%s hit REPLY_MAX_TOKENS and was cut short", psid)
        # A photo stays in the history as a marker: Meta's attachment links expire.
        kept = "\n\n".join(kept for _, kept in parts if kept)
        if self._rounds.takes_leads:
            outbox.offers = contact_offers(completion.text)
        if self._settings.moderation == "both" and self._flagged(event, completion.text, (), "answer"):
            completion = replace(completion, text=replies.ANSWER_WITHHELD)
        answered = self._deliver(event, completion, sender, outbox, opening)
        if completion.cut_said is not None:
            logger.info("message from psid=%s cut to fit the model's context window", psid)
            kept = prompt.history_text(completion.cut_said, photos, bool(heard))
        if outbox.sent and answered:
            # Kept only once delivered, so the history holds no answer the person never saw.
            self._mailbox.keep(psid, Turn(kept, answered))
        _observe_reply(event, completion, outbox.sent)
        logger.info(
            "replied psid=%s model_ms=%.0f prompt_tokens=%s completion_tokens=%s cached_tokens=%s pieces=%d "
            "knowledge_sections=%d knowledge_tokens=%d tool_calls=%d tool_rounds=%d cost=$%.6f usage=%s",
            psid,
            model_ms,
            completion.prompt_tokens,
            completion.completion_tokens,
            completion.cached_tokens,
            len(outbox.sent),
            len(chosen.sections) if chosen else 0,
            chosen.tokens if chosen else 0,
            tools.calls,
            tools.rounds,
            completion.cost,
            "estimated" if completion.estimated else "reported",
        )

    def _ask(
        self,
        event: Event,
        messages: list[prompt.ChatMessage],
        sender: ParagraphSender | None,
        outbox: Outbox,
        bill: Bill,
    ) -> tuple[Completion, ToolUse] | None:
        """The model's answer (and how it used tools), typing shown meanwhile, tools run as it asks, each call on
        `bill`; streamed paragraph by paragraph through `sender` if given. None if the model failed (the person got
        an apology) or a money cap refused a call (the person told once)."""
        psid = event.psid
        started = time.monotonic()

        def written(text: str) -> bool:
            assert sender is not None
            if sender.feed(text):
                self._typing.again(psid)  # a message turns typing off; more is coming
            return not outbox.spent  # with every message of the cap sent, the rest of the answer is not wanted

        # Typing and seen start once the request has left: the model starts thinking first.
        with self._typing.shown(psid, deferred=True, message_id=message_id_of(event)) as show:
            try:
                answered = self._rounds.complete(
                    messages,
                    Caller(psid, event.channel),
                    written if sender else None,
                    on_send=show,
                    take_back=sender.take_back if sender else None,
                    # Before the answer, so that it never lands between two of its paragraphs.
                    on_cut=lambda: self._mailbox.send(event, replies.CUT_TO_FIT),
                    bill=bill,
                )
            except CapReached as reached:
                logger.info("psid=%s over a money cap: %s", psid, "notified" if reached.decision.notice else "silent")
                metrics.REPLIES.labels("limited", event.channel).inc()
                if reached.decision.notice:
                    self._mailbox.send(event, reached.decision.notice)
                return None
            except ModelError as error:
                metrics.MODEL_LATENCY.observe(time.monotonic() - started)
                metrics.MODEL_FAILURES.labels(error.failure.name.lower()).inc()
                level = logging.ERROR if error.failure in OWNER_MUST_ACT else logging.WARNING
                status = "" if error.status is None else f" (HTTP {error.status})"
                logger.log(level, "model failed for psid=%s: %s%s", psid, error.failure.value, status)
                self._mailbox.send(event, replies.APOLOGIES[error.failure])
                self._mailbox.transcripts.needs_person(event, transcript.MODEL_FAILED)
                metrics.REPLIES.labels("apology", event.channel).inc()
                return None
        metrics.MODEL_LATENCY.observe(time.monotonic() - started)
        return answered

    def _deliver(
        self, event: Event, completion: Completion, sender: ParagraphSender | None, outbox: Outbox, opening: str
    ) -> str:
        """Send the answer, or what is left of it when streamed; return the answer as the person got it (for the
        history). An answer cut short (its stream broke, it ran out of time or of messages) says so."""
        if sender is None:
            outbox(opening + (completion.text or replies.EMPTY_REPLY))
        elif completion.broken:
            sender.cut_off()
        else:
            sender.finish("" if completion.text else replies.EMPTY_REPLY)
        cut = completion.broken or outbox.full
        if cut:
            why = "out of time" if completion.timed_out else "over MAX_MESSAGES_PER_REPLY" if outbox.full else "broken"
            logger.info("reply for psid=%s was cut off: %s", event.psid, why)
            outbox.notice(replies.CUT_OFF)
        if cut or outbox.refused:
            return outbox.delivered().removeprefix(opening.strip()).strip()
        return completion.text

    def _flagged(self, event: Event, text: str, photos: tuple[str, ...], what: str) -> bool:
        """Whether the moderation endpoint flags a message (or an answer); a failing endpoint lets it through. Its
        categories are counted and logged, never its text."""
        return moderation.flagged(self._model, event.psid, text, photos, what)

    def _budget(self, psid: str) -> prompt.Budget:
        """How much of the conversation a prompt for this person carries, with their channel's note on formatting
        closing the system message."""
        note = self._mailbox.formatting_note(psid)
        budget = self._budgets.get(note)
        if budget is None:
            settings = self._settings
            budget = self._budgets[note] = prompt.Budget(
                prompt.system_message(settings.system_prompt, note),
                settings.history_max_messages,
                settings.history_max_tokens,
                settings.vision_detail,
            )
        return budget

    def _knowledge_for(self, said: str, history: list[Turn]) -> Chosen | None:
        """The page's knowledge for this message; the last exchange helps follow-ups ("and on Sundays?")."""
        if self._knowledge is None:
            return None
        last = f"{history[-1].user}\n{history[-1].assistant}" if history else ""
        return self._knowledge.choose(said, last)

    def _as_read(self, messages: list[Said]) -> list[tuple[str, str]]:
        """Each message as the model reads it (after the message it quotes), and as the history keeps it; together
        within MAX_MESSAGE_CHARS (the person is told once if they were cut)."""
        limit = room = self._settings.max_message_chars
        parts = []
        for message in messages:
            event, text = message.event, message.text
            if len(text) > room:
                logger.info("message from psid=%s cut from %d to %d characters", event.psid, len(text), room)
                text = text[:room]
            room -= len(text)
            read = text
            if isinstance(event, Message):
                if event.text:
                    self._store.remember(event.psid, event.mid, event.text[: prompt.REMEMBERED_CHARS])
                quoted = self._store.recall(event.psid, event.reply_to_mid) if event.reply_to_mid else None
                read = prompt.with_quote(text, quoted)
            parts.append((read, prompt.history_text(read, message.photos, message.heard)))
        if sum(len(message.text) for message in messages) > limit:
            self._mailbox.send(messages[-1].event, replies.TRUNCATED.format(limit=limit))
        return parts


def message_id_of(event: Event) -> str | None:
    """The id of the person's message an answer is about (WhatsApp marks it read), if it has one."""
    return getattr(event, "mid", None)


def _observe_reply(event: Event, completion: Completion, sent: list[tuple[str, str]]) -> None:
    """Count a model reply: its outcome, its latency from the webhook to Meta, and the tokens it cost."""
    metrics.REPLIES.labels("sent" if sent else "refused_by_meta", event.channel).inc()
    if sent and event.received:
        metrics.REPLY_LATENCY.observe(max(0.0, time.time() - event.received))
    for kind, tokens in (
        ("prompt", completion.prompt_tokens),
        ("completion", completion.completion_tokens),
        ("cached", completion.cached_tokens),
    ):
        if tokens:
            metrics.MODEL_TOKENS.labels(kind).inc(tokens)
