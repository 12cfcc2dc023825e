"""Fixtures: a fresh app per test, a fake OpenAI server, a fake Graph API, media downloads mocked with responses."""

from __future__ import annotations

import os

import pytest
import responses

from inboxgpt.web.app import EXTENSION, create_app
from tests.fakes import FakeGraph, FakeOpenAI
from tests.helpers import (
    APP_SECRET,
    GRAPH_VERSION,
    OPENAI_KEY,
    PAGE_TOKEN,
    VERIFY_TOKEN,
    WHATSAPP_NUMBER_ID,
    WHATSAPP_TOKEN,
    poster,
)
from tests.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server():
    """A real redis-server on a free loopback port for the whole session (CI installs it)."""
    try:
        server = RedisServer()
    except FileNotFoundError as missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: .ci/run installs it")
        pytest.skip(str(missing))
    yield server.url
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    """A Redis database emptied for this test."""
    import redis

    url = f"{redis_server}/0"
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return url


@pytest.fixture
def openai_server():
    """A fake OpenAI chat-completions server on 127.0.0.1."""
    server = FakeOpenAI()
    yield server
    server.close()


@pytest.fixture
def http_edge():
    """Every HTTP call the app makes with requests, mocked with `responses`: nothing reaches the internet."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def graph():
    """The Graph API (the Send API, thread control, the Messenger profile), a fake one on 127.0.0.1."""
    fake = FakeGraph()
    yield fake
    fake.close()


@pytest.fixture
def cdn(http_edge):
    """Meta's media CDN (reached with requests)."""
    return http_edge


@pytest.fixture
def config(openai_server, graph) -> dict:
    """Settings for a test app; a test may change them before using `app`."""
    return {
        "PAGE_ACCESS_TOKEN": PAGE_TOKEN,
        "VERIFY_TOKEN": VERIFY_TOKEN,
        "APP_SECRET": APP_SECRET,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": openai_server.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT": "5",
        "GRAPH_API_URL": graph.url + GRAPH_VERSION,
        "WHATSAPP_TOKEN": WHATSAPP_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": WHATSAPP_NUMBER_ID,
        "GRAPH_BACKOFF": "0",
        # Off unless a test is about them: many tests send a burst from one person.
        "LIMIT_PER_MINUTE": "0",
        "LIMIT_PER_DAY": "0",
        "LIMIT_GLOBAL_PER_DAY": "0",
    }


@pytest.fixture
def make_app(graph):
    """Build fresh apps from settings; their services are closed after the test."""
    apps = []

    def make_app(config: dict):
        app = create_app(config)
        apps.append(app)
        return app

    yield make_app
    for app in apps:
        app.extensions[EXTENSION].close()


@pytest.fixture
def app(make_app, config):
    """A fresh app with the test's settings."""
    return make_app(config)


@pytest.fixture
def service(app):
    """The app's long-lived parts (store, dispatcher, bot)."""
    return app.extensions[EXTENSION]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def post(app):
    """POST to the test's app as Meta would (signed), wait for the replies, return the response."""
    return poster(app)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def post_to_store(request, config, tmp_path, make_app):
    """POST to an app on each store in turn: SQLite and Redis refuse text the memory store keeps."""
    if request.param == "sqlite":
        config.update(STORE_URL=f"sqlite:///{tmp_path}/bot.db")
    elif request.param == "redis":
        config.update(STORE_URL=request.getfixturevalue("redis_url"))
    return poster(make_app(config))


@pytest.fixture
def app_with(make_app):
    """Build an app from changed settings and return its `post` function."""
    return lambda config: poster(make_app(config))
