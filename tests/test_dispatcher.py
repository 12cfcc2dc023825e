"""One queue per person: replies run concurrently across people and one at a time, in order, for each person."""

from __future__ import annotations

import threading

import pytest

from inboxgpt.events import Event, Message
from inboxgpt.queues.dispatcher import Dispatcher
from inboxgpt.store import Bounds
from inboxgpt.store.memory import MemoryStore
from inboxgpt.store.sqlite import SQLiteStore
from tests.fakes import CountingStore, Reply, completion
from tests.helpers import answer_a_steady_queue, each_message, one_at_a_time, page_body, text_event


def test_forty_people_are_answered_at_the_same_time(config, openai_server, graph, app_with):
    # The fake model answers nobody until 40 requests are in flight at once: a pool that ran
    # fewer concurrently would break the barrier and every reply would be an apology.
    everyone_waiting = threading.Barrier(40, timeout=20)

    def answer_when_all_arrived(request: dict) -> Reply:
        try:
            everyone_waiting.wait()
        except threading.BrokenBarrierError:
            return Reply(status=500, body={"error": {"message": "not concurrent", "type": "server_error"}})
        return completion("answer to " + request["messages"][-1]["content"])

    openai_server.default = answer_when_all_arrived
    post = app_with(config)
    people = [str(1000 + n) for n in range(40)]
    post(page_body(*(text_event(f"question from {p}", psid=p) for p in people)))
    for person in people:
        assert graph.texts(person) == [f"answer to question from {person}"]


def test_one_persons_messages_are_answered_one_at_a_time_in_order(post, openai_server, graph):
    texts = [f"message {n}" for n in range(7)]
    for text in texts[:-1]:
        post(page_body(text_event(text, psid="42")), wait=False)
    post(page_body(text_event(texts[-1], psid="42")))
    asked = [request["messages"][-1]["content"] for request in openai_server.requests]
    assert each_message(asked) == texts  # each once, in order (those queued together, together)
    assert graph.texts("42") == [f"You said: {text}" for text in asked]
    # Each call saw every earlier turn complete: the model was never asked two at once.
    for n, request in enumerate(openai_server.requests):
        assert [m["content"] for m in request["messages"][1::2]] == asked[: n + 1]


def message(n: int, psid: str = "1") -> Message:
    return Message(psid=psid, mid=f"m{n}", timestamp=0, text=f"message {n}")


@pytest.fixture
def store() -> CountingStore:
    return CountingStore(MemoryStore(Bounds(20, 3000, 3600, 100, 3600, 1000)))


def test_a_steady_queue_costs_one_lock_peek_and_pop_per_event(store):
    assert answer_a_steady_queue(store, 6) == [f"1-m{n}" for n in range(6)]
    del store.calls["accept"]
    assert store.calls == {"take_lock": 1, "peek": 1, "pop": 6, "release_lock": 1}


def test_an_event_that_breaks_the_bot_is_dropped_and_the_queue_goes_on(store):
    handled: list[str] = []

    def handle(event: Event) -> None:
        if event.event_id == "m0":
            raise RuntimeError("a bug this event triggers")
        handled.append(event.event_id)

    dispatcher = Dispatcher(store, one_at_a_time(handle), threads=2, lock_ttl=60)
    dispatcher.submit([message(0)])
    dispatcher.submit([message(1)])
    assert dispatcher.wait_idle(timeout=10)
    dispatcher.close(finish_queued=True)
    assert handled == ["m1"]
    assert store.peek("1") == []


def test_a_failure_while_gathering_a_burst_is_logged_and_the_queue_goes_on(store, caplog):
    handled: list[str] = []

    def gather(events: list[Event]) -> float:
        if events[0].event_id == "m0":
            raise ValueError("a bug this event triggers")
        return 0.0

    dispatcher = Dispatcher(store, one_at_a_time(lambda event: handled.append(event.event_id)), 1, 60, gather=gather)
    dispatcher.submit([message(0)])
    assert dispatcher.wait_idle(timeout=10)
    dispatcher.submit([message(1)])
    assert dispatcher.wait_idle(timeout=10)
    dispatcher.close(finish_queued=True)
    assert handled == ["m0", "m1"]
    assert "a bug this event triggers" in caplog.text


