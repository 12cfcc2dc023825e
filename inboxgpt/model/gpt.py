"""Ask an OpenAI (or OpenAI-compatible) chat model for a reply, through the openai SDK."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from http import HTTPStatus
from pathlib import Path
from typing import Any

# The openai SDK's HTTP client: its errors are how a stream that breaks midway shows.
import httpx2
import openai
from openai import OpenAI
from openai.types import ModerationMultiModalInputParam

from inboxgpt.config import Secret, Settings
from inboxgpt.model.prompt import ChatMessage, Fitted, drop_older_half, fit, halve_said, said_text
from inboxgpt.model.transport import PooledTransport
from inboxgpt.prices import Price, PriceList

logger = logging.getLogger(__name__)

OPENAI_API_URL = "https://api.openai.com/v1"
# The longest the openai SDK waits between two tries of a call (its MAX_RETRY_DELAY).
SDK_MAX_BACKOFF = 8.0
CHAT_COMPLETIONS = "/chat/completions"
# The SDK's description of this machine, sent with every request: no server needs it, a compatible server learns
# less about the machine without it, and each header costs CPU on every call (about a tenth of a call's).
PLATFORM_HEADERS_LEFT_OUT = {
    f"X-Stainless-{name}": openai.Omit()
    for name in ("Lang", "Package-Version", "OS", "Arch", "Runtime", "Runtime-Version", "Async")
}
# What `check` offers the model to learn whether its server takes tools.
PROBE_TOOL = {
    "type": "function",
    "function": {"name": "ping", "description": "Answers pong.", "parameters": {"type": "object", "properties": {}}},
}
PROBE_TOKENS = 16
# What MODERATION checks messages with: text and images, free of charge on OpenAI.
MODERATION_MODEL = "omni-moderation-latest"
# The last event of a stream tells the tokens the answer cost.
STREAM_USAGE = {"stream_options": {"include_usage": True}}
# How servers name their context window when they refuse a prompt as too long: OpenAI, vLLM and
# llama-cpp-python ("maximum context length is 1024 tokens"), llama.cpp's own server
# ("exceeds the available context size (4096 tokens)", with n_ctx in the error body too).
STATED_WINDOW = re.compile(r"maximum context length (?:is|of) (\d+)|context size \((\d+) tokens\)")
# Asking a compatible server for its context window, once: each question bounded in time and size.
WINDOW_QUESTION_SECONDS = 5.0
WINDOW_ANSWER_BYTES = 1024 * 1024
# Ollama's context window when the model sets no num_ctx: its server's default, which /api/show does not tell;
# 2,048 tokens, the smallest it has had (later versions have 4,096 or more), so that Ollama never cuts a prompt.
OLLAMA_DEFAULT_NUM_CTX = 2048
OLLAMA_NUM_CTX = re.compile(r"^\s*num_ctx\s+(\d+)\s*$", re.MULTILINE)


class Failure(Enum):
    """Why the model gave no reply; the bot picks the apology from it."""

    TIMEOUT = "the model did not answer in time"
    UNREACHABLE = "the model's server could not be reached"
    RATE_LIMITED = "rate limited by the model's server"
    QUOTA = "the OpenAI account has no quota left: check billing"
    AUTH = "the API key was refused: check OPENAI_API_KEY"
    FORBIDDEN = "the API key may not use this model or endpoint"
    NOT_FOUND = "the model or endpoint does not exist: check OPENAI_MODEL and OPENAI_BASE_URL"
    SERVER = "the model's server failed"
    TOO_LONG = "the conversation is too long for the model's context window"
    REJECTED = "the request was rejected"


class ModelError(Exception):
    """The model call failed; `failure` says how."""

    def __init__(self, failure: Failure, status: int | None = None, window: int | None = None):
        super().__init__(failure.value)
        self.failure = failure
        self.status = status
        # The model's context window, when a too-long refusal named it.
        self.window = window


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
    # The stream was left early because the rest was not wanted (see `complete`).
    stopped: bool = False
    # The tools the model asks to be run before it answers (only when tools were offered).
    tool_calls: tuple[ToolCall, ...] = ()
    # What it cost, in dollars (prices.py; 0 for a model without a price).
    cost: float = 0.0
    # The server did not report the usage: its tokens (and cost) are estimates (usage.py).
    estimated: bool = False


@dataclass(frozen=True)
class ModelSettings:
    """What the model's client needs of the settings."""

    api_key: Secret
    model: str
    base_url: str | None
    timeout: float
    max_retries: int
    reply_tokens: int
    answer_seconds: float
    context_tokens: int | None
    transcribe_model: str
    embedding_model: str | None
    # Connections kept open to the model's server: one per reply thread.
    connections: int
    # MODEL_PRICES: prices for models the built-in table lacks.
    prices: dict[str, Price] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelSettings:
        return cls(
            api_key=settings.openai_api_key,
            model=settings.openai_model,
            base_url=settings.openai_base_url,
            timeout=settings.openai_timeout,
            max_retries=settings.openai_max_retries,
            reply_tokens=settings.reply_max_tokens,
            answer_seconds=settings.model_answer_seconds,
            context_tokens=settings.model_context_tokens,
            transcribe_model=settings.transcribe_model,
            embedding_model=settings.embedding_model,
            connections=settings.worker_threads,
            prices=settings.model_prices,
        )

    def worst_case_seconds(self) -> float:
        """The longest one model call can take: every try the SDK makes, and its waits between them."""
        return self.timeout * (1 + self.max_retries) + SDK_MAX_BACKOFF * self.max_retries


