"""Under gunicorn, a worker stopped with SIGTERM (a deploy) finishes the reply in hand and loses no queued one."""

from __future__ import annotations

import threading

import pytest

from tests.e2e.conftest import service_settings
from tests.fakes import FakeGraph, FakeOpenAI, Reply, completion
from tests.gunicorn_service import GunicornService
from tests.helpers import each_message, page_body, text_event


def test_sigterm_lets_a_started_reply_finish():
    graph, model = FakeGraph(), FakeOpenAI()
    asked, release = threading.Event(), threading.Event()

    def slow_answer(request: dict) -> Reply:
        asked.set()
        release.wait(timeout=30)
        return completion("finished after SIGTERM")

    model.default = slow_answer
    service = GunicornService(service_settings(graph, model))
    try:
        assert service.post(page_body(text_event("please answer"))).status_code == 200
        assert asked.wait(timeout=30), "the model was never asked"
        service.process.terminate()
        service.lines.wait_for("Worker exiting")  # the worker stopped serving; its reply still waits
        release.set()
        assert service.stop() == 0
        assert graph.texts() == ["finished after SIGTERM"]
    finally:
        release.set()
        service.stop()
        graph.close()
        model.close()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_url(request, tmp_path):
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/bot.db"
    return request.getfixturevalue("redis_url")


def test_a_deploy_loses_no_queued_message(store_url):
    graph, model = FakeGraph(), FakeOpenAI()
    # Each answer takes a moment, so the later messages are still queued when the deploy comes.
    model.default = lambda request: completion("re: " + request["messages"][-1]["content"], delay=0.3)
    settings = {**service_settings(graph, model), "STORE_URL": store_url, "LIMIT_PER_MINUTE": "0"}
    people = [str(9000 + n) for n in range(10)]
    texts = {person: [f"{person} #{n}" for n in range(3)] for person in people}
    service = GunicornService(settings)

    def answered() -> dict[str, list[str]]:
        return {person: each_message(graph.texts(person), "re: ") if graph.texts(person) else [] for person in people}

    try:
        for n in range(3):
            body = page_body(*(text_event(texts[person][n], psid=person) for person in people))
            assert service.post(body).status_code == 200
            if n == 0:
                # Each first message in hand before the others come: they wait in the queue, not in its burst.
                assert model.wait_for(lambda: len(model.requests) >= len(people))
        assert service.stop() == 0  # SIGTERM, as a deploy sends
        if store_url == "memory://":
            # Nobody else will answer what this process holds: it answers everything before it exits.
            assert answered() == texts
            return
        assert answered() != texts, "the worker did not leave the queue for the next one"
        restarted = GunicornService(settings)
        try:
            assert graph.wait_for(lambda: answered() == texts)
        finally:
            restarted.stop()
        assert answered() == texts  # each once, in order
    finally:
        service.stop()
        graph.close()
        model.close()
