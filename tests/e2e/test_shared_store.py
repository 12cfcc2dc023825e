"""Several gunicorn workers on a shared store (SQLite, then Redis): order, one reply per event, history, crashes,
and the pause while a person from the page talks."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from http import HTTPStatus

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from inboxgpt import replies
from inboxgpt.model import prompt
from inboxgpt.web.signature import sign
from tests.e2e.conftest import service_settings
from tests.fakes import FakeGraph, FakeOpenAI, Media, completion
from tests.gunicorn_service import GunicornService
from tests.helpers import APP_SECRET, each_message, load, meta_json, page_body, text_event


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/bot.db"
    return request.getfixturevalue("redis_url")


@pytest.fixture
def fakes():
    graph, model = FakeGraph(), FakeOpenAI()
    yield graph, model
    graph.close()
    model.close()


def post_on_a_new_connection(service: GunicornService, body: dict) -> int:
    """POST as Meta does, on a connection of its own, so the kernel may hand it to any worker."""
    raw = meta_json(body)
    headers = {"Content-Type": "application/json", "Connection": "close", "X-Hub-Signature-256": sign(raw, APP_SECRET)}
    return requests.post(service.url + "/", data=raw, headers=headers, timeout=30).status_code


def test_a_burst_spread_over_two_servers_is_answered_together(store_url, fakes):
    graph, model = fakes
    asked, release = threading.Event(), threading.Event()

    def answer(request: dict):
        if not asked.is_set():
            asked.set()
            release.wait(timeout=30)  # the first answer is still being written while the rest arrive
        return completion("re: " + request["messages"][-1]["content"])

    model.default = answer
    settings = {**service_settings(graph, model), "STORE_URL": store_url, "WEB_CONCURRENCY": "2"}
    servers = [GunicornService(settings), GunicornService(settings)]
    try:
        assert post_on_a_new_connection(servers[0], page_body(text_event("hi", psid="4100"))) == HTTPStatus.OK
        assert asked.wait(timeout=30)
        for n, text in enumerate(("I have a question", "about my order", "it is late")):
            assert post_on_a_new_connection(servers[(n + 1) % 2], page_body(text_event(text, psid="4100"))) == 200
        release.set()
        assert graph.wait_for(lambda: len(graph.texts("4100")) >= 2)
        assert graph.texts("4100") == ["re: hi", "re: I have a question\n\nabout my order\n\nit is late"]
        assert len(model.requests) == 2
        history = [m["content"] for m in model.requests[1]["messages"][1:-1]]
        assert history == ["hi", "re: hi"]
    finally:
        release.set()
        for server in servers:
            server.stop()


def test_four_workers_on_two_servers_answer_each_person_once_in_order(store_url, fakes):
    graph, model = fakes
    jitter = random.Random(4)
    # The model takes a little while, differently each time, so workers really overlap.
    model.default = lambda request: completion(
        "re: " + request["messages"][-1]["content"], delay=jitter.uniform(0.0, 0.05)
    )
    settings = {
        **service_settings(graph, model),
        "STORE_URL": store_url,
        "WEB_CONCURRENCY": "4",
        "HISTORY_MAX_MESSAGES": "100",
        "HISTORY_MAX_TOKENS": "100000",
        "LIMIT_PER_MINUTE": "0",
    }
    # Two servers of four workers each, as two machines behind a load balancer: Meta's calls
    # alternate between them, so one person's messages certainly reach different processes.
    servers = [GunicornService(settings), GunicornService(settings)]
    try:
        bodies = [page_body(text_event(f"message {n}", psid="4000")) for n in range(20)]
        others = [page_body(text_event(f"hello from {p}", psid=p)) for p in ("4001", "4002", "4003", "4004")]
        # One person's messages go out one after another, as Meta delivers them; the others at once.
        writers = [
            threading.Thread(target=post_on_a_new_connection, args=(servers[n % 2], b)) for n, b in enumerate(others)
        ]
        for writer in writers:
            writer.start()
        for n, body in enumerate(bodies):
            assert post_on_a_new_connection(servers[n % 2], body) == HTTPStatus.OK
        assert post_on_a_new_connection(servers[0], bodies[3]) == HTTPStatus.OK  # a redelivery, elsewhere
        for writer in writers:
            writer.join()
        assert graph.wait_for(
            lambda: (
                len(each_message(graph.texts("4000"))) >= 20
                and all(graph.texts(p) for p in ("4001", "4002", "4003", "4004"))
            )
        )
        # Each message once, in order; those that queued while one was answered, answered together.
        assert each_message(graph.texts("4000"), "re: ") == [f"message {n}" for n in range(20)]
        for person in ("4001", "4002", "4003", "4004"):
            assert graph.texts(person) == [f"re: hello from {person}"]
        asked = [r["messages"][-1]["content"] for r in model.requests if "message" in r["messages"][-1]["content"]]
        last = next(r for r in model.requests if r["messages"][-1]["content"].endswith("message 19"))
        history = [m["content"] for m in last["messages"][1:-1]]
        assert history == [text for said in asked[:-1] for text in (said, f"re: {said}")]
    finally:
        for server in servers:
            server.stop()


def test_a_crashed_worker_loses_no_answered_turn_and_its_last_message_is_answered(store_url, fakes):
    graph, model = fakes
    settings = {
        **service_settings(graph, model),
        "STORE_URL": store_url,
        # The crashed worker's lock blocks the person's queue this long before another takes over.
        "QUEUE_LOCK_SECONDS": "1",
    }
    service = GunicornService(settings)
    try:
        for n in range(3):
            service.post(page_body(text_event(f"turn {n}", psid="5000")))
            assert graph.wait_for(lambda n=n: len(graph.texts("5000")) > n)
        held = completion("never delivered")
        held.hold = True
        model.script.append(held)
        model.default = lambda request: completion("re: " + request["messages"][-1]["content"])
        service.post(page_body(text_event("turn 3", psid="5000")))
        assert model.wait_for(lambda: len(model.requests) == 4)
        for pid in [*service.worker_pids(), service.process.pid]:
            os.kill(pid, signal.SIGKILL)
        service.process.wait()
    finally:
        service.stop()

    restarted = GunicornService(settings)
    try:
        # The crashed worker's lock runs out, then the new one answers the message left queued.
        assert graph.wait_for(lambda: "re: turn 3" in graph.texts("5000"), timeout=60)
        history = [m["content"] for m in model.requests[-1]["messages"][1:]]
        assert history == [
            "turn 0",
            "You said: turn 0",
            "turn 1",
            "You said: turn 1",
            "turn 2",
            "You said: turn 2",
            "turn 3",
        ]
        assert graph.texts("5000").count("re: turn 3") == 1
    finally:
        restarted.stop()
        model.released.set()


def test_a_hand_written_reply_seen_by_one_server_silences_the_bot_on_the_other(store_url, fakes):
    graph, model = fakes
    settings = {**service_settings(graph, model), "STORE_URL": store_url, "WEB_CONCURRENCY": "2"}
    servers = [GunicornService(settings), GunicornService(settings)]
    person = "4100"
    try:
        echo = load("echo_page_inbox.json")
        echo["entry"][0]["messaging"][0]["recipient"]["id"] = person
        assert post_on_a_new_connection(servers[0], echo) == HTTPStatus.OK
        for n in range(3):
            assert post_on_a_new_connection(servers[1], page_body(text_event(f"silent {n}", psid=person))) == 200
        assert post_on_a_new_connection(servers[1], page_body(text_event("/bot", psid=person))) == HTTPStatus.OK
        assert post_on_a_new_connection(servers[0], page_body(text_event("hello bot", psid=person))) == 200
        assert graph.wait_for(lambda: len(graph.texts(person)) >= 2)
        # Nothing was sent while the page's person was talking: no typing, no seen, no reply.
        assert graph.sequence(person)[0] == f"text:{replies.BOT_BACK}"
        assert graph.texts(person) == [replies.BOT_BACK, "You said: silent 0\n\nsilent 1\n\nsilent 2\n\nhello bot"]
        (request,) = model.requests
        assert [m["content"] for m in request["messages"][1:]] == [
            prompt.page_words("Hi, this is Anna from the shop. Your order ships tomorrow."),
            "silent 0\n\nsilent 1\n\nsilent 2\n\nhello bot",
        ]
    finally:
        for server in servers:
            server.stop()


def test_metrics_sum_every_workers_samples(tmp_path, fakes):
    graph, model = fakes
    settings = {
        **service_settings(graph, model),
        "STORE_URL": f"sqlite:///{tmp_path}/bot.db",
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    server = GunicornService(settings)
    people = [str(4200 + n) for n in range(8)]

    def scrape() -> dict[str, float]:
        page = requests.get(server.url + "/metrics", headers={"Connection": "close"}, timeout=10).text
        return {
            f"{sample.name}{sorted(sample.labels.items())}": sample.value
            for family in text_string_to_metric_families(page)
            for sample in family.samples
        }

    sent = "bot_replies_total[('channel', 'messenger'), ('outcome', 'sent')]"
    try:
        for person in people:
            assert post_on_a_new_connection(server, page_body(text_event("hello", psid=person))) == HTTPStatus.OK
        assert graph.wait_for(lambda: all(graph.texts(person) for person in people))
        # A reply is counted just after Meta takes it, and its event leaves the queue after that:
        # once no one is waiting, every reply has been counted.
        deadline = time.monotonic() + 30
        while scrape()["bot_queue_people[]"] and time.monotonic() < deadline:
            pass
        # Each scrape may reach either worker: every one must show the sum of both.
        assert [scrape()[sent] for _ in range(4)] == [len(people)] * 4
    finally:
        server.stop()


def test_an_answer_that_outlives_the_lock_is_not_answered_again_by_another_server(store_url, fakes):
    graph, model = fakes
    paragraphs = [f"Part {n} of a long answer, " + " ".join(["written slowly word after word"] * 6) for n in range(4)]
    answers = iter(["\n\n".join(paragraphs), "re: and then?"])
    model.default = lambda request: completion(next(answers, "one answer too many"))
    model.tokens_per_second = 60  # about four seconds for the long answer: twice the lock's lifetime
    settings = {**service_settings(graph, model), "STORE_URL": store_url, "QUEUE_LOCK_SECONDS": "2"}
    servers = [GunicornService(settings), GunicornService(settings)]
    try:
        assert post_on_a_new_connection(servers[0], page_body(text_event("tell me all", psid="4200"))) == 200
        # Two paragraphs on their own, then the other two filling a message.
        messages = [*paragraphs[:2], "\n\n".join(paragraphs[2:])]
        assert graph.wait_for(lambda: len(graph.texts("4200")) >= 3)
        assert post_on_a_new_connection(servers[1], page_body(text_event("and then?", psid="4200"))) == 200
        assert graph.wait_for(lambda: len(graph.texts("4200")) >= 4)
        assert graph.texts("4200") == [*messages, "re: and then?"]
        assert [request["messages"][-1]["content"] for request in model.requests] == ["tell me all", "and then?"]
    finally:
        for server in servers:
            server.stop()


def whatsapp_text(person: str, mid: str, text: str) -> dict:
    body = load("whatsapp/text.json")
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    message.update({"from": person, "id": mid, "text": {"body": text}})
    return body


def whatsapp_media(name: str, person: str, mid: str) -> dict:
    body = load(f"whatsapp/{name}")
    body["entry"][0]["changes"][0]["value"]["messages"][0].update({"from": person, "id": mid})
    return body


def words_of(content: str | list) -> str:
    """What a message for the model says: its text, or the text part beside its photos."""
    return content if isinstance(content, str) else content[0]["text"]


def test_a_whatsapp_conversation_over_two_workers_on_a_shared_store(store_url, fakes):
    graph, model = fakes
    model.default = lambda request: completion("re: " + words_of(request["messages"][-1]["content"]))
    settings = {
        **service_settings(graph, model),
        "STORE_URL": store_url,
        "WEB_CONCURRENCY": "2",
        "WHATSAPP_TOKEN": "EAAGwhatsappsystemusertoken0123",
        "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
        "LIMIT_PER_MINUTE": "0",
        "ALLOW_HTTP_MEDIA": "on",  # the fake Graph API's media links are plain HTTP
    }
    photo = load("whatsapp/image.json")["entry"][0]["changes"][0]["value"]["messages"][0]["image"]["id"]
    voice = load("whatsapp/voice.json")["entry"][0]["changes"][0]["value"]["messages"][0]["audio"]["id"]
    graph.media[photo] = Media(b"\xff\xd8\xff\xe0" + b"\x42" * 2000, "image/jpeg")
    graph.media[voice] = Media(b"OggS" + b"\x01" * 2000, "audio/ogg; codecs=opus")
    service = GunicornService(settings)
    person = "16505550000"
    try:
        for n in range(4):
            body = whatsapp_text(person, f"wamid.e2e{n}", f"question {n}")
            assert post_on_a_new_connection(service, body) == HTTPStatus.OK
            assert post_on_a_new_connection(service, body) == HTTPStatus.OK  # Meta's redelivery
            assert graph.wait_for(lambda n=n: len(graph.texts(person)) > n)
        assert graph.texts(person) == [f"re: question {n}" for n in range(4)]
        # Each answer saw the whole conversation before it, whichever worker took it.
        assert [m["content"] for m in model.requests[-1]["messages"][1:]] == [
            text for n in range(3) for text in (f"question {n}", f"re: question {n}")
        ] + ["question 3"]
        # A photo and a voice note, each fetched once with the token, whichever worker took them.
        photo_body = whatsapp_media("image.json", person, "wamid.e2e-photo")
        assert post_on_a_new_connection(service, photo_body) == HTTPStatus.OK
        assert graph.wait_for(lambda: "re: Is this the right part?" in graph.texts(person))
        shown = next(m for m in reversed(model.requests) if "messages" in m)["messages"][-1]["content"]
        assert shown[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
        voice_body = whatsapp_media("voice.json", person, "wamid.e2e-voice")
        assert post_on_a_new_connection(service, voice_body) == HTTPStatus.OK
        assert graph.wait_for(lambda: any(text.startswith("🎤 I heard") for text in graph.texts(person)))
        downloads = [headers["authorization"] for _, headers in graph.downloads]
        assert downloads == ["Bearer EAAGwhatsappsystemusertoken0123"] * 2
        # The same id on Messenger is somebody else.
        assert post_on_a_new_connection(service, page_body(text_event("hello", psid=person))) == HTTPStatus.OK
        assert graph.wait_for(lambda: "re: hello" in graph.texts(person))
        assert [m["content"] for m in model.requests[-1]["messages"][1:]] == ["hello"]
    finally:
        service.stop()
