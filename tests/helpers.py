"""Test data shared by the unit and end-to-end tests: secrets, ids, and realistic webhook payloads."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask

from inboxgpt.events import Event, Message
from inboxgpt.queues.dispatcher import Dispatcher
from inboxgpt.store import Store
from inboxgpt.web.app import EXTENSION
from inboxgpt.web.signature import sign

DATA = Path(__file__).resolve().parent / "data"
PAGE_TOKEN = "EAAGtestpagetoken0123456789"
APP_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
VERIFY_TOKEN = "my-verify-token-42"
OPENAI_KEY = "sk-test-0123456789abcdef"
GRAPH_VERSION = "/v23.0"
WHATSAPP_TOKEN = "EAAGwhatsappsystemusertoken0123"
WHATSAPP_NUMBER_ID = "106540352242922"
PAGE_ID = "1234567890"
PSID = "6543210987654321"


_mids = itertools.count(1)


# The time the WhatsApp bodies under tests/data were written (a little after the newest time they carry).
WHATSAPP_WRITTEN_AT = 1764541000


def load(name: str) -> dict:
    """Return a webhook payload from tests/data. A WhatsApp body's times are moved as if it had been written now,
    keeping their order and gaps: WhatsApp answers only within 24 hours of a message, and a test's message is new."""
    body = json.loads((DATA / name).read_text())
    if name.startswith("whatsapp/"):
        recent(body, int(time.time()) - WHATSAPP_WRITTEN_AT)
    return body


def recent(body: dict, seconds: int) -> None:
    """Move every time (seconds since 1970, as text) of a WhatsApp body's messages, receipts and echoes on by
    `seconds`."""
    for entry in body["entry"]:
        for change in entry["changes"]:
            value = change["value"]
            for item in [*value.get("messages", ()), *value.get("statuses", ()), *value.get("message_echoes", ())]:
                if "timestamp" in item:
                    item["timestamp"] = str(int(item["timestamp"]) + seconds)


def text_event(text: str, psid: str = PSID, mid: str | None = None) -> dict:
    """One `messaging` item for a text message."""
    mid = mid or f"m_{next(_mids)}"
    return {
        "sender": {"id": psid},
        "recipient": {"id": PAGE_ID},
        "timestamp": 1764064800000,
        "message": {"mid": mid, "text": text},
    }


def page_body(*items: dict) -> dict:
    """A webhook body with the items in one entry."""
    return {"object": "page", "entry": [{"id": PAGE_ID, "time": 1764064800000, "messaging": list(items)}]}


def meta_json(payload: object) -> bytes:
    """Serialise as Meta does: non-ASCII as \\uXXXX escapes and '/' as '\\/'."""
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode()


def signed_headers(raw: bytes, app_secret: str = APP_SECRET) -> dict[str, str]:
    """The headers of a webhook POST of `raw` as Meta sends it."""
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, app_secret)}


def poster(app: Flask) -> Callable[..., Any]:
    """Return a function that POSTs a body to the app's webhook as Meta would, then waits for the replies."""
    client = app.test_client()
    dispatcher = app.extensions[EXTENSION].dispatcher

    def post(body: dict | bytes, *, signature: str | None = None, wait: bool = True) -> Any:
        raw = body if isinstance(body, bytes) else meta_json(body)
        headers = signed_headers(raw)
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        response = client.post("/", data=raw, headers=headers)
        if wait:
            assert dispatcher.wait_idle(timeout=30), "replies did not finish"
        return response

    return post


def each_message(texts: list[str], prefix: str = "") -> list[str]:
    """The messages that `texts` answered, in order: a burst's messages reach the model (and an echoing fake's
    reply) together, joined by a blank line."""
    return [text.removeprefix(prefix) for text in "\n\n".join(texts).split("\n\n")]


def one_at_a_time(handle: Callable[[Event], None]) -> Callable[[list[Event]], int]:
    """A dispatcher's handler that answers each event on its own."""

    def handle_first(events: list[Event]) -> int:
        handle(events[0])
        return 1

    return handle_first


def answer_a_steady_queue(store: Store, count: int, psid: str = "1") -> list[str]:
    """Answer one person's `count` messages, all but the first queued while the first is answered.

    Returns the ids of the events in the order they were answered; the store's calls are the
    dispatcher's (wrap it in fakes.CountingStore to count them).
    """
    answered: list[str] = []
    first_in_hand, go_on = threading.Event(), threading.Event()

    def handle(event: Event) -> None:
        first_in_hand.set()
        go_on.wait(timeout=30)
        answered.append(event.event_id)

    dispatcher = Dispatcher(store, one_at_a_time(handle), threads=4, lock_ttl=60)
    messages = [Message(psid=psid, mid=f"{psid}-m{n}", timestamp=0, text=f"message {n}") for n in range(count)]
    dispatcher.submit(messages[:1])
    assert first_in_hand.wait(timeout=30), "the first message was never answered"
    for message in messages[1:]:
        dispatcher.submit([message])
    go_on.set()
    assert dispatcher.wait_idle(timeout=30), "the queue was not answered"
    dispatcher.close(finish_queued=True)
    return answered