class ChatModel:
    """A chat model behind the OpenAI chat-completions API."""

    def __init__(self, settings: ModelSettings, client: OpenAI | None = None):
        self._model = settings.model
        self._transcribe_model = settings.transcribe_model
        self._embedding_model = settings.embedding_model
        # What to call, in this thread, once a request is on its way to the model (see `complete`).
        self._on_send = threading.local()
        # Explicit, so a stray OPENAI_BASE_URL the settings did not read cannot redirect the key.
        base_url = settings.base_url or OPENAI_API_URL
        self._client = client or OpenAI(
            api_key=settings.api_key.reveal(),
            base_url=base_url,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            # The SDK leaves out a header given as Omit, though its signature names only strings.
            default_headers=PLATFORM_HEADERS_LEFT_OUT,  # type: ignore[arg-type]
            http_client=openai.DefaultHttpxClient(
                transport=PooledTransport(base_url, settings.connections, settings.timeout),
                event_hooks={"request": [self._sending]},
                # The transport's pool reads the proxy and CA variables (upstream.py); httpx would route
                # around it through proxies of its own.
                trust_env=False,
            ),
        )
        # OpenAI itself wants max_completion_tokens (reasoning models refuse max_tokens);
        # many compatible servers (older Ollama and vLLM) only know max_tokens.
        self._token_param = "max_tokens" if settings.base_url else "max_completion_tokens"
        self._reply_tokens = settings.reply_tokens
        self._timeout = settings.timeout
        self._answer_seconds = settings.answer_seconds
        self._plain_json_logged = False
        # The model's context window: set by the owner, said by the server when asked, or learned from refusals.
        self._window = settings.context_tokens
        self._window_lock = threading.Lock()
        self._base_url = base_url
        # A compatible server is asked for its window once, before the first prompt (OpenAI's refusals name it).
        self._may_ask_window = settings.base_url is not None and settings.context_tokens is None
        self._asking = threading.Lock()
        # Compatible servers may cut a stream whose answer overflows their window (OpenAI refuses such requests).
        self._may_cut_streams = settings.base_url is not None
        # Set once the server refused a request for offering tools: later ones are asked without.
        self.tools_refused = False
        self.prices = PriceList(settings.model, settings.base_url is None, settings.prices)
        # What this thread spent since its last answer (a message's embedding), added to that answer's cost.
        self._unbilled = threading.local()

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    def has_model(self) -> bool:
        """Whether the server knows OPENAI_MODEL; raise ModelError if the key or server fails."""
        try:
            self._client.models.retrieve(self._model)
            return True
        except openai.NotFoundError:
            pass  # some compatible servers only list their models
        except openai.APIError as exc:
            raise ModelError(classify(exc), getattr(exc, "status_code", None)) from None
        try:
            return any(model.id == self._model for model in self._client.models.list())
        except openai.APIError:
            return False

    def takes_tools(self) -> bool:
        """Whether the server answers a tiny request offering a tool; False if it refuses it (HTTP 400), ModelError
        if it fails otherwise."""
        probe = [{"role": "user", "content": "Say OK."}]
        try:
            self._create(self._request(probe, PROBE_TOKENS, [PROBE_TOOL]), time.monotonic() + self._timeout)
        except ModelError as error:
            if error.failure is Failure.REJECTED and error.status == HTTPStatus.BAD_REQUEST:
                return False
            raise
        return True

    def moderate(self, text: str, images: Sequence[str] = ()) -> list[str]:
        """The moderation endpoint's categories for a message (its text, and its photos as links or inline): empty
        when not flagged. Raise ModelError if the endpoint fails."""
        parts: list[ModerationMultiModalInputParam] = [{"type": "text", "text": text or "(a photo)"}]
        parts += [{"type": "image_url", "image_url": {"url": url}} for url in images]
        try:
            result = self._client.moderations.create(model=MODERATION_MODEL, input=parts)
        except openai.APIError as exc:
            raise ModelError(classify(exc), getattr(exc, "status_code", None)) from None
        flagged = []
        for item in result.results:
            if item.flagged:
                categories = item.categories.model_dump(by_alias=True)
                flagged += [name for name, on in categories.items() if on and name not in flagged]
        return flagged or (["unnamed"] if any(item.flagged for item in result.results) else [])

    def transcribe(self, audio: Path) -> tuple[str, float]:
        """Return what is said in an audio file, and what hearing it cost in dollars (from the seconds the server
        reports; 0 if it reports none)."""
        try:
            with audio.open("rb") as file:
                result = self._client.audio.transcriptions.create(model=self._transcribe_model, file=file)
        except openai.APIError as exc:
            raise ModelError(classify(exc), getattr(exc, "status_code", None)) from None
        seconds = getattr(getattr(result, "usage", None), "seconds", None)
        cost = self.prices.transcription(self._transcribe_model, seconds) if isinstance(seconds, int | float) else 0.0
        return (getattr(result, "text", None) or "").strip(), cost

    def embed(self, texts: list[str], timeout: float | None = None) -> list[list[float]]:
        """Return the embedding of each text, by EMBEDDING_MODEL; with `timeout`, one try within it."""
        assert self._embedding_model, "EMBEDDING_MODEL is not set"
        client = self._client if timeout is None else self._client.with_options(timeout=timeout, max_retries=0)
        try:
            # Floats, not the SDK's default base64: some compatible servers only send floats.
            result = client.embeddings.create(model=self._embedding_model, input=texts, encoding_format="float")
        except openai.APIError as exc:
            raise ModelError(classify(exc), getattr(exc, "status_code", None)) from None
        tokens = getattr(getattr(result, "usage", None), "total_tokens", None)
        if isinstance(tokens, int):
            # Billed with this thread's next answer: a message's embedding is made just before it is answered.
            cost = self.prices.embedding(self._embedding_model, tokens)
            self._unbilled.cost = getattr(self._unbilled, "cost", 0.0) + cost
        return [list(item.embedding) for item in sorted(result.data, key=lambda item: item.index)]

    def complete(
        self,
        messages: list[ChatMessage],
        on_text: Callable[[str], object] | None = None,
        on_send: Callable[[], None] | None = None,
        take_back: Callable[[], bool] | None = None,
        on_cut: Callable[[], object] | None = None,
        tools: list[dict] | None = None,
        exchange: Sequence[ChatMessage] = (),
    ) -> Completion:
        """Return the model's reply to `messages`, fitted to the model's context window, within
        MODEL_ANSWER_SECONDS; with `on_text`, the reply is streamed and `on_text` called with each piece as it
        is written, until it returns False (the rest is not wanted). `on_send` is called as each try of the
        request leaves for the model (the typing indicator starts then, not before it); `on_cut` once, before the
        answer, if the person's message had to be cut to fit the window.

        A stream that breaks before the model finished (some servers refuse a prompt too long for their window
        that way: an empty stream, or one that stops after a few words) is asked again once without streaming,
        so the server says what it refused, if `take_back` can take back what `on_text` was given (it returns
        False once any of it reached the person). The answer asked again is given to `on_text` whole.

        A refusal as too long teaches the window when it names it; otherwise the prompt is
        retried with half the history, then half the person's message, until it is the system
        message and a short message alone.

        `tools` (chat-completions function tools) are offered unless the server refused them before: a server
        that refuses a request with tools (HTTP 400) is asked again without, and never offered them again in
        this process. `exchange` (the tool calls and their results so far) follows the fitted prompt.
        """
        self._on_send.callback = on_send
        deadline = time.monotonic() + self._answer_seconds
        offered = None if self.tools_refused else tools
        try:
            try:
                return self._complete(messages, on_text, take_back, on_cut, deadline, offered, exchange)
            except ModelError as error:
                if not offered or error.failure is not Failure.REJECTED or error.status != HTTPStatus.BAD_REQUEST:
                    raise
                self._refuse_tools()
                return self._complete(messages, on_text, take_back, on_cut, deadline, None, exchange)
        finally:
            self._on_send.callback = None

    def _refuse_tools(self) -> None:
        if not self.tools_refused:
            self.tools_refused = True
            logger.warning(
                "the model's server refused a request offering tools (HTTP 400): answering without tools from now on"
            )

    def _sending(self, request: object) -> None:
        callback = getattr(self._on_send, "callback", None)
        if callback is not None:
            callback()

    def _complete(
        self,
        messages: list[ChatMessage],
        on_text: Callable[[str], object] | None,
        take_back: Callable[[], bool] | None,
        on_cut: Callable[[], object] | None,
        deadline: float,
        tools: list[dict] | None,
        exchange: Sequence[ChatMessage],
    ) -> Completion:
        fitted = self._fit(messages)
        while True:
            if fitted.cut_said is not None and on_cut is not None:
                on_cut()
                on_cut = None  # said once, however often the prompt is refitted
            request = self._request([*fitted.messages, *exchange], fitted.reply_tokens, tools)
            try:
                if on_text is None:
                    completion = self._create(request, deadline)
                else:
                    completion = self._stream(request, on_text, deadline)
                    cut_by_server = completion.broken and not (completion.timed_out or completion.stopped)
                    if cut_by_server and take_back is not None and take_back():
                        logger.info("the model's stream ended before the answer did: asked again without streaming")
                        completion = self._create(request, deadline)
                        refitted = self._after_cut_answer(messages, fitted, completion)
                        if refitted is not None:
                            fitted = refitted
                            continue
                        on_text(completion.text)
                    elif completion.broken and not completion.text:
                        raise ModelError(Failure.TIMEOUT if completion.timed_out else Failure.SERVER)
                cost = self.prices.reply(
                    completion.prompt_tokens, completion.cached_tokens, completion.completion_tokens
                )
                cost += getattr(self._unbilled, "cost", 0.0)
                self._unbilled.cost = 0.0
                return replace(completion, cut_said=fitted.cut_said, cost=cost)
            except ModelError as error:
                too_long = error.failure is Failure.TOO_LONG
                retry = self._after_refusal(messages, fitted, error.window) if too_long else None
                if retry is None:
                    raise
                fitted = retry

    def _after_refusal(self, messages: list[ChatMessage], refused: Fitted, window: int | None) -> Fitted | None:
        """The prompt to send after a too-long refusal: refitted to a window it named, else shorter; None when
        nothing is left to cut."""
        if window and self._learn(window):
            refitted = self._fit(messages)
            if refitted != refused:
                return refitted
        shorter, cut_said = drop_older_half(refused.messages), refused.cut_said
        if shorter == refused.messages:
            halved = halve_said(refused.messages)
            if halved is None:
                return None
            shorter, cut_said = halved, said_text(halved[-1])
        logger.info("context too long: retrying with %d of %d messages", len(shorter), len(messages))
        return Fitted(shorter, refused.reply_tokens, cut_said)

    def _after_cut_answer(self, messages: list[ChatMessage], asked: Fitted, answer: Completion) -> Fitted | None:
        """Learn the window from the answer asked again after a stream the server cut (how llama-cpp-python refuses
        an answer its window has no room for), and return the prompt to ask again with when that answer was cut
        short by the window too; None to keep the answer.

        Not streamed, llama-cpp-python answers what the window leaves room for: an answer that stopped at the
        window ("length", short of its cap) shows the window whole (prompt and answer tokens add up to it). One
        that finished shows that the prompt and the whole reserve did not fit: the window is smaller than that."""
        prompt_tokens, completion_tokens = answer.prompt_tokens, answer.completion_tokens
        if prompt_tokens is None or completion_tokens is None:
            return None
        if answer.finish_reason == "length" and completion_tokens < asked.reply_tokens:
            if self._learn(prompt_tokens + completion_tokens):
                refitted = self._fit(messages)
                return refitted if refitted != asked else None
        elif answer.finish_reason == "stop" and self._may_cut_streams:
            self._learn(prompt_tokens + asked.reply_tokens - 1, " at most (the server cut a stream)")
        return None

    def _fit(self, messages: list[ChatMessage]) -> Fitted:
        window = self._known_window()
        if window is None:
            return Fitted(messages, self._reply_tokens)
        fitted = fit(messages, window, self._reply_tokens)
        if fitted is None:
            if fit(messages[:1] + [{"role": "user", "content": ""}], window, self._reply_tokens) is None:
                logger.error("SYSTEM_PROMPT does not fit the model's context window of %d tokens: shorten it", window)
            else:
                logger.warning("the photos do not fit the model's context window of %d tokens", window)
            raise ModelError(Failure.TOO_LONG)
        if fitted.knowledge_cut:
            logger.info(
                "the page's knowledge was cut to fit the model's context window of %d tokens: %s",
                window,
                fitted.knowledge_cut,
            )
        return fitted

    def _known_window(self) -> int | None:
        """The model's context window, if known; the first call asks a compatible server (the others wait)."""
        if self._may_ask_window:
            with self._asking:
                if self._may_ask_window:
                    said = self._server_window()
                    if said is None:
                        logger.info(
                            "the model's server did not say its window (GET /props, GET /v1/models, POST /api/show): "
                            "it is learned from the first prompt it refuses"
                        )
                    else:
                        window, where = said
                        self._learn(window, f" (the server says, at {where})")
                    self._may_ask_window = False
        return self._window

    def _server_window(self) -> tuple[int, str] | None:
        """The context window the server says it has, and where it said it: llama.cpp's llama-server at
        GET /props, vLLM in GET /v1/models, Ollama at POST /api/show; None where none answers (llama-cpp-python's
        server says nothing)."""
        root = self._base_url.rstrip("/").removesuffix("/v1")
        questions: list[tuple[str, Callable[[], int | None]]] = [
            ("GET /props", lambda: _props_window(self._ask_server(f"{root}/props"))),
            ("GET /v1/models", lambda: _listed_window(self._ask_server(f"{root}/v1/models"), self._model)),
            ("POST /api/show", lambda: _ollama_window(self._ask_server(f"{root}/api/show", self._model))),
        ]
        for where, ask in questions:
            try:
                window = ask()
            except (openai.APIError, httpx2.HTTPError, ValueError):
                continue  # this server has no such endpoint, or said it otherwise
            if window is not None:
                return window, where
        return None

    def _ask_server(self, url: str, model: str | None = None) -> object:
        """The JSON a GET of `url` answers (with `model`, a POST naming it, as Ollama's /api/show takes); raise
        ValueError for an answer over WINDOW_ANSWER_BYTES or not JSON."""
        timeout = min(self._timeout, WINDOW_QUESTION_SECONDS)
        if model is None:
            response = self._client.get(
                url, cast_to=httpx2.Response, options={"timeout": timeout, "max_retries": 0}, stream=True
            )
        else:
            response = self._client.post(
                url,
                cast_to=httpx2.Response,
                body={"model": model, "name": model},  # "model" since Ollama 0.4, "name" before
                options={"timeout": timeout, "max_retries": 0},
                stream=True,
            )
        try:
            data = bytearray()
            for piece in response.iter_bytes():
                data += piece
                if len(data) > WINDOW_ANSWER_BYTES:
                    raise ValueError("the answer is too long")
        finally:
            response.close()
        return json.loads(data)

    def _learn(self, window: int, how: str = "") -> bool:
        """Remember a window learned (`how`, for the log); True if it is smaller than the one known (news)."""
        with self._window_lock:
            if self._window is not None and window >= self._window:
                return False
            self._window = window
        logger.info("the model's context window is %d tokens%s: prompts are fitted to it", window, how)
        return True

    def _create(self, request: dict[str, Any], deadline: float) -> Completion:
        """The reply in one piece."""
        try:
            response = self._post(request, deadline, stream=False)
            return _whole_answer(json.loads(response.content))
        except openai.APIError as exc:
            raise ModelError(classify(exc), getattr(exc, "status_code", None), stated_window(exc)) from None
        except ValueError:
            raise ModelError(Failure.SERVER) from None  # a 200 that is not JSON

    def _stream(self, request: dict[str, Any], on_text: Callable[[str], object], deadline: float) -> Completion:
        """The reply, streamed."""
        request = {**request, "stream": True, **STREAM_USAGE}
        try:
            response = self._post(request, deadline, stream=True)
        except openai.APIError as exc:
            raise ModelError(classify(exc), getattr(exc, "status_code", None), stated_window(exc)) from None
        try:
            if response.headers.get("content-type", "").startswith("application/json"):
                return self._plain_answer(response.read(), on_text)
            return _read_stream(response.iter_bytes(), on_text, deadline)
        except httpx2.TimeoutException:
            raise ModelError(Failure.TIMEOUT) from None  # a whole answer that stopped arriving
        except httpx2.HTTPError:
            raise ModelError(Failure.SERVER) from None
        finally:
            response.close()

    def _post(self, request: dict[str, Any], deadline: float, stream: bool) -> httpx2.Response:
        """POST a chat-completions request through the SDK's client (its retries, timeouts and errors), the answer
        read as plain JSON: the SDK's typed request and response objects cost more CPU than the call itself (its
        request types are walked for every message), and the messages are plain JSON already. No wait outlasts the
        answer's deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ModelError(Failure.TIMEOUT)
        timeout = min(self._timeout, remaining)
        return self._client.post(
            CHAT_COMPLETIONS, cast_to=httpx2.Response, body=request, options={"timeout": timeout}, stream=stream
        )

    def _plain_answer(self, body: bytes, on_text: Callable[[str], object]) -> Completion:
        """A whole answer to a streamed request, from a server that does not stream."""
        if not self._plain_json_logged:
            self._plain_json_logged = True
            logger.warning("the model's server does not stream: its answers are sent whole; set STREAM=off to say so")
        try:
            completion = _whole_answer(json.loads(body))
        except ValueError:
            raise ModelError(Failure.SERVER) from None
        on_text(completion.text)
        return completion

    def _request(self, messages: list[ChatMessage], reply_tokens: int, tools: list[dict] | None) -> dict[str, Any]:
        """The chat-completions request's body."""
        request = {"model": self._model, "messages": messages, self._token_param: reply_tokens}
        if tools:
            request["tools"] = tools
        return request


