"""Why a model call failed: the `Failure` the bot picks its apology from, the `ModelError` that carries it, and the
openai SDK's errors classified into them."""

from __future__ import annotations

import re
from enum import Enum

import openai


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

    @classmethod
    def of(cls, exc: openai.APIError, window: int | None = None) -> ModelError:
        """The failure an SDK error stands for, with its HTTP status when the server answered."""
        return cls(classify(exc), getattr(exc, "status_code", None), window)


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