def test_an_unexpected_failure_of_the_drain_is_logged_and_a_later_event_is_answered(store, caplog):
    handled: list[str] = []
    pop = store.pop
    failures = iter([RuntimeError("a bug in the drain")])

    def pop_once_broken(*args, **kwargs):
        failure = next(failures, None)
        if failure:
            raise failure
        return pop(*args, **kwargs)

    store.pop = pop_once_broken
    dispatcher = Dispatcher(store, one_at_a_time(lambda event: handled.append(event.event_id)), 1, 60)
    dispatcher.submit([message(0)])
    assert dispatcher.wait_idle(timeout=10)
    dispatcher.submit([message(1)])
    assert dispatcher.wait_idle(timeout=10)
    dispatcher.close(finish_queued=True)
    assert handled[-1] == "m1"
    assert "a bug in the drain" in caplog.text


def test_a_lock_is_renewed_while_an_answer_outlives_it_so_no_other_worker_answers_again(tmp_path):
    # Two servers on one SQLite file, with a clock the test moves: the first answer outlives the lock's lifetime.
    now = [1000.0]
    url = f"sqlite:///{tmp_path}/bot.db"
    first, second = (SQLiteStore(url, Bounds(20, 3000, 3600, 100, 3600, 1000), clock=lambda: now[0]) for _ in "ab")
    renewed, asked, release = threading.Event(), threading.Event(), threading.Event()
    take_lock = first.take_lock

    def noting_renewals(psid: str, owner: str, ttl: float) -> bool:
        taken = take_lock(psid, owner, ttl)
        if now[0] > 1000:
            renewed.set()
        return taken

    first.take_lock = noting_renewals  # type: ignore[method-assign]
    answered: list[str] = []

    def answer_slowly(event: Event) -> None:
        answered.append("first server")
        asked.set()
        release.wait(timeout=10)

    one = Dispatcher(first, one_at_a_time(answer_slowly), 1, lock_ttl=60, renew_every=0.01)
    other = Dispatcher(second, one_at_a_time(lambda event: answered.append("second server")), 1, lock_ttl=60)
    one.submit([message(0)])
    assert asked.wait(timeout=10)
    now[0] += 45
    assert renewed.wait(timeout=10)
    now[0] += 30  # past the lifetime the lock was first taken for
    other.resume()
    assert other.wait_idle(timeout=10)
    release.set()
    assert one.wait_idle(timeout=10)
    for dispatcher in (one, other):
        dispatcher.close(finish_queued=False)
    assert answered == ["first server"]
    assert second.peek("1") == []
    first.close()
    second.close()


def test_a_lock_let_go_of_is_never_renewed_after(store):
    # The renewer looks at the held locks just before the answer ends; its renewal must not take the lock back
    # once the drain let go of it, or the person's queue would be held for nobody.
    renewing, released = threading.Event(), threading.Event()
    take_lock, release_lock = store.take_lock, store.release_lock

    def take_lock_slowly(psid: str, owner: str, ttl: float) -> bool:
        if threading.current_thread().name == "renew-locks" and not renewing.is_set():
            renewing.set()
            released.wait(timeout=2)  # a release that cannot come while the renewal is under way
        return take_lock(psid, owner, ttl)

    def release_and_say(psid: str, owner: str) -> None:
        release_lock(psid, owner)
        released.set()

    def answer_once_the_renewal_began(event: Event) -> None:
        renewing.wait(timeout=10)

    store.take_lock, store.release_lock = take_lock_slowly, release_and_say
    dispatcher = Dispatcher(store, one_at_a_time(answer_once_the_renewal_began), 1, lock_ttl=60, renew_every=0.01)
    dispatcher.submit([message(0)])
    assert dispatcher.wait_idle(timeout=10)
    assert released.wait(timeout=10)
    dispatcher.close(finish_queued=True)
    assert take_lock("1", "another worker", 60), "the lock was renewed after it was let go of"


def test_wait_idle_reports_work_still_running(store):
    release = threading.Event()

    def handle(event: Event) -> None:
        release.wait(timeout=10)

    dispatcher = Dispatcher(store, one_at_a_time(handle), threads=1, lock_ttl=60)
    dispatcher.submit([message(0)])
    assert dispatcher.wait_idle(timeout=0.01) is False
    release.set()
    assert dispatcher.wait_idle(timeout=10) is True
    dispatcher.close(finish_queued=True)