class _Malformed(ValueError):
    """A part of the model's answer not shaped as the chat-completions API shapes it."""


def _read_stream(body: Iterable[bytes], on_text: Callable[[str], object], deadline: float) -> Completion:
    """Read a chat completion's event stream, passing on its text, until it ends or `deadline` passes; a stream
    that breaks, is malformed, runs out of time or never says why it finished is `broken`."""
    pieces: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    finish_reason = None
    usage: dict = {}
    timed_out = stopped = False
    try:
        for chunks in _events(body):
            if time.monotonic() > deadline:
                timed_out = True
                logger.warning("the model's answer outlasted MODEL_ANSWER_SECONDS after %d pieces", len(pieces))
                break
            for chunk in chunks:
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
    return replace(completion, tool_calls=_tool_calls([calls[index] for index in sorted(calls)]))


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
    """The data of a server-sent event stream's events (JSON, "[DONE]" left out), a list for each read: all that
    arrived at once is split and parsed in one go, not one parser call per event. Comments (": keep-alive") and
    blank lines are left out too, but each read still yields (an empty list), so a deadline is checked."""
    rest = b""
    for data in body:
        # A line may end in CR LF or CR alone: as LF, each leaves at most a blank line more, which is skipped.
        lines = (rest + data).replace(b"\r", b"\n").split(b"\n")
        rest = lines.pop()  # a line not yet whole
        found = [line[5:].strip() for line in lines if line.startswith(b"data:")]
        found = [item for item in found if item != b"[DONE]"]
        try:
            yield json.loads(b"[" + b",".join(found) + b"]")
        except ValueError:
            for item in found:  # one at a time, so what came before the malformed one is kept
                yield [json.loads(item)]
    if rest.startswith(b"data:") and rest[5:].strip() != b"[DONE]":
        yield [json.loads(rest[5:])]  # a last event without its line end


