"""Outcomes from transcripts (`flask report`), each definition of docs/outcomes.md on made-up transcripts."""

from __future__ import annotations

import json
import time

from inboxgpt.conversation.outcomes import OutcomeSettings, conversations, outcomes
from inboxgpt.conversation.transcript import Entry, Kind, Transcripts
from inboxgpt.events import Message
from inboxgpt.store import open_store
from inboxgpt.web.app import _settings

HOUR = 3600.0
NOW = 1_800_000_000.0
DEFAULTS = OutcomeSettings(gap_hours=24, resolved_after_hours=24)


def person(text: str, hours_ago: float) -> Entry:
    return Entry(Kind.PERSON, text, NOW - hours_ago * HOUR)


def assistant(text: str, hours_ago: float) -> Entry:
    return Entry(Kind.ASSISTANT, text, NOW - hours_ago * HOUR, state="sent")


def figures(*people: list[Entry], days: float = 7, settings: OutcomeSettings = DEFAULTS):
    return outcomes(people, NOW, days, settings)


def test_a_conversation_is_a_persons_messages_with_no_gap_over_the_setting():
    entries = [person("a", 100), assistant("A", 99.9), person("b", 80), person("c", 50), assistant("C", 49)]
    assert [len(talk) for talk in conversations(entries, 24)] == [3, 2]
    assert [len(talk) for talk in conversations(entries, 48)] == [5]
    assert figures(entries).conversations == 2
    # Only conversations started within the days asked for.
    assert figures(entries, days=3).conversations == 1


def test_resolved_by_the_assistant_needs_an_answer_then_silence():
    answered = [person("what time do you open on sunday?", 30), assistant("9 am.", 29.9)]
    assert figures(answered).resolved == 1
    # Answered an hour ago: too soon to tell.
    recent = [person("what time do you open on sunday?", 1.1), assistant("9 am.", 1)]
    assert (figures(recent).resolved, figures(recent).open) == (0, 1)
    # The person's last message was never answered.
    unanswered = [*answered, person("and on monday?", 29)]
    assert figures(unanswered).resolved == 0


def test_greetings_alone_are_not_counted_as_resolved():
    hello = [person("Hi!", 30), assistant("Hello! How can I help?", 29.9), person("thanks 👍", 29.8)]
    result = figures(hello)
    assert (result.conversations, result.greetings_only, result.resolved) == (1, 1, 0)
    assert result.resolution_rate == 0.0


def test_handed_over_by_human_the_tool_staff_or_a_take_over_is_not_resolved():
    ways = [
        Entry(Kind.HANDOVER, "Needs a person: asked for a person", NOW - 29.95 * HOUR),
        Entry(Kind.HANDOVER, "Needs a person: the assistant handed them over", NOW - 29.95 * HOUR),
        Entry(Kind.STAFF, "Hi, Maria here", NOW - 29.95 * HOUR, by="maria", state="sent"),
        Entry(Kind.HANDOVER, "Took over: the assistant stays silent", NOW - 29.95 * HOUR, by="tom"),
    ]
    for way in ways:
        talk = [person("can I talk to someone", 30), way, assistant("Here is what I know.", 29.9)]
        result = figures(talk)
        assert (result.handed_over, result.resolved) == (1, 0), way


def test_reopened_when_the_person_writes_again_after_a_resolution():
    settings = OutcomeSettings(gap_hours=24, resolved_after_hours=2)
    talk = [person("do you deliver?", 30), assistant("Within 5 miles.", 29.9), person("and to Leeds?", 20)]
    assert figures(talk, settings=settings).reopened == 1
    assert figures(talk).reopened == 0  # within RESOLVED_AFTER_HOURS: one conversation going on
    by_staff = [
        person("my cake was wrong", 30),
        Entry(Kind.HANDOVER, "Resolved", NOW - 29 * HOUR, by="maria"),
        person("still waiting for the refund", 28),
    ]
    assert figures(by_staff).reopened == 1


def test_not_covered_groups_the_questions_by_their_words_most_frequent_first():
    sorry = "Sorry, I don't know that. Send /human to ask the team."
    people = [
        [person("Do you sell pizza?", 30), assistant(sorry, 29.9)],
        [person("do you sell PIZZA", 40), assistant("I'm not sure about that.", 39.9)],
        [person("Is there a play area?", 50), assistant("I don't have that information.", 49.9)],
        [person("How much is a croissant?", 60), assistant("£2.60.", 59.9)],
    ]
    result = figures(*people)
    assert [(group.words, group.count) for group in result.not_covered] == [("pizza sell", 2), ("area play", 1)]
    assert result.not_covered[0].example == "Do you sell pizza?"


def test_report_command_reads_the_stores_transcripts(config, make_app, tmp_path):
    config.update(STORE_URL=f"sqlite:///{tmp_path}/bot.db", RESOLVED_AFTER_HOURS="1")
    settings = _settings(config, meta_required=False)
    store = open_store(settings)
    transcripts = Transcripts(store, 90, clock=lambda: time.time() - 2 * HOUR)
    asked = Message(psid="1", mid="m1", timestamp=int((time.time() - 2 * HOUR) * 1000), text="Do you sell pizza?")
    transcripts.person(asked)
    transcripts.sent("1", "I don't know that, sorry.")
    store.close()

    result = make_app(config).test_cli_runner().invoke(args=["report", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["conversations"], report["resolved"], report["handed_over"]) == (1, 1, 0)
    assert report["not_covered"] == [{"words": "pizza sell", "count": 1, "example": "Do you sell pizza?"}]
    text = make_app(config).test_cli_runner().invoke(args=["report"]).output
    assert "resolved by the assistant: 1 (100% of those beyond greetings)" in text
    assert '     1  pizza sell  ("Do you sell pizza?")' in text
