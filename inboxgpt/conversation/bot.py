"""The conversation: routing decides what each event is, and one handler answers it.

The jobs are in parts: pauses.py (the bot steps back while the page's people talk), handover.py
(/human, /bot, hand-written messages, thread control), reply.py (a model reply: prompt, model,
streaming, history), outbox.py (sending, and one answer's messages within their cap). Here: the
table of handlers, the commands that need no model, the limits, and bursts: messages for the model
that queued while the person was being answered are answered together (one model call, one reply,
one turn); commands are never merged: they act in their place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from inboxgpt import metrics, replies
from inboxgpt.channels.base import Channels
from inboxgpt.config import Settings
from inboxgpt.conversation.comments import CommentReplier, CommentSettings
from inboxgpt.conversation.delivery import Deliveries
from inboxgpt.conversation.handover import Handovers
from inboxgpt.conversation.outbox import Mailbox
from inboxgpt.conversation.pauses import Pauses
from inboxgpt.conversation.reply import Replier, ReplySettings
from inboxgpt.conversation.routing import SILENCED, Case, Route, Rules, route, said
from inboxgpt.conversation.tool_rounds import ToolRounds
from inboxgpt.conversation.transcript import Transcripts
from inboxgpt.events import Comment, Event
from inboxgpt.limits import Decision, Limits
from inboxgpt.media import Media
from inboxgpt.model.gpt import ChatModel
from inboxgpt.model.knowledge import Knowledge
from inboxgpt.notify import HandoverNotifier
from inboxgpt.periods import Periods
from inboxgpt.store import Store, Turn
from inboxgpt.tools.toolbox import Toolbox
from inboxgpt.typing_indicator import TypingIndicator
from inboxgpt.usage import Usage

logger = logging.getLogger(__name__)

# Messages the model answers: those of a burst are answered together.
FOR_THE_MODEL = {Case.TEXT, Case.BUTTON, Case.PHOTOS, Case.VOICE}
# Messages answered with a canned reply: free, but a flood of them is still held to LIMIT_PER_MINUTE.
CANNED = {Case.RESET, Case.HELP, Case.STICKER, Case.UNUSABLE, Case.GET_STARTED, Case.HUMAN, Case.BOT_BACK}


Handler = Callable[[Event, Route], None]


@dataclass(frozen=True)
class ConversationSettings:
    """What the conversation needs of the settings: its own, routing's and a reply's."""

    rules: Rules
    reply: ReplySettings
    allowed_psids: frozenset[str]
    burst_wait_seconds: float
    pause_minutes: float
    vision: bool
    transcribe: bool
    tool_max_rounds: int
    tools_stream: bool
    comments: CommentSettings
    timezone: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ConversationSettings:
        return cls(
            rules=Rules.from_settings(settings),
            reply=ReplySettings.from_settings(settings),
            allowed_psids=settings.allowed_psids,
            burst_wait_seconds=settings.burst_wait_seconds,
            pause_minutes=settings.human_pause_minutes,
            vision=settings.vision,
            transcribe=settings.transcribe,
            tool_max_rounds=settings.tool_max_rounds,
            tools_stream=settings.tools_stream,
            comments=CommentSettings.from_settings(settings),
            timezone=settings.timezone,
        )


class Bot:
    """Answers one event at a time for a person: commands, handover, photos, voice, attachments, and model replies."""

    def __init__(
        self,
        settings: ConversationSettings,
        store: Store,
        channels: Channels,
        model: ChatModel,
        limits: Limits,
        typing: TypingIndicator,
        media: Media,
        knowledge: Knowledge | None = None,
        clock: Callable[[], float] = time.time,
        notifier: HandoverNotifier | None = None,
        toolbox: Toolbox | None = None,
        transcripts: Transcripts | None = None,
    ):
        self._settings = settings
        self._rules = settings.rules
        self._store = store
        self._limits = limits
        self._clock = clock
        self._pauses = Pauses(store, settings.pause_minutes, clock)
        self._mailbox = Mailbox(channels, store, self._pauses, settings.reply.history_max_tokens, transcripts)
        self._transcripts = self._mailbox.transcripts
        notifier = notifier or HandoverNotifier(None)
        handovers = Handovers(store, channels, self._pauses, self._mailbox, notifier)
        deliveries = Deliveries(store, notifier, self._transcripts)
        rounds = ToolRounds(
            model, toolbox, settings.tool_max_rounds, settings.tools_stream, on_tool=self._transcripts.tool
        )
        kept = self._pauses.kept_seconds
        usage = Usage(store, Periods(settings.timezone))
        self._comments = CommentReplier(settings.comments, store, channels, model, knowledge, kept, usage, clock)
        self._replier = Replier(
            settings.reply,
            store,
            model,
            typing,
            media,
            knowledge,
            self._mailbox,
            limits,
            rounds,
            handovers.hand_over,
            clock,
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
            Case.HUMAN: handovers.human,
            Case.BOT_BACK: handovers.bot_back,
            Case.PAGE_WROTE: handovers.page_wrote,
            Case.RECORD: handovers.record,
            Case.THREAD_BACK: handovers.thread_back,
            Case.HANDOVER: handovers.handover,
            Case.COMMENT: self._comment,
            Case.LATE: self._late,
            Case.UNDELIVERED: deliveries.undelivered,
            Case.NOTHING: lambda event, how: None,
        }
        if missing := set(Case) - set(self._handlers):
            # A case added to routing without its handler fails at start, not on the first such event.
            raise TypeError(f"no handler for {sorted(case.name for case in missing)}")

    def handle_queued(self, events: list[Event]) -> int:
        """Answer the first of a person's queued events, with the messages for the model right behind it;
        return how many were answered."""
        first = events[0]
        burst = [(first, route(first, self._rules))]
        for event in events[1:]:
            how = route(event, self._rules)
            if burst[-1][1].case not in FOR_THE_MODEL or how.case not in FOR_THE_MODEL:
                break
            burst.append((event, how))
        if len(burst) == 1 or self._pauses.paused(first):
            self._heard(*burst[0])
            self._handle(*burst[0])  # a pause records each message on its own
            return 1
        for event, how in burst:
            self._heard(event, how)
        logger.info("event psid=%s: a burst of %d messages, answered together", first.psid, len(burst))
        if self._admit(first):
            said = [self._replier.said(event, how) for event, how in burst]
            self._replier.reply([one for one in said if one is not None])
        return len(burst)

    @staticmethod
    def can_wait(event: Event) -> bool:
        """Whether the event is work that may wait behind people's messages: a comment (a post gone viral brings
        thousands, and its author is not waiting in a chat)."""
        return isinstance(event, Comment)

    def gather_seconds(self, events: list[Event]) -> float:
        """How long to wait for more messages before answering these (BURST_WAIT_SECONDS after the newest)."""
        if any(route(event, self._rules).case not in FOR_THE_MODEL for event in events):
            return 0.0  # a command acts at once
        newest = max(event.received for event in events)
        return newest + self._settings.burst_wait_seconds - self._clock() if newest else 0.0

    def handle(self, event: Event) -> None:
        """Answer one event."""
        how = route(event, self._rules)
        self._heard(event, how)
        self._handle(event, how)

    def _heard(self, event: Event, how: Route) -> None:
        """Keep what the person said in their transcript (a voice message once heard: see Replier)."""
        if how.case is not Case.VOICE:
            self._transcripts.person(event)

    def _handle(self, event: Event, how: Route) -> None:
        if how.case in SILENCED and self._pauses.paused(event):
            logger.info("event psid=%s: %s, not answered: the page's people are talking", event.psid, how.case.value)
            metrics.REPLIES.labels("silent", event.channel).inc()
            self._mailbox.keep(event.psid, Turn(said(event), ""))
            return
        if how.case is not Case.TEXT:
            logger.info("event psid=%s: %s", event.psid, how.case.value)
        if how.case in CANNED and not self._admit_canned(event):
            return
        self._handlers[how.case](event, how)

    # --- one handler per case ---

    def _reset(self, event: Event, how: Route) -> None:
        self._store.reset(event.psid)
        self._mailbox.send(event, replies.RESET_DONE)

    def _help(self, event: Event, how: Route) -> None:
        media = replies.MEDIA_HELP[self._settings.vision, self._settings.transcribe]
        self._mailbox.send(event, replies.HELP.format(media=media))

    def _get_started(self, event: Event, how: Route) -> None:
        self._mailbox.send(event, replies.GREETING)

    def _sticker(self, event: Event, how: Route) -> None:
        self._mailbox.send(event, replies.STICKER_THANKS)

    def _unusable(self, event: Event, how: Route) -> None:
        self._mailbox.send(event, replies.cannot_use(how.attachment_type or ""))

    def _late(self, event: Event, how: Route) -> None:
        """A message that reached the bot after its channel stopped taking answers to it: kept in the history, not
        answered (no model call, nothing sent that would be refused or charged and never delivered)."""
        logger.info(
            "psid=%s: a message sent %.1f h ago, past its channel's window for answers: kept, not answered",
            event.psid,
            max(0.0, event.received - event.timestamp / 1000) / 3600,
        )
        metrics.REPLIES.labels("late", event.channel).inc()
        self._mailbox.keep(event.psid, Turn(how.text, ""))

    def _ask_model(self, event: Event, how: Route) -> None:
        """A message for the model: text, a button, photos or a voice message (answered as if typed, saying what
        was heard)."""
        if self._admit(event) and (said := self._replier.said(event, how)) is not None:
            self._replier.reply([said])

    def _comment(self, event: Event, how: Route) -> None:
        """A comment to answer privately, within the limits (a comment limited is left alone: no message can
        reach its author before the private reply)."""
        assert isinstance(event, Comment)
        when = self._pauses.event_time(event)
        if any(self._store.paused_until(person) > when for person in self._comments.conversations(event)):
            logger.info("comment of psid=%s not answered: the page's people are talking to its author", event.psid)
            metrics.COMMENTS.labels("paused", event.channel).inc()
            return
        if not self._limits.check_comment(event.psid).allowed:
            logger.info("comment of psid=%s not answered: a limit was reached", event.psid)
            metrics.COMMENTS.labels("limited", event.channel).inc()
            return
        self._comments.answer(event)

    # --- shared steps ---

    def _admit(self, event: Event) -> bool:
        """Check that a model call is allowed for this person now; tell them once if not."""
        psid = event.psid
        if self._settings.allowed_psids and psid not in self._settings.allowed_psids:
            logger.info("psid=%s is not in ALLOWED_PSIDS", psid)
            self._mailbox.send(event, replies.NOT_ALLOWED)
            return False
        # Limits count messages by when they were sent, which Meta stamps on each event.
        return self._allowed(event, self._limits.check(psid, self._pauses.event_time(event)), "a limit")

    def _admit_canned(self, event: Event) -> bool:
        """Check that a reply needing no model may go to this person now; tell them once if not."""
        decision = self._limits.check_canned(event.psid, self._pauses.event_time(event))
        return self._allowed(event, decision, "the limit of replies a minute")

    def _allowed(self, event: Event, decision: Decision, limit: str) -> bool:
        """Whether a limit's decision lets the event be answered; if not, it is counted, logged, and the person told
        once."""
        if not decision.allowed:
            metrics.REPLIES.labels("limited", event.channel).inc()
            logger.info("psid=%s over %s: %s", event.psid, limit, "notified" if decision.notice else "silent")
            if decision.notice:
                self._mailbox.send(event, decision.notice)
        return decision.allowed
