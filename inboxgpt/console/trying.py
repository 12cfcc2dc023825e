"""The console's Try it page: the owner writes a message as a customer on a channel and sees the assistant's answer
with what it drew on, as `flask --app app chat --explain` prints it (knowledge sections, tool calls with their
arguments and results, tokens, cost, time).

The answer comes from the rehearsal of `flask eval` (inboxgpt/evals/rehearsal.py): the same prompt, knowledge,
model and tools offered, but no tool acts (each call is answered with a stub saying it is a test), nothing reaches
Meta, no owner is notified, and nothing is kept. Each try is a new conversation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

from flask import current_app, render_template, request

from inboxgpt.channels import NAMES
from inboxgpt.console.views import CHANNEL_NAMES, MAX_TEXT_CHARS, blueprint, staff_name
from inboxgpt.evals.rehearsal import Answered, Rehearsal
from inboxgpt.evals.watch import shortened

TRYING = "inboxgpt_console_trying"
BUSY = "Another try is under way: send yours again in a moment."
EMPTY = "Write a message to try."
TOO_LONG = f"A message of at most {MAX_TEXT_CHARS:,} characters."


@dataclass(frozen=True)
class Trying:
    """How the page rehearses: `rehearse` builds the rehearsal of the service's conversation (closed after each try);
    one try at a time in each process, each being a model call or more."""

    rehearse: Callable[[], Rehearsal]
    turn: threading.Lock = field(default_factory=threading.Lock)


@blueprint.route("/try", methods=["GET", "POST"])
def try_it() -> tuple[str, int]:
    text = request.form.get("text", "").strip()
    channel = request.form.get("channel", NAMES[0])
    answered, problem, status = None, "", HTTPStatus.OK
    if request.method == "POST":
        if channel not in NAMES:
            channel, problem, status = NAMES[0], "No such channel.", HTTPStatus.BAD_REQUEST
        elif not text:
            problem, status = EMPTY, HTTPStatus.BAD_REQUEST
        elif len(text) > MAX_TEXT_CHARS:
            problem, status = TOO_LONG, HTTPStatus.BAD_REQUEST
        else:
            answered = _answer(text, channel)
            if answered is None:
                problem, status = BUSY, HTTPStatus.TOO_MANY_REQUESTS
    page = render_template(
        "console/try.html",
        text=text,
        channel=channel,
        channels=[(name, CHANNEL_NAMES.get(name, name)) for name in NAMES],
        answered=answered,
        problem=problem,
        shortened=shortened,
        max_chars=MAX_TEXT_CHARS,
        me=staff_name(),
    )
    return page, status


def _answer(text: str, channel: str) -> Answered | None:
    """`text` answered on `channel` in a new rehearsed conversation; None while another try is under way."""
    trying: Trying = current_app.extensions[TRYING]
    if not trying.turn.acquire(blocking=False):
        return None
    try:
        rehearsal = trying.rehearse()
        try:
            return rehearsal.conversation(channel).say(text)
        finally:
            rehearsal.close()
    finally:
        trying.turn.release()