def _whole_answer(body: object) -> Completion:
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


def classify(exc: openai.APIError) -> Failure:
    """Map an SDK error to the failure the bot reports."""
    if isinstance(exc, openai.APITimeoutError):
        return Failure.TIMEOUT
    if isinstance(exc, openai.APIConnectionError):
        return Failure.UNREACHABLE
    if exc.code == "context_length_exceeded" or re.search(r"context (length|size)", str(exc.message), re.I):
        return Failure.TOO_LONG
    if exc.code == "insufficient_quota":
        return Failure.QUOTA
    by_type = {
        openai.RateLimitError: Failure.RATE_LIMITED,
        openai.AuthenticationError: Failure.AUTH,
        openai.PermissionDeniedError: Failure.FORBIDDEN,
        openai.NotFoundError: Failure.NOT_FOUND,
        openai.InternalServerError: Failure.SERVER,
    }
    for error_type, failure in by_type.items():
        if isinstance(exc, error_type):
            return failure
    return Failure.REJECTED


def _props_window(body: object) -> int | None:
    """llama.cpp's llama-server: GET /props tells a slot's window in default_generation_settings.n_ctx (and
    some versions at the top level too)."""
    body = body if isinstance(body, dict) else {}
    settings = body.get("default_generation_settings")
    slot = settings.get("n_ctx") if isinstance(settings, dict) else None
    return _window_count(slot) or _window_count(body.get("n_ctx"))


