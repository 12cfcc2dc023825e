"""The webhook as Meta sees it: verification, signatures, body checks, and what each event gets."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest

from inboxgpt import replies
from inboxgpt.web.signature import sign
from tests.fakes import completion
from tests.helpers import APP_SECRET, PAGE_ID, PSID, VERIFY_TOKEN, load, meta_json, page_body, text_event

# --- GET / verification ---


def test_verification_echoes_the_bare_challenge(client):
    response = client.get(f"/?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444")
    assert response.status_code == HTTPStatus.OK
    assert response.get_data(as_text=True) == "1158201444"
    assert response.mimetype == "text/plain"


@pytest.mark.parametrize(
    "query",
    [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        f"hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1",
        f"hub.verify_token={VERIFY_TOKEN}&hub.challenge=1",
        "hub.mode=subscribe&hub.challenge=1",
        f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}",
        "hub.mode=subscribe&hub.verify_token=%C3%A9t%C3%A9&hub.challenge=1",
        "hub.verify_token=",
    ],
)
def test_verification_refuses_anything_else(client, query):
    assert client.get(f"/?{query}").status_code == HTTPStatus.FORBIDDEN


def test_health_needs_no_signature_and_tells_nothing_but_ok(post, client):
    post(load("text.json"))
    response = client.get("/healthz")
    assert response.status_code == HTTPStatus.OK
    # Anyone can call it: it says whether the service works, not how much it is used.
    assert set(response.get_json()) == {"status", "version", "store", "page_token", "whatsapp_token"}
    assert response.get_json()["status"] == "ok"
    assert response.get_json()["store"] == "ok"
    assert response.get_json()["page_token"] == "ok"  # the reply went out with it
    assert response.get_json()["whatsapp_token"] == "unknown"  # not used yet


def test_health_reports_a_dead_page_token_without_hiding_it(client, graph, post):
    assert client.get("/healthz").get_json()["page_token"] == "unknown"  # not used yet
    graph.fail_next(400, code=190, subcode=460, times=4)  # the person's name, seen, typing, the answer
    post(load("text.json"))
    response = client.get("/healthz")
    assert response.status_code == HTTPStatus.OK  # events are still taken
    assert response.get_json()["page_token"] == "invalid"
    assert response.get_json()["status"] == "degraded"


# --- POST / authentication and body checks ---


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha256=",
        "sha256=zz",
        "sha256=" + "0" * 64,
        "sha1=" + "0" * 40,
        "not-a-signature",
        "sha256=é",
    ],
)
def test_unsigned_or_wrongly_signed_posts_are_refused_and_ignored(client, graph, openai_server, signature):
    raw = meta_json(load("text.json"))
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    assert client.post("/", data=raw, headers=headers).status_code == HTTPStatus.FORBIDDEN
    assert graph.calls == []
    assert openai_server.requests == []


def test_sha1_signature_alone_is_refused_even_when_correct(client, graph):
    import hashlib
    import hmac

    raw = meta_json(load("text.json"))
    sha1 = "sha1=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha1).hexdigest()
    response = client.post("/", data=raw, headers={"X-Hub-Signature": sha1})
    assert response.status_code == HTTPStatus.FORBIDDEN


def test_signature_is_checked_over_the_raw_escaped_body(post, graph, openai_server):
    # Meta signs the body as sent, with \u00e9 escapes and \/; a re-serialised body would not match.
    raw = meta_json(page_body(text_event("Café à Paris? 🍷 http://a/b")))
    assert b"\\u00e9" in raw
    assert b"\\/" in raw
    assert post(raw).status_code == HTTPStatus.OK
    assert openai_server.requests[0]["messages"][-1]["content"] == "Café à Paris? 🍷 http://a/b"


def test_body_over_one_mib_is_refused(client, graph):
    raw = b'{"object":"page","entry":[]}' + b" " * (1024 * 1024)
    response = client.post("/", data=raw, headers={"X-Hub-Signature-256": sign(raw, APP_SECRET)})
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"[" * 100_000,
        b'"a string"',
        b"[]",
        b"null",
        b'{"object":"page"}',
        b'{"object":"page","entry":{}}',
        b'{"object":"user","entry":[]}',  # a webhook of no channel here
        b'{"entry":[]}',
    ],
)
def test_bodies_that_are_not_page_webhooks_get_400(post, graph, raw):
    assert post(raw).status_code == HTTPStatus.BAD_REQUEST
    assert graph.calls == []


@pytest.mark.parametrize(
    "entry",
    [
        [1, "x", None, []],
        [{"messaging": "nope"}],
        [{"messaging": [1, None, "x", {}]}],
        [{"messaging": [{"message": {"mid": "m1", "text": "no sender"}}]}],
        [{"messaging": [{"sender": {"id": PSID}, "message": None}]}],
        [{"messaging": [{"sender": {"id": PSID}, "message": {"text": "no mid"}}]}],
        [{"messaging": [{"sender": {"id": PSID}, "message": {"mid": "m2", "text": 5, "attachments": "x"}}]}],
        [
            {
                "messaging": [
                    {
                        "sender": {"id": PSID},
                        "message": {"mid": "m3", "attachments": [None, {"type": 3, "payload": []}]},
                    }
                ]
            }
        ],
        [{"messaging": [{"sender": {"id": [1]}, "postback": {"payload": "GET_STARTED"}}]}],
        [{"messaging": [{"sender": {"id": PSID}, "postback": "GET_STARTED"}]}],
    ],
)
def test_malformed_events_inside_a_page_body_are_skipped_not_500(post, entry):
    assert post({"object": "page", "entry": entry}).status_code == HTTPStatus.OK


def test_answers_meta_before_the_model_replies(client, service, graph, openai_server):
    held = completion("Paris.")
    held.hold = True
    openai_server.script.append(held)
    raw = meta_json(load("text.json"))
    response = client.post("/", data=raw, headers={"X-Hub-Signature-256": sign(raw, APP_SECRET)})
    # The model has not answered (it never will until released), yet Meta already has its 200.
    assert response.status_code == HTTPStatus.OK
    assert graph.texts() == []
    openai_server.released.set()
    assert service.dispatcher.wait_idle(timeout=30)
    assert graph.texts(PSID) == ["Paris."]


# --- every event kind ---


def test_text_is_answered_by_the_model(post, graph, openai_server):
    assert post(load("text.json")).status_code == HTTPStatus.OK
    assert openai_server.requests[0]["messages"][-1] == {"role": "user", "content": "What is the capital of France?"}
    # Typing and seen go out beside the model call (test_typing.py pins that down); the reply is last.
    assert graph.sequence(PSID)[-1] == "text:You said: What is the capital of France?"
    assert len(graph.texts(PSID)) == 1
    call = graph.calls[-1]
    assert call["messaging_type"] == "RESPONSE"
    assert call["recipient"] == {"id": PSID}


def test_quick_reply_counts_as_its_text(post, graph, openai_server):
    post(load("quick_reply.json"))
    assert openai_server.requests[0]["messages"][-1]["content"] == "Tell me more"


def test_reply_to_a_message_is_answered_as_text(post, openai_server):
    post(load("reply_to.json"))
    assert openai_server.requests[0]["messages"][-1]["content"] == "and this one?"


@pytest.mark.parametrize("name", ["like.json", "sticker.json"])
def test_like_and_sticker_get_a_friendly_acknowledgement(post, graph, openai_server, name):
    assert post(load(name)).status_code == HTTPStatus.OK
    assert graph.texts(PSID) == [replies.STICKER_THANKS]
    assert openai_server.requests == []


def test_a_link_with_text_is_answered_from_its_text(post, openai_server):
    post(load("fallback_with_text.json"))
    assert openai_server.requests[0]["messages"][-1]["content"] == "look at this https://example.com/article"


def test_get_started_gets_the_greeting(post, graph, openai_server):
    post(load("postback_get_started.json"))
    assert graph.texts(PSID) == [replies.GREETING]
    assert openai_server.requests == []


def test_other_postbacks_are_answered_as_their_title(post, openai_server, graph):
    post(load("postback_menu.json"))
    assert openai_server.requests[0]["messages"][-1]["content"] == "Opening hours"
    assert graph.texts(PSID) == ["You said: Opening hours"]


@pytest.mark.parametrize(
    "name",
    [
        "echo.json",
        "delivery.json",
        "read.json",
        "reaction.json",
        "message_edit.json",
        "referral.json",
        "optin.json",
        "standby.json",
        "unknown_kind.json",
    ],
)
def test_events_that_need_no_answer_get_none(post, graph, openai_server, name):
    assert post(load(name)).status_code == HTTPStatus.OK
    assert graph.calls == []
    assert openai_server.requests == []


def test_every_entry_and_every_event_of_a_batch_is_handled(post, graph, openai_server):
    assert post(load("batch.json")).status_code == HTTPStatus.OK
    # Two messages of one person in one batch are answered together.
    assert graph.texts("1111") == ["You said: first from 1111\n\nsecond from 1111"]
    assert graph.texts("2222") == ["You said: hello from 2222"]
    assert graph.texts("3333") == [replies.GREETING]
    assert len(openai_server.requests) == 2  # one for the burst of 1111, one for 2222; echo and delivery unanswered


# --- redelivery ---


def test_a_redelivered_event_gets_no_second_reply(post, graph, openai_server):
    body = load("text.json")
    post(body)
    post(body)
    post(page_body(*body["entry"][0]["messaging"] * 2))
    assert len(openai_server.requests) == 1
    assert graph.texts(PSID) == ["You said: What is the capital of France?"]


def test_a_redelivered_postback_gets_no_second_greeting(post, graph):
    post(load("postback_get_started.json"))
    post(load("postback_get_started.json"))
    assert graph.texts(PSID) == [replies.GREETING]


def test_postbacks_without_mid_are_told_apart_by_time(post, graph):
    tap = {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE_ID},
        "timestamp": 1,
        "postback": {"title": "Get Started", "payload": "GET_STARTED"},
    }
    later = {**tap, "timestamp": 2}
    post(page_body(tap, tap, later))
    assert graph.texts(PSID) == [replies.GREETING, replies.GREETING]


def test_response_body_is_plain_text(post):
    response = post(load("read.json"))
    assert response.get_data(as_text=True) == "EVENT_RECEIVED"


# --- odd input: no 500, and the rest of the batch is taken ---


def with_changes(event: dict, **changes: object) -> dict:
    """A copy of a messaging item with some of its fields (dotted paths) replaced."""
    copy = json.loads(json.dumps(event))
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = copy
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value
    return copy


def test_lone_surrogates_and_absurd_numbers_anywhere_in_a_batch(post_to_store, graph, openai_server):
    surrogate = "\ud800"
    malformed = [  # skipped: not an id Meta would send
        with_changes(text_event("a"), sender__id="6" + surrogate),
        with_changes(text_event("b"), message__mid="m_" + surrogate),
        with_changes(text_event("c"), message__mid="m_" + "x" * 10_000),
    ]
    odd_but_answered = [
        text_event("d" + surrogate + "d", psid="201"),
        with_changes(text_event("e", psid="202"), timestamp=10**20),
        with_changes(text_event("f", psid="203"), timestamp=-(10**20)),
        with_changes(text_event("g", psid="204"), message__reply_to__mid="m_" + surrogate),
        with_changes(text_event("", psid="205"), message__quick_reply__payload="h" + surrogate),
        {
            "sender": {"id": "206"},
            "recipient": {"id": PAGE_ID},
            "timestamp": 1,
            "postback": {"title": "i" + surrogate, "payload": "MENU" + surrogate},
        },
    ]
    last = text_event("the last one", psid="207")
    response = post_to_store(page_body(*malformed, *odd_but_answered, last))
    assert response.status_code == HTTPStatus.OK
    assert graph.texts("201") == ["You said: d\ufffdd"]
    assert graph.texts("202") == ["You said: e"]
    assert graph.texts("203") == ["You said: f"]
    assert graph.texts("204") == ["You said: g"]
    assert graph.texts("205") == ["You said: h\ufffd"]
    assert graph.texts("206") == ["You said: i\ufffd"]
    assert graph.texts("207") == ["You said: the last one"]
    assert graph.texts(PSID) == []  # the malformed ones
