"""The conversation: one handler for each kind of event (routing.py decides which), between webhook and model.

It also steps back while a person from the page is talking to someone: for HUMAN_PAUSE_MINUTES
after their last hand-written message, or after the person asked for them (/human), the bot
answers nothing and keeps what both sides say in the history.

Messages for the model that queued while the person was being answered (a burst) are answered
together: one model call, one reply, one turn. Commands are never merged: they act in their place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from inboxgpt import metrics, replies, usage
from inboxgpt.channels.base import Channels
from inboxgpt.channels.graph import GraphError
from inboxgpt.config import Settings
from inboxgpt.conversation.routing import SILENCED, Case, Route, route, said
from inboxgpt.events import Echo, Event, Handover, Message
from inboxgpt.limits import Limits
from inboxgpt.media import MediaError, downloaded
from inboxgpt.model import prompt
from inboxgpt.model.gpt import ChatModel, Completion, Failure, ModelError
from inboxgpt.model.knowledge import Chosen, Knowledge
from inboxgpt.model.streaming import ParagraphSender
from inboxgpt.queues.store import Store, StoreUnavailable, Turn
from inboxgpt.typing_indicator import TypingIndicator

logger = logging.getLogger(__name__)

HEARD_CHARS = 150
# Why the thread is passed or taken, as Meta shows it to the other app.
PASS_METADATA = "The person asked for a person from the page (/human)."
TAKE_METADATA = "The person asked for the bot again (/bot)."
# Failures the page owner must fix; the others pass by themselves.
OWNER_MUST_ACT = {Failure.QUOTA, Failure.AUTH, Failure.FORBIDDEN, Failure.NOT_FOUND}
# Messages the model answers: those of a burst are answered together.
FOR_THE_MODEL = {Case.TEXT, Case.BUTTON, Case.PHOTOS, Case.VOICE}
# Messages answered with a canned reply: free, but a flood of them is still held to LIMIT_PER_MINUTE.
CANNED = {Case.RESET, Case.HELP, Case.STICKER, Case.UNUSABLE, Case.GET_STARTED, Case.HUMAN, Case.BOT_BACK}


Handler = Callable[[Event, Route], None]


class Outbox:
    """Sends one answer's messages: at most MAX_MESSAGES_PER_REPLY of them (and, when the answer was cut, the
    notice that says so). Past the cap, or once Meta refused a message, the rest of the answer is not sent."""

    def __init__(self, send: Callable[[str], list[tuple[str, str]]], split: Callable[[str], list[str]], cap: int):
        self._send = send
        self._split = split
        self._room = cap
        # (message id, text) of each message sent, and each text given as it was delivered.
        self.sent: list[tuple[str, str]] = []
        self._delivered: list[str] = []
        self.full = False  # the answer needed more messages than the cap allows
        self.refused = False  # Meta refused a message

    def __call__(self, text: str) -> list[tuple[str, str]]:
        """Send a part of the answer as one or more messages; return those sent (none: nothing more will be)."""
        if self.full or self.refused:
            return []
        pieces = [piece for piece in self._split(text) if piece.strip()]
        if len(pieces) > self._room:
            self.full, pieces = True, pieces[: self._room]
        sent: list[tuple[str, str]] = []
        for piece in pieces:
            took = self._send(piece)
            if not took:
                self.refused = True
                break
            sent += took
        self._room -= len(sent)
        self.sent += sent
        if sent:
            self._delivered.append("".join(piece for _, piece in sent))
        return sent

    def notice(self, text: str) -> None:
        """Say that the answer stops here."""
        if not self.refused:
            self.sent += self._send(text)

    def delivered(self) -> str:
        """The answer as it reached the person."""
        return "\n\n".join(self._delivered)


@dataclass(frozen=True)
class Said:
    """One message of the person's turn, as the model reads it."""

    event: Event
    text: str
    photos: tuple[str, ...] = ()
    heard: bool = False  # the text is a voice message's transcript


