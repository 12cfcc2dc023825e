"""The console's pages: sign in and out, the conversations, one conversation with the staff's buttons, its photos.

Every POST carries the session's CSRF token (a hidden `csrf_token` field) or gets 400. Pages are rendered by Jinja,
which escapes what people wrote; a page's parts marked `data-live` are re-read by console.js every few seconds.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from inboxgpt.channels.base import Channels, Window
from inboxgpt.console.staff import Login, Staff
from inboxgpt.conversation.desk import Desk, NotSent
from inboxgpt.conversation.outcomes import ByDay, OutcomeSettings
from inboxgpt.conversation.transcript import Entry, Kind, State, Transcripts
from inboxgpt.media import Media, MediaError
from inboxgpt.metrics import Every
from inboxgpt.store import Store, StoreUnavailable

logger = logging.getLogger(__name__)

CONSOLE = "inboxgpt_console"
# Conversations a list shows at most, newest first.
LIST_LIMIT = 200
# The longest message or note the staff may write at once (channels split what is longer).
MAX_TEXT_CHARS = 4000
# The conversation views, by their query value: the states each shows.
VIEWS = {
    "needs": ("Needs a person", (State.NEEDS_PERSON, State.TAKEN)),
    "assistant": ("Assistant", (State.ASSISTANT, State.RESOLVED)),
    "everyone": ("Everyone", tuple(State)),
}
CHANNEL_NAMES = {"messenger": "Messenger", "instagram": "Instagram", "whatsapp": "WhatsApp"}
STATE_NAMES = {
    State.ASSISTANT.value: "Assistant",
    State.NEEDS_PERSON.value: "Needs a person",
    State.TAKEN.value: "Taken over",
    State.RESOLVED.value: "Resolved",
}
# Pages of the console: never framed, never cached, scripts and styles from the service only.
# How long a staff member's browser keeps a person's photo.
PHOTO_KEPT_SECONDS = 3600
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

blueprint = Blueprint("console", __name__, url_prefix="/console", template_folder="templates", static_folder="static")


@dataclass(frozen=True)
class Console:
    """What the console's pages work with."""

    staff: Staff
    desk: Desk
    store: Store
    channels: Channels
    transcripts: Transcripts
    media: Media
    signing: bool  # SECRET_KEY is set
    timezone: str
    outcomes: OutcomeSettings
    people_cap: int  # MAX_CONVERSATIONS: the store keeps no more transcripts than this
    # The Usage page's outcomes, read again at most every metrics.OUTCOME_EVERY seconds (reports.usage_outcomes).
    usage_outcomes: Every[ByDay]


@dataclass(frozen=True)
class Row:
    """One conversation as the list shows it."""

    key: str
    name: str
    channel: str
    last_text: str
    last_kind: str
    last_at: str
    waited: str
    state: str
    taken_by: str
    reason: str


def console() -> Console:
    found: Console = current_app.extensions[CONSOLE]
    return found


# --- every request ---


@blueprint.before_request
def guard() -> BaseResponse | None:
    """Off (404) without a staff account or SECRET_KEY; a POST without the session's CSRF token is refused (400);
    every page but signing in needs a staff member signed in."""
    found = console()
    try:
        if not found.staff.exists():
            abort(HTTPStatus.NOT_FOUND)
    except StoreUnavailable:
        abort(HTTPStatus.SERVICE_UNAVAILABLE)
    if not found.signing:
        logger.warning("console: staff accounts exist but SECRET_KEY is not set: the console stays off")
        abort(HTTPStatus.NOT_FOUND)
    if request.endpoint == "console.static":
        return None
    if request.method == "POST":
        given = request.form.get("csrf_token", "")
        expected = session.get("csrf", "")
        # As bytes: compare_digest refuses a str beyond ASCII, and a forged form may send one.
        if not (given and expected and hmac.compare_digest(given.encode(), str(expected).encode())):
            abort(HTTPStatus.BAD_REQUEST, "The form has expired or did not come from the console: reload the page.")
    if request.endpoint != "console.login" and signed_in() is None:
        return redirect(url_for("console.login"))
    return None


@blueprint.errorhandler(StoreUnavailable)
def store_down(error: StoreUnavailable) -> tuple[str, int]:
    """The store failed mid-page: say so, and nothing half done is shown as done."""
    logger.error("console: the store is unavailable (%s)", error)
    return "The store is unavailable for a moment: try again shortly.", HTTPStatus.SERVICE_UNAVAILABLE


@blueprint.after_app_request
def secure(response: Response) -> Response:
    # For every answer under /console/, its error pages too (a path that is no page, a GET of a POST-only one), which
    # the blueprint's own hooks never see.
    if not request.path.startswith("/console/"):
        return response
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


