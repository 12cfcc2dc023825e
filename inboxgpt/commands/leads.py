"""`flask --app app leads`: the leads the model saved (the save_contact tool), from the store, as text or CSV."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from datetime import UTC, datetime

import click

from inboxgpt.config import ConfigError, Settings
from inboxgpt.queues.store import StoreUnavailable, open_store
from inboxgpt.tools.leads import FIELDS, Lead, kept_leads

COLUMNS = ("time", "channel", "person", *FIELDS)


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
            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows([_when(lead), lead.channel, lead.person, *_details(lead)] for lead in found)
        elif not found:
            click.echo(f"No leads since {since}." if since else "No leads yet.")
        for lead in found if not as_csv else ():
            click.echo(f"{_when(lead)}  {lead.channel}  {lead.person}  " + "  ".join(d for d in _details(lead) if d))

    return leads


def _day(text: str) -> float:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise click.BadParameter("a day as YYYY-MM-DD", param_hint="--since") from None


def _when(lead: Lead) -> str:
    return datetime.fromtimestamp(lead.time, UTC).strftime("%Y-%m-%d %H:%M")


def _details(lead: Lead) -> list[str]:
    return [getattr(lead, field) for field in FIELDS]
