"""The in-memory store: whole turns, bounds on history, people and event ids, expiry, threads."""

from __future__ import annotations

import threading

import pytest

from store import MemoryStore, Turn, estimate_tokens, newest_turns_within


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_store(clock: Clock, **bounds) -> MemoryStore:
    options = dict(max_messages=6, max_tokens=10_000, ttl=3600, max_conversations=100, dedup_ttl=600, dedup_max_ids=1000)
    options.update(bounds)
    return MemoryStore(clock=clock, **options)


def turn(n: int) -> Turn:
    return Turn(f"question {n}", f"answer {n}")


def test_turns_come_back_oldest_first_per_person(clock):
    store = make_store(clock)
    store.append("a", turn(1))
    store.append("a", turn(2))
    store.append("b", turn(3))
    assert store.get("a") == [turn(1), turn(2)]
    assert store.get("b") == [turn(3)]
    assert store.get("nobody") == []


def test_history_is_trimmed_to_the_message_count_by_whole_turns(clock):
    store = make_store(clock, max_messages=5)
    for n in range(10):
        store.append("a", turn(n))
    assert store.get("a") == [turn(8), turn(9)]  # 5 messages allow two whole turns


def test_history_is_trimmed_to_the_token_budget(clock):
    big = Turn("x" * 300, "y" * 300)
    store = make_store(clock, max_messages=100, max_tokens=big.tokens() * 3)
    for _ in range(10):
        store.append("a", big)
    assert len(store.get("a")) == 3


def test_a_turn_larger_than_the_budget_is_not_kept(clock):
    store = make_store(clock, max_tokens=10)
    store.append("a", Turn("x" * 100, "y"))
    assert store.get("a") == []


def test_idle_conversations_expire(clock):
    store = make_store(clock, ttl=60)
    store.append("old", turn(1))
    clock.now += 30
    store.append("recent", turn(2))
    clock.now += 31
    assert store.get("old") == []
    assert store.get("recent") == [turn(2)]
    assert len(store) == 1  # really removed, not just hidden
    clock.now += 60
    assert store.expire() == 1 and len(store) == 0


def test_writing_keeps_a_conversation_alive(clock):
    store = make_store(clock, ttl=60)
    for n in range(5):
        store.append("a", turn(n))
        clock.now += 50
    assert len(store.get("a")) == 3


def test_the_number_of_people_is_bounded_least_recent_first(clock):
    store = make_store(clock, max_conversations=3)
    for person in "abcd":
        store.append(person, turn(1))
        clock.now += 1
    assert len(store) == 3 and store.get("a") == []
    store.append("b", turn(2))  # b becomes the most recent
    store.append("e", turn(1))
    assert store.get("c") == [] and store.get("b") == [turn(1), turn(2)]


def test_reset_forgets_one_person(clock):
    store = make_store(clock)
    store.append("a", turn(1))
    store.append("b", turn(1))
    store.reset("a")
    store.reset("never-seen")
    assert store.get("a") == [] and store.get("b") == [turn(1)]


def test_an_event_id_is_claimed_once_within_its_lifetime(clock):
    store = make_store(clock, dedup_ttl=600)
    assert store.claim_event("m_1") is True
    assert store.claim_event("m_1") is False
    clock.now += 599
    assert store.claim_event("m_1") is False
    clock.now += 1
    assert store.claim_event("m_1") is True


def test_event_ids_are_bounded_in_count(clock):
    store = make_store(clock, dedup_max_ids=3)
    for n in range(5):
        assert store.claim_event(f"m_{n}")
    assert store.claim_event("m_4") is False
    assert store.claim_event("m_0") is True  # the oldest ids were let go


def test_concurrent_appends_and_claims_lose_nothing(clock):
    store = make_store(clock, max_messages=10_000, max_conversations=10_000, dedup_max_ids=100_000)
    claimed: list[bool] = []
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        start.wait()
        for n in range(200):
            store.append(f"p{n % 10}", turn(worker * 1000 + n))
            claimed.append(store.claim_event(f"m_{n}"))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(store.get(f"p{n}")) for n in range(10)) == 8 * 200
    assert claimed.count(True) == 200


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