@blueprint.app_template_global()
def csrf_token() -> str:
    """The session's CSRF token, made on first use."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    token: str = session["csrf"]
    return token


def signed_in() -> str | None:
    """The staff member this session is for, if it is still theirs."""
    name, since = session.get("staff"), session.get("since")
    if not isinstance(name, str) or not isinstance(since, float):
        return None
    # The cookie is signed afresh with each answer, so its own age says nothing: a session ends SESSION_HOURS after
    # its login however busy it has been.
    if time.time() - since >= current_app.permanent_session_lifetime.total_seconds():
        return None
    return name if console().staff.session_valid(name, since) else None


def staff_name() -> str:
    name = signed_in()
    assert name is not None  # guard() let only signed-in requests through
    return name


# --- signing in and out ---


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse | tuple[str, int]:
    if request.method == "GET":
        return render_template("console/login.html", error=None), HTTPStatus.OK
    staff = console().staff
    name, password = request.form.get("name", "").strip(), request.form.get("password", "")
    address = request.remote_addr or "unknown"
    login = staff.log_in(name, password, address)
    if login is Login.LOCKED:
        logger.warning("console: a login refused: too many failed logins for that account or address")
        error = "Too many failed logins: try again in 15 minutes."
        return render_template("console/login.html", error=error), HTTPStatus.TOO_MANY_REQUESTS
    if login is Login.BUSY:
        logger.warning("console: a login refused: too many at once")
        error = "Too many people are signing in at once: try again in a moment."
        return render_template("console/login.html", error=error), HTTPStatus.SERVICE_UNAVAILABLE
    if login is Login.WRONG:
        # The name is not logged: people type passwords into the wrong field.
        logger.warning("console: a failed login from %s", address)
        return render_template("console/login.html", error="Wrong name or password."), HTTPStatus.UNAUTHORIZED
    session.clear()
    session.permanent = True
    session.update(staff=name, since=time.time(), csrf=secrets.token_urlsafe(32))
    logger.info("console: staff=%s signed in", name)
    return redirect(url_for("console.conversations"))


@blueprint.route("/logout", methods=["POST"])
def logout() -> BaseResponse:
    name = staff_name()
    console().staff.sign_out(name)
    session.clear()
    logger.info("console: staff=%s signed out", name)
    return redirect(url_for("console.login"))


# --- the conversations ---


@blueprint.route("/")
def conversations() -> str:
    view = request.args.get("view", "needs")
    if view not in VIEWS:
        view = "needs"
    query = request.args.get("q", "").strip()[:200]
    rows = _rows(view, query)
    if request.args.get("part") == "list":
        return render_template("console/_rows.html", rows=rows, query=query)
    return render_template(
        "console/conversations.html", rows=rows, view=view, views=VIEWS, query=query, counts=_counts(), me=staff_name()
    )


def _rows(view: str, query: str) -> list[Row]:
    found = console()
    people = found.store.transcript_people(LIST_LIMIT)
    if query:
        matching = set(found.store.search_transcripts(query, LIST_LIMIT))
        people = [(key, fields) for key, fields in people if key in matching or query.lower() in key.lower()]
    wanted = {state.value for state in VIEWS[view][1]}
    return [_row(key, fields) for key, fields in people if fields.get("state", State.ASSISTANT.value) in wanted]


def _counts() -> dict[str, int]:
    states = [fields.get("state", State.ASSISTANT.value) for _, fields in console().store.transcript_people(LIST_LIMIT)]
    return {view: sum(state in {s.value for s in shown} for state in states) for view, (_, shown) in VIEWS.items()}


def _row(key: str, fields: dict[str, str]) -> Row:
    waiting = fields.get("waiting_since")
    return Row(
        key=key,
        name=fields.get("name") or short_key(key),
        channel=CHANNEL_NAMES.get(fields.get("channel", ""), fields.get("channel", "")),
        last_text=fields.get("last_text", ""),
        last_kind=fields.get("last_kind", ""),
        last_at=_when(fields.get("last_at")),
        waited=_duration(time.time() - float(waiting)) if waiting else "",
        state=fields.get("state", State.ASSISTANT.value),
        taken_by=fields.get("taken_by", ""),
        reason=fields.get("reason", ""),
    )


def short_key(key: str) -> str:
    """A person's key, short enough to tell people apart in a list."""
    return key if len(key) <= 12 else f"{key[:6]}…{key[-4:]}"


# --- one conversation ---


@blueprint.route("/c/<key>")
def conversation(key: str) -> str:
    found = console()
    fields = found.store.transcript_summary(key)
    if not fields:
        abort(HTTPStatus.NOT_FOUND)
    entries = found.transcripts.entries(key)
    if request.args.get("part") == "entries":
        return render_template("console/_entries.html", key=key, entries=entries, when=_when)
    reach = found.desk.reach(key)
    templates, templates_problem = [], ""
    if reach.window is Window.CLOSED:
        try:
            templates = found.desk.templates(key)
        except NotSent as why:
            templates_problem = str(why)
    return render_template(
        "console/conversation.html",
        templates=templates,
        templates_problem=templates_problem,
        key=key,
        row=_row(key, fields),
        entries=entries,
        when=_when,
        window=reach.window.value,
        since=_duration(reach.since_last_message) if reach.since_last_message is not None else "",
        max_chars=MAX_TEXT_CHARS,
        me=staff_name(),
    )


