"""What the model is sent: the system prompt, the newest history within budget, photos and quotes.

Also the token budget every part of the service shares: the estimate, how history is trimmed to
it (here and in the stores), and how a prompt the model refused as too long is shortened.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# Every chat message costs a few tokens of framing on top of its text.
MESSAGE_OVERHEAD_TOKENS = 4
# A photo costs the model 85 tokens at low detail and up to about 1,100 at high.
IMAGE_TOKENS = {"low": 85, "auto": 1105, "high": 1105}
# What the model is asked about a photo sent without a caption.
PHOTO_PROMPT = "What's in this photo?"
QUOTE_CHARS = 300
# What is kept of a message for quoting it later: enough to show QUOTE_CHARS, cut at a word.
REMEMBERED_CHARS = 2 * QUOTE_CHARS

ChatMessage = dict[str, Any]


def estimate_tokens(text: str) -> int:
    """Return a deliberately high token estimate for a chat message of this text."""
    # One token per three UTF-8 bytes over-counts English (about four characters a token)
    # and roughly matches scripts of three-byte characters, so a budget is never undercounted
    # by much without needing a tokenizer download.
    return -(-len(text.encode("utf-8", "surrogatepass")) // 3) + MESSAGE_OVERHEAD_TOKENS


@dataclass(frozen=True)
class Turn:
    """One exchange: what the person said and what the bot answered."""

    user: str
    assistant: str

    def messages(self) -> list[ChatMessage]:
        """Return the turn as chat-completion messages."""
        return [{"role": "user", "content": self.user}, {"role": "assistant", "content": self.assistant}]

    def tokens(self) -> int:
        """Return the estimated tokens of both messages."""
        return estimate_tokens(self.user) + estimate_tokens(self.assistant)


def newest_turns_within(turns: Iterable[Turn], max_messages: int, max_tokens: int) -> list[Turn]:
    """Return the newest whole turns that fit both budgets, oldest first."""
    kept: list[Turn] = []
    used_messages = used_tokens = 0
    for turn in reversed(list(turns)):
        used_messages += 2
        used_tokens += turn.tokens()
        if used_messages > max_messages or used_tokens > max_tokens:
            break
        kept.append(turn)
    kept.reverse()
    return kept


@dataclass(frozen=True)
class Budget:
    """How much of the conversation a prompt may carry, and how photos are sent."""

    system_prompt: str
    max_messages: int
    max_tokens: int
    image_detail: str


def build(budget: Budget, history: Sequence[Turn], said: str, photos: Sequence[str] = ()) -> list[ChatMessage]:
    """The messages for the model: system prompt, the newest history that fits, the new message."""
    room = (
        budget.max_tokens
        - estimate_tokens(budget.system_prompt)
        - estimate_tokens(said)
        - IMAGE_TOKENS[budget.image_detail] * len(photos)
    )
    turns = newest_turns_within(history, budget.max_messages, room)
    content: str | list[ChatMessage] = said
    if photos:
        content = [{"type": "text", "text": said or PHOTO_PROMPT}] + [
            {"type": "image_url", "image_url": {"url": url, "detail": budget.image_detail}} for url in photos
        ]
    past = [message for turn in turns for message in turn.messages()]
    return [{"role": "system", "content": budget.system_prompt}, *past, {"role": "user", "content": content}]


def with_quote(text: str, quoted: str | None) -> str:
    """The text, preceded by the message it replies to when that one is still remembered."""
    return f'[Replying to: "{shorten(quoted, QUOTE_CHARS)}"]\n{text}' if quoted else text


def history_text(said: str, photos: Sequence[str], heard: bool) -> str:
    """What the history keeps of the person's turn: markers for photos and voice, never links."""
    if photos:
        marker = "[photo]" if len(photos) == 1 else f"[{len(photos)} photos]"
        return f"{marker} {said}".strip()
    return f"[voice message] {said}" if heard else said


def shorten(text: str, limit: int) -> str:
    """The text, cut at a word with an ellipsis if it is longer than `limit`."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


def drop_older_half(messages: list[ChatMessage]) -> list[ChatMessage]:
    """Keep the system message, the newest half of the past turns, and the last message."""
    head = [m for m in messages[:1] if m.get("role") == "system"]
    past = messages[len(head) : -1]
    # Past messages come in user/assistant pairs: keep an even count so no turn is split.
    keep = (len(past) // 2) // 2 * 2
    return head + past[len(past) - keep :] + messages[-1:]
