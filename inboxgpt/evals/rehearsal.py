"""The conversation that answers customers, rehearsed: the same prompt, knowledge, model and tools offered, each
answer shown and split as its channel would (Messenger's plain text, WhatsApp's markers), but nothing leaves:
no message reaches Meta, no tool acts (each call is noted and answered from the eval file or with a stub saying it
is a test), no owner is notified, and everything kept is kept in a memory store of the rehearsal's own.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from inboxgpt.channels import PAGE_CHANNELS
from inboxgpt.channels.base import Channel, Channels
from inboxgpt.channels.graph import GraphClient
from inboxgpt.channels.messenger import GraphChannel
from inboxgpt.config import Settings
from inboxgpt.conversation.bot import Bot
from inboxgpt.conversation.transcript import Transcripts
from inboxgpt.evals.watch import Explanation, Watch, WatchedToolbox, watched_bot
from inboxgpt.events import Message
from inboxgpt.model.completion import ToolCall
from inboxgpt.notify import HandoverNotifier
from inboxgpt.service import Service
from inboxgpt.store import Store, StoreUnavailable, open_store
from inboxgpt.tools.http import Caller
from inboxgpt.tools.leads import Leads
from inboxgpt.tools.schema import argument_problems
from inboxgpt.tools.spec import ToolsFile
from inboxgpt.tools.toolbox import Round, ToolResult

# What a tool the eval file gives no result for answers the model.
STUB = "ok (this is a test: nothing was done; answer as if it had worked)"


class _NoGraph:
    """Where a rehearsed channel's Graph client would be: anything reaching for it is a bug, not a message sent."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("a rehearsal sends nothing to Meta")


