"""Each person's conversation history and the ids of events already handled, kept in memory."""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

logger = logging.getLogger(__name__)

# Every chat message costs a few tokens of framing on top of its text.
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(text: str) -> int:
    """Return a deliberately high token estimate for a chat message of this text."""
    # One token per three UTF-8 bytes over-counts English (about four characters a token)
    # and roughly matches scripts of three-byte characters, so a budget is never undercounted
    # by much without needing a tokenizer download.
    return -(-len(text.encode("utf-8")) // 3) + MESSAGE_OVERHEAD_TOKENS


@dataclass(frozen=True)
class Turn:
    """One exchange: what the person said and what the bot answered."""

    user: str
    assistant: str

    def messages(self) -> list[dict[str, str]]:
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


class Store(Protocol):
    """What the bot needs from a store; a shared backend implements the same methods."""

    def get(self, psid: str) -> list[Turn]:
        """Return the person's turns, oldest first; empty if none or expired."""

    def append(self, psid: str, turn: Turn) -> None:
        """Add a whole turn to the person's history, trimming it to the bounds."""

    def reset(self, psid: str) -> None:
        """Forget the person's history."""

    def expire(self) -> int:
        """Remove idle conversations and old event ids; return how many conversations went."""

    def claim_event(self, event_id: str) -> bool:
        """Record an event id; return True only the first time it is seen within its lifetime."""

    def increment(self, key: str, amount: int, ttl: float) -> int:
        """Add to a counter that lives `ttl` seconds from its first increment; return its new value."""

    def counter(self, key: str) -> int:
        """Return a counter's value; 0 if it does not exist or has expired."""

    def ping(self) -> bool:
        """Return True if the store can be reached."""


@dataclass
class _Conversation:
    turns: list[Turn]
    last_active: float


class MemoryStore:
    """A thread-safe in-memory store, bounded in people, turns per person, and event ids."""

    def __init__(
        self,
        *,
        max_messages: int,
        max_tokens: int,
        ttl: float,
        max_conversations: int,
        dedup_ttl: float,
        dedup_max_ids: int,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._max_messages = max_messages
        self._max_tokens = max_tokens
        self._ttl = ttl
        self._max_conversations = max_conversations
        self._dedup_ttl = dedup_ttl
        self._dedup_max_ids = dedup_max_ids
        self._clock = clock
        self._lock = threading.Lock()
        # Both maps are kept in order of last use, so expiry and eviction pop from the front.
        self._conversations: OrderedDict[str, _Conversation] = OrderedDict()
        self._event_ids: OrderedDict[str, float] = OrderedDict()
        # Counters have different lifetimes, so their expiry times are kept in a heap.
        self._counters: dict[str, tuple[int, float]] = {}
        self._counter_expiry: list[tuple[float, str]] = []

    def get(self, psid: str) -> list[Turn]:
        """Return the person's turns, oldest first; empty if none or expired."""
        with self._lock:
            self._expire_locked(self._clock())
            conversation = self._conversations.get(psid)
            return list(conversation.turns) if conversation else []

    def append(self, psid: str, turn: Turn) -> None:
        """Add a whole turn to the person's history, trimming it to the bounds."""
        with self._lock:
            now = self._clock()
            self._expire_locked(now)
            conversation = self._conversations.pop(psid, None) or _Conversation([], now)
            conversation.turns = newest_turns_within(
                [*conversation.turns, turn], self._max_messages, self._max_tokens
            )
            conversation.last_active = now
            self._conversations[psid] = conversation
            while len(self._conversations) > self._max_conversations:
                self._conversations.popitem(last=False)

    def reset(self, psid: str) -> None:
        """Forget the person's history."""
        with self._lock:
            self._conversations.pop(psid, None)

    def expire(self) -> int:
        """Remove idle conversations and old event ids; return how many conversations went."""
        with self._lock:
            return self._expire_locked(self._clock())

    def claim_event(self, event_id: str) -> bool:
        """Record an event id; return True only the first time it is seen within its lifetime."""
        with self._lock:
            now = self._clock()
            self._expire_locked(now)
            if event_id in self._event_ids:
                return False
            self._event_ids[event_id] = now
            while len(self._event_ids) > self._dedup_max_ids:
                self._event_ids.popitem(last=False)
            return True

    def increment(self, key: str, amount: int, ttl: float) -> int:
        """Add to a counter that lives `ttl` seconds from its first increment; return its new value."""
        with self._lock:
            now = self._clock()
            self._expire_locked(now)
            value, expires = self._counters.get(key, (0, now + ttl))
            if key not in self._counters:
                heapq.heappush(self._counter_expiry, (expires, key))
            self._counters[key] = (value + amount, expires)
            return value + amount

    def counter(self, key: str) -> int:
        """Return a counter's value; 0 if it does not exist or has expired."""
        with self._lock:
            self._expire_locked(self._clock())
            return self._counters.get(key, (0, 0.0))[0]

    def ping(self) -> bool:
        """Return True: memory is always there."""
        return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._conversations)

    def _expire_locked(self, now: float) -> int:
        removed = 0
        while self._conversations:
            psid, oldest = next(iter(self._conversations.items()))
            if now - oldest.last_active < self._ttl:
                break
            del self._conversations[psid]
            removed += 1
        while self._event_ids:
            event_id, seen_at = next(iter(self._event_ids.items()))
            if now - seen_at < self._dedup_ttl:
                break
            del self._event_ids[event_id]
        while self._counter_expiry and self._counter_expiry[0][0] <= now:
            _, key = heapq.heappop(self._counter_expiry)
            del self._counters[key]
        if removed:
            logger.info("forgot %d idle conversations; %d remain", removed, len(self._conversations))
        return removed
