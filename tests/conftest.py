"""Fixtures: a fresh app per test, a fake OpenAI server, the Graph API mocked with responses."""

from __future__ import annotations

import json
import os
import re
import threading
from collections import deque
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from app import EXTENSION, create_app
from fakes import FakeOpenAI
from redis_server import RedisServer
from gunicorn_service import meta_json
from helpers import APP_SECRET, GRAPH_URL, OPENAI_KEY, PAGE_TOKEN, SEND_URL, VERIFY_TOKEN
from signature import sign

class Graph:
    """Records what the app sends to the Send API and answers like Meta, or fails on demand."""

    def __init__(self, mock: responses.RequestsMock):
        self.mock = mock
        self.calls: list[dict] = []
        self.failures: deque[tuple[int, dict, bool]] = deque()
        self.on_call = None  # optional hook, called with each recorded call
        self._lock = threading.Lock()
        mock.add_callback(responses.POST, re.compile(re.escape(SEND_URL) + r"(\?.*)?$"), self._answer)

    def fail_next(
        self, status: int, code: int, subcode: int | None = None, *,
        times: int = 1, transient: bool | None = None, messages_only: bool = False,
    ) -> None:
        """Make the next `times` calls (or text messages only) fail with a Graph error body."""
        error = {"message": "(#%d) test error" % code, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}
        if subcode is not None:
            error["error_subcode"] = subcode
        if transient is not None:
            error["is_transient"] = transient
        for _ in range(times):
            self.failures.append((status, {"error": error}, messages_only))

    def _answer(self, request) -> tuple[int, dict, str]:
        call = {"params": {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}, **json.loads(request.body)}
        with self._lock:
            self.calls.append(call)
            failure = next((f for f in self.failures if "message" in call or not f[2]), None)
            if failure:
                self.failures.remove(failure)
        if self.on_call:
            self.on_call(call)
        if failure:
            return failure[0], {}, json.dumps(failure[1])
        return 200, {}, json.dumps({"recipient_id": call["recipient"]["id"], "message_id": f"m_reply_{len(self.calls)}"})

    def texts(self, psid: str | None = None) -> list[str]:
        """Texts sent, in order, to one person or to all."""
        return [c["message"]["text"] for c in self.calls if "message" in c and psid in (None, c["recipient"]["id"])]

    def actions(self, psid: str | None = None) -> list[str]:
        """Sender actions sent, in order."""
        return [c["sender_action"] for c in self.calls if "sender_action" in c and psid in (None, c["recipient"]["id"])]

    def sequence(self, psid: str) -> list[str]:
        """Everything sent to one person, in order: actions by name, messages as 'text:...'."""
        return [
            c.get("sender_action") or "text:" + c["message"]["text"]
            for c in self.calls if c["recipient"]["id"] == psid
        ]


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
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def openai_server():
    """A fake OpenAI chat-completions server on 127.0.0.1."""
    server = FakeOpenAI()
    yield server
    server.close()


@pytest.fixture
def graph():
    """The Send API, mocked at the requests edge."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield Graph(mock)


@pytest.fixture
def config(openai_server) -> dict:
    """Settings for a test app; a test may change them before using `app`."""
    return {
        "PAGE_ACCESS_TOKEN": PAGE_TOKEN,
        "VERIFY_TOKEN": VERIFY_TOKEN,
        "APP_SECRET": APP_SECRET,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": openai_server.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT": "5",
        "GRAPH_API_URL": GRAPH_URL,
        "GRAPH_BACKOFF": "0",
        # Off unless a test is about them: many tests send a burst from one person.
        "LIMIT_PER_MINUTE": "0",
        "LIMIT_PER_DAY": "0",
        "LIMIT_GLOBAL_PER_DAY": "0",
    }


@pytest.fixture
def make_app(graph):
    """Build fresh apps from settings; their worker threads are stopped after the test."""
    apps = []

    def make_app(config: dict):
        app = create_app(config)
        apps.append(app)
        return app

    yield make_app
    for app in apps:
        app.extensions[EXTENSION].workers.shutdown()


@pytest.fixture
def app(make_app, config):
    """A fresh app with the test's settings."""
    return make_app(config)


@pytest.fixture
def service(app):
    """The app's long-lived parts (store, workers, bot)."""
    return app.extensions[EXTENSION]


@pytest.fixture
def client(app):
    return app.test_client()


def poster(app):
    """Return a function that POSTs a body to the app's webhook as Meta would, then waits for the replies."""
    client = app.test_client()
    workers = app.extensions[EXTENSION].workers

    def post(body: dict | bytes, *, signature: str | None = None, wait: bool = True):
        raw = body if isinstance(body, bytes) else meta_json(body)
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature or sign(raw, APP_SECRET)}
        response = client.post("/", data=raw, headers=headers)
        if wait:
            assert workers.wait_idle(timeout=30), "replies did not finish"
        return response

    return post


@pytest.fixture
def post(app):
    """POST to the test's app as Meta would (signed), wait for the replies, return the response."""
    return poster(app)


@pytest.fixture
def app_with(make_app):
    """Build an app from changed settings and return its `post` function."""
    return lambda config: poster(make_app(config))
