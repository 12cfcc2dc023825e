"""The in-memory store: fast, bounded, and gone when the process stops."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from inboxgpt.store import (
    MAX_QUOTES,
    Bounds,
    Queued,
    Turn,
    cut_answer,
    entry_text,
    names_person,
    newest_turns_within,
    record_of,
)

logger = logging.getLogger(__name__)


@dataclass
class _Transcript:
    # (kept at, by the store's clock; the entry), oldest first.
    entries: deque[tuple[float, str]] = field(default_factory=deque)
    fields: dict[str, str] = field(default_factory=dict)
    last: float = 0.0


@dataclass
class _Conversation:
    turns: list[Turn]
    last_active: float
    quotes: OrderedDict[str, str] = field(default_factory=OrderedDict)


class MemoryStore:
    """A thread-safe in-memory store, bounded in people, turns per person, and event ids."""

    # One process's memory: no other process sees it.
    shared = False

    @classmethod
    def from_url(cls, url: str, bounds: Bounds) -> MemoryStore:
        """A new, empty store (memory:// names nothing more)."""
        return cls(bounds)

    def __init__(self, bounds: Bounds, clock: Callable[[], float] = time.monotonic):
        self._max_messages = bounds.max_messages
        self._max_tokens = bounds.max_tokens
        self._ttl = bounds.ttl
        self._max_conversations = bounds.max_conversations
        self._dedup_ttl = bounds.dedup_ttl
        self._dedup_max_ids = bounds.dedup_max_ids
        self._clock = clock
        self._lock = threading.Lock()
        # Both maps are kept in order of last use, so expiry and eviction pop from the front.
        self._conversations: OrderedDict[str, _Conversation] = OrderedDict()
        self._event_ids: OrderedDict[str, float] = OrderedDict()
        # Counters have different lifetimes, so their expiry times are kept in a heap.
        self._counters: dict[str, tuple[int, float]] = {}
        self._counter_expiry: list[tuple[float, str]] = []
        self._queues: dict[str, deque[str]] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        # psid -> (until, kept until by this store's clock); expired ones are dropped as they are read.
        self._pauses: dict[str, tuple[float, float]] = {}
        # The business's records (leads) by kind and id: (when kept, text).
        self._records: dict[str, dict[str, tuple[float, str]]] = {}
        # When the kinds kept with a lifetime are forgotten (a few: a day's spenders), by this store's clock.
        self._records_expire: dict[str, float] = {}
        # (psid, message id) -> kept until, of messages the bot sent: in the order sent, so expiry pops the front.
        self._sent: OrderedDict[tuple[str, str], float] = OrderedDict()
        # alias -> (the key it stands for, kept until): in the order last used, so expiry pops the front.
        self._links: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._transcript_ttl = bounds.transcript_ttl
        self._transcript_max_entries = bounds.transcript_max_entries
        # Transcripts in order of their newest entry, so expiry and eviction pop from the front.
        self._transcripts: OrderedDict[str, _Transcript] = OrderedDict()
        self._staff: dict[str, str] = {}

    def get(self, psid: str) -> list[Turn]:
        """Return the person's turns, oldest first; empty if none or expired."""
        with self._lock:
            self._expire_locked(self._clock())
            conversation = self._conversations.get(psid)
            return list(conversation.turns) if conversation else []

    def append(self, psid: str, turn: Turn) -> None:
        """Add a whole turn to the person's history, trimming it to the bounds."""
        with self._lock:
            conversation = self._touch_locked(psid)
            conversation.turns = newest_turns_within([*conversation.turns, turn], self._max_messages, self._max_tokens)

    def remember(self, psid: str, mid: str, text: str) -> None:
        """Keep a message's text (the newest MAX_QUOTES per person), so a reply to it can quote it."""
        with self._lock:
            self._remember_locked(psid, [(mid, text)])

    def _remember_locked(self, psid: str, messages: Sequence[tuple[str, str]]) -> None:
        quotes = self._touch_locked(psid).quotes
        for mid, text in messages:
            quotes[mid] = text
        while len(quotes) > MAX_QUOTES:
            quotes.popitem(last=False)

    def recall(self, psid: str, mid: str) -> str | None:
        """Return a remembered message's text, or None."""
        with self._lock:
            self._expire_locked(self._clock())
            conversation = self._conversations.get(psid)
            return conversation.quotes.get(mid) if conversation else None

    def _touch_locked(self, psid: str) -> _Conversation:
        """The person's conversation, created if need be, marked as the most recently active."""
        now = self._clock()
        self._expire_locked(now)
        conversation = self._conversations.pop(psid, None) or _Conversation([], now)
        conversation.last_active = now
        self._conversations[psid] = conversation
        while len(self._conversations) > self._max_conversations:
            self._conversations.popitem(last=False)
        return conversation

    def remember_sent(self, psid: str, sent: Sequence[tuple[str, str]], ttl: float) -> None:
        """Keep the messages the bot sent the person: their text as quotes, their ids for `ttl` seconds."""
        with self._lock:
            self._remember_locked(psid, sent)
            now = self._clock()
            for mid, _ in sent:
                self._sent[psid, mid] = now + ttl
                self._sent.move_to_end((psid, mid))
            while len(self._sent) > self._dedup_max_ids:
                self._sent.popitem(last=False)

    def was_sent(self, psid: str, mid: str) -> bool:
        """Whether the bot sent this message (within the `ttl` it was noted for)."""
        with self._lock:
            return self._sent.get((psid, mid), 0.0) > self._clock()

    def take_back(self, psid: str, start: str) -> bool:
        """Cut the newest answer that holds `start` from there on; False if none holds it."""
        with self._lock:
            self._expire_locked(self._clock())
            conversation = self._conversations.get(psid)
            turns = conversation.turns if conversation else []
            for number in reversed(range(len(turns))):
                cut = cut_answer(turns[number], start)
                if cut is not None:
                    turns[number] = cut
                    return True
            return False

    def link_keys(self, links: Sequence[tuple[str, str]]) -> list[str]:
        """For each (alias, key), the key the alias stands for, linking it to `key` if it stands for none."""
        with self._lock:
            now = self._clock()
            self._expire_locked(now)
            found = []
            for alias, key in links:
                linked = self._links.pop(alias, (key, 0.0))[0]
                self._links[alias] = (linked, now + self._ttl)
                found.append(linked)
            while len(self._links) > self._max_conversations:
                self._links.popitem(last=False)
            return found

    def reset(self, psid: str) -> None:
        """Forget the person's history."""
        with self._lock:
            self._conversations.pop(psid, None)

    def expire(self) -> int:
        """Remove idle conversations and old event ids; return how many conversations went."""
        with self._lock:
            return self._expire_locked(self._clock())

    def accept(self, events: Sequence[Queued]) -> list[bool]:
        """Queue each event for its person unless its id was seen within its lifetime; return whether each was."""
        with self._lock:
            now = self._clock()
            self._expire_locked(now)
            return [self._accept_locked(event, now) for event in events]

    def _accept_locked(self, event: Queued, now: float) -> bool:
        if event.event_id in self._event_ids:
            return False
        self._event_ids[event.event_id] = now
        while len(self._event_ids) > self._dedup_max_ids:
            self._event_ids.popitem(last=False)
        self._queues.setdefault(event.psid, deque()).append(event.item)
        return True

    def increment(self, key: str, amount: int, ttl: float) -> int:
        """Add to a counter that lives `ttl` seconds from its first increment; return its new value."""
        with self._lock:
            now = self._clock()
            self._expire_locked(now)
            return self._increment_locked(key, amount, ttl, now)

    def increment_all(self, amounts: Sequence[tuple[str, int, float]]) -> None:
        """Add to several counters, each as `increment` does, under one lock."""
        with self._lock:
            now = self._clock()
            self._expire_locked(now)
            for key, amount, ttl in amounts:
                self._increment_locked(key, amount, ttl, now)

    def _increment_locked(self, key: str, amount: int, ttl: float, now: float) -> int:
        value, expires = self._counters.get(key, (0, now + ttl))
        if key not in self._counters:
            heapq.heappush(self._counter_expiry, (expires, key))
        self._counters[key] = (value + amount, expires)
        return value + amount

    def increment_below(self, amounts: Sequence[tuple[str, int, float, int]]) -> str | None:
        """Add to several counters, each as `increment` does, under one lock, if every one with a ceiling is below
        it; else add to none and return the first key that is not."""
        with self._lock:
            now = self._clock()
            self._expire_locked(now)
            for key, _, _, ceiling in amounts:
                if ceiling and self._counters.get(key, (0, 0.0))[0] >= ceiling:
                    return key
            for key, amount, ttl, _ in amounts:
                self._increment_locked(key, amount, ttl, now)
            return None

    def counter(self, key: str) -> int:
        """Return a counter's value; 0 if it does not exist or has expired."""
        with self._lock:
            self._expire_locked(self._clock())
            return self._counters.get(key, (0, 0.0))[0]

    def counters(self, keys: Sequence[str]) -> list[int]:
        """Each counter's value, as `counter` gives it."""
        with self._lock:
            self._expire_locked(self._clock())
            return [self._counters.get(key, (0, 0.0))[0] for key in keys]

    def pause(self, psid: str, until: float, ttl: float) -> None:
        """Keep the bot silent for the person until `until` (seconds, in Meta's time); kept `ttl` seconds at most."""
        with self._lock:
            now = self._clock()
            # Pauses are few (people a person from the page is talking to): a sweep costs nothing.
            self._pauses = {key: value for key, value in self._pauses.items() if value[1] > now}
            self._pauses[psid] = (until, now + ttl)

    def paused_until(self, psid: str) -> float:
        """When the person's pause ends (seconds, in Meta's time), or 0.0 if none is kept."""
        with self._lock:
            until, kept_until = self._pauses.get(psid, (0.0, 0.0))
            return until if kept_until > self._clock() else 0.0

    def unpause(self, psid: str) -> None:
        """End the person's pause now."""
        with self._lock:
            self._pauses.pop(psid, None)

    def keep_record(self, kind: str, record_id: str, text: str, at: float, ttl: float | None = None) -> bool:
        """Keep a record under its id, once: False if one with that id is kept already; with `ttl`, the kind is
        forgotten `ttl` seconds after its newest record."""
        with self._lock:
            self._expire_locked(self._clock())
            kept = self._records.setdefault(kind, {})
            if record_id in kept:
                return False
            kept[record_id] = (at, text)
            if ttl is not None:
                self._records_expire[kind] = self._clock() + ttl
            return True

    def records(self, kind: str, since: float) -> list[str]:
        """The records of a kind kept at or after `since`, oldest first."""
        with self._lock:
            self._expire_locked(self._clock())
            kept = sorted(self._records.get(kind, {}).values(), key=lambda record: record[0])
        return [text for at, text in kept if at >= since]

    def forget_record(self, kind: str, record_id: str) -> None:
        """Remove a record, so that one may be kept under its id again."""
        with self._lock:
            self._records.get(kind, {}).pop(record_id, None)

    def ping(self) -> bool:
        """Return True: memory can always be written."""
        return True

    def close(self) -> None:
        """Nothing to let go of."""

    def peek(self, psid: str, limit: int = 1) -> list[str]:
        """Return the first `limit` events of the person's queue (none if it is empty)."""
        with self._lock:
            return list(itertools.islice(self._queues.get(psid, ()), limit))

    def pop(self, psid: str, owner: str, handled: Sequence[str], limit: int = 1) -> list[str] | None:
        """Remove the handled events from the person's queue and return the next `limit`, if `owner` still holds
        the person's lock; else None."""
        with self._lock:
            holder, expires = self._locks.get(psid, ("", 0.0))
            if holder != owner or expires <= self._clock():
                return None
            queue = self._queues.get(psid, deque())
            for item in handled:
                with contextlib.suppress(ValueError):  # already gone
                    queue.remove(item)
            if not queue:
                self._queues.pop(psid, None)
                return []
            return list(itertools.islice(queue, limit))

    def pending(self) -> list[str]:
        """Return the people whose queues hold events."""
        with self._lock:
            return list(self._queues)

    def take_lock(self, psid: str, owner: str, ttl: float) -> bool:
        """Take (or, for its owner, extend) the person's lock for `ttl` seconds; False if another holds it."""
        with self._lock:
            now = self._clock()
            holder, expires = self._locks.get(psid, (owner, now))
            if holder != owner and expires > now:
                return False
            self._locks[psid] = (owner, now + ttl)
            return True

    def release_lock(self, psid: str, owner: str) -> None:
        """Let go of the person's lock, if `owner` holds it."""
        with self._lock:
            if self._locks.get(psid, ("", 0.0))[0] == owner:
                del self._locks[psid]

    def keep_transcript(self, psid: str, entry: str, fields: Mapping[str, str]) -> None:
        """Append an entry to the person's transcript and merge `fields` into its summary, trimmed to the bounds."""
        with self._lock:
            now = self._clock()
            self._entries_locked(psid, self._expire_transcripts_locked(now))
            transcript = self._transcripts.pop(psid, None) or _Transcript()
            transcript.entries.append((now, entry))
            while len(transcript.entries) > self._transcript_max_entries:
                transcript.entries.popleft()
            transcript.fields.update(fields)
            transcript.last = now
            self._transcripts[psid] = transcript
            while len(self._transcripts) > self._max_conversations:
                self._transcripts.popitem(last=False)

    def transcript(self, psid: str) -> list[str]:
        """The person's transcript entries still kept, oldest first."""
        with self._lock:
            return [entry for _, entry in self._entries_locked(psid, self._expire_transcripts_locked(self._clock()))]

    def transcript_summary(self, psid: str) -> dict[str, str]:
        """The summary fields of the person's conversation; empty if no transcript is kept."""
        with self._lock:
            self._expire_transcripts_locked(self._clock())
            transcript = self._transcripts.get(psid)
            return dict(transcript.fields) if transcript else {}

    def transcript_people(self, limit: int) -> list[tuple[str, dict[str, str]]]:
        """The newest `limit` conversations with a transcript, most recently active first."""
        with self._lock:
            self._expire_transcripts_locked(self._clock())
            newest = itertools.islice(reversed(self._transcripts.items()), limit)
            return [(psid, dict(transcript.fields)) for psid, transcript in newest]

    def search_transcripts(self, words: str, limit: int) -> list[str]:
        """The people whose transcript has an entry whose text holds `words`, ignoring case."""
        wanted = words.casefold()
        with self._lock:
            oldest_kept = self._expire_transcripts_locked(self._clock())
            found = (
                psid
                for psid in reversed(self._transcripts)
                if any(wanted in entry_text(entry).casefold() for _, entry in self._entries_locked(psid, oldest_kept))
            )
            return list(itertools.islice(found, limit))

    def forget_transcript(self, psid: str) -> None:
        """Delete the person's transcript and its summary."""
        with self._lock:
            self._transcripts.pop(psid, None)

    def forget_person(self, psid: str) -> list[str]:
        """Delete everything kept under the person's key; return the other keys linked to it."""
        with self._lock:
            self._conversations.pop(psid, None)
            self._transcripts.pop(psid, None)
            self._pauses.pop(psid, None)
            self._queues.pop(psid, None)
            self._locks.pop(psid, None)
            for sent in [sent for sent in self._sent if sent[0] == psid]:
                del self._sent[sent]
            linked = [alias for alias, (key, _) in self._links.items() if key == psid and alias != psid]
            if psid in self._links:
                linked.append(self._links.pop(psid)[0])
            for alias in linked:
                self._links.pop(alias, None)
            for event_id in [event_id for event_id in self._event_ids if names_person(event_id, psid)]:
                del self._event_ids[event_id]
            counted = {key for key in self._counters if names_person(key, psid)}
            for key in counted:
                del self._counters[key]
            self._counter_expiry = [(at, key) for at, key in self._counter_expiry if key not in counted]
            heapq.heapify(self._counter_expiry)
            for kind in [kind for kind in self._records if names_person(kind, psid)]:
                self._records.pop(kind)
                self._records_expire.pop(kind, None)
            for kept_records in self._records.values():
                for record_id in [rid for rid, (_, text) in kept_records.items() if record_of(rid, text, psid)]:
                    del kept_records[record_id]
            return sorted({key for key in linked if key != psid})

    def _expire_transcripts_locked(self, now: float) -> float:
        """Drop the transcripts whose newest entry ran out; return the time before which entries run out."""
        oldest_kept = now - self._transcript_ttl
        while self._transcripts and next(iter(self._transcripts.values())).last <= oldest_kept:
            self._transcripts.popitem(last=False)
        return oldest_kept

    def _entries_locked(self, psid: str, oldest_kept: float) -> deque[tuple[float, str]]:
        """A person's entries, those that ran out dropped first (each transcript as it is read or written)."""
        transcript = self._transcripts.get(psid)
        if transcript is None:
            return deque()
        while transcript.entries and transcript.entries[0][0] <= oldest_kept:
            transcript.entries.popleft()
        return transcript.entries

    def put_staff(self, name: str, record: str) -> None:
        """Keep (or replace) a staff account's record."""
        with self._lock:
            self._staff[name] = record

    def staff_record(self, name: str) -> str | None:
        """A staff account's record, or None."""
        with self._lock:
            return self._staff.get(name)

    def staff_names(self) -> list[str]:
        """Every staff account's name, sorted."""
        with self._lock:
            return sorted(self._staff)

    def remove_staff(self, name: str) -> bool:
        """Remove a staff account; False if there was none."""
        with self._lock:
            return self._staff.pop(name, None) is not None

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
        while self._sent and next(iter(self._sent.values())) <= now:
            self._sent.popitem(last=False)
        for kind in [kind for kind, expires in self._records_expire.items() if expires <= now]:
            del self._records_expire[kind], self._records[kind]
        while self._links and next(iter(self._links.values()))[1] <= now:
            self._links.popitem(last=False)
        while self._counter_expiry and self._counter_expiry[0][0] <= now:
            _, key = heapq.heappop(self._counter_expiry)
            del self._counters[key]
        if removed:
            logger.info("forgot %d idle conversations; %d remain", removed, len(self._conversations))
        return removed
