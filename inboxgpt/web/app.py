"""The Flask app: Meta's webhook verification (and a page for a browser at the address), the signed webhook, and a
health check, around one WebhookService."""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping
from http import HTTPStatus

import click
from flask import Flask, Response, current_app, jsonify, request
from flask.cli import FlaskGroup
from werkzeug.middleware.proxy_fix import ProxyFix

from inboxgpt import metrics
from inboxgpt.commands.checks import check_command
from inboxgpt.commands.eval import eval_command
from inboxgpt.commands.forget import forget_command
from inboxgpt.commands.leads import leads_command
from inboxgpt.commands.page_setup import page_setup_command
from inboxgpt.commands.report import report_command
from inboxgpt.commands.send_test import send_test_command
from inboxgpt.commands.terminal import terminal_commands
from inboxgpt.config import ConfigError, Settings, load_settings, settings_from_mapping
from inboxgpt.console import ConsoleSettings, install
from inboxgpt.console.commands import staff_command
from inboxgpt.conversation.outcomes import Outcomes, OutcomeSettings, outcomes
from inboxgpt.conversation.routing import is_own_echo
from inboxgpt.evals.rehearsal import Rehearsal
from inboxgpt.evals.runner import Runner
from inboxgpt.events import BadBody, Comment, Echo, Event, Handover, Message, Undelivered
from inboxgpt.logs import configure_logging
from inboxgpt.model.knowledge.command import knowledge_command
from inboxgpt.precedence import Stage
from inboxgpt.service import WebhookService
from inboxgpt.store import StoreUnavailable
from inboxgpt.web.body_limits import BodyLimits
from inboxgpt.web.data_deletion import DataDeletion, DataDeletionSettings
from inboxgpt.web.signature import is_valid_signature

__version__ = "1.0.0"

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
# Meta sends a webhook's body at once; one still arriving after this is a slow client holding a
# thread (and Meta itself would have given up: some of its pages say 5 s).
BODY_SECONDS = 5.0
EXTENSION = "inboxgpt"
# The outcomes /metrics serves, cached (metrics.Every).
OUTCOMES = "inboxgpt_outcomes"
# What a browser opening the service's address gets (Meta's verification carries hub.* parameters): the owner
# trying the address sees that it is up and what it is for, not a bare 403.
STATUS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>inboxgpt is running</title></head>
<body>
<h1>inboxgpt is running</h1>
<p>This address is the bot's webhook. Give it to Meta as the <em>Callback URL</em> (over https, with your
<code>VERIFY_TOKEN</code>), in the app's webhook settings; Meta then posts people's messages here, signed with
the app secret. Anything else that posts here is refused.</p>
<p>Is it healthy? <a href="healthz">healthz</a>. Setting it up: <code>docs/setup-meta.md</code>; a test
message without Meta: <code>inboxgpt send-test "hello"</code>.</p>
</body></html>
"""


def create_app(config: Mapping[str, str] | Settings | None = None) -> Flask:
    """Build the app; settings come from `config` if given, else from the environment and `.env`."""
    app = Flask(__name__)
    if config is None and built_to_find_a_command():
        # Each terminal command reads the settings it needs when it runs (the chat needs no
        # Messenger settings), so nothing is read or opened here.
        _add_commands(app, None)
        return app
    try:
        settings = _settings(config)
        configure_logging(settings.log_level, settings.secrets(), settings.log_format)
        service = WebhookService(settings)
    except ConfigError as error:
        if click.get_current_context(silent=True) is not None:
            raise click.ClickException(str(error)) from None  # shown without a traceback
        raise
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.wsgi_app = BodyLimits(app.wsgi_app, MAX_BODY_BYTES, BODY_SECONDS)  # type: ignore[method-assign]
    if settings.trusted_proxies:
        # Behind nginx every request comes from nginx: the client is read from X-Forwarded-For, as many hops back as
        # there are proxies of ours (a client cannot name itself past them).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)  # type: ignore[method-assign]
    app.extensions[EXTENSION] = service
    app.extensions[OUTCOMES] = metrics.Every(lambda: recent_outcomes(service), metrics.OUTCOME_EVERY)
    app.add_url_rule("/healthz", "health", health, methods=["GET"])
    app.add_url_rule("/metrics", "metrics", metrics_page, methods=["GET"])
    app.add_url_rule("/", "verify", verify, methods=["GET"])
    app.add_url_rule("/", "webhook", webhook, methods=["POST"])
    install(
        app,
        ConsoleSettings.from_settings(settings),
        service.store,
        service.channels,
        service.transcripts,
        service.media,
        lambda: Rehearsal(settings),
        lambda evals: Runner(settings, evals),
    )
    DataDeletion(DataDeletionSettings.from_settings(settings), service.store, service.channels).install(app)
    _add_commands(app, config)
    logger.info(
        "ready: model=%s graph=%s workers=%d", settings.openai_model, settings.graph_api_url, settings.worker_threads
    )
    return app


def _settings(
    config: Mapping[str, str] | Settings | None, meta_required: bool = True, openai_required: bool = True
) -> Settings:
    if isinstance(config, Settings):
        return config
    if config is not None:
        return settings_from_mapping(config, meta_required, openai_required)
    return load_settings(meta_required=meta_required, openai_required=openai_required)


def _add_commands(app: Flask, config: Mapping[str, str] | Settings | None) -> None:
    """The CLI commands; each reads the settings it needs when it runs (the chat needs no Messenger settings,
    page-setup no OpenAI key)."""
    for command in terminal_commands(lambda: _settings(config, meta_required=False)):
        app.cli.add_command(command)
    app.cli.add_command(page_setup_command(lambda: _settings(config, openai_required=False)))
    app.cli.add_command(check_command(lambda: _settings(config)))
    app.cli.add_command(knowledge_command(lambda: _settings(config, meta_required=False, openai_required=False)))
    app.cli.add_command(leads_command(lambda: _settings(config, meta_required=False, openai_required=False)))
    app.cli.add_command(send_test_command(lambda: _settings(config, openai_required=False)))
    app.cli.add_command(staff_command(lambda: _settings(config, meta_required=False, openai_required=False)))
    app.cli.add_command(forget_command(lambda: _settings(config, meta_required=False, openai_required=False)))
    app.cli.add_command(eval_command(lambda: _settings(config, meta_required=False)))
    app.cli.add_command(report_command(lambda: _settings(config, meta_required=False, openai_required=False)))


def built_to_find_a_command() -> bool:
    """True when the Flask CLI builds the app only to look up one of its own commands (`chat`, `page-setup`).

    `flask run` and gunicorn build it to serve, and then the Messenger settings are required.
    """
    context = click.get_current_context(silent=True)
    return context is not None and isinstance(context.command, FlaskGroup)


def service() -> WebhookService:
    """Return the current app's service."""
    svc: WebhookService = current_app.extensions[EXTENSION]
    return svc


