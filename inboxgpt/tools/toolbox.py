"""The tools offered to the model, and its calls run: the owner's HTTP tools and the built-in ones, several at once
when the model asks for several together, each result a short text for the model (never a traceback or a secret).

One reply cannot take the tools from everybody else: a round runs at most MAX_CALLS_PER_ROUND calls (the rest are
answered "too many calls"), on threads of its own, at most CALLS_AT_ONCE at a time, so another person's calls never
wait behind them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from inboxgpt import metrics
from inboxgpt.model.completion import ToolCall
from inboxgpt.tools.http import Caller, RefusedValue, ToolError, call_tool
from inboxgpt.tools.leads import SAVE_CONTACT, SAVE_CONTACT_PARAMETERS, Leads
from inboxgpt.tools.schema import argument_problems
from inboxgpt.tools.spec import HttpTool, ToolsFile

logger = logging.getLogger(__name__)

# Calls of one round that are made; the model is told the rest were too many.
MAX_CALLS_PER_ROUND = 8
# A reply's own share of threads for its calls: the calls of one round run at once, up to this many.
CALLS_AT_ONCE = 3
TALK_TO_A_PERSON: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "talk_to_a_person",
        "description": (
            "Hand the conversation to a person from the business, when the person asks for one or you cannot help. "
            "The person is told someone will answer; you say nothing more."
        ),
        "parameters": {"type": "object", "properties": {}},
    },
}


# What the model is asked to do when a call failed.
TELL_THE_PERSON = "Tell the person you could not check this now."
BUILTIN_TOOLS = {"save_contact": SAVE_CONTACT, "talk_to_a_person": TALK_TO_A_PERSON}


@dataclass(frozen=True)
class ToolResult:
    """What one call gave the model, and how it went (ok, failed, invalid, unknown, refused: the metric's outcome)."""

    call: ToolCall
    content: str
    outcome: str


@dataclass(frozen=True)
class Round:
    """One round of calls: their results, and whether the model handed the conversation to a person."""

    results: tuple[ToolResult, ...]
    handed_over: bool = False


class Toolbox:
    """The tools of TOOLS_FILE and the built-in ones it turns on."""

    def __init__(self, tools: ToolsFile, leads: Leads, allow_private: bool, clock: Callable[[], float] = time.time):
        self._http = {tool.name: tool for tool in tools.tools}
        self._builtin = tools.builtin
        self._known = frozenset(self._http) | self._builtin
        self._leads = leads
        self._allow_private = allow_private
        self._clock = clock
        self.offered = [tool.offered() for tool in tools.tools]
        self.offered += [spec for name, spec in BUILTIN_TOOLS.items() if name in self._builtin]

    @property
    def takes_leads(self) -> bool:
        """Whether save_contact is offered."""
        return "save_contact" in self._builtin

    def run(self, calls: Sequence[ToolCall], caller: Caller) -> Round:
        """Run one round of the model's calls (at once when several, a few at a time, at most
        MAX_CALLS_PER_ROUND of them); a call to talk_to_a_person hands the round over (the caller hands the
        conversation over) once the round's other calls have run, so that a lead saved beside it is kept."""
        handover = [call for call in calls if call.name == "talk_to_a_person" and "talk_to_a_person" in self._builtin]
        others = [call for call in calls if call not in handover]
        made, too_many = others[:MAX_CALLS_PER_ROUND], others[MAX_CALLS_PER_ROUND:]
        if len(made) == 1:
            results = [self._result(made[0], caller)]
        elif made:
            with ThreadPoolExecutor(min(len(made), CALLS_AT_ONCE), thread_name_prefix="tool") as pool:
                results = list(pool.map(lambda call: self._result(call, caller), made))
        else:
            results = []
        told = f"error: too many calls at once; only the first {MAX_CALLS_PER_ROUND} were made. Ask for fewer."
        results += [ToolResult(call, told, "refused") for call in too_many]
        for call in too_many:
            metrics.TOOL_CALLS.labels(self._label(call), "refused").inc()
        return Round(tuple(results), handed_over=bool(handover))

    def _result(self, call: ToolCall, caller: Caller) -> ToolResult:
        started = time.monotonic()
        try:
            content, outcome = self._answer(call, caller)
        except Exception as error:  # noqa: BLE001 - whatever went wrong, it is this call's failure, not the reply's
            # Only the kind: an error's own text can hold what was being sent (a header with its secret, say).
            logger.warning("tool %s for psid=%s failed: %s", self._label(call), caller.person, type(error).__name__)
            content, outcome = "error: the tool could not be used. " + TELL_THE_PERSON, "failed"
        metrics.TOOL_CALLS.labels(self._label(call), outcome).inc()
        logger.info(
            "tool %s for psid=%s: %s in %.0f ms",
            self._label(call),
            caller.person,
            outcome,
            (time.monotonic() - started) * 1000,
        )
        return ToolResult(call, content, outcome)

    def _label(self, call: ToolCall) -> str:
        """The call's tool as logs and metrics name it: a name the model made up is not repeated."""
        return call.name if call.name in self._known else "unknown"

    def _answer(self, call: ToolCall, caller: Caller) -> tuple[str, str]:
        """What the model is told of one call, and its outcome."""
        tool = self._http.get(call.name)
        if tool is None and call.name not in self._builtin:
            return f"error: there is no tool named {call.name[:64]!r}", "unknown"
        try:
            arguments: Any = json.loads(call.arguments or "{}", parse_constant=_not_json)
        except ValueError:
            return "error: the arguments were not valid JSON; call the tool again with a JSON object", "invalid"
        schema = tool.parameters if tool is not None else SAVE_CONTACT_PARAMETERS
        if problems := argument_problems(arguments, schema):
            return "error: " + "; ".join(problems), "invalid"
        if tool is None:
            return self._leads.save(arguments, caller.person, caller.channel, self._clock()), "ok"
        return self._call(tool, arguments, caller)

    def _call(self, tool: HttpTool, arguments: dict, caller: Caller) -> tuple[str, str]:
        try:
            return call_tool(tool, arguments, caller, self._allow_private), "ok"
        except RefusedValue as error:
            return f"error: {error}", "invalid"
        except ToolError as error:
            logger.warning("tool %s for psid=%s failed: %s", tool.name, caller.person, error)
            return f"error: {error}. {TELL_THE_PERSON}", "failed"


def _not_json(constant: str) -> Any:
    """NaN and Infinity, which Python's reader takes but JSON has not: no request could carry them on."""
    raise ValueError(f"{constant} is not JSON")
