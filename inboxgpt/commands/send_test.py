"""`inboxgpt send-test "hello"`: a Messenger message, signed with APP_SECRET as Meta signs it, posted to a running
server, and what the server answered. It tries the signature, the parsing and the queue without Meta."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import click
import requests

from inboxgpt.config import ConfigError, Settings
from inboxgpt.web.signature import sign

# Made up, as in Meta's own examples: Meta refuses a reply to a person id it does not know (error 100).
TEST_PAGE_ID = "1234567890"
TEST_PSID = "9876543210000000"


def message_body(text: str, psid: str, now_ms: int) -> bytes:
    """A webhook body of the shape Meta sends for one Messenger text, as Meta encodes it (non-ASCII escaped)."""
    body = {
        "object": "page",
        "entry": [
            {
                "id": TEST_PAGE_ID,
                "time": now_ms,
                "messaging": [
                    {
                        "sender": {"id": psid},
                        "recipient": {"id": TEST_PAGE_ID},
                        "timestamp": now_ms,
                        "message": {"mid": f"m_send_test_{now_ms}", "text": text},
                    }
                ],
            }
        ],
    }
    return json.dumps(body).replace("/", "\\/").encode("ascii")


def what_it_means(status: int, psid: str) -> str:
    """What to do after the server's answer."""
    if status == 200:
        reply_to = "your Messenger" if psid != TEST_PSID else "a made-up person (Meta refuses to deliver it)"
        return f"the server took the message; its log shows the reply, sent to {reply_to}"
    if status == 403:
        return "the signature was refused: the server's APP_SECRET is not the one this command read"
    if status == 400:
        return "the server could not read the body: is it this bot?"
    return "the server did not take the message: see its log"


def send_test_command(load: Callable[[], Settings]) -> click.Command:
    """The `send-test` command, reading APP_SECRET with `load`."""

    @click.command("send-test")
    @click.argument("text")
    @click.option(
        "--url",
        default=lambda: f"http://127.0.0.1:{os.environ.get('PORT') or '8000'}/",
        show_default="http://127.0.0.1:$PORT/, PORT 8000 if unset",
        help="The webhook of the running server.",
    )
    @click.option(
        "--psid",
        default=TEST_PSID,
        help="The person the message is from: your own page-scoped id (a `psid=` in the log) to get the reply.",
    )
    def send_test(text: str, url: str, psid: str) -> None:
        """Post a signed test message to a running server, as Meta would, and show what it answered."""
        try:
            secret = load().app_secret.reveal()
        except ConfigError as error:
            raise click.ClickException(str(error)) from None
        body = message_body(text, psid, int(time.time() * 1000))
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)}
        try:
            response = requests.post(url, data=body, headers=headers, timeout=10)
        except requests.RequestException as exc:
            raise click.ClickException(
                f"no answer from {url} ({type(exc).__name__}): is `inboxgpt serve` running there?"
            ) from None
        click.echo(f"{response.status_code} {response.text.strip()[:200]}")
        click.echo(what_it_means(response.status_code, psid))
        if response.status_code != 200:
            raise SystemExit(1)

    return send_test
