"""An answer that may use tools: the model is offered the tools, the calls it asks for are run (typing stays on),
their results go back to it, and it is asked again; at most TOOL_MAX_ROUNDS rounds, then it must answer without.

Only the answer reaches the person: what the model writes before its calls goes out as the start of the answer
(models rarely write any), the calls and results never do, and the history keeps what the person was told, not the
results, so that a result that mattered for one answer does not steer later ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from inboxgpt.limits import Bill
from inboxgpt.model.completion import Completion
from inboxgpt.model.gpt import ChatModel
from inboxgpt.model.prompt import ChatMessage
from inboxgpt.tools.http import Caller
from inboxgpt.tools.toolbox import Toolbox, ToolResult


@dataclass(frozen=True)
class ToolUse:
    """How an answer used tools: rounds of calls, calls made, and whether the model handed the person over."""

    rounds: int = 0
    calls: int = 0
    handed_over: bool = False


class ToolRounds:
    """Asks the model, running the tools it calls in between."""

    def __init__(
        self,
        model: ChatModel,
        toolbox: Toolbox | None,
        max_rounds: int,
        stream_tool_rounds: bool,
        on_tool: Callable[[str, str, str], None] | None = None,
    ):
        self._model = model
        self._toolbox = toolbox
        self._max_rounds = max_rounds
        self._stream_tool_rounds = stream_tool_rounds
        # Told of each call run: the person's key, the tool's name, the outcome (the transcript keeps them).
        self._on_tool = on_tool

    @property
    def takes_leads(self) -> bool:
        """Whether the model may save a person's details (the save_contact tool is offered)."""
        return self._toolbox is not None and self._toolbox.takes_leads and not self._model.tools_refused

    def complete(
        self,
        messages: list[ChatMessage],
        caller: Caller,
        on_text: Callable[[str], object] | None,
        on_send: Callable[[], None],
        take_back: Callable[[], bool] | None,
        on_cut: Callable[[], object],
        bill: Bill,
    ) -> tuple[Completion, ToolUse]:
        """The model's final answer (its tokens those of every round), and how it used tools; each round's call
        goes through `bill` (held against the money caps, counted as it returns). May raise ModelError, or
        CapReached before a call."""
        toolbox = self._toolbox
        if toolbox is None:
            ask = partial(self._model.complete, messages, on_text, on_send, take_back, on_cut)
            return bill.call(messages, ask), ToolUse()
        exchange: list[ChatMessage] = []
        rounds: list[Completion] = []
        use = ToolUse()
        while True:
            offer = toolbox.offered if use.rounds < self._max_rounds else None
            streamed = on_text if offer is None or self._stream_tool_rounds else None
            first = not rounds
            ask = partial(
                self._model.complete,
                messages,
                streamed,
                on_send,
                take_back if first else None,
                on_cut if first else None,
                tools=offer,
                exchange=list(exchange),
            )
            completion = bill.call([*messages, *exchange], ask)
            rounds.append(completion)
            if offer is None or not completion.tool_calls:
                break
            use = replace(use, rounds=use.rounds + 1, calls=use.calls + len(completion.tool_calls))
            if streamed is not None and completion.text:
                streamed("\n\n")  # what the model wrote before its calls stays apart from what follows
            done = toolbox.run(completion.tool_calls, caller)
            if self._on_tool is not None:
                for result in done.results:
                    self._on_tool(caller.person, result.call.name, result.outcome)
            if done.handed_over:
                return _total(rounds), replace(use, handed_over=True)
            exchange += [_calls_message(completion), *(_result_message(result) for result in done.results)]
        if streamed is None and on_text is not None:
            on_text(completion.text)  # the last round was not streamed (TOOLS_STREAM=off): its answer goes whole
        return _total(rounds), use


def _calls_message(completion: Completion) -> ChatMessage:
    """The model's turn that asked for tools, as the next request must repeat it."""
    calls = [
        {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
        for call in completion.tool_calls
    ]
    return {"role": "assistant", "content": completion.text or None, "tool_calls": calls}


def _result_message(result: ToolResult) -> ChatMessage:
    return {"role": "tool", "tool_call_id": result.call.id, "content": result.content}


def _total(rounds: list[Completion]) -> Completion:
    """The last round's answer, with the tokens of every round."""

    def total(counts: list[int | None]) -> int | None:
        known = [count for count in counts if count is not None]
        return sum(known) if known else None

    return replace(
        rounds[-1],
        prompt_tokens=total([c.prompt_tokens for c in rounds]),
        completion_tokens=total([c.completion_tokens for c in rounds]),
        cached_tokens=total([c.cached_tokens for c in rounds]),
        cost=sum(c.cost for c in rounds),
        estimated=any(c.estimated for c in rounds),
    )
