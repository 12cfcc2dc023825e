"""The Redis store: conversations shared by workers on several machines, trimmed atomically by Lua scripts."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlsplit

import redis

from inboxgpt.store import (
    MAX_QUOTES,
    Bounds,
    Queued,
    StoreUnavailable,
    Turn,
    entry_text,
    names_person,
    record_of,
    unavailable_on,
)

logger = logging.getLogger(__name__)

PREFIX = "mgpt:"
# Transcripts a search reads in one round trip.
SEARCH_PAGE = 100

# Appends a turn, drops the oldest whole turns past the bounds, refreshes the idle expiry, and
# forgets the least recently active people past the limit: all in one atomic step.
APPEND = """
local conversation, people = KEYS[1], KEYS[2]
local max_messages, max_tokens = tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl_ms, now, max_people = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('RPUSH', conversation, ARGV[1])
local turns = redis.call('LRANGE', conversation, 0, -1)
local kept, tokens = 0, 0
for i = #turns, 1, -1 do
  local turn_tokens = cjson.decode(turns[i])['t']
  if (kept + 1) * 2 > max_messages or tokens + turn_tokens > max_tokens then break end
  kept, tokens = kept + 1, tokens + turn_tokens
end
if kept == 0 then
  redis.call('DEL', conversation)
else
  redis.call('LTRIM', conversation, #turns - kept, -1)
  redis.call('PEXPIRE', conversation, ttl_ms)
end
redis.call('ZADD', people, now, ARGV[7])
redis.call('ZREMRANGEBYSCORE', people, '-inf', now - ttl_ms / 1000)
local excess = redis.call('ZCARD', people) - max_people
if excess > 0 then
  local gone = redis.call('ZPOPMIN', people, excess)
  for i = 1, #gone, 2 do
    redis.call('DEL', ARGV[8] .. 'conv:' .. gone[i], ARGV[8] .. 'quotes:' .. gone[i], ARGV[8] .. 'quote-order:' .. gone[i])
  end
end
"""
# Keeps a message's text in the person's hash, dropping the oldest past the limit.
REMEMBER = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[1])
while redis.call('LLEN', KEYS[2]) > tonumber(ARGV[3]) do
  redis.call('HDEL', KEYS[1], redis.call('LPOP', KEYS[2]))
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
"""
ACCEPT = """
if not redis.call('SET', KEYS[1], 1, 'NX', 'PX', ARGV[1]) then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
"""
INCREMENT = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if value == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value
"""
# Adds to every counter (KEYS, with ARGV's amount, lifetime in ms and ceiling for each, in threes) if each one
# with a ceiling (0: none) is below it; else to none, returning the first key that is not.
INCREMENT_BELOW = """
for i = 1, #KEYS do
  local ceiling = tonumber(ARGV[3 * i])
  if ceiling > 0 and tonumber(redis.call('GET', KEYS[i]) or '0') >= ceiling then return KEYS[i] end
end
for i = 1, #KEYS do
  local amount = tonumber(ARGV[3 * i - 2])
  if redis.call('INCRBY', KEYS[i], amount) == amount then redis.call('PEXPIRE', KEYS[i], ARGV[3 * i - 1]) end
end
return false
"""
# Removes the handled events, only while the lock is the caller's (-1 otherwise), and returns the next ones.
POP = """
if redis.call('GET', KEYS[3]) ~= ARGV[2] then return -1 end
for i = 4, #ARGV do redis.call('LREM', KEYS[1], 1, ARGV[i]) end
local following = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
if #following == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return following
"""
TAKE_LOCK = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""

# Appends a transcript entry ("<kept at>|<entry>"), drops the person's entries that ran out and those past the cap,
# merges the summary's fields, and forgets the least recently active people past the limit: in one atomic step.
KEEP_TRANSCRIPT = """
local entries, fields, people = KEYS[1], KEYS[2], KEYS[3]
local now, ttl_ms, max_entries, max_people = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local oldest_kept = now - ttl_ms / 1000
redis.call('RPUSH', entries, ARGV[5])
while true do
  local first = redis.call('LINDEX', entries, 0)
  if not first or tonumber(string.match(first, '^[^|]+')) > oldest_kept then break end
  redis.call('LPOP', entries)
end
redis.call('LTRIM', entries, -max_entries, -1)
for i = 8, #ARGV, 2 do redis.call('HSET', fields, ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', entries, ttl_ms)
redis.call('PEXPIRE', fields, ttl_ms)
redis.call('ZADD', people, now, ARGV[6])
redis.call('ZREMRANGEBYSCORE', people, '-inf', oldest_kept)
local excess = redis.call('ZCARD', people) - max_people
if excess > 0 then
  local gone = redis.call('ZPOPMIN', people, excess)
  for i = 1, #gone, 2 do
    redis.call('DEL', ARGV[7] .. 'transcript:' .. gone[i], ARGV[7] .. 'transcript-fields:' .. gone[i])
  end
end
"""


# Cuts the newest answer that holds ARGV[1] where it last begins (what follows never arrived); 1 if one did.
TAKE_BACK = """
local turns = redis.call('LRANGE', KEYS[1], 0, -1)
for i = #turns, 1, -1 do
  local turn = cjson.decode(turns[i])
  local at, from = nil, 1
  while true do
    local found = string.find(turn['a'], ARGV[1], from, true)
    if not found then break end
    at, from = found, found + 1
  end
  if at then
    turn['a'] = (string.gsub(string.sub(turn['a'], 1, at - 1), '%s+$', ''))
    redis.call('LSET', KEYS[1], i - 1, cjson.encode(turn))
    return 1
  end
end
return 0
"""
# The key an alias stands for, linking it to ARGV[1] if it stands for none; the link lives ARGV[2] ms from now.
LINK = """
local linked = redis.call('GET', KEYS[1]) or ARGV[1]
redis.call('SET', KEYS[1], linked, 'PX', ARGV[2])
return linked
"""


def text(value: bytes | str | None) -> str | None:
    """A reply as text: the client decodes every reply (decode_responses), which its type hints cannot say."""
    return value.decode() if isinstance(value, bytes) else value


def glob_escaped(literal: str) -> str:
    """A text as a SCAN pattern that matches only itself."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", literal)


