"""Hostile input: any signed body gets a status below 500 and leaves the service answering; bad signatures
never pass."""

from __future__ import annotations

from http import HTTPStatus

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import PSID, meta_json, page_body, text_event

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Valid JSON that is hard on a service: lone UTF-16 surrogates ("\ud800") and numbers far out of range.
odd_text = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF) | st.characters(), max_size=20)
odd_numbers = st.sampled_from([10**20, -(10**20), 2**63, 2**64 + 1, 1e20, -1e20, 1e308, -1e308])
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | odd_numbers
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | odd_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)
# Arbitrary values in the places Meta's real keys go, so the parser meets them, not just a 400.
messaging_items = st.dictionaries(
    st.sampled_from(
        [
            "sender",
            "recipient",
            "timestamp",
            "message",
            "postback",
            "delivery",
            "read",
            "mid",
            "text",
            "attachments",
            "payload",
            "id",
            "is_echo",
            "quick_reply",
            "reply_to",
            "sticker_id",
            "app_id",
            "metadata",
            "is_deleted",
            "is_unsupported",
            "story",
            "pass_thread_control",
            "take_thread_control",
            "request_thread_control",
            "new_owner_app_id",
            "app_roles",
        ]
    ),
    json_values | st.fixed_dictionaries({"id": st.text(max_size=5) | st.integers() | odd_text}),
    max_size=6,
)
# Messenger and Instagram bodies, with items under `messaging` and under `standby`.
page_bodies = st.builds(
    lambda channel, entries: {"object": channel, "entry": entries},
    st.sampled_from(["page", "instagram"]),
    st.lists(
        st.fixed_dictionaries(
            {"id": json_values, "messaging": st.lists(messaging_items, max_size=4)},
            optional={"standby": st.lists(messaging_items, max_size=2)},
        )
        | json_values,
        max_size=3,
    ),
)


def still_answers(post, graph) -> None:
    before = len(graph.texts(PSID))
    assert post(page_body(text_event("are you still there?"))).status_code == HTTPStatus.OK
    assert graph.texts(PSID)[before:] == ["You said: are you still there?"]


@FUZZ
@given(body=json_values | page_bodies)
def test_any_signed_json_gets_a_status_below_500(post_to_store, graph, body):
    assert post_to_store(meta_json(body)).status_code < HTTPStatus.INTERNAL_SERVER_ERROR


@FUZZ
@given(raw=st.binary(max_size=2000))
def test_any_signed_bytes_get_a_status_below_500(post, graph, raw):
    assert post(raw).status_code < HTTPStatus.INTERNAL_SERVER_ERROR


def test_the_service_still_answers_after_fuzzing(post, graph):
    @FUZZ
    @given(body=json_values | page_bodies | st.binary(max_size=500))
    def fuzz(body):
        raw = body if isinstance(body, bytes) else meta_json(body)
        assert post(raw).status_code < HTTPStatus.INTERNAL_SERVER_ERROR

    fuzz()
    still_answers(post, graph)


@FUZZ
@given(
    signature=st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=80)
    | st.binary(max_size=80).map(lambda b: "sha256=" + b.hex())
)
def test_random_signatures_are_always_refused(post, graph, openai_server, signature):
    response = post(meta_json(page_body(text_event("let me in"))), signature=signature or "sha256=")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert openai_server.requests == []
