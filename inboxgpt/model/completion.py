"""The chat-completions API's answers read into a `Completion`: a whole JSON body, or a server-sent event stream
as it arrives (its text passed on piece by piece, its tool calls joined). Every part is checked for the shape the
API gives it: a malformed whole answer raises ValueError, a malformed stream ends as `broken`."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

# The openai SDK's HTTP client: its errors are how a stream that breaks midway shows.
import httpx2
import openai

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolCall:
    """A tool the model asks to be run: its call's id, the tool's name and its arguments (JSON text, as written)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Completion:
    """A reply from the model, with what it cost."""

    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None = None
    # The person's text as the model read it, when it had to be cut to fit the context window.
    cut_said: str | None = None
    # A streamed answer whose stream broke midway: `text` is what arrived before it did.
    broken: bool = False
    # The answer was cut at MODEL_ANSWER_SECONDS (it is `broken` too).
    timed_out: bool = False
    # The stream was left early because the rest was not wanted (see `ChatModel.complete`).
    stopped: bool = False
    # The stream said it was over ("[DONE]"), whether or not it said why: a server that stops a stream on purpose
    # (llama-cpp-python, for a newer request) says so; one whose answer overflowed its window drops it.
    ended: bool = False
    # The tools the model asks to be run before it answers (only when tools were offered).
    tool_calls: tuple[ToolCall, ...] = ()
    # What it cost, in dollars (prices.py; 0 for a model without a price).
    cost: float = 0.0
    # The server did not report the usage: its tokens (and cost) are estimates (usage.py).
    estimated: bool = False


# The end of a stream, as the server says it ("data: [DONE]").
DONE = object()


class _Malformed(ValueError):
    """A part of the model's answer not shaped as the chat-completions API shapes it."""


def read_stream(body: Iterable[bytes], on_text: Callable[[str], object], deadline: float) -> Completion:
    """Read a chat completion's event stream, passing on its text, until it ends or `deadline` passes; a stream
    that breaks, is malformed, runs out of time or never says why it finished is `broken`."""
    pieces: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    finish_reason = None
    usage: dict = {}
    timed_out = stopped = ended = False
    try:
        for chunks in _events(body):
            if time.monotonic() > deadline:
                timed_out = True
                logger.warning("the model's answer outlasted MODEL_ANSWER_SECONDS after %d pieces", len(pieces))
                break
            for chunk in chunks:
                if chunk is DONE:
                    ended = True
                    continue
                if not isinstance(chunk, dict):
                    raise _Malformed(type(chunk).__name__)
                if "error" in chunk:
                    raise ValueError("the server reported an error in the stream")
                for choice in _list(chunk.get("choices")):
                    delta = _object(_object(choice).get("delta"))
                    text = _text(delta.get("content")) or _text(delta.get("refusal"))
                    if text:
                        pieces.append(text)
                        if on_text(text) is False:
                            stopped = True  # the rest is not wanted (the answer has all the messages it may have)
                    if delta.get("tool_calls"):  # most deltas carry text alone
                        _join_tool_calls(calls, delta["tool_calls"])
                    finish_reason = _text(choice.get("finish_reason")) or finish_reason
                usage = _object(chunk.get("usage"), strict=False) or usage
                if stopped:
                    break
            if stopped:
                break
    except (httpx2.HTTPError, openai.APIError, ValueError) as exc:
        logger.warning("the model's stream broke after %d pieces: %s", len(pieces), type(exc).__name__)
    broken = finish_reason is None or timed_out
    completion = _answer_of("".join(pieces), finish_reason, usage, broken, timed_out, stopped)
    return replace(completion, tool_calls=_tool_calls([calls[index] for index in sorted(calls)]), ended=ended)


