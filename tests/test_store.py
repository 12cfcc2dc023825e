"""The store contract, run against every backend: memory, a real SQLite file, and a real redis-server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from inboxgpt.model.prompt import estimate_tokens, newest_turns_within
from inboxgpt.store import Bounds, Queued, Store, StoreUnavailable, Turn
from inboxgpt.store.memory import MemoryStore
from inboxgpt.store.redis import RedisStore
from inboxgpt.store.sqlite import SQLiteStore

BOUNDS = Bounds(max_messages=6, max_tokens=10_000, ttl=3600, max_conversations=100, dedup_ttl=600, dedup_max_ids=1000)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_764_072_000.0

    def __call__(self) -> float:
        return self.now


class Backend:
    """Builds stores of one backend, with changed bounds, on a clock the test can move."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind, self.url, self.clock = kind, url, Clock()
        self.opened: list[Store] = []

    def __call__(self, **changes: Any) -> Store:
        bounds = replace(BOUNDS, **changes)
        store: Store
        if self.kind == "memory":
            store = MemoryStore(bounds, self.clock)
        elif self.kind == "sqlite":
            store = SQLiteStore(self.url, bounds, self.clock)
        else:
            store = RedisStore(self.url, bounds, self.clock)
        self.opened.append(store)
        return store


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend(request, tmp_path) -> Iterator[Backend]:
    """One backend at a time, against a real redis-server for Redis."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else f"sqlite:///{tmp_path}/bot.db"
    backend = Backend(request.param, url)
    yield backend
    for store in backend.opened:
        store.close()


def accept_one(store: Store, event_id: str, psid: str, item: str) -> bool:
    (queued,) = store.accept([Queued(event_id, psid, item)])
    return queued


def turn(n: int) -> Turn:
    return Turn(f"question {n}", f"answer {n}")


def test_turns_come_back_oldest_first_per_person(backend):
    store = backend()
    store.append("a", turn(1))
    store.append("a", turn(2))
    store.append("b", turn(3))
    assert store.get("a") == [turn(1), turn(2)]
    assert store.get("b") == [turn(3)]
    assert store.get("nobody") == []


def test_unicode_survives_the_round_trip(backend):
    store = backend()
    store.append("a", Turn("Ça va ? 你好 🎉", "Très bien ! 👍"))
    assert store.get("a") == [Turn("Ça va ? 你好 🎉", "Très bien ! 👍")]


def test_history_is_trimmed_to_the_message_count_by_whole_turns(backend):
    store = backend(max_messages=5)
    for n in range(10):
        store.append("a", turn(n))
    assert store.get("a") == [turn(8), turn(9)]  # 5 messages allow two whole turns


def test_history_is_trimmed_to_the_token_budget(backend):
    big = Turn("x" * 300, "y" * 300)
    store = backend(max_messages=100, max_tokens=big.tokens() * 3)
    for _ in range(10):
        store.append("a", big)
    assert len(store.get("a")) == 3


def test_a_turn_larger_than_the_budget_is_not_kept(backend):
    store = backend(max_tokens=10)
    store.append("a", Turn("x" * 100, "y"))
    assert store.get("a") == []


def test_reset_forgets_one_person(backend):
    store = backend()
    store.append("a", turn(1))
    store.append("b", turn(1))
    store.reset("a")
    store.reset("never-seen")
    assert store.get("a") == []
    assert store.get("b") == [turn(1)]


def test_the_number_of_people_is_bounded_least_recent_first(backend):
    store = backend(max_conversations=3)
    for person in "abcd":
        store.append(person, turn(1))
        backend.clock.now += 1
    assert store.get("a") == []
    assert store.get("d") == [turn(1)]
    store.append("b", turn(2))  # b becomes the most recent
    backend.clock.now += 1
    store.append("e", turn(1))
    assert store.get("c") == []
    assert store.get("b") == [turn(1), turn(2)]


def test_idle_conversations_expire_and_are_removed(backend):
    store = backend(ttl=60)
    store.append("old", turn(1))
    if backend.kind == "redis":
        # Redis deletes a key when its TTL runs out; the store sets the TTL on every write.
        pttl = store._redis.pttl("mgpt:conv:old")
        assert 0 < pttl <= 60_000
        return
    backend.clock.now += 30
    store.append("recent", turn(2))
    backend.clock.now += 31
    assert store.expire() == 1
    assert len(store) == 1  # really removed, not just hidden
    assert store.get("old") == []
    assert store.get("recent") == [turn(2)]
    backend.clock.now += 60
    assert store.get("recent") == []


def test_an_idle_conversation_does_not_come_back_with_the_next_message(backend):
    store = backend(ttl=60)
    store.append("a", turn(1))
    if backend.kind == "redis":
        store._redis.delete("mgpt:conv:a")  # what Redis does when the TTL runs out
    backend.clock.now += 61
    store.append("a", turn(2))
    assert store.get("a") == [turn(2)]


def test_an_event_is_queued_once_within_its_lifetime(backend):
    store = backend(dedup_ttl=600)
    assert accept_one(store, "m_1", "a", "first") is True
    assert accept_one(store, "m_1", "a", "again") is False
    assert store.peek("a") == ["first"]
    assert store.take_lock("a", "me", 60)
    store.pop("a", "me", ["first"])
    assert store.peek("a") == []
    if backend.kind == "redis":
        assert 0 < store._redis.pttl("mgpt:event:m_1") <= 600_000
        return
    backend.clock.now += 599
    assert accept_one(store, "m_1", "a", "later") is False
    backend.clock.now += 1
    assert accept_one(store, "m_1", "a", "much later") is True


def test_event_ids_are_bounded_in_count(backend):
    if backend.kind == "redis":
        pytest.skip("Redis bounds event ids by their TTL alone")
    store = backend(dedup_max_ids=3)
    for n in range(5):
        assert accept_one(store, f"m_{n}", "a", str(n))
        backend.clock.now += 1
    store.expire()
    assert accept_one(store, "m_4", "a", "x") is False
    assert accept_one(store, "m_0", "a", "x") is True  # the oldest ids were let go


def test_queues_keep_order_per_person_and_list_who_is_waiting(backend):
    store = backend()
    for n in range(3):
        accept_one(store, f"a{n}", "a", f"a-{n}")
    accept_one(store, "b0", "b", "b-0")
    assert sorted(store.pending()) == ["a", "b"]
    taken = []
    assert store.take_lock("a", "me", 60)
    while item := store.peek("a"):
        taken += item
        store.pop("a", "me", item)
    assert taken == ["a-0", "a-1", "a-2"]
    assert store.pending() == ["b"]


def test_events_leave_the_queue_by_what_they_are_and_only_under_the_lock(backend):
    store = backend()
    for n in range(4):
        accept_one(store, f"a{n}", "a", f"a-{n}")
    assert store.pop("a", "me", ["a-0"]) is None  # nobody holds the lock
    assert store.take_lock("a", "worker-2", 30)
    assert store.pop("a", "me", ["a-0"]) is None  # another worker holds it
    assert store.peek("a", 10) == ["a-0", "a-1", "a-2", "a-3"]
    store.release_lock("a", "worker-2")
    assert store.take_lock("a", "me", 30)
    assert store.pop("a", "me", ["a-1", "a-2"], limit=5) == ["a-0", "a-3"]  # the ones answered, wherever they are
    assert store.pop("a", "me", ["a-1"], limit=5) == ["a-0", "a-3"]  # already gone: nothing more leaves
    assert store.pop("a", "me", ["a-0", "a-3"]) == []
    assert store.pending() == []


def test_the_bots_sent_ids_are_kept_apart_from_quotes_through_a_reset(backend):
    from inboxgpt.store import MAX_QUOTES

    store = backend()
    store.remember_sent("a", [("m_bot_1", "Hello!"), ("m_bot_2", "How can I help?")], ttl=3600)
    assert store.recall("a", "m_bot_2") == "How can I help?"
    store.reset("a")
    for n in range(MAX_QUOTES + 10):
        store.remember("a", f"m_person_{n}", f"message {n}")
    assert store.was_sent("a", "m_bot_1")
    assert store.was_sent("a", "m_bot_2")
    assert not store.was_sent("b", "m_bot_1")
    assert not store.was_sent("a", "m_person_1")
    if backend.kind == "redis":
        assert 0 < store._redis.pttl("mgpt:sent:a:m_bot_1") <= 3_600_000
        return
    backend.clock.now += 3601
    store.expire()
    assert not store.was_sent("a", "m_bot_1")


def test_an_alias_stands_for_the_key_it_was_first_linked_to_until_it_goes_unused(backend):
    store = backend(max_conversations=2)
    # A person's number and username arrive together, then the username alone; another arrives by username alone.
    assert store.link_keys([("wa:US.1", "wa:1650"), ("wa:US.1", "wa:US.1"), ("wa:US.2", "wa:US.2")]) == [
        "wa:1650",
        "wa:1650",
        "wa:US.2",
    ]
    assert backend.kind == "memory" or backend(max_conversations=2).link_keys([("wa:US.1", "wa:US.1")]) == ["wa:1650"]
    assert store.link_keys([("wa:US.2", "wa:1777")]) == ["wa:US.2"]  # the first key it stood for holds
    if backend.kind == "redis":
        assert 0 < store._redis.pttl("mgpt:link:wa:US.1") <= 3_600_000
        return
    for alias in ("wa:US.3", "wa:US.4", "wa:US.2"):
        backend.clock.now += 1
        store.link_keys([(alias, "wa:" + alias[-1])])
    store.expire()
    assert store.link_keys([("wa:US.3", "wa:US.3")]) == ["wa:US.3"]  # beyond max_conversations, the least used went
    backend.clock.now += 3601
    store.expire()
    assert store.link_keys([("wa:US.2", "wa:2")]) == ["wa:2"]  # unused for an idle conversation's lifetime: gone
    assert store.link_keys([("wa:US.4", "wa:US.4")]) == ["wa:US.4"]


def test_an_answer_that_never_arrived_is_cut_from_the_history(backend):
    store = backend()
    store.append("a", Turn("hours?", "We open at 9.\n\nOn Sundays we open at 10. Say hi!"))
    store.append("a", Turn("and Mondays?", "Closed on Mondays. 🙂"))
    assert store.take_back("a", "On Sundays we open")
    assert store.get("a") == [Turn("hours?", "We open at 9."), Turn("and Mondays?", "Closed on Mondays. 🙂")]
    assert store.take_back("a", "Closed on Mondays.")
    assert store.get("a")[-1] == Turn("and Mondays?", "")
    assert not store.take_back("a", "never sent")
    assert not store.take_back("b", "We open")
    assert store.get("a")[0] == Turn("hours?", "We open at 9.")


def test_a_lock_has_one_holder_until_released_or_expired(backend):
    store = backend()
    assert store.take_lock("a", "worker-1", ttl=30)
    assert not store.take_lock("a", "worker-2", ttl=30)
    assert store.take_lock("a", "worker-1", ttl=30)  # the holder extends it
    assert store.take_lock("b", "worker-2", ttl=30)  # locks are per person
    store.release_lock("a", "worker-2")  # not the holder: nothing happens
    assert not store.take_lock("a", "worker-2", ttl=30)
    store.release_lock("a", "worker-1")
    assert store.take_lock("a", "worker-2", ttl=30)


def test_a_crashed_holders_lock_expires(backend):
    store = backend()
    ttl = 0.2 if backend.kind == "redis" else 30
    assert store.take_lock("a", "crashed", ttl=ttl)
    if backend.kind == "redis":
        store._redis.delete("mgpt:lock:a")  # what Redis does when the PX runs out
        assert store._redis.pttl("mgpt:lock:a") == -2
    else:
        backend.clock.now += 31
    assert store.take_lock("a", "survivor", ttl=30)


def test_counters_add_up_and_start_again_after_their_lifetime(backend):
    store = backend()
    assert store.increment("k", 1, ttl=60) == 1
    assert store.increment("k", 5, ttl=60) == 6
    assert store.counter("k") == 6
    assert store.counter("other") == 0
    if backend.kind == "redis":
        assert 0 < store._redis.pttl("mgpt:counter:k") <= 60_000
        return
    backend.clock.now += 60
    assert store.counter("k") == 0
    assert store.increment("k", 1, ttl=60) == 1


def test_many_counters_are_read_at_once_as_each_would_be(backend):
    store = backend()
    keys = [f"day:{n}" for n in range(1200)]  # more than one SQLite query's parameters
    store.increment_all([(key, n, 60 if n % 2 else 3600) for n, key in enumerate(keys)])
    assert store.counters([*keys, "none"]) == [*range(1200), 0]
    assert store.counters([]) == []
    if backend.kind == "redis":
        return
    backend.clock.now += 60
    assert store.counters(keys[:4]) == [0, 0, 2, 0]


def test_counters_added_to_together_each_keep_their_own_lifetime(backend):
    store = backend()
    store.increment("k", 2, ttl=60)
    store.increment_all([("k", 3, 60), ("month", 7, 3600), ("k", 1, 60)])
    assert (store.counter("k"), store.counter("month")) == (6, 7)
    if backend.kind == "redis":
        assert 0 < store._redis.pttl("mgpt:counter:month") <= 3_600_000
        assert store._redis.pttl("mgpt:counter:k") <= 60_000
        return
    backend.clock.now += 60
    assert (store.counter("k"), store.counter("month")) == (0, 7)
    store.increment_all([("k", 4, 60)])
    assert store.counter("k") == 4


def test_a_pause_is_kept_per_person_restarted_ended_and_forgotten_after_its_lifetime(backend):
    store = backend()
    assert store.paused_until("a") == 0.0
    store.pause("a", 1_000.5, ttl=60)
    store.pause("a", 2_000.25, ttl=60)  # a new hand-written message restarts it
    assert store.paused_until("a") == 2_000.25
    assert store.paused_until("b") == 0.0
    store.unpause("a")
    assert store.paused_until("a") == 0.0
    store.pause("a", 3_000.0, ttl=60)
    if backend.kind == "redis":
        assert 0 < store._redis.pttl("mgpt:pause:a") <= 60_000
        return
    backend.clock.now += 61
    assert store.paused_until("a") == 0.0


def test_concurrent_appends_and_accepts_lose_nothing(backend):
    store = backend(max_messages=10_000, max_conversations=10_000, dedup_max_ids=100_000)
    queued: list[bool] = []
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        start.wait()
        for n in range(50):
            store.append(f"p{n % 5}", turn(worker * 1000 + n))
            queued.append(accept_one(store, f"m_{n}", "q", str(n)))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(store.get(f"p{n}")) for n in range(5)) == 8 * 50
    assert queued.count(True) == 50


def test_messages_are_remembered_for_quoting_per_person_and_bounded(backend):
    from inboxgpt.store import MAX_QUOTES

    store = backend()
    store.remember("a", "m_1", "Paris is the capital of France.")
    assert store.recall("a", "m_1") == "Paris is the capital of France."
    assert store.recall("b", "m_1") is None
    assert store.recall("a", "m_2") is None
    for n in range(MAX_QUOTES + 5):
        store.remember("a", f"m_{n + 10}", f"message {n}")
    assert store.recall("a", "m_1") is None  # the oldest went first
    assert store.recall("a", f"m_{MAX_QUOTES + 14}") == f"message {MAX_QUOTES + 4}"
    store.reset("a")
    assert store.recall("a", f"m_{MAX_QUOTES + 14}") is None


def test_remembered_messages_expire_with_the_conversation(backend):
    store = backend(ttl=60)
    store.remember("a", "m_1", "hello")
    if backend.kind == "redis":
        assert 0 < store._redis.pttl("mgpt:quotes:a") <= 60_000
        return
    backend.clock.now += 61
    assert store.recall("a", "m_1") is None
    store.expire()
    assert len(store) == 0


def test_sqlite_upgrades_a_version_1_database(tmp_path):
    import sqlite3

    from inboxgpt.store.sqlite import MIGRATIONS

    path = tmp_path / "bot.db"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[1] + "PRAGMA user_version = 1;")
    db.execute("INSERT INTO conversations VALUES ('a', 1e12)")
    db.execute("INSERT INTO turns (psid, user, assistant) VALUES ('a', 'hi', 'hello')")
    db.commit()
    store = SQLiteStore(f"sqlite:///{path}", BOUNDS, lambda: 1e12 + 1)
    assert store.get("a") == [Turn("hi", "hello")]
    store.remember("a", "m_1", "kept")
    assert store.recall("a", "m_1") == "kept"


def test_an_unreachable_redis_is_reported_clearly():
    with pytest.raises(StoreUnavailable, match=r"cannot reach Redis at 127\.0\.0\.1:9/0"):
        RedisStore("redis://:hunter2@127.0.0.1:9/0", BOUNDS)


def test_a_sqlite_file_in_a_missing_folder_is_reported_clearly(tmp_path):
    with pytest.raises(StoreUnavailable, match="does not exist"):
        SQLiteStore(f"sqlite:///{tmp_path}/nope/bot.db", BOUNDS)


def test_sqlite_survives_reopening(tmp_path):
    url = f"sqlite:///{tmp_path}/bot.db"
    SQLiteStore(url, BOUNDS).append("a", turn(1))
    assert SQLiteStore(url, BOUNDS).get("a") == [turn(1)]


def test_sqlite_refuses_a_newer_schema(tmp_path):
    import sqlite3

    path = tmp_path / "bot.db"
    sqlite3.connect(path).execute("PRAGMA user_version = 99")
    with pytest.raises(StoreUnavailable, match="newer version"):
        SQLiteStore(f"sqlite:///{path}", BOUNDS)


def test_newest_turns_within_keeps_the_newest_that_fit():
    turns = [turn(n) for n in range(5)]
    assert newest_turns_within(turns, 4, 10_000) == turns[3:]
    assert newest_turns_within(turns, 100, turn(0).tokens() * 2) == turns[3:]
    assert newest_turns_within(turns, 100, 0) == []


def test_token_estimate_never_undercounts_english_or_cjk():
    english = "The quick brown fox jumps over the lazy dog. " * 20  # about 200 real tokens
    assert estimate_tokens(english) >= 200
    chinese = "我们今天去公园散步吧" * 20  # about one token per character
    assert estimate_tokens(chinese) >= 200


def test_memory_bound_holds_for_many_people():
    store = MemoryStore(replace(BOUNDS, max_conversations=1000), time.monotonic)
    for n in range(5000):
        store.append(str(n), turn(n))
    assert len(store) == 1000


def test_a_record_is_kept_once_by_its_id_and_listed_from_a_time_oldest_first(backend):
    store = backend(ttl=60)
    assert store.keep_record("lead", "b", '{"name": "Bo"}', at=200.0)
    assert store.keep_record("lead", "a", '{"name": "Ada"}', at=100.0)
    assert not store.keep_record("lead", "a", '{"name": "Ada, again"}', at=300.0)  # another worker's same lead
    assert store.keep_record("other", "a", "{}", at=100.0)
    backend.clock.now += 3600
    store.expire()  # records are the owner's: an idle conversation's expiry leaves them
    assert store.records("lead", since=0) == ['{"name": "Ada"}', '{"name": "Bo"}']
    assert store.records("lead", since=150) == ['{"name": "Bo"}']
    assert store.records("none", since=0) == []
    if backend.kind != "memory":
        assert backend().records("lead", since=0) == ['{"name": "Ada"}', '{"name": "Bo"}']  # another process's view


def test_counters_are_added_to_below_their_ceilings_all_or_none(backend):
    store = backend()
    store.increment("spent", 90, ttl=60)
    assert store.increment_below([("held", 5, 60, 0), ("spent", 20, 60, 100)]) is None  # 90 is below 100
    assert (store.counter("held"), store.counter("spent")) == (5, 110)
    assert store.increment_below([("held", 5, 60, 0), ("spent", 20, 60, 100)]) == "spent"  # at or past it: none
    assert (store.counter("held"), store.counter("spent")) == (5, 110)
    store.increment_all([("spent", -30, 60)])  # a hold taken back
    assert store.increment_below([("other", 1, 3600, 1), ("spent", 1, 60, 100)]) is None
    assert (store.counter("other"), store.counter("spent")) == (1, 81)
    if backend.kind == "redis":
        assert 0 < store._redis.pttl("mgpt:counter:other") <= 3_600_000
        return
    backend.clock.now += 60
    assert (store.counter("spent"), store.counter("other")) == (0, 1)


def test_holds_taken_at_once_by_many_threads_never_pass_the_ceiling(backend):
    store = backend()
    taken = []

    def hold() -> None:
        if store.increment_below([("spent", 10, 60, 50)]) is None:
            taken.append(1)

    threads = [threading.Thread(target=hold) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(taken), store.counter("spent")) == (5, 50)


def test_records_kept_with_a_lifetime_are_forgotten_with_their_kind(backend):
    store = backend()
    assert store.keep_record("spenders:2025-11-25", "a", "a", at=1.0, ttl=600)
    assert not store.keep_record("spenders:2025-11-25", "a", "a", at=2.0, ttl=600)
    store.keep_record("lead", "a", "{}", at=1.0)
    if backend.kind == "redis":
        for key in ("mgpt:records:spenders:2025-11-25", "mgpt:records-by-time:spenders:2025-11-25"):
            assert 0 < store._redis.pttl(key) <= 600_000
        assert store._redis.pttl("mgpt:records:lead") == -1  # a lead is the owner's: kept
        return
    backend.clock.now += 300
    assert store.keep_record("spenders:2025-11-25", "b", "b", at=3.0, ttl=600)  # the kind lives on from here
    backend.clock.now += 400
    assert store.records("spenders:2025-11-25", 0) == ["a", "b"]
    backend.clock.now += 200
    store.expire()
    assert store.records("spenders:2025-11-25", 0) == []
    assert store.records("lead", 0) == ["{}"]
    assert store.keep_record("spenders:2025-11-25", "a", "a", at=4.0, ttl=600)  # a new life
