"""The outcomes on the console's Usage page through Flask's test client, on made-up transcripts: conversations by
outcome and reopened conversations per day as SVG plots, the figures of `flask report`, and the not-covered list."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from inboxgpt.conversation.transcript import Transcripts
from inboxgpt.events import Message
from inboxgpt.web.app import EXTENSION
from tests.test_console_reports import SVG, bar_titles, console, plots  # noqa: F401 (console: a fixture)

HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def label(hours_ago: float) -> str:
    return datetime.fromtimestamp(time.time() - hours_ago * HOUR, UTC).strftime("%d %b")


def talk(transcripts: Transcripts, clock: Clock, psid: str, *turns: tuple[float, str, str]) -> None:
    """Keeps a made-up conversation: (hours ago, who, text), who being person, assistant or handover."""
    for hours_ago, who, text in turns:
        clock.now = time.time() - hours_ago * HOUR
        if who == "person":
            event = Message(psid=psid, mid=f"m{psid}{hours_ago}", timestamp=int(clock.now * 1000), text=text)
            transcripts.person(event)
        elif who == "assistant":
            transcripts.sent(psid, text)
        else:
            transcripts.needs_person(Message(psid=psid, mid="", timestamp=0, text=""), text, notify=False)


def test_the_usage_page_plots_the_outcomes_per_day_and_lists_what_was_not_covered(console):  # noqa: F811 (the fixture)
    app, browser = console(RESOLVED_AFTER_HOURS="1")
    clock = Clock()
    transcripts = Transcripts(app.extensions[EXTENSION].store, 90, clock=clock)
    talk(transcripts, clock, "1", (72, "person", "When do you open on Sunday?"), (71.9, "assistant", "At 9."))
    talk(transcripts, clock, "2", (48, "person", "can I talk to someone"), (47.9, "handover", "asked for a person"))
    talk(
        transcripts,
        clock,
        "3",
        (120, "person", "Do you sell pizza?"),
        (119.9, "assistant", "Sorry, I don't know that."),
        (117, "person", "so no pizza at all?"),  # after RESOLVED_AFTER_HOURS: reopened
        (116.9, "assistant", "I'm not sure about that."),
    )
    talk(transcripts, clock, "4", (40 * 24, "person", "Do you sell pizza?"), (40 * 24 - 0.1, "assistant", "No idea."))

    page = browser.get("/console/usage").get_data(as_text=True)

    found = plots(page)
    conversations, reopened = found["plot-conversations"], found["plot-reopened"]
    assert conversations.findtext(f"{SVG}title") == "Conversations per day by outcome, the last 30 days"
    assert bar_titles(conversations) == [
        f"{label(120)}: Resolved 1 conversations",
        f"{label(72)}: Resolved 1 conversations",
        f"{label(48)}: Handed over 1 conversations",
    ]
    assert bar_titles(reopened) == [f"{label(120)}: Reopened 1 reopened"]
    assert "3 conversations: 2 resolved by the assistant (67% of those beyond greetings), 1 handed over" in page
    not_covered = page[page.index('id="not-covered"') :]
    assert "<td>pizza sell</td><td>Do you sell pizza?</td>" in not_covered  # the 40-day-old one is not counted
    assert '<td class="number">1</td><td>pizza sell' in not_covered


def test_with_no_transcripts_the_outcomes_say_so(console):  # noqa: F811 (the fixture)
    _, browser = console()
    page = browser.get("/console/usage").get_data(as_text=True)
    assert bar_titles(plots(page)["plot-conversations"]) == []
    assert "Every question was covered." in page
