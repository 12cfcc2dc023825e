"""What the model's work costs in dollars: a built-in table of OpenAI's prices, and MODEL_PRICES for the rest.

Prices are in dollars per million tokens (input, cached input, output, embedded), and per minute of audio
transcribed. A model served by another OpenAI-compatible server (OPENAI_BASE_URL), or missing from
the table, costs 0 unless MODEL_PRICES names it: money caps then cannot apply, and `check` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# OpenAI's standard prices, per million tokens (input, cached input, output), read from openai.com/api/pricing.
# A dated model ("gpt-4.1-mini-2025-04-14") takes its family's price: the longest name it starts with.
CHAT_PRICES: dict[str, tuple[float, float, float]] = {
    "gpt-5": (1.25, 0.125, 10.00),
    "gpt-5-mini": (0.25, 0.025, 2.00),
    "gpt-5-nano": (0.05, 0.005, 0.40),
    "gpt-4.1": (2.00, 0.50, 8.00),
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "gpt-4.1-nano": (0.10, 0.025, 0.40),
    "gpt-4o": (2.50, 1.25, 10.00),
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "o4-mini": (1.10, 0.275, 4.40),
    "o3": (2.00, 0.50, 8.00),
}
# Per minute of audio.
TRANSCRIPTION_PRICES = {"gpt-4o-mini-transcribe": 0.003, "gpt-4o-transcribe": 0.006, "whisper-1": 0.006}
# Per million tokens embedded.
EMBEDDING_PRICES = {"text-embedding-3-small": 0.02, "text-embedding-3-large": 0.13, "text-embedding-ada-002": 0.10}
MILLION = 1_000_000


@dataclass(frozen=True)
class Price:
    """A chat model's price per million tokens."""

    input: float
    cached: float
    output: float

    def of(self, prompt_tokens: int | None, cached_tokens: int | None, completion_tokens: int | None) -> float:
        """Dollars for one call's tokens (cached prompt tokens at their own price)."""
        cached = min(cached_tokens or 0, prompt_tokens or 0)
        fresh = (prompt_tokens or 0) - cached
        return (fresh * self.input + cached * self.cached + (completion_tokens or 0) * self.output) / MILLION


FREE = Price(0.0, 0.0, 0.0)


def parse_prices(raw: str) -> dict[str, Price]:
    """MODEL_PRICES: `model=input/cached/output` per million tokens, comma-separated ("my-model=0.5/0.25/1.5")."""
    prices = {}
    for part in (part.strip() for part in raw.split(",")):
        if not part:
            continue
        name, equals, figures = part.partition("=")
        numbers = figures.split("/")
        if not equals or not name.strip() or len(numbers) != 3:
            raise ValueError("must be model=input/cached/output dollars per million tokens, separated by commas")
        try:
            values = [float(number) for number in numbers]
        except ValueError:
            raise ValueError(f"{name.strip()}: each price must be a number of dollars, such as 0.40") from None
        # float() also reads "nan", "inf" and "1e400" (infinite): every reply's cost would then fail to add up.
        if not all(math.isfinite(value) and value >= 0 for value in values):
            raise ValueError(f"{name.strip()}: prices must be finite numbers of dollars, not negative")
        prices[name.strip()] = Price(*values)
    return prices


class PriceList:
    """The price of the configured models: MODEL_PRICES first, then OpenAI's table (on OpenAI itself only)."""

    def __init__(self, chat_model: str, on_openai: bool, overrides: dict[str, Price]):
        self.chat = overrides.get(chat_model) or (_family(chat_model) if on_openai else None)
        self._on_openai = on_openai
        self._overrides = overrides

    @property
    def known(self) -> bool:
        """Whether the chat model has a price (without one, money caps cannot apply)."""
        return self.chat is not None

    def reply(self, prompt_tokens: int | None, cached_tokens: int | None, completion_tokens: int | None) -> float:
        """Dollars for one chat call."""
        return (self.chat or FREE).of(prompt_tokens, cached_tokens, completion_tokens)

    def embedding(self, model: str, tokens: int) -> float:
        """Dollars for embedding `tokens` tokens."""
        per_million = EMBEDDING_PRICES.get(model, 0.0) if self._on_openai else 0.0
        return per_million * tokens / MILLION

    def transcription(self, model: str, seconds: float) -> float:
        """Dollars for transcribing `seconds` of audio."""
        per_minute = TRANSCRIPTION_PRICES.get(model, 0.0) if self._on_openai else 0.0
        return per_minute * seconds / 60


def _family(model: str) -> Price | None:
    names = [name for name in CHAT_PRICES if model == name or model.startswith(name + "-")]
    if not names:
        return None
    return Price(*CHAT_PRICES[max(names, key=len)])
