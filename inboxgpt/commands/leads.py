"""`flask --app app leads`: the leads the model saved (the save_contact tool), from the store, as text or CSV."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime

import click

from inboxgpt.config import ConfigError, Settings
from inboxgpt.store import StoreUnavailable, open_store
from inboxgpt.tools.leads import kept_leads, printable, write_csv


def leads_command(load: Callable[[], Settings]) -> click.Command:
    """The command, reading its settings with `load`."""

    @click.command("leads")
    @click.option("--since", help="Only leads from this day on (YYYY-MM-DD, UTC).")
    @click.option("--csv", "as_csv", is_flag=True, help="Print CSV, with a header line.")
    def leads(since: str | None, as_csv: bool) -> None:
        """List the leads the assistant took down, oldest first."""
        start = _day(since) if since else 0.0
        try:
            store = open_store(load())
        except (ConfigError, StoreUnavailable) as error:
            raise click.ClickException(str(error)) from None
        try:
            found = kept_leads(store, start)
        finally:
            store.close()
        if as_csv:
            write_csv(found, sys.stdout)
        elif not found:
            click.echo(f"No leads since {since}." if since else "No leads yet.")
        for lead in found if not as_csv else ():
            # One line a lead, whatever the person wrote in it.
            click.echo("  ".join(printable(cell) for cell in lead.cells() if cell))

    return leads


def _day(text: str) -> float:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise click.BadParameter("a day as YYYY-MM-DD", param_hint="--since") from None
