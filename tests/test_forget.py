"""Erasing a person: `forget_everywhere` on every backend (then every table or key is scanned for them), the
`forget` command, and Meta's data deletion callback (signed requests, the status page)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import Iterator

import pytest
import redis

from inboxgpt.conversation.forget import forget_everywhere
from inboxgpt.store import Queued, Store, StoreUnavailable, Turn
from inboxgpt.store.memory import MemoryStore
from inboxgpt.store.redis import RedisStore
from inboxgpt.store.sqlite import SQLiteStore
from inboxgpt.web.app import EXTENSION
from tests.helpers import APP_SECRET, PSID, load, page_body, poster, text_event
from tests.test_store import BOUNDS, Clock

PERSON = "wa:15550001111"
# The same person's WhatsApp username id, linked to their number.
ALIAS = "wa:US.13491208655302741918"
OTHER = "wa:15550002222"
DAY = "2025-11-25"


def keep_everything(store: Store, psid: str, now: float) -> None:
    """What the service keeps of a person, each through the store method that keeps it."""
    store.append(psid, Turn("Do you deliver?", "We do, within the city."))
    store.remember(psid, "wamid.in1", "Do you deliver?")
    store.remember_sent(psid, [("wamid.out1", "We do, within the city.")], 600)
    store.pause(psid, now + 60, 600)
    store.accept(
        [
            Queued("wa:wamid.q1", psid, json.dumps({"kind": "Message", "psid": psid, "text": "hello?"})),
            Queued(f"pass_thread_control:{psid}:1764072000000:263902037430900", psid, "{}"),
        ]
    )
    store.take_lock(psid, "worker-1", 60)
    store.increment(f"limit:{psid}:canned:29401200", 1, 600)
    store.increment_all([(f"usage:{DAY}:spend:person:{psid}", 5000, 600), (f"leads:{psid}:{DAY}", 1, 600)])
    store.increment(f"usage:{DAY}:replies", 1, 600)  # the page's own count: no one's
    lead = {"id": "d1" + psid[-4:], "person": psid, "name": "Ana", "phone": "+1 555 000", "note": "a cake"}
    store.keep_record("lead", lead["id"], json.dumps(lead), now)
    store.keep_record(f"spenders:{DAY}", psid, psid, now, ttl=600)
    store.keep_record(f"stopped:{DAY}", psid, psid, now, ttl=600)
    store.keep_record(f"comment-conversation:{psid}", "6543210987654321", "6543210987654321", now)
    store.keep_transcript(psid, json.dumps({"text": "Do you deliver?"}), {"channel": "whatsapp", "name": "Ana"})


def memory_contents(store: MemoryStore) -> str:
    return repr(vars(store))


def sqlite_contents(path: str) -> str:
    with sqlite3.connect(path) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return repr({table: db.execute(f"SELECT * FROM {table}").fetchall() for table in tables})


def redis_contents(url: str) -> str:
    dump = {}
    with redis.Redis.from_url(url, decode_responses=True) as client:
        for key in client.scan_iter("*"):
            kind = client.type(key)
            read = {"string": client.get, "list": lambda k: client.lrange(k, 0, -1), "hash": client.hgetall}
            read |= {"set": client.smembers, "zset": lambda k: client.zrange(k, 0, -1, withscores=True)}
            dump[key] = read[kind](key)
    return repr(dump)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def kept(request, tmp_path) -> Iterator[tuple[Store, object]]:
    """A store of each backend, and a function that returns everything it holds, as text."""
    clock = Clock()
    store: Store
    if request.param == "memory":
        store = MemoryStore(BOUNDS, clock)
        contents = lambda: memory_contents(store)  # noqa: E731
    elif request.param == "sqlite":
        path = f"{tmp_path}/bot.db"
        store = SQLiteStore(f"sqlite:///{path}", BOUNDS, clock)
        contents = lambda: sqlite_contents(path)  # noqa: E731
    else:
        url = request.getfixturevalue("redis_url")
        store = RedisStore(url, BOUNDS, clock)
        contents = lambda: redis_contents(url)  # noqa: E731
    keep_everything(store, PERSON, clock.now)
    keep_everything(store, ALIAS, clock.now)
    keep_everything(store, OTHER, clock.now)
    assert store.link_keys([(ALIAS, PERSON)]) == [PERSON]
    yield store, contents
    store.close()


def test_erasing_a_person_leaves_nothing_of_them_in_the_store(kept):
    store, contents = kept
    assert PERSON in contents()
    assert ALIAS in contents()
    assert forget_everywhere(store, [PERSON]) == [PERSON, ALIAS]
    left = contents()
    assert PERSON not in left
    assert ALIAS not in left
    # Everyone else's, and the page's own, are kept.
    assert OTHER in left
    assert store.get(OTHER) == [Turn("Do you deliver?", "We do, within the city.")]
    assert store.transcript_summary(OTHER)["name"] == "Ana"
    assert [json.loads(lead)["person"] for lead in store.records("lead", 0)] == [OTHER]
    assert store.counter(f"usage:{DAY}:replies") == 3
    assert store.was_sent(OTHER, "wamid.out1")
    assert store.pending() == [OTHER]


def test_erasing_an_unknown_key_erases_nothing_else(kept):
    store, contents = kept
    before = contents()
    assert forget_everywhere(store, ["wa:19998887777"]) == ["wa:19998887777"]
    assert contents() == before


# --- the forget command ---


def test_the_forget_command_erases_a_person_everywhere(make_app, config, tmp_path, graph):
    config.update(STORE_URL=f"sqlite:///{tmp_path}/bot.db")
    app = make_app(config)
    poster(app)(page_body(text_event("My number is 555 0100")))
    assert PSID in sqlite_contents(f"{tmp_path}/bot.db")
    result = app.test_cli_runner().invoke(args=["forget", PSID])
    assert result.exit_code == 0, result.output
    assert result.output == f"Erased everything kept under {PSID}.\n"
    assert PSID not in sqlite_contents(f"{tmp_path}/bot.db")


def test_the_forget_command_refuses_a_store_in_the_services_memory(make_app, config):
    result = make_app(config).test_cli_runner().invoke(args=["forget", "6543210987654321"])
    assert result.exit_code != 0
    assert "memory://" in result.output


# --- Meta's data deletion callback ---


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signed_request(payload: dict | None = None, secret: str = APP_SECRET, issued_ago: float = 5.0) -> str:
    """A signed_request as Meta builds one, issued `issued_ago` seconds ago: HMAC-SHA256 of the payload part, both
    parts base64url unpadded."""
    if payload is None:
        payload = load("meta/data_deletion_payload.json")
        payload["issued_at"] = int(time.time() - issued_ago)
        payload["expires"] = payload["issued_at"] + 3600
    part = b64(json.dumps(payload).encode())
    return b64(hmac.new(secret.encode(), part.encode(), hashlib.sha256).digest()) + "." + part


@pytest.fixture
def on_sqlite(make_app, config, tmp_path):
    """An app on SQLite where the person (Messenger's PSID, and the same id on WhatsApp) has written."""
    config.update(STORE_URL=f"sqlite:///{tmp_path}/bot.db")
    app = make_app(config)
    post = poster(app)
    post(page_body(text_event("My number is 555 0100")))
    whatsapp = load("whatsapp/text.json")
    value = whatsapp["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = value["messages"][0]["from"] = PSID
    post(whatsapp)
    return app, lambda: sqlite_contents(f"{tmp_path}/bot.db")


def test_a_data_deletion_request_erases_the_person_on_every_channel(on_sqlite):
    app, contents = on_sqlite
    assert f"wa:{PSID}" in contents()
    client = app.test_client()
    answer = client.post("/data-deletion", data={"signed_request": signed_request()})
    assert answer.status_code == 200
    code = answer.json["confirmation_code"]
    assert answer.json["url"] == f"http://localhost/data-deletion/{code}"
    assert PSID not in contents()
    page = client.get(f"/data-deletion/{code}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert code in text
    assert "erased everything it kept about you" in text
    assert PSID not in text


@pytest.mark.parametrize("issued_ago", [2 * 86400, -3600])
def test_a_data_deletion_request_from_long_ago_or_to_come_erases_nothing(on_sqlite, issued_ago):
    # A request copied from a log cannot erase the person's later conversations whenever someone likes.
    app, contents = on_sqlite
    replayed = signed_request(issued_ago=issued_ago)
    assert app.test_client().post("/data-deletion", data={"signed_request": replayed}).status_code == 400
    assert PSID in contents()


def test_the_status_page_says_to_come_back_when_the_store_is_down(on_sqlite, monkeypatch):
    app, _ = on_sqlite
    client = app.test_client()
    code = client.post("/data-deletion", data={"signed_request": signed_request()}).json["confirmation_code"]
    store = app.extensions[EXTENSION].store

    def down(*args: object) -> list[str]:
        raise StoreUnavailable("the store is down")

    monkeypatch.setattr(store, "records", down)
    page = client.get(f"/data-deletion/{code}")
    assert page.status_code == 503
    assert "try again shortly" in page.get_data(as_text=True)


def test_a_data_deletion_request_signed_with_another_secret_is_refused(on_sqlite):
    app, contents = on_sqlite
    forged = signed_request(secret="not the app secret")
    answer = app.test_client().post("/data-deletion", data={"signed_request": forged})
    assert answer.status_code == 403
    assert PSID in contents()


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"signed_request": ""},
        {"signed_request": "no-dot-at-all"},
        {"signed_request": "a.b.c"},
        {"signed_request": "!!!.???"},
        {"signed_request": "x" * 5000 + ".y"},
        {"signed_request": "sig.\u00e9t\u00e9"},
    ],
)
def test_a_malformed_data_deletion_request_is_400(on_sqlite, form):
    app, contents = on_sqlite
    assert app.test_client().post("/data-deletion", data=form).status_code == 400
    assert PSID in contents()


