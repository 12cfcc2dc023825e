"""`flask --app app forget KEY`: erase a person everywhere the service keeps them (conversation/forget.py)."""

from __future__ import annotations

from collections.abc import Callable

import click

from inboxgpt.config import ConfigError, Settings
from inboxgpt.conversation.forget import forget_everywhere
from inboxgpt.store import StoreUnavailable, backend, open_store


def forget_command(load: Callable[[], Settings]) -> click.Command:
    """The command, reading its settings with `load`."""

    @click.command("forget")
    @click.argument("key")
    def forget(key: str) -> None:
        """Erase the person KEY (as the console shows it: a PSID, ig:..., wa:...) and every key linked to it:
        history, transcript, pause, leads, usage records, queued events, remembered ids."""
        try:
            settings = load()
            if not backend(settings.store_url).shared:
                raise click.ClickException("STORE_URL is memory://: the service's memory is its own, erase there")
            store = open_store(settings)
        except (ConfigError, StoreUnavailable) as error:
            raise click.ClickException(str(error)) from None
        try:
            erased = forget_everywhere(store, [key.strip()])
        except StoreUnavailable as error:
            raise click.ClickException(f"{error}: run it again to finish") from None
        finally:
            store.close()
        click.echo(f"Erased everything kept under {', '.join(erased)}.")

    return forget
