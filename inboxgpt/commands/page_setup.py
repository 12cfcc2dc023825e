"""`flask --app app page-setup`: the page's Messenger profile, set in one call.

The Get Started button, the greeting, up to four ice breakers and a persistent menu (start over,
talk to a person) go in one `POST /me/messenger_profile`: Meta allows 10 calls per 10 minutes per
page. Only the Messenger settings are needed.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import click

from inboxgpt import replies
from inboxgpt.channels.graph import GraphClient, GraphError, GraphSettings
from inboxgpt.config import ConfigError, Settings
from inboxgpt.conversation.routing import HUMAN_PAYLOAD, START_OVER_PAYLOAD

PROFILE_FIELDS = ["get_started", "greeting", "ice_breakers", "persistent_menu"]


def profile(settings: Settings) -> dict:
    """The Messenger profile the settings describe."""
    body: dict = {
        "get_started": {"payload": settings.get_started_payload},
        "greeting": [{"locale": "default", "text": settings.greeting or replies.PAGE_GREETING}],
        "persistent_menu": [
            {
                "locale": "default",
                "composer_input_disabled": False,
                "call_to_actions": [
                    {"type": "postback", "title": replies.MENU_START_OVER, "payload": START_OVER_PAYLOAD},
                    {"type": "postback", "title": replies.MENU_HUMAN, "payload": HUMAN_PAYLOAD},
                ],
            }
        ],
    }
    if settings.ice_breakers:
        # A tap arrives as a postback titled with the question: answered as if it were typed.
        questions = [{"question": question, "payload": question} for question in settings.ice_breakers]
        body["ice_breakers"] = [{"locale": "default", "call_to_actions": questions}]
    return body


def page_setup_command(load: Callable[[], Settings]) -> click.Command:
    """The `page-setup` command, reading its settings with `load`."""

    @click.command("page-setup")
    @click.option("--dry-run", is_flag=True, help="Print the profile instead of sending it.")
    @click.option("--delete", is_flag=True, help="Remove the Get Started button, greeting, ice breakers and menu.")
    def page_setup(dry_run: bool, delete: bool) -> None:
        """Set the page's Get Started button, greeting, ice breakers and menu (one Messenger profile call)."""
        try:
            settings = load()
        except ConfigError as error:
            raise click.ClickException(str(error)) from None
        if not settings.page_configured:
            raise click.ClickException("page-setup sets up the Page's Messenger profile: set PAGE_ACCESS_TOKEN")
        if dry_run:
            body = {"fields": PROFILE_FIELDS} if delete else profile(settings)
            click.echo(f"{'DELETE' if delete else 'POST'} /me/messenger_profile")
            click.echo(json.dumps(body, indent=2, ensure_ascii=False))
            return
        messenger = GraphClient(GraphSettings.from_settings(settings))
        try:
            if delete:
                messenger.delete_profile(PROFILE_FIELDS)
            else:
                messenger.set_profile(profile(settings))
        except GraphError as error:
            raise click.ClickException(f"Meta refused the Messenger profile: {error}") from None
        finally:
            messenger.close()
        click.echo("Removed the page's Messenger profile." if delete else "The page's Messenger profile is set.")

    return page_setup