@pytest.mark.parametrize(
    "payload",
    [
        {"algorithm": "HMAC-SHA256", "issued_at": 1764072000},
        {"algorithm": "HMAC-SHA256", "user_id": "../../etc"},
        {"algorithm": "HMAC-SHA256", "user_id": ["6543210987654321"]},
        {"algorithm": "none", "user_id": "6543210987654321"},
        ["not", "an", "object"],
    ],
)
def test_a_signed_payload_naming_no_one_is_400(on_sqlite, payload):
    app, contents = on_sqlite
    answer = app.test_client().post("/data-deletion", data={"signed_request": signed_request(payload)})
    assert answer.status_code == 400
    assert PSID in contents()


def test_a_signed_payload_that_is_not_json_is_400(on_sqlite):
    app, _ = on_sqlite
    part = b64(b"{not json")
    signature = b64(hmac.new(APP_SECRET.encode(), part.encode(), hashlib.sha256).digest())
    answer = app.test_client().post("/data-deletion", data={"signed_request": f"{signature}.{part}"})
    assert answer.status_code == 400


def test_an_unknown_confirmation_code_is_404(on_sqlite):
    app, _ = on_sqlite
    client = app.test_client()
    assert client.get("/data-deletion/0123456789abcdef0123").status_code == 404
    assert client.get("/data-deletion/<script>").status_code == 404
