"""One gunicorn service per session, talking to a fake Graph API and a fake OpenAI on 127.0.0.1."""

from __future__ import annotations

import itertools

import pytest

from tests.fakes import FakeGraph, FakeOpenAI, echo_answer
from tests.gunicorn_service import GunicornService
from tests.helpers import APP_SECRET, OPENAI_KEY, PAGE_TOKEN, VERIFY_TOKEN

_people = itertools.count(7_000_000_000_000_000)


@pytest.fixture(scope="session")
def fake_graph():
    server = FakeGraph()
    yield server
    server.close()


@pytest.fixture(scope="session")
def fake_openai():
    server = FakeOpenAI()
    yield server
    server.close()


def service_settings(fake_graph: FakeGraph, fake_openai: FakeOpenAI) -> dict[str, str]:
    """Settings for a real service wired to the fakes."""
    return {
        "PAGE_ACCESS_TOKEN": PAGE_TOKEN,
        "VERIFY_TOKEN": VERIFY_TOKEN,
        "APP_SECRET": APP_SECRET,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT": "10",
        "GRAPH_API_URL": fake_graph.url + "/v23.0",
        "GRAPH_BACKOFF": "0.01",
    }


@pytest.fixture(scope="session")
def service(fake_graph, fake_openai):
    service = GunicornService(service_settings(fake_graph, fake_openai))
    yield service
    service.stop()


@pytest.fixture
def fakes(fake_graph, fake_openai):
    """The fakes, emptied and back to default behaviour for this test."""
    graph_default = fake_graph.default
    for fake in (fake_graph, fake_openai):
        fake.reset()
    fake_openai.default = echo_answer
    yield fake_graph, fake_openai
    fake_graph.default = graph_default


@pytest.fixture
def person() -> str:
    """A PSID no other test has used, so the shared service holds no history for it."""
    return str(next(_people))
