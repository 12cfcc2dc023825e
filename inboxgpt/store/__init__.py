"""Where conversations live: each person's history, the events already taken, counters, and per-person queues.

`open_store(settings)` picks the backend from STORE_URL: memory:// (one process), sqlite:///path
(one machine, any number of workers and restarts) or redis://host:port/db (several machines).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from inboxgpt.model.prompt import Turn, newest_turns_within

if TYPE_CHECKING:
    from inboxgpt.config import Settings

__all__ = ["Turn", "cut_answer", "newest_turns_within"]

logger = logging.getLogger(__name__)

# Messages remembered per person for replies that quote them.
MAX_QUOTES = 50
# Transcript entries kept per person: the newest, whatever TRANSCRIPT_DAYS allows.
TRANSCRIPT_MAX_ENTRIES = 2000


def cut_answer(turn: Turn, start: str) -> Turn | None:
    """The turn with its answer cut where `start` last begins in it (what follows never arrived), or None if its
    answer does not hold `start`."""
    at = turn.assistant.rfind(start) if start else -1
    return Turn(turn.user, turn.assistant[:at].rstrip()) if at >= 0 else None


@dataclass(frozen=True)
class Queued:
    """An event as a store queues it: its id (for redeliveries), its person, and its serialised form."""

    event_id: str
    psid: str
    item: str


class Store(Protocol):
    """What the bot needs from a store; a shared backend implements the same methods."""

    # True when other processes (on this machine, or others) see the same store.
    shared: bool

    def get(self, psid: str) -> list[Turn]:
        """Return the person's turns, oldest first; empty if none or expired."""

    def append(self, psid: str, turn: Turn) -> None:
        """Add a whole turn to the person's history, trimming it to the bounds."""

    def reset(self, psid: str) -> None:
        """Forget the person's history and remembered messages."""

    def remember(self, psid: str, mid: str, text: str) -> None:
        """Keep a message's text (the newest MAX_QUOTES per person), so a reply to it can quote it."""

    def recall(self, psid: str, mid: str) -> str | None:
        """Return a remembered message's text, or None."""

    def remember_sent(self, psid: str, sent: Sequence[tuple[str, str]], ttl: float) -> None:
        """Keep the messages (id, text) the bot sent the person, in one step: their text as quotes (see `remember`),
        and their ids so that their echoes are known as the bot's own for `ttl` seconds; the ids are kept apart
        from quotes, never pushed out by the person's messages, and not forgotten by /reset."""

    def was_sent(self, psid: str, mid: str) -> bool:
        """Whether the bot sent this message (within the `ttl` it was noted for)."""

    def take_back(self, psid: str, start: str) -> bool:
        """Cut the newest answer in the person's history that holds `start` (the beginning of a message of the
        bot's that never reached them) from there on, so that the history keeps only what arrived; False if no
        answer holds it."""

    def link_keys(self, links: Sequence[tuple[str, str]]) -> list[str]:
        """For each (alias, key), the key the alias stands for: the one it was first linked to, or else `key`, linked
        now; all in one step. A link lives as long as an idle conversation (the `ttl` bound) from its last use."""

    def expire(self) -> int:
        """Remove idle conversations and old event ids; return how many conversations went."""

    def accept(self, events: Sequence[Queued]) -> list[bool]:
        """Queue each event for its person unless its id was seen within its lifetime, all in one step (one
        transaction, one round trip); return whether each was queued."""

    def increment(self, key: str, amount: int, ttl: float) -> int:
        """Add to a counter that lives `ttl` seconds from its first increment; return its new value."""

    def increment_all(self, amounts: Sequence[tuple[str, int, float]]) -> None:
        """Add to several counters (key, amount, ttl), each as `increment` does, in one step (one transaction, one
        round trip)."""

    def increment_below(self, amounts: Sequence[tuple[str, int, float, int]]) -> str | None:
        """Add to several counters (key, amount, ttl, ceiling), each as `increment` does, in one atomic step, if
        every one with a ceiling (0: none) is below it; else add to none and return the key of the first that is
        not. A hold on money caps: checked and taken together, so that workers at once cannot all pass."""

    def counter(self, key: str) -> int:
        """Return a counter's value; 0 if it does not exist or has expired."""

    def counters(self, keys: Sequence[str]) -> list[int]:
        """Each counter's value, as `counter` gives it, read in one step (one query, one round trip)."""

    def pause(self, psid: str, until: float, ttl: float) -> None:
        """Keep the bot silent for the person until `until` (seconds, in Meta's time); kept `ttl` seconds at most."""

    def paused_until(self, psid: str) -> float:
        """When the person's pause ends (seconds, in Meta's time), or 0.0 if none is kept."""

    def unpause(self, psid: str) -> None:
        """End the person's pause now."""

    def keep_record(self, kind: str, record_id: str, text: str, at: float, ttl: float | None = None) -> bool:
        """Keep a record of the business's (a lead) under its id, once: False if one with that id is kept already.
        Records are kept until removed by hand: they are the owner's, not the conversation's. With `ttl`, the
        records of the kind are forgotten `ttl` seconds after the newest of them was kept (on Redis, the last one
        offered): a kind kept so is short-lived as a whole, such as the people who spent on one day."""

    def records(self, kind: str, since: float) -> list[str]:
        """The records of a kind kept at or after `since` (seconds since 1970), oldest first."""

    def forget_record(self, kind: str, record_id: str) -> None:
        """Remove a record, so that `keep_record` may keep one under its id again."""

    def ping(self) -> bool:
        """Return True if the store can be written now; never raises."""

    def close(self) -> None:
        """Let go of connections; the store is not used afterwards."""

    def peek(self, psid: str, limit: int = 1) -> list[str]:
        """Return the first `limit` events of the person's queue (none if it is empty)."""

    def pop(self, psid: str, owner: str, handled: Sequence[str], limit: int = 1) -> list[str] | None:
        """Remove the handled events (as `peek` showed them) from the person's queue, and return the next `limit`,
        if `owner` still holds the person's lock; else remove nothing and return None."""

    def pending(self) -> list[str]:
        """Return the people whose queues hold events."""

    def take_lock(self, psid: str, owner: str, ttl: float) -> bool:
        """Take (or, for its owner, extend) the person's lock for `ttl` seconds; False if another holds it."""

    def release_lock(self, psid: str, owner: str) -> None:
        """Let go of the person's lock, if `owner` holds it."""

    # --- transcripts (the owner's console), apart from the history the model reads ---

    def keep_transcript(self, psid: str, entry: str, fields: Mapping[str, str]) -> None:
        """Append an entry (a JSON object with a "text") to the person's transcript and merge `fields` into their
        conversation's summary, in one step. Entries older than `transcript_ttl` go, then a person's oldest past
        `transcript_max_entries`, then the least recently active people past `max_conversations`."""

    def transcript(self, psid: str) -> list[str]:
        """The person's transcript entries still kept, oldest first."""

    def transcript_summary(self, psid: str) -> dict[str, str]:
        """The summary fields of the person's conversation; empty if no transcript is kept."""

    def transcript_people(self, limit: int) -> list[tuple[str, dict[str, str]]]:
        """The newest `limit` conversations with a transcript, most recently active first, with their summaries."""

    def search_transcripts(self, words: str, limit: int) -> list[str]:
        """The people (at most `limit`, most recently active first) whose transcript has an entry whose text holds
        `words`, ignoring case."""

    def forget_transcript(self, psid: str) -> None:
        """Delete the person's transcript and its summary."""

    def forget_person(self, psid: str) -> list[str]:
        """Delete everything kept under the person's key: history and quotes, transcript and summary, pause, queued
        events and lock, the ids of what the bot sent them, the links from or to the key, the counters and event ids
        that name the key (`names_person`), and the records that are theirs (`record_of`). Return the other keys
        the links joined to it (the same person, known by another id), which are not forgotten here."""

    # --- staff accounts of the console ---

    def put_staff(self, name: str, record: str) -> None:
        """Keep (or replace) a staff account's record (JSON: its password hash, when it last signed out)."""

    def staff_record(self, name: str) -> str | None:
        """A staff account's record, or None if there is no such account."""

    def staff_names(self) -> list[str]:
        """Every staff account's name, sorted."""

    def remove_staff(self, name: str) -> bool:
        """Remove a staff account; False if there was none of that name."""