def _act(key: str, action: Callable[[str, str], object]) -> BaseResponse:
    """Run a staff action on an existing conversation, then show it again."""
    if not console().store.transcript_summary(key):
        abort(HTTPStatus.NOT_FOUND)
    action(key, staff_name())
    return redirect(url_for("console.conversation", key=key))


def _text() -> str:
    text = request.form.get("text", "").strip()
    if not text:
        abort(HTTPStatus.BAD_REQUEST, "Write something first.")
    if len(text) > MAX_TEXT_CHARS:
        abort(HTTPStatus.BAD_REQUEST, f"At most {MAX_TEXT_CHARS} characters at once.")
    return text


@blueprint.route("/c/<key>/take", methods=["POST"])
def take(key: str) -> BaseResponse:
    return _act(key, console().desk.take_over)


@blueprint.route("/c/<key>/handback", methods=["POST"])
def hand_back(key: str) -> BaseResponse:
    return _act(key, console().desk.hand_back)


@blueprint.route("/c/<key>/resolve", methods=["POST"])
def resolve(key: str) -> BaseResponse:
    return _act(key, console().desk.resolve)


@blueprint.route("/c/<key>/note", methods=["POST"])
def note(key: str) -> BaseResponse:
    text = _text()
    return _act(key, lambda psid, staff: console().desk.note(psid, staff, text))


@blueprint.route("/c/<key>/send", methods=["POST"])
def send(key: str) -> BaseResponse:
    text = _text()

    def send_it(psid: str, staff: str) -> None:
        try:
            console().desk.send(psid, staff, text)
        except NotSent as why:
            flash(str(why))

    return _act(key, send_it)


@blueprint.route("/c/<key>/template", methods=["POST"])
def send_template(key: str) -> BaseResponse:
    name, language = request.form.get("name", ""), request.form.get("language", "")
    values = [value[:MAX_TEXT_CHARS] for value in request.form.getlist("parameter")]

    def send_it(psid: str, staff: str) -> None:
        try:
            console().desk.send_template(psid, staff, name, language, values)
        except NotSent as why:
            flash(str(why))

    return _act(key, send_it)


@blueprint.route("/c/<key>/photo/<entry_id>/<int:number>")
def photo(key: str, entry_id: str, number: int) -> Response:
    """A person's photo, downloaded through the service: the page never holds its link (which may carry a token)."""
    found = console()
    entry = next((one for one in found.transcripts.entries(key) if one.id == entry_id), None)
    if entry is None or entry.kind is not Kind.PERSON or not 0 <= number < len(entry.photos):
        abort(HTTPStatus.NOT_FOUND)
    try:
        content, content_type = found.media.photo(key, entry.photos[number])
    except MediaError as error:
        logger.info("console: a photo of psid=%s could not be shown: %s", key, error)
        abort(HTTPStatus.NOT_FOUND)
    if "svg" in content_type:
        abort(HTTPStatus.NOT_FOUND)  # an image that can carry a script is not shown from the service's origin
    response = Response(content, mimetype=content_type)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    # A photo at this address never changes: the staff member's browser keeps it, so a conversation read again (every
    # few seconds, live) does not download it again each time. Private: no shared cache keeps it.
    response.headers["Cache-Control"] = f"private, max-age={PHOTO_KEPT_SECONDS}"
    return response


# --- how times are shown ---


def _when(at: str | float | None) -> str:
    if at in (None, ""):
        return ""
    moment = datetime.fromtimestamp(float(at), ZoneInfo(console().timezone))
    return moment.strftime("%d %b %H:%M")


def _duration(seconds: float) -> str:
    """A wait as a person says it: 40 s, 12 min, 3 h, 2 d."""
    seconds = max(0.0, seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def entry_who(entry: Entry) -> str:
    """Who an entry is from, as the transcript names them."""
    names = {
        Kind.PERSON: "Person",
        Kind.ASSISTANT: "Assistant",
        Kind.STAFF: entry.by or "Staff (outside the console)",
        Kind.NOTE: f"Note by {entry.by}",
        Kind.HANDOVER: entry.by or "Handover",
        Kind.TOOL: "Tool",
        Kind.FAILURE: "Failure",
    }
    return names[entry.kind]


@blueprint.context_processor
def helpers() -> dict[str, object]:
    """What every console template may use."""
    return {"entry_who": entry_who, "state_names": STATE_NAMES}
