"""Replies run concurrently across people and one at a time, in order, for each person."""

from __future__ import annotations

import threading

from helpers import page_body, text_event
from fakes import Reply, completion
from workers import KeyedWorkers


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
    texts = [f"message {n}" for n in range(6)]
    post(page_body(*(text_event(t, psid="42") for t in texts)), wait=False)
    post(page_body(text_event("message 6", psid="42")))
    assert graph.texts("42") == [f"You said: message {n}" for n in range(7)]
    # Each call saw every earlier turn complete: the model was never asked two at once.
    for n, request in enumerate(openai_server.requests):
        assert [m["content"] for m in request["messages"][1::2]] == [f"message {k}" for k in range(n + 1)]


def test_a_failing_task_does_not_stop_the_persons_queue():
    workers = KeyedWorkers(max_workers=2)
    done: list[int] = []

    def fail() -> None:
        raise RuntimeError("boom")

    workers.submit("a", fail)
    workers.submit("a", lambda: done.append(1))
    assert workers.wait_idle(timeout=10)
    assert done == [1]
    workers.shutdown()


def test_wait_idle_reports_work_still_running():
    workers = KeyedWorkers(max_workers=1)
    release = threading.Event()
    workers.submit("a", release.wait)
    assert workers.wait_idle(timeout=0.01) is False
    release.set()
    assert workers.wait_idle(timeout=10) is True
    workers.shutdown()
