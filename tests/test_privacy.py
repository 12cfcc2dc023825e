"""Secrets and message text stay out of the logs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from inboxgpt.logs import RedactSecrets
from tests.helpers import APP_SECRET, OPENAI_KEY, PAGE_TOKEN, PSID, VERIFY_TOKEN, load, page_body, text_event

SECRETS = (PAGE_TOKEN, APP_SECRET, OPENAI_KEY, VERIFY_TOKEN)
ROOT = Path(__file__).resolve().parent.parent


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


def test_json_logs_carry_the_line_s_fields_and_no_secret():
    code = (
        "import logging\n"
        "from inboxgpt.logs import configure_logging\n"
        "configure_logging('INFO', ['EAAGsecret-token-42'], 'json')\n"
        "log = logging.getLogger('bot')\n"
        "log.info('replied psid=%s model_ms=%.0f prompt_tokens=%s pieces=%d', '6543210987654321', 812.4, 50, 2)\n"
        "log.warning('Graph failed with EAAGsecret-token-42 in the URL')\n"
        "try:\n"
        "    raise ValueError('token EAAGsecret-token-42')\n"
        "except ValueError:\n"
        "    log.exception('boom')\n"
        "log.debug('not shown')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert len(entries) == 3
    replied, graph, boom = entries
    assert {k: replied[k] for k in ("level", "logger", "psid", "model_ms", "prompt_tokens", "pieces")} == {
        "level": "INFO",
        "logger": "bot",
        "psid": "6543210987654321",
        "model_ms": 812,
        "prompt_tokens": 50,
        "pieces": 2,
    }
    assert replied["time"].endswith("+00:00")
    assert graph["message"] == "Graph failed with [redacted] in the URL"
    assert "ValueError: token [redacted]" in boom["exception"]
    assert "EAAGsecret-token-42" not in result.stderr


def test_json_fields_come_from_the_line_s_format_never_from_what_a_client_sent():
    code = (
        "import logging\n"
        "from inboxgpt.logs import configure_logging\n"
        "configure_logging('INFO', [], 'json')\n"
        "logging.getLogger('bot').info('webhook psid=%s said %s', '6543210987654321',\n"
        "    'hi psid=VICTIM model_ms=999999')\n"
        # Gunicorn's access line: a format of named atoms, the path a client chose among them.
        "logging.getLogger('gunicorn.access').info('%(h)s \"%(m)s %(U)s\" %(s)s', "
        "{'h': '127.0.0.1', 'm': 'GET', 'U': '/y psid=VICTIM model_ms=999999', 's': '404'})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    said, access = [json.loads(line) for line in result.stderr.splitlines()]
    assert said["psid"] == "6543210987654321"
    assert "model_ms" not in said
    assert said["message"] == "webhook psid=6543210987654321 said hi psid=VICTIM model_ms=999999"
    assert "psid" not in access
    assert "model_ms" not in access
