"""The model's context window, and prompts fitted to it: the window is set by the owner (MODEL_CONTEXT_TOKENS),
asked of a compatible server once, or learned from what the server refuses or cuts as too long; a refused prompt
is refitted to the window the refusal named, or else shortened, until it is the system message and a short
message alone."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable

# The openai SDK's HTTP client: its errors are how a question the server has no answer to shows.
import httpx2
import openai
from openai import OpenAI

from inboxgpt.model.completion import Completion
from inboxgpt.model.errors import Failure, ModelError
from inboxgpt.model.prompt import ChatMessage, Fitted, drop_older_half, fit, halve_said, said_text

logger = logging.getLogger(__name__)

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


class ContextWindow:
    """The model's context window, as far as it is known (one for all reply threads), and prompts fitted to it."""

    def __init__(
        self,
        client: OpenAI,
        model: str,
        *,
        base_url: str | None,
        known: int | None,
        reply_tokens: int,
        timeout: float,
    ):
        """`base_url` is a compatible server's (None for OpenAI); `known` the window the owner set, if any."""
        self._client = client
        self._model = model
        self._reply_tokens = reply_tokens
        self._timeout = timeout
        self._window = known
        self._window_lock = threading.Lock()
        # A compatible server is asked for its window once, before the first prompt (OpenAI's refusals name it):
        # its root until then.
        self._unasked = base_url.rstrip("/").removesuffix("/v1") if base_url is not None and known is None else None
        self._asking = threading.Lock()
        # Compatible servers may cut a stream whose answer overflows their window (OpenAI refuses such requests).
        self._may_cut_streams = base_url is not None

    def fit(self, messages: list[ChatMessage]) -> Fitted:
        """The prompt fitted to the window, when one is known; raise ModelError (TOO_LONG) if it cannot fit."""
        window = self._known()
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

    def after_refusal(self, messages: list[ChatMessage], refused: Fitted, window: int | None) -> Fitted | None:
        """The prompt to send after a too-long refusal: refitted to a window it named, else shorter; None when
        nothing is left to cut."""
        if window and self._learn(window):
            refitted = self.fit(messages)
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

    def after_cut_answer(
        self, messages: list[ChatMessage], asked: Fitted, answer: Completion, overflowed: bool
    ) -> Fitted | None:
        """Learn the window from the answer asked again after a stream the server cut (how llama-cpp-python refuses
        an answer its window has no room for), and return the prompt to ask again with when that answer was cut
        short by the window too; None to keep the answer.

        Not streamed, llama-cpp-python answers what the window leaves room for: an answer that stopped at the
        window ("length", short of its cap) shows the window whole (prompt and answer tokens add up to it). One
        that finished, after a stream the server dropped without saying it was over (`overflowed`), shows that the
        prompt and the whole reserve did not fit: the window is smaller than that. After a stream the server ended
        on purpose, it shows nothing."""
        prompt_tokens, completion_tokens = answer.prompt_tokens, answer.completion_tokens
        if prompt_tokens is None or completion_tokens is None:
            return None
        if answer.finish_reason == "length" and completion_tokens < asked.reply_tokens:
            if self._learn(prompt_tokens + completion_tokens):
                refitted = self.fit(messages)
                return refitted if refitted != asked else None
        elif answer.finish_reason == "stop" and overflowed and self._may_cut_streams:
            self._learn(prompt_tokens + asked.reply_tokens - 1, " at most (the server cut a stream)")
        return None

    def _known(self) -> int | None:
        """The model's context window, if known; the first call asks a compatible server (the others wait)."""
        if self._unasked is not None:
            with self._asking:
                if self._unasked is not None:
                    said = self._server_window(self._unasked)
                    if said is None:
                        logger.info(
                            "the model's server did not say its window (GET /props, GET /v1/models, POST /api/show): "
                            "it is learned from the first prompt it refuses"
                        )
                    else:
                        window, where = said
                        self._learn(window, f" (the server says, at {where})")
                    self._unasked = None
        return self._window

    def _server_window(self, root: str) -> tuple[int, str] | None:
        """The context window the server says it has, and where it said it: llama.cpp's llama-server at
        GET /props, vLLM in GET /v1/models, Ollama at POST /api/show; None where none answers (llama-cpp-python's
        server says nothing). `root` is the server's address without /v1."""
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