def where(url: str) -> str:
    """host:port/db of a Redis URL, without the password it may carry."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"


@unavailable_on(redis.RedisError)
class RedisStore:
    """Conversations in Redis: a list per person with an idle expiry, SET NX EX marks, Lua for atomic steps."""

    # Every process on every machine that reaches the server shares it.
    shared = True

    @classmethod
    def from_url(cls, url: str, bounds: Bounds) -> RedisStore:
        """Connect to the Redis a redis:// URL names."""
        return cls(url, bounds)

    def __init__(self, url: str, bounds: Bounds, clock: Callable[[], float] = time.time):
        self._bounds = bounds
        self._clock = clock
        self._redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5)
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"STORE_URL: cannot reach Redis at {where(url)} ({type(exc).__name__})") from None
        self._append = self._redis.register_script(APPEND)
        self._accept = self._redis.register_script(ACCEPT)
        self._remember = self._redis.register_script(REMEMBER)
        self._increment = self._redis.register_script(INCREMENT)
        self._increment_below = self._redis.register_script(INCREMENT_BELOW)
        self._pop = self._redis.register_script(POP)
        self._take_lock = self._redis.register_script(TAKE_LOCK)
        self._release_lock = self._redis.register_script(RELEASE_LOCK)
        self._take_back = self._redis.register_script(TAKE_BACK)
        self._link = self._redis.register_script(LINK)
        self._keep_transcript = self._redis.register_script(KEEP_TRANSCRIPT)

    def get(self, psid: str) -> list[Turn]:
        """Return the person's turns, oldest first; empty if none or expired."""
        return [Turn(t["u"], t["a"]) for t in map(json.loads, self._redis.lrange(PREFIX + "conv:" + psid, 0, -1))]

    def append(self, psid: str, turn: Turn) -> None:
        """Add a whole turn to the person's history, trimming it to the bounds, atomically."""
        b = self._bounds
        self._append(
            keys=[PREFIX + "conv:" + psid, PREFIX + "people"],
            args=[
                json.dumps({"u": turn.user, "a": turn.assistant, "t": turn.tokens()}),
                b.max_messages,
                b.max_tokens,
                int(b.ttl * 1000),
                self._clock(),
                b.max_conversations,
                psid,
                PREFIX,
            ],
        )

    def reset(self, psid: str) -> None:
        """Forget the person's history and remembered messages."""
        with self._redis.pipeline() as pipe:
            pipe.delete(PREFIX + "conv:" + psid, PREFIX + "quotes:" + psid, PREFIX + "quote-order:" + psid)
            pipe.zrem(PREFIX + "people", psid)
            pipe.execute()

    def remember(self, psid: str, mid: str, text: str) -> None:
        """Keep a message's text (the newest MAX_QUOTES per person), so a reply to it can quote it."""
        self._remember_in(self._redis, psid, mid, text)

    def _remember_in(self, client: redis.Redis | redis.client.Pipeline, psid: str, mid: str, text: str) -> None:
        self._remember(
            keys=[PREFIX + "quotes:" + psid, PREFIX + "quote-order:" + psid],
            args=[mid, text, MAX_QUOTES, int(self._bounds.ttl * 1000)],
            client=client,
        )

    def remember_sent(self, psid: str, sent: Sequence[tuple[str, str]], ttl: float) -> None:
        """Keep the messages the bot sent the person, in one round trip: their text as quotes, their ids for `ttl`
        seconds."""
        with self._redis.pipeline(transaction=False) as pipe:
            for mid, text in sent:
                self._remember_in(pipe, psid, mid, text)
                pipe.set(PREFIX + "sent:" + psid + ":" + mid, 1, px=max(1, int(ttl * 1000)))
            pipe.execute()

    def was_sent(self, psid: str, mid: str) -> bool:
        """Whether the bot sent this message (within the `ttl` it was noted for)."""
        return bool(self._redis.exists(PREFIX + "sent:" + psid + ":" + mid))

    def take_back(self, psid: str, start: str) -> bool:
        """Cut the newest answer that holds `start` from there on, atomically; False if none holds it."""
        return bool(self._take_back(keys=[PREFIX + "conv:" + psid], args=[start]))

    def link_keys(self, links: Sequence[tuple[str, str]]) -> list[str]:
        """For each (alias, key), the key the alias stands for, linking it to `key` if it stands for none; in one
        round trip. A link is a key of its own that expires with an idle conversation's lifetime."""
        ttl_ms = max(1, int(self._bounds.ttl * 1000))
        with self._redis.pipeline(transaction=False) as pipe:
            for alias, key in links:
                self._link(keys=[PREFIX + "link:" + alias], args=[key, ttl_ms], client=pipe)
            return [str(text(linked)) for linked in pipe.execute()]

    def recall(self, psid: str, mid: str) -> str | None:
        """Return a remembered message's text, or None."""
        return text(self._redis.hget(PREFIX + "quotes:" + psid, mid))

    def expire(self) -> int:
        """Drop idle people from the activity index (Redis itself deletes their expired histories)."""
        removed = self._redis.zremrangebyscore(PREFIX + "people", "-inf", self._clock() - self._bounds.ttl)
        if removed:
            logger.info("forgot %d idle conversations", removed)
        return removed

    def accept(self, events: Sequence[Queued]) -> list[bool]:
        """Queue each event for its person unless its id was seen within its lifetime, in one round trip."""
        ttl_ms = int(self._bounds.dedup_ttl * 1000)
        with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                keys = [PREFIX + "event:" + event.event_id, PREFIX + "queue:" + event.psid, PREFIX + "pending"]
                self._accept(keys=keys, args=[ttl_ms, event.item, event.psid], client=pipe)
            return [bool(result) for result in pipe.execute()]

    def increment(self, key: str, amount: int, ttl: float) -> int:
        """Add to a counter that lives `ttl` seconds from its first increment; return its new value."""
        return int(self._increment(keys=[PREFIX + "counter:" + key], args=[amount, int(ttl * 1000)]))

    def increment_all(self, amounts: Sequence[tuple[str, int, float]]) -> None:
        """Add to several counters, each as `increment` does, in one round trip."""
        with self._redis.pipeline(transaction=False) as pipe:
            for key, amount, ttl in amounts:
                self._increment(keys=[PREFIX + "counter:" + key], args=[amount, int(ttl * 1000)], client=pipe)
            pipe.execute()

    def increment_below(self, amounts: Sequence[tuple[str, int, float, int]]) -> str | None:
        """Add to several counters, each as `increment` does, atomically, if every one with a ceiling is below it;
        else add to none and return the first key that is not."""
        args = [value for _, amount, ttl, ceiling in amounts for value in (amount, int(ttl * 1000), ceiling)]
        refused = self._increment_below(keys=[PREFIX + "counter:" + key for key, *_ in amounts], args=args)
        return None if refused is None else str(text(refused)).removeprefix(PREFIX + "counter:")

    def counter(self, key: str) -> int:
        """Return a counter's value; 0 if it does not exist or has expired."""
        return int(self._redis.get(PREFIX + "counter:" + key) or 0)

    def counters(self, keys: Sequence[str]) -> list[int]:
        """Each counter's value, as `counter` gives it, in one round trip."""
        if not keys:
            return []
        return [int(value or 0) for value in self._redis.mget([PREFIX + "counter:" + key for key in keys])]

    def pause(self, psid: str, until: float, ttl: float) -> None:
        """Keep the bot silent for the person until `until` (seconds, in Meta's time); kept `ttl` seconds at most."""
        self._redis.set(PREFIX + "pause:" + psid, repr(until), px=max(1, int(ttl * 1000)))

    def paused_until(self, psid: str) -> float:
        """When the person's pause ends (seconds, in Meta's time), or 0.0 if none is kept."""
        return float(self._redis.get(PREFIX + "pause:" + psid) or 0.0)

    def unpause(self, psid: str) -> None:
        """End the person's pause now."""
        self._redis.delete(PREFIX + "pause:" + psid)

    def keep_record(self, kind: str, record_id: str, text: str, at: float, ttl: float | None = None) -> bool:
        """Keep a record under its id, once: False if one with that id is kept already. Its text and its place in
        time are written in one transaction, each only if absent; with `ttl`, the kind's two keys expire `ttl`
        seconds after the last record offered (in the same transaction)."""
        keys = (PREFIX + "records:" + kind, PREFIX + "records-by-time:" + kind)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(keys[0], record_id, text)
            pipe.zadd(keys[1], {record_id: at}, nx=True)
            if ttl is not None:
                for key in keys:
                    pipe.pexpire(key, max(1, int(ttl * 1000)))
            added = pipe.execute()[0]
        return bool(added)

    def records(self, kind: str, since: float) -> list[str]:
        """The records of a kind kept at or after `since`, oldest first."""
        # Without scores, the range is a list of the members (decoded: decode_responses).
        ids = [str(member) for member in self._redis.zrangebyscore(PREFIX + "records-by-time:" + kind, since, "+inf")]
        if not ids:
            return []
        found = self._redis.hmget(PREFIX + "records:" + kind, ids)
        return [str(text(value)) for value in found if value is not None]

    def forget_record(self, kind: str, record_id: str) -> None:
        """Remove a record, its text and its place in time in one transaction."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(PREFIX + "records:" + kind, record_id)
            pipe.zrem(PREFIX + "records-by-time:" + kind, record_id)
            pipe.execute()

    def ping(self) -> bool:
        """Return True if Redis takes a write (a replica, or a server out of memory, refuses one)."""
        try:
            return bool(self._redis.set(PREFIX + "health", "1", px=10_000))
        except redis.RedisError:
            return False

    def close(self) -> None:
        """Close the connections to Redis."""
        self._redis.close()

    def __len__(self) -> int:
        return self._redis.zcard(PREFIX + "people")

    def peek(self, psid: str, limit: int = 1) -> list[str]:
        """Return the first `limit` events of the person's queue (none if it is empty)."""
        return [str(text(item)) for item in self._redis.lrange(PREFIX + "queue:" + psid, 0, limit - 1)]

    def pop(self, psid: str, owner: str, handled: Sequence[str], limit: int = 1) -> list[str] | None:
        """Remove the handled events from the person's queue and return the next `limit`, atomically, if `owner`
        still holds the person's lock; else None."""
        following = self._pop(
            keys=[PREFIX + "queue:" + psid, PREFIX + "pending", PREFIX + "lock:" + psid],
            args=[psid, owner, limit, *handled],
        )
        if following == -1:
            return None
        return [str(text(item)) for item in following]

    def pending(self) -> list[str]:
        """Return the people whose queues hold events."""
        return sorted(str(text(member)) for member in self._redis.smembers(PREFIX + "pending"))

    def take_lock(self, psid: str, owner: str, ttl: float) -> bool:
        """Take (or, for its owner, extend) the person's lock for `ttl` seconds; False if another holds it."""
        return bool(self._take_lock(keys=[PREFIX + "lock:" + psid], args=[owner, int(ttl * 1000)]))

    def release_lock(self, psid: str, owner: str) -> None:
        """Let go of the person's lock, if `owner` holds it."""
        self._release_lock(keys=[PREFIX + "lock:" + psid], args=[owner])

    def keep_transcript(self, psid: str, entry: str, fields: Mapping[str, str]) -> None:
        """Append an entry to the person's transcript and merge `fields` into its summary, trimmed to the bounds,
        atomically."""
        b = self._bounds
        now = self._clock()
        self._keep_transcript(
            keys=[PREFIX + "transcript:" + psid, PREFIX + "transcript-fields:" + psid, PREFIX + "transcripts"],
            args=[
                repr(now),
                max(1, int(b.transcript_ttl * 1000)),
                b.transcript_max_entries,
                b.max_conversations,
                f"{now!r}|{entry}",
                psid,
                PREFIX,
                *(part for pair in fields.items() for part in pair),
            ],
        )

    def transcript(self, psid: str) -> list[str]:
        """The person's transcript entries still kept, oldest first."""
        oldest_kept = self._clock() - self._bounds.transcript_ttl
        kept = (str(text(item)).partition("|") for item in self._redis.lrange(PREFIX + "transcript:" + psid, 0, -1))
        return [entry for at, _, entry in kept if float(at) > oldest_kept]

    def transcript_summary(self, psid: str) -> dict[str, str]:
        """The summary fields of the person's conversation; empty if no transcript is kept."""
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.zscore(PREFIX + "transcripts", psid)
            pipe.hgetall(PREFIX + "transcript-fields:" + psid)
            last, found = pipe.execute()
        if last is None or last <= self._clock() - self._bounds.transcript_ttl:
            return {}  # ran out (Redis deletes it by its own clock, soon)
        return {str(text(key)): str(text(value)) for key, value in found.items()}

    def transcript_people(self, limit: int) -> list[tuple[str, dict[str, str]]]:
        """The newest `limit` conversations with a transcript, most recently active first."""
        oldest_kept = self._clock() - self._bounds.transcript_ttl
        # Without scores, the range is a list of the members (decoded: decode_responses).
        people = [
            str(member)
            for member in self._redis.zrevrangebyscore(PREFIX + "transcripts", "+inf", f"({oldest_kept!r}", 0, limit)
        ]
        with self._redis.pipeline(transaction=False) as pipe:
            for psid in people:
                pipe.hgetall(PREFIX + "transcript-fields:" + psid)
            summaries = pipe.execute()
        return [
            (psid, {str(text(key)): str(text(value)) for key, value in found.items()})
            for psid, found in zip(people, summaries, strict=True)
        ]

    def search_transcripts(self, words: str, limit: int) -> list[str]:
        """The people whose transcript has an entry whose text holds `words`, ignoring case: every transcript kept
        (at most MAX_CONVERSATIONS) is read, in pages of one round trip each."""
        wanted = words.casefold()
        oldest_kept = self._clock() - self._bounds.transcript_ttl
        people = [str(member) for member in self._redis.zrevrange(PREFIX + "transcripts", 0, -1)]
        found: list[str] = []
        for start in range(0, len(people), SEARCH_PAGE):
            page = people[start : start + SEARCH_PAGE]
            with self._redis.pipeline(transaction=False) as pipe:
                for psid in page:
                    pipe.lrange(PREFIX + "transcript:" + psid, 0, -1)
                transcripts = pipe.execute()
            for psid, items in zip(page, transcripts, strict=True):
                kept = (str(text(item)).partition("|") for item in items)
                if any(float(at) > oldest_kept and wanted in entry_text(entry).casefold() for at, _, entry in kept):
                    found.append(psid)
                    if len(found) == limit:
                        return found
        return found

    def forget_transcript(self, psid: str) -> None:
        """Delete the person's transcript and its summary."""
        with self._redis.pipeline() as pipe:
            pipe.delete(PREFIX + "transcript:" + psid, PREFIX + "transcript-fields:" + psid)
            pipe.zrem(PREFIX + "transcripts", psid)
            pipe.execute()

    def forget_person(self, psid: str) -> list[str]:
        """Delete everything kept under the person's key; return the other keys linked to it. The keys to delete
        are found first (SCAN, filtered by the server on the key's text), then deleted in one transaction."""
        client, pattern = self._redis, glob_escaped(psid)
        own = [
            f"{PREFIX}{part}:{psid}"
            for part in ("conv", "quotes", "quote-order", "transcript", "transcript-fields", "pause", "queue", "lock")
        ]
        doomed = own + [str(key) for key in client.scan_iter(f"{PREFIX}sent:{pattern}:*", count=1000)]
        for kind in ("counter", "event"):
            found = (str(key) for key in client.scan_iter(f"{PREFIX}{kind}:*{pattern}*", count=1000))
            doomed += [key for key in found if names_person(key.removeprefix(f"{PREFIX}{kind}:"), psid)]
        linked = {str(text(client.get(PREFIX + "link:" + psid)) or psid)}
        for link in client.scan_iter(PREFIX + "link:*", count=1000):
            if text(client.get(link)) == psid:
                linked.add(str(link).removeprefix(PREFIX + "link:"))
        doomed += [PREFIX + "link:" + key for key in linked | {psid}]
        unrecorded: list[tuple[str, str]] = []
        for kind in {str(key).removeprefix(PREFIX + "records:") for key in client.scan_iter(PREFIX + "records:*")}:
            if names_person(kind, psid):
                doomed += [PREFIX + "records:" + kind, PREFIX + "records-by-time:" + kind]
                continue
            fields = client.hscan_iter(PREFIX + "records:" + kind, count=1000)
            unrecorded += [(kind, str(rid)) for rid, value in fields if record_of(str(rid), str(text(value)), psid)]
        with client.pipeline(transaction=True) as pipe:
            pipe.delete(*doomed)
            for zset in ("people", "transcripts"):
                pipe.zrem(PREFIX + zset, psid)
            pipe.srem(PREFIX + "pending", psid)
            for kind, record_id in unrecorded:
                pipe.hdel(PREFIX + "records:" + kind, record_id)
                pipe.zrem(PREFIX + "records-by-time:" + kind, record_id)
            pipe.execute()
        return sorted(linked - {psid})

    def put_staff(self, name: str, record: str) -> None:
        """Keep (or replace) a staff account's record."""
        self._redis.hset(PREFIX + "staff", name, record)

    def staff_record(self, name: str) -> str | None:
        """A staff account's record, or None."""
        return text(self._redis.hget(PREFIX + "staff", name))

    def staff_names(self) -> list[str]:
        """Every staff account's name, sorted."""
        return sorted(str(text(name)) for name in self._redis.hkeys(PREFIX + "staff"))

    def remove_staff(self, name: str) -> bool:
        """Remove a staff account; False if there was none."""
        return bool(self._redis.hdel(PREFIX + "staff", name))
