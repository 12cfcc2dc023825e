"""Secrets and message text stay out of the logs."""

from __future__ import annotations

import logging

import pytest

from helpers import APP_SECRET, OPENAI_KEY, PAGE_TOKEN, PSID, VERIFY_TOKEN, load, page_body, text_event
from logs import RedactSecrets

SECRETS = (PAGE_TOKEN, APP_SECRET, OPENAI_KEY, VERIFY_TOKEN)


def test_a_whole_conversation_logs_no_secret_and_no_text_at_info(post, client, graph, openai_server, caplog):
    graph.fail_next(400, 190, 463, messages_only=True)
    with caplog.at_level(logging.INFO):
        client.get(f"/?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1")
        client.get("/?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1")
        post(page_body(text_event("my address is 12 Elm Street")))
        post(load("image.json"))
        post(page_body(text_event("/reset")))
    for secret in SECRETS:
        assert secret not in caplog.text
    assert "Elm Street" not in caplog.text
    assert PSID in caplog.text  # who, not what
    assert "renew PAGE_ACCESS_TOKEN" in caplog.text


def test_secrets_are_scrubbed_from_any_line_that_reaches_the_handlers(make_app, config, caplog):
    # A library may put a URL with the token in a log line or a traceback; the handlers scrub it.
    make_app(config)  # installs the scrubber on the handlers present now, caplog's among them
    try:
        raise ConnectionError(f"Max retries exceeded with url: /me/messages?access_token={PAGE_TOKEN}")
    except ConnectionError:
        logging.getLogger("some.library").exception("request to %s failed", f"/x?key={OPENAI_KEY}")
    assert "request to /x?key=[redacted] failed" in caplog.text
    assert "access_token=[redacted]" in caplog.text
    for secret in SECRETS:
        assert secret not in caplog.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("token=abc123&x=1", "token=[redacted]&x=1"),
        ("abc1234 is longer", "abc1234 is longer"),
        ("Bearer abc123", "Bearer [redacted]"),
    ],
)
def test_scrubber_replaces_whole_values_only(text, expected):
    assert RedactSecrets(["abc123"]).redact(text) == expected
