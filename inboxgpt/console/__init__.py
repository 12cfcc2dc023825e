"""The owner's console at /console/: every conversation across the channels, each transcript, and the staff's
buttons (take over, send, hand back, note, resolve), the reports (leads, usage and outcomes), a rehearsed answer
with its reasons (Try it) and test set runs, as server-rendered pages with a small script for live updates.

`install(app, ...)` adds it to the Flask app. It is off (404) until a staff account exists and SECRET_KEY is set. Its
pages read the store (Try it and Test sets also ask the model, rehearsed); nothing of it is on the webhook's path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask import Flask

from inboxgpt.channels.base import Channels
from inboxgpt.config import Secret, Settings
from inboxgpt.console.reports import usage_outcomes  # and, imported, the Leads and Usage pages join the blueprint
from inboxgpt.console.staff import Staff
from inboxgpt.console.testsets import TESTING, Tester
from inboxgpt.console.trying import TRYING, Trying
from inboxgpt.console.views import CONSOLE, Console, blueprint
from inboxgpt.conversation.desk import Desk
from inboxgpt.conversation.outcomes import OutcomeSettings
from inboxgpt.conversation.pauses import Pauses
from inboxgpt.conversation.transcript import Transcripts
from inboxgpt.evals.cases import EvalFile
from inboxgpt.evals.rehearsal import Rehearsal
from inboxgpt.evals.runner import Runner
from inboxgpt.media import Media
from inboxgpt.store import Store

# A staff member signs in again after this long.
SESSION_HOURS = 12


@dataclass(frozen=True)
class ConsoleSettings:
    """What the console needs of the settings."""

    secret_key: Secret | None
    insecure_cookies: bool
    pause_minutes: float
    history_max_tokens: int
    timezone: str
    outcomes: OutcomeSettings
    people_cap: int
    evals_dir: Path | None

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleSettings:
        return cls(
            secret_key=settings.secret_key,
            insecure_cookies=settings.console_insecure_cookies,
            pause_minutes=settings.human_pause_minutes,
            history_max_tokens=settings.history_max_tokens,
            timezone=settings.timezone,
            outcomes=OutcomeSettings.from_settings(settings),
            people_cap=settings.max_conversations,
            evals_dir=settings.evals_dir or settings.knowledge_dir,
        )


def install(
    app: Flask,
    settings: ConsoleSettings,
    store: Store,
    channels: Channels,
    transcripts: Transcripts,
    media: Media,
    rehearse: Callable[[], Rehearsal],
    run_evals: Callable[[EvalFile], Runner],
) -> None:
    """Add the console to the app: its pages, and session cookies signed with SECRET_KEY (HttpOnly, SameSite=Lax,
    Secure unless CONSOLE_INSECURE_COOKIES), sent to /console/ only; `rehearse` builds the rehearsal Try it
    answers with, `run_evals` the runner of a test set."""
    if settings.secret_key is not None:
        app.secret_key = settings.secret_key.reveal()
    app.config.update(
        SESSION_COOKIE_NAME="console_session",
        SESSION_COOKIE_PATH="/console/",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not settings.insecure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )
    desk = Desk(store, channels, Pauses(store, settings.pause_minutes), transcripts, settings.history_max_tokens)
    app.extensions[CONSOLE] = Console(
        staff=Staff(store),
        desk=desk,
        store=store,
        channels=channels,
        transcripts=transcripts,
        media=media,
        signing=settings.secret_key is not None,
        timezone=settings.timezone,
        outcomes=settings.outcomes,
        people_cap=settings.people_cap,
        usage_outcomes=usage_outcomes(transcripts, settings.timezone, settings.outcomes, settings.people_cap),
    )
    app.extensions[TRYING] = Trying(rehearse)
    app.extensions[TESTING] = Tester(run_evals, settings.evals_dir, store)
    app.register_blueprint(blueprint)
