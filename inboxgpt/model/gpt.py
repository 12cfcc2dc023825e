"""Ask an OpenAI (or OpenAI-compatible) chat model for a reply, through the openai SDK: `ChatModel`, its calls
(chat, moderation, transcription, embeddings, the start-up checks), each bounded by the answer's deadline, and what
a call does again when it fails (a stream the server cut, tools refused, a prompt too long for the window).

Its parts live beside it: errors.py says why a call failed, completion.py reads the answers, window.py knows the
context window and fits prompts to it."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from pathlib import Path
from typing import Any

# The openai SDK's HTTP client: its errors are how a stream that breaks midway shows.
import httpx2
import openai
from openai import OpenAI
from openai.types import ModerationMultiModalInputParam

from inboxgpt.config import Secret, Settings
from inboxgpt.model.completion import Completion, read_stream, whole_answer
from inboxgpt.model.errors import Failure, ModelError
from inboxgpt.model.prompt import ChatMessage
from inboxgpt.model.transport import PooledTransport
from inboxgpt.model.window import ContextWindow, stated_window
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
        self._timeout = settings.timeout
        self._answer_seconds = settings.answer_seconds
        self._plain_json_logged = False
        self._window = ContextWindow(
            self._client,
            settings.model,
            base_url=settings.base_url,
            known=settings.context_tokens,
            reply_tokens=settings.reply_tokens,
            timeout=settings.timeout,
        )
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
            raise ModelError.of(exc) from None
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
            raise ModelError.of(exc) from None
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
            raise ModelError.of(exc) from None
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
            raise ModelError.of(exc) from None
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
        fitted = self._window.fit(messages)
        while True:
            if fitted.cut_said is not None and on_cut is not None:
                on_cut()
                on_cut = None  # said once, however often the prompt is refitted
            request = self._request([*fitted.messages, *exchange], fitted.reply_tokens, tools)
            try:
                if on_text is None:
                    completion = self._create(request, deadline)
                else:
                    completion = streamed = self._stream(request, on_text, deadline)
                    cut_by_server = completion.broken and not (completion.timed_out or completion.stopped)
                    if cut_by_server and take_back is not None and take_back():
                        logger.info("the model's stream ended before the answer did: asked again without streaming")
                        completion = self._create(request, deadline)
                        # A stream the server ended on purpose says nothing of the window (llama-cpp-python ends
                        # one, with [DONE], when another request comes); one that overflowed it was dropped.
                        overflowed = not streamed.ended
                        refitted = self._window.after_cut_answer(messages, fitted, completion, overflowed)
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
                retry = self._window.after_refusal(messages, fitted, error.window) if too_long else None
                if retry is None:
                    raise
                fitted = retry

    def _create(self, request: dict[str, Any], deadline: float) -> Completion:
        """The reply in one piece."""
        try:
            response = self._post(request, deadline, stream=False)
            return whole_answer(json.loads(response.content))
        except openai.APIError as exc:
            raise ModelError.of(exc, stated_window(exc)) from None
        except ValueError:
            raise ModelError(Failure.SERVER) from None  # a 200 that is not JSON

    def _stream(self, request: dict[str, Any], on_text: Callable[[str], object], deadline: float) -> Completion:
        """The reply, streamed."""
        request = {**request, "stream": True, **STREAM_USAGE}
        try:
            response = self._post(request, deadline, stream=True)
        except openai.APIError as exc:
            raise ModelError.of(exc, stated_window(exc)) from None
        try:
            if response.headers.get("content-type", "").startswith("application/json"):
                return self._plain_answer(response.read(), on_text)
            return read_stream(response.iter_bytes(), on_text, deadline)
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
            completion = whole_answer(json.loads(body))
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