def verify() -> Response:
    """Answer Meta's subscription check with the challenge, if the verify token matches; a browser gets a page."""
    args = request.args
    if not any(name.startswith("hub.") for name in args):
        return Response(STATUS_PAGE, HTTPStatus.OK, mimetype="text/html")
    token = args.get("hub.verify_token", "")
    expected = service().settings.verify_token.reveal()
    challenge = args.get("hub.challenge", "")
    if args.get("hub.mode") == "subscribe" and challenge and hmac.compare_digest(token.encode(), expected.encode()):
        logger.info("webhook verified by Meta")
        return Response(challenge, HTTPStatus.OK, mimetype="text/plain")
    logger.warning("webhook verification refused: wrong mode or verify token")
    return Response("Forbidden", HTTPStatus.FORBIDDEN, mimetype="text/plain")


def webhook() -> Response:
    """Check, parse and queue a webhook POST, and answer Meta at once: before any answering work in the process."""
    svc = service()
    with svc.precedence.working(Stage.ACK):
        return take(svc)


def take(svc: WebhookService) -> Response:
    """Check, parse and queue a webhook POST; the answer to give Meta."""
    body = request.get_data(cache=False)
    if not is_valid_signature(body, request.headers.get("X-Hub-Signature-256"), svc.settings.app_secret.reveal()):
        logger.warning("webhook refused: missing or wrong X-Hub-Signature-256 (%d bytes)", len(body))
        return webhook_answer("Forbidden", HTTPStatus.FORBIDDEN)
    try:
        decoded = json.loads(body)
        channel = svc.channels.for_webhook(decoded)
        parsed = channel.read(decoded)
    except (ValueError, RecursionError) as exc:
        reason = exc if isinstance(exc, BadBody) else "not JSON"
        logger.warning("webhook refused: %s", reason)
        return webhook_answer(f"Bad Request: {reason}", HTTPStatus.BAD_REQUEST)

    if not channel.enabled:
        # Acknowledged, so Meta does not send it again: the owner turned this channel off.
        logger.info("webhook (%s): %d events ignored: the channel is off", channel.name, len(parsed.events))
        return webhook_answer("EVENT_RECEIVED", HTTPStatus.OK)
    received = time.time()
    skipped = Counter(parsed.skipped)
    wanted = []
    for event in parsed.events:
        # The echo of every message the bot sends needs nothing: it never reaches the queue.
        if isinstance(event, Echo) and is_own_echo(event, svc.settings.app_id):
            skipped["own_echo"] += 1
        else:
            wanted.append(dataclasses.replace(event, received=received))
    events = wanted[: svc.settings.max_events_per_post]
    if len(events) < len(wanted):
        logger.warning("webhook: %d events over MAX_EVENTS_PER_POST dropped", len(wanted) - len(events))
    try:
        duplicates = len(events) - svc.dispatcher.submit(events)
    except StoreUnavailable as exc:
        # Meta sends the events again later; none was lost.
        logger.error("webhook not taken: the store is unavailable (%s)", exc)
        return webhook_answer("Service Unavailable", HTTPStatus.SERVICE_UNAVAILABLE)
    logger.info(
        "webhook (%s): %d queued, %d redelivered, skipped %s",
        parsed.channel,
        len(events) - duplicates,
        duplicates,
        dict(skipped) or "none",
    )
    count_events(parsed.channel, events, skipped, duplicates)
    return webhook_answer("EVENT_RECEIVED", HTTPStatus.OK)