class Bot:
    """Answers one event at a time for a person: commands, photos, voice, attachments, and model replies."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        channels: Channels,
        model: ChatModel,
        limits: Limits,
        typing: TypingIndicator,
        media: requests.Session,
        knowledge: Knowledge | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._settings = settings
        self._store = store
        self._channels = channels
        self._model = model
        self._limits = limits
        self._typing = typing
        self._media = media
        self._knowledge = knowledge
        self._clock = clock
        self._budget = prompt.Budget(
            prompt.system_message(settings.system_prompt),
            settings.history_max_messages,
            settings.history_max_tokens,
            settings.vision_detail,
        )
        self._handlers: dict[Case, Handler] = {
            Case.RESET: self._reset,
            Case.HELP: self._help,
            Case.PHOTOS: self._ask_model,
            Case.VOICE: self._ask_model,
            Case.TEXT: self._ask_model,
            Case.STICKER: self._sticker,
            Case.UNUSABLE: self._unusable,
            Case.GET_STARTED: self._get_started,
            Case.BUTTON: self._ask_model,
            Case.HUMAN: self._human,
            Case.BOT_BACK: self._bot_back,
            Case.PAGE_WROTE: self._page_wrote,
            Case.RECORD: self._record,
            Case.THREAD_BACK: self._thread_back,
            Case.HANDOVER: self._handover,
            Case.NOTHING: lambda event, how: None,
        }
        if missing := set(Case) - set(self._handlers):
            # A case added to routing without its handler fails at start, not on the first such event.
            raise TypeError(f"no handler for {sorted(case.name for case in missing)}")
        self._pass_refusal_logged = False

    def handle_queued(self, events: list[Event]) -> int:
        """Answer the first of a person's queued events, with the messages for the model right behind it;
        return how many were answered."""
        first = events[0]
        burst = [(first, route(first, self._settings))]
        for event in events[1:]:
            how = route(event, self._settings)
            if burst[-1][1].case not in FOR_THE_MODEL or how.case not in FOR_THE_MODEL:
                break
            burst.append((event, how))
        if len(burst) == 1 or self._paused(first):
            self._handle(*burst[0])  # a pause records each message on its own
            return 1
        logger.info("event psid=%s: a burst of %d messages, answered together", first.psid, len(burst))
        if self._admit(first):
            said = [self._said(event, how) for event, how in burst]
            self._reply([one for one in said if one is not None])
        return len(burst)

    def gather_seconds(self, events: list[Event]) -> float:
        """How long to wait for more messages before answering these (BURST_WAIT_SECONDS after the newest)."""
        if any(route(event, self._settings).case not in FOR_THE_MODEL for event in events):
            return 0.0  # a command acts at once
        newest = max(event.received for event in events)
        return newest + self._settings.burst_wait_seconds - self._clock() if newest else 0.0

    def handle(self, event: Event) -> None:
        """Answer one event."""
        self._handle(event, route(event, self._settings))

    def _handle(self, event: Event, how: Route) -> None:
        if how.case in SILENCED and self._paused(event):
            logger.info("event psid=%s: %s, not answered: the page's people are talking", event.psid, how.case.value)
            metrics.REPLIES.labels("silent", event.channel).inc()
            self._keep(event.psid, Turn(said(event), ""))
            return
        if how.case is not Case.TEXT:
            logger.info("event psid=%s: %s", event.psid, how.case.value)
        if how.case in CANNED and not self._admit_canned(event):
            return
        self._handlers[how.case](event, how)

    # --- one handler per case ---

    def _reset(self, event: Event, how: Route) -> None:
        self._store.reset(event.psid)
        self._send(event, replies.RESET_DONE)

    def _help(self, event: Event, how: Route) -> None:
        media = replies.MEDIA_HELP[self._settings.vision, self._settings.transcribe]
        self._send(event, replies.HELP.format(media=media))

    def _get_started(self, event: Event, how: Route) -> None:
        self._send(event, replies.GREETING)

    def _sticker(self, event: Event, how: Route) -> None:
        self._send(event, replies.STICKER_THANKS)

    def _unusable(self, event: Event, how: Route) -> None:
        self._send(event, replies.cannot_use(how.attachment_type or ""))

    def _human(self, event: Event, how: Route) -> None:
        psid = event.psid
        if self._paused(event):
            # A person from the page is already talking to them: the bot says nothing over them.
            logger.info("psid=%s asked for a person while one is talking to them: the pause goes on", psid)
            self._pause(psid, self._event_time(event), "human")
            self._keep(psid, Turn("/human", ""))
            return
        self._pause(psid, self._event_time(event), "human")
        if self._send(event, replies.HUMAN_COMING):
            self._keep(psid, Turn("/human", replies.HUMAN_COMING))
        # Passed after the reply: once the Inbox controls the thread, the bot can no longer send.
        inbox = self._channels.inbox(psid)
        if inbox is None:
            return  # no inbox to hand to (the terminal): the bot only stays silent until /bot
        passed = self._channels.pass_thread(psid, inbox.app_id, PASS_METADATA)
        if not passed and not self._pass_refusal_logged:
            self._pass_refusal_logged = True
            logger.warning(
                "Meta refused to pass a conversation to app %s (%s): Conversation Routing may be set up otherwise. "
                "The bot still stays silent for HUMAN_PAUSE_MINUTES. (Logged once.)",
                inbox.app_id,
                inbox.setting,
            )

    def _bot_back(self, event: Event, how: Route) -> None:
        psid = event.psid
        self._store.unpause(psid)
        if event.standby:
            # Another app controls the thread: the reply below would be refused without it.
            self._channels.take_thread(psid, TAKE_METADATA)
        self._send(event, replies.BOT_BACK)

    def _page_wrote(self, event: Event, how: Route) -> None:
        """A person from the page wrote by hand: step back, and keep their words for when the bot answers again."""
        if isinstance(event, Echo) and self._store.was_sent(event.psid, event.mid):
            return  # a message the bot sent (Instagram's echoes carry no marker): noted when sent
        self._pause(event.psid, self._event_time(event), "hand_written")
        self._keep(event.psid, Turn("", prompt.page_words(how.text)))

    def _record(self, event: Event, how: Route) -> None:
        """Something the person said while another app owns the thread: kept in the history, never answered."""
        self._keep(event.psid, Turn(how.text, ""))

    def _thread_back(self, event: Event, how: Route) -> None:
        self._store.unpause(event.psid)

    def _handover(self, event: Event, how: Route) -> None:
        if isinstance(event, Handover):
            logger.info(
                "handover psid=%s: %s new_owner=%s previous_owner=%s requested_owner=%s",
                event.psid,
                event.action,
                event.new_owner_app_id,
                event.previous_owner_app_id,
                event.requested_owner_app_id,
            )

    def _ask_model(self, event: Event, how: Route) -> None:
        """A message for the model: text, a button, photos or a voice message (answered as if typed, saying what
        was heard)."""
        if self._admit(event) and (said := self._said(event, how)) is not None:
            self._reply([said])

    def _said(self, event: Event, how: Route) -> Said | None:
        """The message as the model reads it; None for a voice message that could not be heard (the person was
        told)."""
        if how.case is not Case.VOICE:
            return Said(event, how.text, how.photos)
        transcript = self._transcript(event, how.voice_url)
        return Said(event, transcript, heard=True) if transcript else None

    def _transcript(self, event: Event, voice_url: str | None) -> str | None:
        """What the voice message says; None (the person told why) if it could not be heard."""
        if voice_url is None:
            return None
        settings = self._settings
        try:
            with (
                self._typing.shown(event.psid),
                downloaded(
                    self._media,
                    voice_url,
                    max_bytes=settings.max_audio_bytes,
                    timeout=settings.media_timeout,
                    allow_http=settings.allow_http_media,
                ) as audio,
            ):
                transcript = self._model.transcribe(audio)
        except (MediaError, ModelError) as error:
            logger.warning("voice message from psid=%s not transcribed: %s", event.psid, error)
            self._send(event, replies.VOICE_FAILED)
            return None
        if not transcript:
            self._send(event, replies.VOICE_EMPTY)
        return transcript or None

    # --- shared steps ---

    def _event_time(self, event: Event) -> float:
        """When the event happened, in seconds: Meta's stamp, or now if it carries none."""
        return event.timestamp / 1000 if event.timestamp else self._clock()

    def _paused(self, event: Event) -> bool:
        return self._store.paused_until(event.psid) > self._event_time(event)

    def _pause(self, psid: str, start: float, reason: str) -> None:
        """Stay silent for the person for HUMAN_PAUSE_MINUTES from `start` (or longer, if already paused so)."""
        metrics.PAUSES.labels(reason).inc()
        seconds = self._settings.human_pause_minutes * 60
        until = max(self._store.paused_until(psid), start + seconds)
        # Kept twice the pause, so that events Meta delivers late still find it.
        self._store.pause(psid, until, ttl=2 * seconds)
        logger.info("psid=%s: the bot stays silent for %g minutes", psid, self._settings.human_pause_minutes)

    def _admit(self, event: Event) -> bool:
        """Check that a model call is allowed for this person now; tell them once if not."""
        psid = event.psid
        if self._settings.allowed_psids and psid not in self._settings.allowed_psids:
            logger.info("psid=%s is not in ALLOWED_PSIDS", psid)
            self._send(event, replies.NOT_ALLOWED)
            return False
        # Limits count messages by when they were sent, which Meta stamps on each event.
        decision = self._limits.check(psid, self._event_time(event))
        if not decision.allowed:
            metrics.REPLIES.labels("limited", event.channel).inc()
            logger.info("psid=%s over a limit: %s", psid, "notified" if decision.notice else "silent")
            if decision.notice:
                self._send(event, decision.notice)
        return decision.allowed

    def _admit_canned(self, event: Event) -> bool:
        """Check that a reply needing no model may go to this person now; tell them once if not."""
        decision = self._limits.check_canned(event.psid, self._event_time(event))
        if not decision.allowed:
            metrics.REPLIES.labels("limited", event.channel).inc()
            logger.info(
                "psid=%s over the limit of replies a minute: %s",
                event.psid,
                "notified" if decision.notice else "silent",
            )
            if decision.notice:
                self._send(event, decision.notice)
        return decision.allowed

    def _reply(self, messages: list[Said]) -> None:
        """Ask the model with the person's history, send its reply, and remember the turn: one turn for all of
        `messages` (a burst)."""
        if not messages:
            return
        event = messages[-1].event
        psid = event.psid
        parts = self._as_read(messages)
        said = "\n\n".join(text for text, _ in parts if text)
        photos = tuple(url for message in messages for url in message.photos)[: self._settings.max_images]
        heard = [message.text for message in messages if message.heard]
        history = self._store.get(psid)
        chosen = self._knowledge_for(said, history)
        knowledge = prompt.knowledge_text([s.rendered() for s in chosen.sections], chosen.searched) if chosen else ""
        # A voice message's answer opens with what was heard.
        opening = replies.HEARD.format(transcript=prompt.shorten(" ".join(heard), HEARD_CHARS), reply="")
        opening = opening if heard else ""
        outbox = Outbox(
            lambda piece: self._send(event, piece),
            lambda text: self._channels.split(psid, text),
            self._settings.max_messages_per_reply,
        )
        sender = ParagraphSender(outbox, opening) if self._settings.stream else None
        started = time.monotonic()
        completion = self._ask(event, prompt.build(self._budget, history, said, photos, knowledge), sender, outbox)
        if completion is None:
            return
        model_ms = (time.monotonic() - started) * 1000
        usage.record(self._store, completion, self._clock(), event.channel)
        if completion.finish_reason == "length":
            logger.info("reply for psid=%s hit REPLY_MAX_TOKENS and was cut short", psid)
        # A photo stays in the history as a marker: Meta's attachment links expire.
        kept = "\n\n".join(kept for _, kept in parts if kept)
        answered = self._deliver(event, completion, sender, outbox, opening)
        if completion.cut_said is not None:
            logger.info("message from psid=%s cut to fit the model's context window", psid)
            kept = prompt.history_text(completion.cut_said, photos, bool(heard))
        if outbox.sent and answered:
            # Kept only once delivered, so the history holds no answer the person never saw.
            self._keep(psid, Turn(kept, answered))
        _observe_reply(event, completion, outbox.sent)
        logger.info(
            "replied psid=%s model_ms=%.0f prompt_tokens=%s completion_tokens=%s cached_tokens=%s pieces=%d "
            "knowledge_sections=%d knowledge_tokens=%d",
            psid,
            model_ms,
            completion.prompt_tokens,
            completion.completion_tokens,
            completion.cached_tokens,
            len(outbox.sent),
            len(chosen.sections) if chosen else 0,
            chosen.tokens if chosen else 0,
        )

    def _ask(
        self, event: Event, messages: list[prompt.ChatMessage], sender: ParagraphSender | None, outbox: Outbox
    ) -> Completion | None:
        """The model's answer, typing shown meanwhile; streamed paragraph by paragraph through `sender` if given.
        None if the model failed (the person got an apology)."""
        psid = event.psid
        started = time.monotonic()

        def written(text: str) -> bool:
            assert sender is not None
            if sender.feed(text):
                self._typing.again(psid)  # a message turns typing off; more is coming
            return not outbox.full  # past the message cap, the rest of the answer is not wanted

        # Typing and seen start once the request has left: the model starts thinking first.
        with self._typing.shown(psid, deferred=True) as show:
            try:
                completion = self._model.complete(
                    messages,
                    written if sender else None,
                    on_send=show,
                    take_back=sender.take_back if sender else None,
                    # Before the answer, so that it never lands between two of its paragraphs.
                    on_cut=lambda: self._send(event, replies.CUT_TO_FIT),
                )
            except ModelError as error:
                metrics.MODEL_LATENCY.observe(time.monotonic() - started)
                metrics.MODEL_FAILURES.labels(error.failure.name.lower()).inc()
                level = logging.ERROR if error.failure in OWNER_MUST_ACT else logging.WARNING
                logger.log(level, "model failed for psid=%s: %s (HTTP %s)", psid, error.failure.value, error.status)
                self._send(event, replies.APOLOGIES[error.failure])
                metrics.REPLIES.labels("apology", event.channel).inc()
                return None
        metrics.MODEL_LATENCY.observe(time.monotonic() - started)
        return completion

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
            self._send(messages[-1].event, replies.TRUNCATED.format(limit=limit))
        return parts

    def _keep(self, psid: str, turn: Turn) -> None:
        """Add a turn to the history; if the store fails now, the turn is lost, not the event answered twice."""
        try:
            self._store.append(psid, prompt.within_history(turn, self._settings.history_max_tokens))
        except StoreUnavailable as exc:
            # Leaving the event queued would answer it again: the person may already have the reply.
            logger.warning("psid=%s: a turn was not kept in the history: %s", psid, exc)

    def _send(self, event: Event, text: str) -> list[tuple[str, str]]:
        """Send a reply to the event's person; return (message id, text) of each message sent (none if Meta
        refused: already logged)."""
        try:
            sent = self._channels.send_text(event.psid, text)
        except GraphError as error:
            if error.thread_elsewhere:
                # Another app (the Page Inbox) controls the conversation: its people are answering.
                self._pause(event.psid, self._event_time(event), "thread_elsewhere")
            return []
        try:
            # Kept for replies that quote them, and to know their echoes as the bot's own however long they wait
            # in the person's queue: for the pause a hand-written message would start, and twice that, as pauses.
            quotes = [(mid, piece[: prompt.REMEMBERED_CHARS]) for mid, piece in sent]
            self._store.remember_sent(event.psid, quotes, 2 * self._settings.human_pause_minutes * 60)
        except StoreUnavailable as exc:
            logger.warning("reply to psid=%s was sent but not remembered: %s", event.psid, exc)
        return sent


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
