"""`flask --app app chat` and `flask --app app usage`: try the bot in a terminal, and read today's token usage.

Each command reads the settings it needs when it runs (none needs Messenger's) and builds its own
service, which never touches the webhook's queues.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from inboxgpt import usage
from inboxgpt.channels.base import Channels
from inboxgpt.channels.terminal import TerminalChannel
from inboxgpt.config import ConfigError, Settings
from inboxgpt.events import Message
from inboxgpt.service import Service

# The one person of the terminal: its channel's key.
TERMINAL_PSID = TerminalChannel.tag


@contextmanager
def terminal_service(load: Callable[[], Settings]) -> Iterator[Service]:
    """A service answering in this terminal, closed afterwards; a settings problem is shown without a traceback."""
    try:
        service = Service(load(), Channels([TerminalChannel()]))
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    try:
        yield service
    finally:
        service.close()


def terminal_commands(load: Callable[[], Settings]) -> list[click.Command]:
    """The CLI commands, reading their settings with `load`."""

    @click.command("chat")
    def chat() -> None:
        """Talk to the bot in this terminal: same model, prompt, history and commands as on Messenger."""
        with terminal_service(load) as service:
            click.echo(
                f"Chatting with {service.settings.openai_model}. /reset starts over, /help explains, Ctrl-D quits."
            )
            for n in itertools.count():
                click.echo("you> ", nl=False)
                line = sys.stdin.readline()
                if not line:
                    click.echo()
                    return
                if line.strip():
                    message = Message(
                        psid=TERMINAL_PSID,
                        mid=f"terminal-{n}",
                        timestamp=int(time.time() * 1000),
                        text=line.rstrip("\n"),
                    )
                    service.bot.handle(message)

    @click.command("usage")
    def usage_today() -> None:
        """Show today's model usage (UTC) kept in the store."""
        with terminal_service(load) as service:
            totals = usage.totals(service.store, time.time())
        by_channel = ", ".join(f"{channel} {count:,}" for channel, count in totals.replies_by_channel.items())
        comments = f", {totals.comment_replies:,} to comments" if totals.comment_replies else ""
        click.echo(
            f"{totals.date}: {totals.replies:,} replies ({by_channel}{comments}), "
            f"{totals.prompt_tokens:,} prompt tokens, {totals.completion_tokens:,} completion tokens"
        )

    return [chat, usage_today]
