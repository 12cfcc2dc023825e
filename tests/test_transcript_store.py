"""Transcripts and staff accounts in every store backend: kept in order, summaries merged, bounded per person and in
people, run out after TRANSCRIPT_DAYS, searched by text, forgotten on demand."""

from __future__ import annotations

import json

import pytest

from tests.test_store import Backend
from tests.test_store import backend as backend  # noqa: PLC0414 - the store contract's fixture, re-exported here


def entry(text: str, kind: str = "person") -> str:
    return json.dumps({"kind": kind, "text": text})


def texts(entries: list[str]) -> list[str]:
    return [json.loads(one)["text"] for one in entries]


def test_entries_come_back_in_order_and_summaries_merge(backend: Backend):
    store = backend()
    store.keep_transcript("a", entry("hello"), {"state": "assistant", "name": "Ana"})
    store.keep_transcript("a", entry("hi, how can I help?", "assistant"), {"state": "needs_person"})
    store.keep_transcript("b", entry("another"), {})
    assert texts(store.transcript("a")) == ["hello", "hi, how can I help?"]
    assert store.transcript_summary("a") == {"state": "needs_person", "name": "Ana"}
    assert store.transcript_summary("nobody") == {}
    assert store.transcript("nobody") == []


def test_people_come_newest_first(backend: Backend):
    store = backend()
    for psid in ("a", "b", "c"):
        backend.clock.now += 1
        store.keep_transcript(psid, entry(f"from {psid}"), {"name": psid})
    backend.clock.now += 1
    store.keep_transcript("a", entry("again"), {})
    assert [psid for psid, _ in store.transcript_people(10)] == ["a", "c", "b"]
    assert store.transcript_people(2) == [("a", {"name": "a"}), ("c", {"name": "c"})]


def test_a_person_keeps_the_newest_entries_within_the_cap(backend: Backend):
    store = backend(transcript_max_entries=3)
    for n in range(5):
        store.keep_transcript("a", entry(f"message {n}"), {})
    assert texts(store.transcript("a")) == ["message 2", "message 3", "message 4"]


def test_the_least_recently_active_people_go_past_the_cap(backend: Backend):
    store = backend(max_conversations=2)
    for psid in ("a", "b", "c"):
        backend.clock.now += 1
        store.keep_transcript(psid, entry(f"from {psid}"), {"name": psid})
    assert [psid for psid, _ in store.transcript_people(10)] == ["c", "b"]
    assert store.transcript("a") == []
    assert store.transcript_summary("a") == {}


def test_entries_run_out_after_the_transcript_days(backend: Backend):
    store = backend(transcript_ttl=100)
    store.keep_transcript("a", entry("old"), {"name": "Ana"})
    store.keep_transcript("b", entry("old too"), {})
    backend.clock.now += 60
    store.keep_transcript("a", entry("newer"), {})
    backend.clock.now += 50
    # "old" is 110 s old, "newer" 50 s: only the newer one is kept; b's whole transcript ran out.
    assert texts(store.transcript("a")) == ["newer"]
    assert store.transcript("b") == []
    assert [psid for psid, _ in store.transcript_people(10)] == ["a"]
    assert store.search_transcripts("old", 10) == []
    backend.clock.now += 60
    store.expire()
    assert store.transcript("a") == []
    assert store.transcript_summary("a") == {}
    assert store.transcript_people(10) == []


def test_search_reads_the_text_only_ignoring_case(backend: Backend):
    store = backend()
    store.keep_transcript("a", entry("Where is my ORDER 1042?"), {})
    backend.clock.now += 1
    store.keep_transcript("b", entry("Café crème, 100% arabica"), {})
    backend.clock.now += 1
    store.keep_transcript("c", entry("my order never came"), {})
    assert store.search_transcripts("order", 10) == ["c", "a"]
    assert store.search_transcripts("CAFÉ", 10) == ["b"]
    assert store.search_transcripts("100%", 10) == ["b"]
    assert store.search_transcripts("kind", 10) == []  # a key of the entry's JSON, not its text
    assert store.search_transcripts("order", 1) == ["c"]


def test_a_transcript_is_forgotten_on_demand(backend: Backend):
    store = backend()
    store.keep_transcript("a", entry("hello"), {"name": "Ana"})
    store.keep_transcript("b", entry("hello"), {})
    store.forget_transcript("a")
    assert store.transcript("a") == []
    assert store.transcript_summary("a") == {}
    assert [psid for psid, _ in store.transcript_people(10)] == ["b"]


def test_staff_accounts_are_kept_replaced_and_removed(backend: Backend):
    store = backend()
    assert store.staff_names() == []
    store.put_staff("maria", '{"hash": "one"}')
    store.put_staff("ana", '{"hash": "two"}')
    store.put_staff("maria", '{"hash": "three"}')
    assert store.staff_names() == ["ana", "maria"]
    assert store.staff_record("maria") == '{"hash": "three"}'
    assert store.remove_staff("maria") is True
    assert store.remove_staff("maria") is False
    assert store.staff_record("maria") is None


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_shared_store_shows_another_process_the_same_transcript(kind, tmp_path, request):
    url = request.getfixturevalue("redis_url") if kind == "redis" else f"sqlite:///{tmp_path}/bot.db"
    one, other = Backend(kind, url), Backend(kind, url)
    writer, reader = one(), other()
    writer.keep_transcript("wa:15551234567", entry("hola"), {"state": "needs_person"})
    assert texts(reader.transcript("wa:15551234567")) == ["hola"]
    assert reader.transcript_summary("wa:15551234567") == {"state": "needs_person"}
    for store in (writer, reader):
        store.close()
