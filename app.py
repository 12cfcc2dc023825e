"""The Flask app: Meta's webhook verification, the signed webhook, and a health check."""

from __future__ import annotations

import hmac
import json
import logging
import sys
import time
from http import HTTPStatus
from pathlib import Path
from typing import Mapping

from flask import Flask, Response, current_app, jsonify, request

import usage
from bot import Bot
from config import ConfigError, Settings, load_settings, settings_from_mapping
from events import BadBody, parse_body
from gpt import ChatModel
from limits import Limits
from logs import configure_logging
from messenger import Messenger
from signature import is_valid_signature
from store import StoreUnavailable, open_store
from terminal import COMMANDS_WITHOUT_MESSENGER, terminal_commands
from workers import Dispatcher, KeyedWorkers

__version__ = "1.0.0"

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
EXTENSION = "messenger_gpt"


class Service:
    """The parts that outlive a request, shared by every request of one app."""

    def __init__(self, settings: Settings):
        self.settings = settings
        try:
            self.store = open_store(settings)
        except StoreUnavailable as exc:
            raise ConfigError([str(exc)]) from None
        self.model = ChatModel(settings)
        self.limits = Limits(settings, self.store)
        self.bot = Bot(settings, self.store, Messenger(settings), self.model, self.limits)
        self.workers = KeyedWorkers(settings.worker_threads)
        ttl = lock_ttl(settings)
        self.dispatcher = Dispatcher(self.store, self.bot.handle, self.workers, ttl)
        if settings.meta_configured and not settings.store_url.startswith("memory:"):
            # Another process may have stopped with events queued, or crashed holding a lock.
            self.dispatcher.resume()
            self.dispatcher.resume_every(ttl / 4)


def lock_ttl(settings: Settings) -> float:
    """How long a person's lock lasts: twice the longest an event can take to answer."""
    model = settings.openai_timeout * (1 + settings.openai_max_retries)
    graph = (settings.graph_timeout + settings.graph_backoff * 16) * (1 + settings.graph_max_retries)
    # Typing and seen, then a reply of up to two messages, each with its retries.
    return 2 * (model + 3 * graph)


def create_app(config: Mapping[str, str] | Settings | None = None) -> Flask:
    """Build the app; settings come from `config` if given, else from the environment and `.env`."""
    if isinstance(config, Settings):
        settings = config
    elif config is not None:
        settings = settings_from_mapping(config)
    else:
        settings = load_settings(meta_required=not started_for_a_terminal_command())
    configure_logging(settings.log_level, settings.secrets())

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions[EXTENSION] = service = Service(settings)
    app.add_url_rule("/healthz", "health", health, methods=["GET"])
    for command in terminal_commands(service):
        app.cli.add_command(command)
    if settings.meta_configured:
        app.add_url_rule("/", "verify", verify, methods=["GET"])
        app.add_url_rule("/", "webhook", webhook, methods=["POST"])
        logger.info("ready: model=%s graph=%s workers=%d", settings.openai_model, settings.graph_api_url, settings.worker_threads)
    return app


def started_for_a_terminal_command() -> bool:
    """True when the Flask CLI was started for `chat` or `usage`, which need no Messenger settings."""
    # Flask builds the app before it looks the command up, so the command line is the only witness.
    program = Path(sys.argv[0])
    from_flask_cli = program.name == "flask" or program.parent.name == "flask"
    return from_flask_cli and any(command in sys.argv[1:] for command in COMMANDS_WITHOUT_MESSENGER)


def service() -> Service:
    """Return the current app's Service."""
    return current_app.extensions[EXTENSION]


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

    events = parsed.events[: svc.settings.max_events_per_post]
    if len(events) < len(parsed.events):
        logger.warning("webhook: %d events over MAX_EVENTS_PER_POST dropped", len(parsed.events) - len(events))
    try:
        duplicates = sum(not svc.dispatcher.submit(event) for event in events)
    except StoreUnavailable as exc:
        # Meta sends the events again later; none was lost.
        logger.error("webhook not taken: the store is unavailable (%s)", exc)
        return plain("Service Unavailable", HTTPStatus.SERVICE_UNAVAILABLE)
    logger.info(
        "webhook: %d queued, %d redelivered, skipped %s",
        len(events) - duplicates, duplicates, dict(parsed.skipped) or "none",
    )
    return plain("EVENT_RECEIVED", HTTPStatus.OK)


def health() -> tuple[Response, HTTPStatus]:
    """Say whether the service and its store are up, and today's usage; needs no signature."""
    store = service().store
    if not store.ping():
        body = jsonify(status="degraded", version=__version__, store="unreachable")
        return body, HTTPStatus.SERVICE_UNAVAILABLE
    body = jsonify(status="ok", version=__version__, store="ok", usage_today=usage.totals(store, time.time()))
    return body, HTTPStatus.OK


def plain(text: str, status: HTTPStatus) -> Response:
    """Return a short text/plain response."""
    return Response(text, status, mimetype="text/plain")
