"""Store faults: missing at start stops start-up; failing later gets Meta to send events again, shows in
/healthz, loses no queued event, and heals by itself once the store is back."""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from http import HTTPStatus

import pytest

from inboxgpt.config import ConfigError
from inboxgpt.web.app import EXTENSION
from inboxgpt.web.signature import sign
from tests.fakes import Reply, completion
from tests.helpers import APP_SECRET, each_message, load, meta_json, page_body, poster, text_event
from tests.redis_server import RedisServer


class Seen(logging.Handler):
    """Sets `event` when a log line containing `text` is written: a hook to wait on, not a sleep."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


@pytest.fixture
def store_trouble():
    """Returns a Seen for the dispatcher's 'store unavailable' line."""
    seen = Seen("store unavailable")
    logger = logging.getLogger("inboxgpt.queues.dispatcher")
    logger.addHandler(seen)
    yield seen
    logger.removeHandler(seen)


@pytest.fixture
def immutable():
    """Makes files immutable (chattr +i: even root cannot write them), and mutable again afterwards."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    changed = []

    def make(path, on: bool = True) -> None:
        subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=True)
        changed.append(path)

    yield make
    for path in changed:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_an_unknown_store_stops_start_up(config, make_app):
    config.update(STORE_URL="mongodb://localhost/bot")
    with pytest.raises(ConfigError, match="STORE_URL is invalid"):
        make_app(config)


def test_an_unreachable_store_stops_start_up_without_its_password(config, make_app):
    config.update(STORE_URL="redis://:s3cret-pass@127.0.0.1:9/0")
    with pytest.raises(ConfigError, match=r"cannot reach Redis at 127\.0\.0\.1:9/0") as raised:
        make_app(config)
    assert "s3cret-pass" not in str(raised.value)


def test_a_store_that_goes_down_gives_503s_and_a_degraded_health_check(config, make_app, graph):
    try:
        server = RedisServer()
    except FileNotFoundError as missing:
        pytest.skip(str(missing))
    config.update(STORE_URL=server.url + "/0")
    client = make_app(config).test_client()
    assert client.get("/healthz").status_code == HTTPStatus.OK
    server.stop()

    health = client.get("/healthz")
    assert health.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert health.get_json()["status"] == "degraded"
    assert health.get_json()["store"] == "unavailable"
    raw = meta_json(load("text.json"))
    response = client.post("/", data=raw, headers={"X-Hub-Signature-256": sign(raw, APP_SECRET)})
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE  # Meta will send it again
    assert graph.calls == []


def test_a_sqlite_file_that_turns_read_only_is_shown_and_heals_when_it_comes_back(
    config, make_app, graph, tmp_path, immutable, store_trouble
):
    database = tmp_path / "bot.db"
    config.update(STORE_URL=f"sqlite:///{database}")
    app = make_app(config)
    post, client = poster(app), app.test_client()
    immutable(database)  # SQLite now opens it read-only, without a word
    # Taken on the connection this thread already had; the reply thread's new one cannot write.
    assert post(page_body(text_event("are you there?")), wait=False).status_code == HTTPStatus.OK
    assert store_trouble.event.wait(timeout=30), "the reply thread never met the read-only file"
    assert client.get("/healthz").status_code == HTTPStatus.SERVICE_UNAVAILABLE
    immutable(database, on=False)
    assert app.extensions[EXTENSION].dispatcher.wait_idle(timeout=30)
    assert graph.texts() == ["You said: are you there?"]
    assert client.get("/healthz").status_code == HTTPStatus.OK


def test_a_sqlite_folder_that_goes_away_gives_503s_then_heals(config, make_app, graph, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    config.update(STORE_URL=f"sqlite:///{folder}/bot.db")
    app = make_app(config)
    post, client = poster(app), app.test_client()
    assert post(page_body(text_event("first"))).status_code == HTTPStatus.OK
    shutil.rmtree(folder)
    # Not 200 into a deleted file: Meta keeps the event and sends it again.
    assert post(page_body(text_event("while it is gone"))).status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert client.get("/healthz").status_code == HTTPStatus.SERVICE_UNAVAILABLE
    folder.mkdir()
    assert post(page_body(text_event("sent again"))).status_code == HTTPStatus.OK
    assert graph.texts() == ["You said: first", "You said: sent again"]


def test_a_redis_outage_loses_nothing_and_every_queue_resumes_when_it_is_back(
    config, make_app, graph, openai_server, tmp_path, store_trouble
):
    try:
        server = RedisServer(aof_dir=tmp_path)
    except FileNotFoundError as missing:
        pytest.skip(str(missing))
    held = threading.Event()

    def answer_when_released(request: dict) -> Reply:
        held.wait(timeout=30)
        return completion("re: " + request["messages"][-1]["content"])

    openai_server.default = answer_when_released
    config.update(STORE_URL=server.url + "/0")
    app = make_app(config)
    dispatcher = app.extensions[EXTENSION].dispatcher
    people = [str(8000 + n) for n in range(8)]
    try:
        for n in range(3):
            body = page_body(*(text_event(f"{person} #{n}", psid=person) for person in people))
            assert poster(app)(body, wait=False).status_code == HTTPStatus.OK
        assert openai_server.wait_for(lambda: len(openai_server.requests) >= len(people))
        server.kill()  # every first message is with the model; the rest wait in Redis
        held.set()
        assert store_trouble.event.wait(timeout=30)
        server.start()  # the same port and append-only file
        assert dispatcher.wait_idle(timeout=10), "queues did not resume within 10 s of Redis coming back"
    finally:
        held.set()
        server.stop()
    for person in people:
        assert each_message(graph.texts(person), "re: ") == [f"{person} #{n}" for n in range(3)]
