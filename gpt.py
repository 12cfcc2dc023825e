"""Ask an OpenAI (or OpenAI-compatible) chat model for a reply, through the openai SDK."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import openai
from openai import OpenAI

from config import Settings
from prompt import ChatMessage, drop_older_half

logger = logging.getLogger(__name__)

OPENAI_API_URL = "https://api.openai.com/v1"
# The longest the openai SDK waits between two tries of a call (its MAX_RETRY_DELAY).
SDK_MAX_BACKOFF = 8.0


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

    def __init__(self, failure: Failure, status: int | None = None):
        super().__init__(failure.value)
        self.failure = failure
        self.status = status


@dataclass(frozen=True)
class Completion:
    """A reply from the model, with what it cost."""

    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


def worst_case_seconds(settings: Settings) -> float:
    """The longest one model call can take: every try the SDK makes, and its waits between them."""
    retries = settings.openai_max_retries
    return settings.openai_timeout * (1 + retries) + SDK_MAX_BACKOFF * retries


class ChatModel:
    """A chat model behind the OpenAI chat-completions API."""

    def __init__(self, settings: Settings, client: OpenAI | None = None):
        self._model = settings.openai_model
        self._transcribe_model = settings.transcribe_model
        self._client = client or OpenAI(
            api_key=settings.openai_api_key.reveal(),
            # Explicit, so a stray OPENAI_BASE_URL the settings did not read cannot redirect the key.
            base_url=settings.openai_base_url or OPENAI_API_URL,
            timeout=settings.openai_timeout,
            max_retries=settings.openai_max_retries,
        )
        # OpenAI itself wants max_completion_tokens (reasoning models refuse max_tokens);
        # many compatible servers (older Ollama and vLLM) only know max_tokens.
        token_param = "max_tokens" if settings.openai_base_url else "max_completion_tokens"
        self._limits: dict[str, Any] = {token_param: settings.reply_max_tokens}

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    def transcribe(self, audio: Path) -> str:
        """Return what is said in an audio file."""
        try:
            with audio.open("rb") as file:
                result = self._client.audio.transcriptions.create(model=self._transcribe_model, file=file)
        except openai.APIError as exc:
            raise ModelError(classify(exc), getattr(exc, "status_code", None)) from None
        return (getattr(result, "text", None) or "").strip()

    def complete(self, messages: list[ChatMessage]) -> Completion:
        """Return the model's reply to `messages`; on a context-length error retry once, shorter."""
        try:
            return self._create(messages)
        except ModelError as error:
            shorter = drop_older_half(messages)
            if error.failure is not Failure.TOO_LONG or shorter == messages:
                raise
            logger.info("context too long: retrying with %d of %d messages", len(shorter), len(messages))
            return self._create(shorter)

    def _create(self, messages: list[ChatMessage]) -> Completion:
        # Our messages are plain dicts; the SDK's TypedDicts describe the same shapes.
        typed: Any = messages
        try:
            response = self._client.chat.completions.create(model=self._model, messages=typed, **self._limits)
        except openai.APIError as exc:
            raise ModelError(classify(exc), getattr(exc, "status_code", None)) from None
        choice = response.choices[0] if response.choices else None
        message = choice.message if choice else None
        text = (message.content or getattr(message, "refusal", None) or "") if message else ""
        usage = response.usage
        return Completion(
            text=text.strip(),
            finish_reason=choice.finish_reason if choice else None,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
        )


def classify(exc: openai.APIError) -> Failure:
    """Map an SDK error to the failure the bot reports."""
    if isinstance(exc, openai.APITimeoutError):
        return Failure.TIMEOUT
    if isinstance(exc, openai.APIConnectionError):
        return Failure.UNREACHABLE
    if exc.code == "context_length_exceeded" or "context length" in str(exc.message).lower():
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
