"""The Flask app: Meta's webhook verification, the signed webhook, and a health check, around one WebhookService."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Mapping
from http import HTTPStatus

import click
from flask import Flask, Response, current_app, jsonify, request
from flask.cli import FlaskGroup

from body_limits import BodyLimits
from config import ConfigError, Settings, load_settings, settings_from_mapping
from events import INSTAGRAM, BadBody, parse_body
from logs import configure_logging
from page_setup import page_setup_command
from service import WebhookService
from signature import is_valid_signature
from store import StoreUnavailable
from terminal import terminal_commands

__version__ = "1.0.0"

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
# Meta sends a webhook's body at once; one still arriving after this is a slow client holding a
# thread (and Meta itself would have given up: some of its pages say 5 s).
BODY_SECONDS = 5.0
EXTENSION = "messenger_gpt"


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
        configure_logging(settings.log_level, settings.secrets())
        service = WebhookService(settings)
    except ConfigError as error:
        if click.get_current_context(silent=True) is not None:
            raise click.ClickException(str(error)) from None  # shown without a traceback
        raise
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.wsgi_app = BodyLimits(app.wsgi_app, MAX_BODY_BYTES, BODY_SECONDS)  # type: ignore[method-assign]
    app.extensions[EXTENSION] = service
    app.add_url_rule("/healthz", "health", health, methods=["GET"])
    app.add_url_rule("/", "verify", verify, methods=["GET"])
    app.add_url_rule("/", "webhook", webhook, methods=["POST"])
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
    """Answer Meta's subscription check with the challenge, if the verify token matches."""
    args = request.args
    token = args.get("hub.verify_token", "")
    expected = service().settings.verify_token.reveal()
    challenge = args.get("hub.challenge", "")
    if args.get("hub.mode") == "subscribe" and challenge and hmac.compare_digest(token.encode(), expected.encode()):
        logger.info("webhook verified by Meta")
        return Response(challenge, HTTPStatus.OK, mimetype="text/plain")
    logger.warning("webhook verification refused: wrong mode or verify token")
    return Response("Forbidden", HTTPStatus.FORBIDDEN, mimetype="text/plain")


def webhook() -> Response:
    """Check, parse and queue a webhook POST, and answer Meta at once."""
    svc = service()
    body = request.get_data(cache=False)
    if not is_valid_signature(body, request.headers.get("X-Hub-Signature-256"), svc.settings.app_secret.reveal()):
        logger.warning("webhook refused: missing or wrong X-Hub-Signature-256 (%d bytes)", len(body))
        return plain("Forbidden", HTTPStatus.FORBIDDEN)
    try:
        parsed = parse_body(json.loads(body))
    except (ValueError, RecursionError) as exc:
        reason = exc if isinstance(exc, BadBody) else "not JSON"
        logger.warning("webhook refused: %s", reason)
        return plain(f"Bad Request: {reason}", HTTPStatus.BAD_REQUEST)

    if parsed.channel == INSTAGRAM and not svc.settings.instagram:
        # Acknowledged, so Meta does not send it again: the owner turned Instagram off.
        logger.info("webhook (instagram): %d events ignored: INSTAGRAM=off", len(parsed.events))
        return plain("EVENT_RECEIVED", HTTPStatus.OK)
    events = parsed.events[: svc.settings.max_events_per_post]
    if len(events) < len(parsed.events):
        logger.warning("webhook: %d events over MAX_EVENTS_PER_POST dropped", len(parsed.events) - len(events))
    try:
        duplicates = len(events) - svc.dispatcher.submit(events)
    except StoreUnavailable as exc:
        # Meta sends the events again later; none was lost.
        logger.error("webhook not taken: the store is unavailable (%s)", exc)
        return plain("Service Unavailable", HTTPStatus.SERVICE_UNAVAILABLE)
    logger.info(
        "webhook (%s): %d queued, %d redelivered, skipped %s",
        parsed.channel,
        len(events) - duplicates,
        duplicates,
        dict(parsed.skipped) or "none",
    )
    return plain("EVENT_RECEIVED", HTTPStatus.OK)


def health() -> tuple[Response, HTTPStatus]:
    """Say whether the service can take events (its store can be written); needs no signature, tells nothing more."""
    if not service().store.ping():
        body = jsonify(status="degraded", version=__version__, store="unavailable")
        return body, HTTPStatus.SERVICE_UNAVAILABLE
    return jsonify(status="ok", version=__version__, store="ok"), HTTPStatus.OK


def plain(text: str, status: HTTPStatus) -> Response:
    """Return a short text/plain response."""
    return Response(text, status, mimetype="text/plain")
