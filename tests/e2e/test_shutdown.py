"""Under gunicorn, a worker stopped with SIGTERM finishes the replies it has started."""

from __future__ import annotations

import threading

from e2e.conftest import service_settings
from fakes import FakeGraph, FakeOpenAI, Reply, completion
from gunicorn_service import GunicornService
from helpers import page_body, text_event


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