class RehearsedChannel(Channel):
    """One of the page's channels as it shows and splits text; what it would have sent is kept by person."""

    def __init__(self, like: GraphChannel):
        self._like = like
        self.inbox = like.inbox
        self._lock = threading.Lock()
        self._sent: dict[str, list[str]] = {}

    def split(self, text: str) -> list[str]:
        return self._like.split(text)

    def send_text(self, key: str, text: str, offers: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """Keep the message as the person would see it."""
        with self._lock:
            sent = self._sent.setdefault(key, [])
            sent.append(self._like.shown(text))
            return [(f"rehearsal-{key}-{len(sent)}", text)]

    def send_action(self, key: str, action: str, message_id: str | None = None) -> bool:
        return True

    def sent(self, key: str) -> list[str]:
        """The messages this person got so far, in order."""
        with self._lock:
            return list(self._sent.get(key, ()))


def rehearsed(like: type[GraphChannel], settings: Settings) -> RehearsedChannel:
    """The channel `like` rehearsed: its name, tag, note on formatting and inbox as the settings make them."""
    # Built as the page builds it, around no Graph client (and no WhatsApp token: no client of its own).
    real = like.from_settings(cast(GraphClient, _NoGraph()), dataclasses.replace(settings, whatsapp_token=None))
    identity = {
        "name": like.name,
        "tag": like.tag,
        "formatting_note": like.formatting_note,
        "message_length": like.message_length,
    }
    kind = type(f"Rehearsed{like.__name__}", (RehearsedChannel,), identity)
    return cast(RehearsedChannel, kind(real))


class RehearsedToolbox(WatchedToolbox):
    """The tools offered as always; a call is checked as always, then answered from `answers` (by tool) or with
    STUB, and never made."""

    def __init__(self, tools: ToolsFile, leads: Leads, watch: Watch, answers: Mapping[str, str]):
        super().__init__(tools, leads, allow_private=False, watch=watch)
        self._answers = answers
        self._schemas = {spec["function"]["name"]: spec["function"]["parameters"] for spec in self.offered}

    def made(self, calls: Sequence[ToolCall], caller: Caller) -> Round:
        handover = [call for call in calls if call.name == "talk_to_a_person" and call.name in self._schemas]
        results = tuple(ToolResult(call, *self._rehearsed(call)) for call in calls if call not in handover)
        return Round(results, handed_over=bool(handover))

    def _rehearsed(self, call: ToolCall) -> tuple[str, str]:
        schema = self._schemas.get(call.name)
        if schema is None:
            return f"error: there is no tool named {call.name[:64]!r}", "unknown"
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            return "error: the arguments were not valid JSON; call the tool again with a JSON object", "invalid"
        if problems := argument_problems(arguments, schema):
            return "error: " + "; ".join(problems), "invalid"
        return self._answers.get(call.name, STUB), "ok"


class SilentNotifier(HandoverNotifier):
    """The owner's handover notifications, configured or not as the settings say, sending none."""

    def __init__(self, configured: bool):
        super().__init__(None)
        self._configured = configured

    @property
    def configured(self) -> bool:
        return self._configured

    def notify(self, channel: str, person: str, why: str, last_message: str) -> None:
        """A rehearsal tells no one."""


class RehearsedTranscripts(Transcripts):
    """The transcripts, kept in the rehearsal's store, with the console staffed as the service's own store says."""

    def __init__(self, store: Store, days: float, notifier: HandoverNotifier, staffed: bool):
        super().__init__(store, days, notifier)
        self._staffed = staffed

    def read_by_staff(self) -> bool:
        return self._staffed


def _staffed(settings: Settings) -> bool:
    """Whether the owner's console has staff to read a handover (their accounts are in the service's store), as
    the answer to /human depends on it; a store out of reach counts as none."""
    try:
        store = open_store(settings)
    except StoreUnavailable:
        return False
    try:
        return Transcripts(store, settings.transcript_days).read_by_staff()
    except StoreUnavailable:
        return False
    finally:
        store.close()


@dataclass(frozen=True)
class Answered:
    """One turn of a rehearsed conversation: what was said, the answer as the person would see it, what it drew on,
    and whether the conversation is now with a person from the page."""

    said: str
    answer: str
    explanation: Explanation
    handed_over: bool


def rehearsal_settings(settings: Settings) -> Settings:
    """The settings with nothing that would reach outside or refuse a test person: a memory store, no owner's
    webhooks, no limits or money caps, text only (as the terminal)."""
    return dataclasses.replace(
        settings,
        store_url="memory://",
        handover_notify_url=None,
        leads_webhook_url=None,
        allowed_psids=frozenset(),
        limit_per_minute=0,
        limit_per_day=0,
        limit_global_per_day=0,
        spend_per_person_per_day=0.0,
        spend_per_day=0.0,
        spend_per_month=0.0,
        vision=False,
        transcribe=False,
    )


class Rehearsal:
    """The page's conversation, rehearsed: a conversation for each test person (`conversation`); `close` after."""

    def __init__(self, settings: Settings, tool_results: Mapping[str, str] | None = None):
        self._channels = {like.name: rehearsed(like, settings) for like in PAGE_CHANNELS}
        self.service = service = Service(rehearsal_settings(settings), Channels(self._channels.values()))
        self._watch = Watch()
        toolbox = None
        if service.settings.tools is not None:
            toolbox = RehearsedToolbox(service.settings.tools, service.leads, self._watch, tool_results or {})
        notifier = SilentNotifier(configured=settings.handover_notify_url is not None)
        transcripts = RehearsedTranscripts(service.store, settings.transcript_days, notifier, _staffed(settings))
        self._bot = watched_bot(service, self._watch, toolbox, notifier, transcripts)
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def conversation(self, channel: str) -> Conversation:
        """A new person's conversation on `channel` (messenger, instagram, whatsapp), to be held on one thread."""
        with self._lock:
            number = next(self._numbers)
        rehearsed_channel = self._channels[channel]
        key = rehearsed_channel.key(f"eval{number}")
        return Conversation(key, rehearsed_channel, self._bot, self._watch, self.service)

    def close(self) -> None:
        self.service.close()


class Conversation:
    """One test person's conversation."""

    def __init__(self, key: str, channel: RehearsedChannel, bot: Bot, watch: Watch, service: Service):
        self.key = key
        self._channel = channel
        self._bot = bot
        self._watch = watch
        self._service = service
        self._turns = itertools.count(1)

    def say(self, text: str) -> Answered:
        """Say `text` as the person; the answer they get."""
        before = len(self._channel.sent(self.key))
        started = time.monotonic()
        now = time.time()
        message = Message(
            psid=self.key,
            mid=f"eval-{self.key}-{next(self._turns)}",
            timestamp=int(now * 1000),
            text=text,
            channel=self._channel.name,
            received=now,
        )
        self._bot.handle(message)
        explanation = self._watch.take(time.monotonic() - started)
        answer = "\n\n".join(self._channel.sent(self.key)[before:])
        handed_over = self._service.store.paused_until(self.key) > time.time()
        return Answered(text, answer, explanation, handed_over)
