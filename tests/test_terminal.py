"""The terminal chat and usage commands, driven through Flask's CLI runner and the real `flask` command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from inboxgpt import replies
from inboxgpt.commands.terminal import PAUSED
from inboxgpt.config import REQUIRED
from inboxgpt.model.errors import Failure
from tests.fakes import FakeHook, openai_error

ROOT = Path(__file__).resolve().parent.parent


def test_chat_answers_with_the_same_logic_as_messenger(app, openai_server):
    result = app.test_cli_runner().invoke(args=["chat"], input="hello\n/help\nwhat did I say?\n/reset\nagain\n")
    assert result.exit_code == 0, result.output
    lines = result.output
    assert "bot> You said: hello" in lines
    assert "/reset: forget our conversation" in lines
    assert replies.RESET_DONE in lines
    history = [m["content"] for m in openai_server.requests[1]["messages"][1:]]
    assert history == ["hello", "You said: hello", "what did I say?"]
    assert [m["content"] for m in openai_server.requests[2]["messages"][1:]] == ["again"]


def test_chat_errors_read_as_on_messenger(app, openai_server):
    openai_server.script.append(
        openai_error(429, "You exceeded your current quota", "insufficient_quota", "insufficient_quota")
    )
    result = app.test_cli_runner().invoke(args=["chat"], input="hi\n")
    assert f"bot> {replies.APOLOGY_UNAVAILABLE}" in result.output
    assert result.exit_code == 0


def test_chat_ends_cleanly_at_end_of_input(app):
    result = app.test_cli_runner().invoke(args=["chat"], input="")
    assert result.exit_code == 0


def flask(*args: str, stdin: str = "", **settings: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED}
    env.update(PYTHONPATH=str(ROOT), **settings)
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        input=stdin,
        cwd=tempfile.mkdtemp(),  # a folder without a .env (and no package: Flask would look for app in it)
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_flask_chat_needs_only_the_openai_key(openai_server):
    result = flask("chat", stdin="bonjour\n", OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=openai_server.base_url)
    assert result.returncode == 0, result.stderr
    assert "bot> You said: bonjour" in result.stdout


def test_serving_still_needs_the_messenger_settings():
    result = flask("routes", OPENAI_API_KEY="sk-test")
    assert result.returncode != 0
    assert "PAGE_ACCESS_TOKEN is missing" in result.stderr


def test_usage_command_shows_todays_totals(config, make_app, openai_server, tmp_path):
    # Each command opens the store anew, as each run of `flask` does: the usage lasts in SQLite.
    config.update(STORE_URL=f"sqlite:///{tmp_path}/bot.db")
    runner = make_app(config).test_cli_runner()
    runner.invoke(args=["chat"], input="one\ntwo\n")
    result = runner.invoke(args=["usage"])
    assert "2 replies (messenger 2, instagram 0, whatsapp 0), 100 prompt tokens, 20 completion tokens" in result.output


def test_help_in_the_terminal_offers_nothing_it_cannot_carry(app):
    # Photos and voice notes are understood on Messenger (VISION and TRANSCRIBE are on), but a terminal carries text.
    result = app.test_cli_runner().invoke(args=["chat"], input="/help\n")
    assert "/reset: forget our conversation" in result.output
    assert "photo" not in result.output
    assert "voice" not in result.output


def test_after_human_the_terminal_says_why_nothing_answers_and_how_to_go_on(config, make_app, openai_server):
    hook = FakeHook()  # someone hears of the request, so the bot steps back
    config.update(HANDOVER_NOTIFY_URL=hook.url)
    result = make_app(config).test_cli_runner().invoke(args=["chat"], input="/human\nanyone?\n/bot\nhello\n")
    hook.close()
    assert result.exit_code == 0, result.output
    after_human = result.output.split(replies.HUMAN_COMING, 1)[1]
    assert after_human.startswith(f"\nyou> {PAUSED}\nyou> bot> {replies.BOT_BACK}\nyou> bot> You said: ")
    assert PAUSED.count("/bot") == 1


def test_a_model_out_of_reach_is_logged_without_a_missing_status(config, make_app, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        config["OPENAI_BASE_URL"] = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"  # nothing listens there
    result = make_app(config).test_cli_runner().invoke(args=["chat"], input="hi\n")
    assert f"bot> {replies.APOLOGIES[Failure.UNREACHABLE]}" in result.output
    assert "model failed for psid=terminal: the model's server could not be reached" in caplog.text
    assert "None" not in caplog.text
