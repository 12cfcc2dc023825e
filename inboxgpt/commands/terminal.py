"""`flask --app app chat` and `flask --app app usage`: try the bot in a terminal, and read today's token usage.

Each command reads the settings it needs when it runs (none needs Messenger's) and builds its own
service, which never touches the webhook's queues.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from inboxgpt.channels.base import Channels
from inboxgpt.channels.terminal import TerminalChannel
from inboxgpt.config import ConfigError, Settings
from inboxgpt.conversation.bot import Bot
from inboxgpt.evals.watch import Watch, WatchedToolbox, explained, watched_bot
from inboxgpt.events import Message
from inboxgpt.periods import Periods
from inboxgpt.service import Service
from inboxgpt.usage import DAYS_KEPT, Totals, Usage

# The one person of the terminal: its channel's key.
TERMINAL_PSID = TerminalChannel.tag
# After /human the bot is silent, as on Messenger, while the page's people answer; here nobody else will.
PAUSED = "(no answer: the bot is paused for a person from the page, and none answers here. /bot brings it back.)"


@contextmanager
def terminal_service(load: Callable[[], Settings], channel: TerminalChannel | None = None) -> Iterator[Service]:
    """A service answering in this terminal, closed afterwards; a settings problem is shown without a traceback.

    A terminal carries text only: the service neither offers nor expects photos or voice messages (/help says so)."""
    try:
        settings = dataclasses.replace(load(), vision=False, transcribe=False)
        service = Service(settings, Channels([channel or TerminalChannel()]))
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    try:
        yield service
    finally:
        service.close()


def terminal_commands(load: Callable[[], Settings]) -> list[click.Command]:
    """The CLI commands, reading their settings with `load`."""

    @click.command("chat")
    @click.option(
        "--explain",
        is_flag=True,
        help="After each answer: the knowledge sections used, tool calls, tokens, cost, time.",
    )
    def chat(explain: bool) -> None:
        """Talk to the bot in this terminal: same model, prompt, history and commands as on Messenger."""
        channel = TerminalChannel()
        with terminal_service(load, channel) as service:
            watch = Watch()
            bot = _explaining_bot(service, watch) if explain else service.bot
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
                    printed = channel.sent
                    started = time.monotonic()
                    bot.handle(message)
                    if channel.sent == printed and service.store.paused_until(TERMINAL_PSID) > time.time():
                        click.echo(PAUSED)
                    if explain:
                        click.echo(explained(watch.take(time.monotonic() - started)))

    @click.command("usage")
    @click.option(
        "--days", default=1, show_default=True, help=f"Days to show, today first (the store keeps {DAYS_KEPT})."
    )
    def usage_today(days: int) -> None:
        """Show the model's usage by day (in TIMEZONE) kept in the store: replies, tokens, dollars, top spenders."""
        with terminal_service(load) as service:
            counted = Usage(service.store, Periods(service.settings.timezone))
            for totals in counted.recent(time.time(), max(1, min(days, DAYS_KEPT))):
                click.echo(_usage_lines(totals))

    return [chat, usage_today]


def _explaining_bot(service: Service, watch: Watch) -> Bot:
    """The service's conversation, what each answer draws on noted in `watch` (the tools run as always)."""
    settings = service.settings
    toolbox = None
    if settings.tools is not None:
        toolbox = WatchedToolbox(settings.tools, service.leads, settings.tools_allow_private, watch)
    return watched_bot(service, watch, toolbox)


def _usage_lines(totals: Totals) -> str:
    """One day's usage as `usage` prints it."""
    by_channel = ", ".join(f"{channel} {count:,}" for channel, count in totals.replies_by_channel.items())
    comments = f", {totals.comment_replies:,} to comments" if totals.comment_replies else ""
    lines = [
        f"{totals.date}: {totals.replies:,} replies ({by_channel}{comments}), "
        f"{totals.prompt_tokens:,} prompt tokens, {totals.completion_tokens:,} completion tokens, "
        f"${totals.dollars:.4f}"
    ]
    spent = ", ".join(
        f"{channel} ${dollars:.4f}" for channel, dollars in (totals.dollars_by_channel or {}).items() if dollars
    )
    if spent:
        lines.append(f"  by channel: {spent}")
    if totals.top_spenders:
        lines.append("  top people: " + ", ".join(f"{s.person} ${s.dollars:.4f}" for s in totals.top_spenders))
    if totals.stopped:
        lines.append("  stopped by a cap: " + ", ".join(f"{stop.person} ({stop.cap})" for stop in totals.stopped))
    if totals.estimated_calls:
        lines.append(
            f"  estimated (the server reported no usage): {totals.estimated_calls:,} model calls, "
            f"{totals.estimated_prompt_tokens:,} prompt tokens, {totals.estimated_completion_tokens:,} completion "
            f"tokens, ${totals.estimated_dollars:.4f} of the figures above"
        )
    return "\n".join(lines)