@dataclass(frozen=True)
class Bounds:
    """How much a store keeps: history per person, people, and event ids."""

    max_messages: int
    max_tokens: int
    ttl: float
    max_conversations: int
    dedup_ttl: float
    dedup_max_ids: int
    # TRANSCRIPT_DAYS in seconds (0: the recorder keeps none), and the entries one person's may hold.
    transcript_ttl: float = 90 * 86400.0
    transcript_max_entries: int = TRANSCRIPT_MAX_ENTRIES

    @classmethod
    def from_settings(cls, settings: Settings) -> Bounds:
        """The bounds the settings ask for."""
        return cls(
            max_messages=settings.history_max_messages,
            max_tokens=settings.history_max_tokens,
            ttl=settings.conversation_ttl,
            max_conversations=settings.max_conversations,
            dedup_ttl=settings.dedup_ttl,
            dedup_max_ids=settings.dedup_max_ids,
            transcript_ttl=settings.transcript_days * 86400,
        )


def names_person(name: str, psid: str) -> bool:
    """Whether a name the store keeps things under (a counter's key, an event id, a record's kind: parts joined by
    ":") holds the person's key as whole parts: "limit:ig:42:canned:9" names "ig:42" (and "42", a Messenger key
    of the same digits: rare, and what is lost is a count)."""
    parts, wanted = name.split(":"), psid.split(":")
    return any(parts[at : at + len(wanted)] == wanted for at in range(len(parts) - len(wanted) + 1))