def webhook_answer(text: str, status: HTTPStatus) -> Response:
    """Answer Meta, counting the answer by status."""
    metrics.WEBHOOK_REQUESTS.labels(str(status.value)).inc()
    return plain(text, status)


def count_events(channel: str, events: list[Event], skipped: Mapping[str, int], duplicates: int) -> None:
    """Count a webhook's events by kind: what was queued, what was skipped, what Meta sent again."""
    for event in events:
        metrics.EVENTS.labels(event_kind(event), channel).inc()
    for kind, count in skipped.items():
        metrics.EVENTS.labels(kind, channel).inc(count)
    if duplicates:
        metrics.EVENTS.labels("redelivered", channel).inc(duplicates)


def event_kind(event: Event) -> str:
    """The kind of a queued event, as the metrics name it."""
    if event.standby:
        return "standby"
    if isinstance(event, Comment):
        return "comment"
    if isinstance(event, Echo):
        return "echo"
    if isinstance(event, Handover):
        return event.action
    if isinstance(event, Undelivered):
        return "undelivered"
    return "message" if isinstance(event, Message) else "postback"


# How /healthz names each token's state.
TOKEN_FIELDS = {"PAGE_ACCESS_TOKEN": "page_token", "WHATSAPP_TOKEN": "whatsapp_token"}


def health() -> tuple[Response, HTTPStatus]:
    """Say whether the service can take events (its store can be written) and whether each token worked on its last
    use; needs no signature, tells nothing more."""
    svc = service()
    store_ok = svc.store.ping()
    tokens = {
        TOKEN_FIELDS.get(setting, setting.lower()): "unknown" if works is None else "ok" if works else "invalid"
        for setting, works in svc.channels.token_states().items()
    }
    body = jsonify(
        status="ok" if store_ok and "invalid" not in tokens.values() else "degraded",
        version=__version__,
        store="ok" if store_ok else "unavailable",
        **tokens,
    )
    # 503 only when events cannot be taken: a dead token is reported, but Meta's events still queue.
    return body, HTTPStatus.OK if store_ok else HTTPStatus.SERVICE_UNAVAILABLE


def metrics_page() -> Response:
    """Every series in Prometheus' text format; with METRICS_TOKEN set, only for its bearer."""
    svc = service()
    token = svc.settings.metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token.reveal()}".encode()):
            response = plain("Unauthorized", HTTPStatus.UNAUTHORIZED)
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
    exposed = metrics.exposition(lambda: len(svc.store.pending()), current_app.extensions[OUTCOMES])
    return Response(exposed, mimetype=None, content_type=metrics.CONTENT_TYPE)


def recent_outcomes(svc: WebhookService) -> Outcomes:
    """The outcomes of the conversations started in the last metrics.OUTCOME_DAYS, as `flask report` counts them."""
    now, settings = time.time(), svc.settings
    people = svc.transcripts.active_since(now - metrics.OUTCOME_DAYS * 86400, settings.max_conversations)
    return outcomes(people, now, metrics.OUTCOME_DAYS, OutcomeSettings.from_settings(settings))


def plain(text: str, status: HTTPStatus) -> Response:
    """Return a short text/plain response."""
    return Response(text, status, mimetype="text/plain")
