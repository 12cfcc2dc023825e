"""What one answer drew on, watched while the conversation makes it: the knowledge sections the model was given,
each tool call with its arguments and result, the model's tokens and cost, and the time taken; for
`chat --explain` and the evals.

The conversation watched is the one that answers customers: a Bot built over a service's own parts, with its
knowledge, model and toolbox wrapped so that what passes through them is noted. Nothing is changed on the way.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from inboxgpt.conversation.bot import Bot, ConversationSettings
from inboxgpt.conversation.transcript import Transcripts
from inboxgpt.model.completion import Completion, ToolCall
from inboxgpt.model.gpt import ChatModel
from inboxgpt.model.knowledge import Chosen, Knowledge
from inboxgpt.notify import HandoverNotifier
from inboxgpt.service import Service
from inboxgpt.tools.http import Caller
from inboxgpt.tools.leads import Leads
from inboxgpt.tools.spec import ToolsFile
from inboxgpt.tools.toolbox import Round, Toolbox

# talk_to_a_person runs nothing: the round hands over, and the watch notes the call as this.
HANDED_OVER = "handed the conversation to a person"
# A tool's result as an explanation shows it, at most.
RESULT_CHARS = 300


@dataclass(frozen=True)
class CallMade:
    """A tool the model called: its name, its arguments as the model wrote them, what it was told, and how it
    went."""

    name: str
    arguments: str
    result: str
    outcome: str

    def values(self) -> dict[str, Any]:
        """The arguments as values ({} if the model wrote no JSON object)."""
        try:
            values = json.loads(self.arguments or "{}")
        except ValueError:
            return {}
        return values if isinstance(values, dict) else {}


@dataclass(frozen=True)
class Explanation:
    """What one answer drew on."""

    sections: tuple[str, ...] = ()  # the knowledge sections' titles ("hours.md > Opening hours > Weekends")
    knowledge: tuple[str, ...] = ()  # the same sections as the model read them
    calls: tuple[CallMade, ...] = ()
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    estimated: bool = False  # the server reported no usage for some call: its tokens are estimates
    seconds: float = 0.0


class Watch:
    """Notes what passes through the wrapped parts, until taken, apart for each thread: an answer is made on the
    thread that handles its message (its tools' calls are run from there too), so conversations answered at once
    on threads of their own are watched apart through one conversation."""

    def __init__(self) -> None:
        self._notes = threading.local()

    def _noted(self) -> tuple[list[Chosen], list[CallMade], list[Completion]]:
        if not hasattr(self._notes, "chosen"):
            self._notes.chosen, self._notes.calls, self._notes.completions = [], [], []
        return self._notes.chosen, self._notes.calls, self._notes.completions

    def chose(self, chosen: Chosen) -> None:
        self._noted()[0].append(chosen)

    def called(self, done: Round) -> None:
        made = [CallMade(r.call.name, r.call.arguments, r.content, r.outcome) for r in done.results]
        if done.handed_over:
            made.append(CallMade("talk_to_a_person", "{}", HANDED_OVER, "ok"))
        self._noted()[1].extend(made)

    def completed(self, completion: Completion) -> None:
        self._noted()[2].append(completion)

    def take(self, seconds: float) -> Explanation:
        """What this thread noted since its last take, as one answer's explanation (`seconds` it took); then
        forgotten."""
        chosen, calls, completions = self._noted()
        del self._notes.chosen, self._notes.calls, self._notes.completions
        # A reply chooses once; the sections of the last choice are those its answer was given.
        sections = chosen[-1].sections if chosen else ()
        return Explanation(
            tuple(section.title for section in sections),
            tuple(section.rendered() for section in sections),
            tuple(calls),
            len(completions),
            sum(c.prompt_tokens or 0 for c in completions),
            sum(c.completion_tokens or 0 for c in completions),
            sum(c.cost for c in completions),
            any(c.estimated for c in completions),
            seconds,
        )


def shortened(text: str, limit: int = RESULT_CHARS) -> str:
    """Text on one line, cut at `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def explained(explanation: Explanation) -> str:
    """An answer's explanation as `chat --explain` prints it, a few indented lines."""
    sections = ", ".join(explanation.sections) or "none"
    lines = [f"  knowledge: {sections}"]
    for call in explanation.calls:
        lines.append(f"  tool {call.name} {call.arguments or '{}'} -> {call.outcome}: {shortened(call.result)}")
    estimated = " (estimated: the server reported no usage)" if explanation.estimated else ""
    lines.append(
        f"  {explanation.prompt_tokens:,} prompt + {explanation.completion_tokens:,} completion tokens in "
        f"{explanation.model_calls} model call{'s' if explanation.model_calls != 1 else ''}{estimated}, "
        f"${explanation.cost:.6f}, {explanation.seconds:.1f} s"
    )
    return "\n".join(lines)


class _WatchedKnowledge:
    """The page's knowledge, its choices noted."""

    def __init__(self, knowledge: Knowledge, watch: Watch):
        self._knowledge = knowledge
        self._watch = watch

    def choose(self, message: str, context: str = "") -> Chosen:
        chosen = self._knowledge.choose(message, context)
        self._watch.chose(chosen)
        return chosen

    def __getattr__(self, name: str) -> Any:
        return getattr(self._knowledge, name)


class _WatchedModel:
    """The model, each of its answers noted (calls that fail note nothing: they cost nothing)."""

    def __init__(self, model: ChatModel, watch: Watch):
        self._model = model
        self._watch = watch

    def complete(self, *args: Any, **kwargs: Any) -> Completion:
        completion = self._model.complete(*args, **kwargs)
        self._watch.completed(completion)
        return completion

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


class WatchedToolbox(Toolbox):
    """The owner's tools, run as always, each round's calls noted."""

    def __init__(self, tools: ToolsFile, leads: Leads, allow_private: bool, watch: Watch):
        super().__init__(tools, leads, allow_private)
        self.watch = watch

    def run(self, calls: Sequence[ToolCall], caller: Caller) -> Round:
        done = self.made(calls, caller)
        self.watch.called(done)
        return done

    def made(self, calls: Sequence[ToolCall], caller: Caller) -> Round:
        """One round of calls made."""
        return super().run(calls, caller)


def watched_bot(
    service: Service,
    watch: Watch,
    toolbox: Toolbox | None,
    notifier: HandoverNotifier | None = None,
    transcripts: Transcripts | None = None,
) -> Bot:
    """The service's conversation, its knowledge and model watched, with `toolbox` (None: no tools offered),
    `notifier` and `transcripts` (the service's own kind if None)."""
    notifier = notifier or service.notifier
    store = service.store
    knowledge = cast(Knowledge, _WatchedKnowledge(service.knowledge, watch)) if service.knowledge else None
    return Bot(
        ConversationSettings.from_settings(service.settings),
        store,
        service.channels,
        cast(ChatModel, _WatchedModel(service.model, watch)),
        service.limits,
        service.typing,
        service.media,
        knowledge,
        notifier=notifier,
        toolbox=toolbox,
        transcripts=transcripts or Transcripts(store, service.settings.transcript_days, notifier),
    )