def record_of(record_id: str, text: str, psid: str) -> bool:
    """Whether a record is the person's: kept under their key, or its text is their key or a JSON object with
    their key as one of its values (a lead's "person")."""
    if psid in (record_id, text):
        return True
    if psid not in text:
        return False
    try:
        found = json.loads(text)
    except ValueError:
        return False
    return isinstance(found, dict) and psid in found.values()


def entry_text(entry: str) -> str:
    """The text of a transcript entry, as a search reads it."""
    text = json.loads(entry).get("text")
    return text if isinstance(text, str) else ""


class StoreUnavailable(Exception):
    """The store named by STORE_URL cannot be used (now, or at all)."""


StoreClass = TypeVar("StoreClass", bound=type)


def unavailable_on(*errors: type[Exception], drop: str | None = None) -> Callable[[StoreClass], StoreClass]:
    """Class decorator: a backend's public methods raise its client's `errors` as StoreUnavailable.

    `drop` names a method that lets go of the connection that failed, so the next call opens a new one.
    """

    def translate(method: Callable) -> Callable:
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except errors as exc:
                if drop:
                    getattr(self, drop)()
                raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

        return wrapper

    def decorate(cls: StoreClass) -> StoreClass:
        for name, member in list(vars(cls).items()):
            if callable(member) and not name.startswith("_"):
                setattr(cls, name, translate(member))
        return cls

    return decorate


class Backend(Protocol):
    """A store class: whether it is shared, and how it opens the store a URL names."""

    shared: bool

    def from_url(self, url: str, bounds: Bounds) -> Store:
        """Open the store; raise StoreUnavailable if it cannot be reached."""


def backend(url: str) -> Backend:
    """The store class a STORE_URL names (not opened); raise StoreUnavailable for an unknown scheme."""
    scheme = url.split(":", 1)[0]
    if scheme == "memory":
        from inboxgpt.store.memory import MemoryStore

        return MemoryStore
    if scheme == "sqlite":
        from inboxgpt.store.sqlite import SQLiteStore

        return SQLiteStore
    if scheme in ("redis", "rediss"):
        from inboxgpt.store.redis import RedisStore

        return RedisStore
    raise StoreUnavailable(f"STORE_URL has an unknown scheme {scheme!r}: use memory://, sqlite:/// or redis://")


def open_store(settings: Settings) -> Store:
    """Open the store STORE_URL names; raise StoreUnavailable if it cannot be reached."""
    return backend(settings.store_url).from_url(settings.store_url, Bounds.from_settings(settings))
