"""The `inboxgpt` command (and `python -m inboxgpt`): `serve` the webhook under gunicorn with the bot's tuned
settings, and every command `flask --app app` has (`chat`, `check`, `knowledge`, `leads`, `usage`, `page-setup`,
`send-test`, `run`...), built by the same application factory."""

from __future__ import annotations

import os
import sys

import click
from flask.cli import FlaskGroup

from inboxgpt.web.app import __version__, create_app

# The gunicorn settings shipped in the package, by module name: found wherever the package is installed.
GUNICORN_CONF = "python:inboxgpt.web.gunicorn_conf"

HELP = """A GPT assistant for a business's Messenger, Instagram and WhatsApp conversations.

\b
Try a key and a prompt first, with only OPENAI_API_KEY set:
  inboxgpt chat
Then serve Meta's webhook (the settings in the environment or a .env file):
  inboxgpt serve
  inboxgpt check --webhook-url https://<your public address>/
  inboxgpt send-test "hello"
"""


@click.command(
    "serve", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, add_help_option=False
)
@click.argument("gunicorn_options", nargs=-1, type=click.UNPROCESSED)
def serve(gunicorn_options: tuple[str, ...]) -> None:
    """Serve the webhook under gunicorn with the bot's tuned settings (HOST, PORT, WEB_CONCURRENCY...).

    Any further option goes to gunicorn (`inboxgpt serve --help` lists them).
    """
    # gunicorn takes this process's place: it is the one a platform's SIGTERM reaches, and its master imports the
    # metrics library only after its settings have chosen where the workers' metrics go.
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, *gunicorn_options])


class InboxGroup(FlaskGroup):
    """Flask's command group around the bot's own factory: no `--app` to give, and help that describes the bot."""

    def __init__(self) -> None:
        super().__init__(name="inboxgpt", help=HELP, create_app=create_app, add_version_option=False)
        self.params = [param for param in self.params if param.name != "app"]
        click.version_option(__version__, prog_name="inboxgpt")(self)
        self.add_command(serve)


def main() -> None:
    InboxGroup().main(prog_name="inboxgpt")