def _join_tool_calls(calls: dict[int, dict[str, str]], pieces: object) -> None:
    """Add a streamed delta's pieces of tool calls to those so far: each piece names its call by `index`; the
    arguments come in pieces to be joined."""
    for piece in _list(pieces):
        piece = _object(piece)
        index = piece.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            raise _Malformed("a tool call without its index")
        call = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        function = _object(piece.get("function"))
        # The id and name are taken from the first piece that has them: OpenAI sends them once, llama-cpp-python
        # (0.3.36, checked by hand) again with every piece.
        call["id"] = call["id"] or _text(piece.get("id"))
        call["name"] = call["name"] or _text(function.get("name"))
        call["arguments"] += _text(function.get("arguments"))


def _tool_calls(calls: list[object]) -> tuple[ToolCall, ...]:
    """The tool calls of an answer (whole, or joined from a stream), in order; one without a name is left out."""
    found = []
    for number, call in enumerate(calls):
        call = _object(call)
        function = _object(call.get("function")) or call  # a stream's joined calls carry name and arguments flat
        name = _text(function.get("name"))
        if name:
            # Some servers give no id: one is made, since the tool's result must name the call it answers.
            call_id = _text(call.get("id")) or f"call_{number}"
            found.append(ToolCall(call_id, name, _text(function.get("arguments")) or "{}"))
    return tuple(found)


def _events(body: Iterable[bytes]) -> Iterator[list[object]]:
    """The data of a server-sent event stream's events (JSON; "[DONE]" as DONE), a list for each read: all that
    arrived at once is split and parsed in one go, not one parser call per event. Comments (": keep-alive") and
    blank lines are left out, but each read still yields (an empty list), so a deadline is checked."""
    rest = b""
    for data in body:
        # A line may end in CR LF or CR alone: as LF, each leaves at most a blank line more, which is skipped.
        lines = (rest + data).replace(b"\r", b"\n").split(b"\n")
        rest = lines.pop()  # a line not yet whole
        found = [line[5:].strip() for line in lines if line.startswith(b"data:")]
        done = [DONE] if b"[DONE]" in found else []
        found = [item for item in found if item != b"[DONE]"]
        try:
            yield json.loads(b"[" + b",".join(found) + b"]") + done
        except ValueError:
            for item in found:  # one at a time, so what came before the malformed one is kept
                yield [json.loads(item)]
            yield done
    if rest.startswith(b"data:"):
        last = rest[5:].strip()  # a last event without its line end
        yield [DONE] if last == b"[DONE]" else [json.loads(last)]


def whole_answer(body: object) -> Completion:
    """A chat completion's JSON body as a Completion; raise ValueError if it is not shaped like one."""
    body = _object(body)
    choices = _list(body.get("choices"))
    if not choices:
        raise _Malformed("no choices")
    choice = _object(choices[0])
    message = _object(choice.get("message"))
    text = _text(message.get("content")) or _text(message.get("refusal"))
    completion = _answer_of(text, _text(choice.get("finish_reason")) or None, _object(body.get("usage"), strict=False))
    return replace(completion, tool_calls=_tool_calls(_list(message.get("tool_calls"))))


def _answer_of(
    text: str,
    finish_reason: str | None,
    usage: dict,
    broken: bool = False,
    timed_out: bool = False,
    stopped: bool = False,
) -> Completion:
    details = _object(usage.get("prompt_tokens_details"), strict=False)
    return Completion(
        text=text.strip(),
        finish_reason=finish_reason,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        cached_tokens=_count(details.get("cached_tokens")),
        broken=broken,
        timed_out=timed_out,
        stopped=stopped,
    )


def _object(value: object, strict: bool = True) -> dict:
    """A JSON object; None or a missing one is empty, anything else is malformed (or, not `strict`, empty)."""
    if isinstance(value, dict):
        return value
    if value is None or not strict:
        return {}
    raise _Malformed(type(value).__name__)


def _list(value: object) -> list:
    if isinstance(value, list):
        return value
    if value is None:
        return []
    raise _Malformed(type(value).__name__)


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    raise _Malformed(type(value).__name__)


def _count(value: object) -> int | None:
    """A token count, or None where the server gave none (or something that is not one)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