def _listed_window(body: object, model: str) -> int | None:
    """vLLM: GET /v1/models lists each model with its max_model_len."""
    listed = body.get("data") if isinstance(body, dict) else None
    for item in listed if isinstance(listed, list) else []:
        if isinstance(item, dict) and item.get("id") == model:
            return _window_count(item.get("max_model_len"))
    return None


def _ollama_window(body: object) -> int | None:
    """Ollama: POST /api/show tells num_ctx in the model's parameters when its Modelfile sets it; otherwise Ollama
    uses its server's default, never more than the model's context_length in model_info."""
    body = body if isinstance(body, dict) else {}
    parameters = body.get("parameters")
    found = OLLAMA_NUM_CTX.search(parameters) if isinstance(parameters, str) else None
    if found:
        return _window_count(int(found.group(1)))
    info = body.get("model_info")
    lengths = (
        [_window_count(v) for k, v in info.items() if k.endswith(".context_length")] if isinstance(info, dict) else []
    )
    known = [length for length in lengths if length]
    return min(min(known), OLLAMA_DEFAULT_NUM_CTX) if known else None


def _window_count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def stated_window(exc: openai.APIError) -> int | None:
    """The context window a too-long refusal names, if it names one."""
    body = exc.body if isinstance(exc.body, dict) else {}
    n_ctx = body.get("n_ctx")
    if isinstance(n_ctx, int) and n_ctx > 0:
        return n_ctx
    found = STATED_WINDOW.search(str(exc.message))
    return int(found.group(1) or found.group(2)) if found else None
