"""`flask --app app chat` and `flask --app app usage`: try the bot in a terminal, and read today's token usage."""

from __future__ import annotations

import itertools
import sys
import time

from typing import TYPE_CHECKING

import click

import usage
from bot import Bot
from events import Message

if TYPE_CHECKING:
    from app import Service

TERMINAL_PSID = "terminal"
COMMANDS_WITHOUT_MESSENGER = ("chat", "usage")


class TerminalChannel:
    """Prints replies where Messenger would send them."""

    def __init__(self) -> None:
        self._replies = itertools.count()

    def send_text(self, psid: str, text: str) -> list[tuple[str, str]]:
        """Print the reply."""
        click.echo(f"bot> {text}")
        return [(f"terminal-reply-{next(self._replies)}", text)]

    def send_action(self, psid: str, action: str) -> bool:
        """Typing and seen have nothing to show in a terminal."""
        return True


def terminal_commands(service: Service) -> list[click.Command]:
    """The CLI commands of an app built around `service`."""

    @click.command("chat")
    def chat() -> None:
        """Talk to the bot in this terminal: same model, prompt, history and commands as on Messenger."""
        bot = Bot(service.settings, service.store, TerminalChannel(), service.model, service.limits)
        click.echo(f"Chatting with {service.settings.openai_model}. /reset starts over, /help explains, Ctrl-D quits.")
        for n in itertools.count():
            click.echo("you> ", nl=False)
            line = sys.stdin.readline()
            if not line:
                click.echo()
                return
            if line.strip():
                message = Message(psid=TERMINAL_PSID, mid=f"terminal-{n}", timestamp=int(time.time() * 1000), text=line.rstrip("\n"))
                bot.handle(message)

    @click.command("usage")
    def usage_today() -> None:
        """Show today's model usage (UTC) kept in the store."""
        totals = usage.totals(service.store, time.time())
        click.echo(
            f"{totals['date']}: {totals['replies']:,} replies, "
            f"{totals['prompt_tokens']:,} prompt tokens, {totals['completion_tokens']:,} completion tokens"
        )

    return [chat, usage_today]
