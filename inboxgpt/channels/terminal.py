"""The terminal: `flask --app app chat` prints replies where Messenger would send them."""

from __future__ import annotations

import click

from inboxgpt.channels.base import Channel


class TerminalChannel(Channel):
    """Prints replies; one person ("terminal"), no webhook, no inbox to hand over to."""

    name = "terminal"
    tag = "terminal"

    def __init__(self) -> None:
        # Messages printed so far: the chat can tell a message the bot left unanswered.
        self.sent = 0

    def split(self, text: str) -> list[str]:
        """A terminal shows a reply of any length as one."""
        return [text]

    def send_text(self, key: str, text: str, offers: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """Print the reply (a terminal has no quick replies to offer)."""
        click.echo(f"bot> {text}")
        self.sent += 1
        return [(f"terminal-reply-{self.sent}", text)]

    def send_action(self, key: str, action: str, message_id: str | None = None) -> bool:
        """Typing and seen have nothing to show in a terminal."""
        return True
