"""`flask --app app report [--days N] [--json]`: how the assistant did, from the transcripts in the store
(docs/outcomes.md defines each figure)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict

import click

from inboxgpt.config import ConfigError, Settings
from inboxgpt.conversation.outcomes import Outcomes, OutcomeSettings, outcomes
from inboxgpt.conversation.transcript import Transcripts
from inboxgpt.store import StoreUnavailable, open_store


def report_command(load: Callable[[], Settings]) -> click.Command:
    """The command, reading its settings with `load`."""

    @click.command("report")
    @click.option("--days", default=7.0, show_default=True, type=click.FloatRange(min=0, min_open=True))
    @click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
    def report(days: float, as_json: bool) -> None:
        """Conversations, resolved by the assistant, handed over, reopened, and what the knowledge did not cover."""
        try:
            settings = load()
            store = open_store(settings)
        except (ConfigError, StoreUnavailable) as error:
            raise click.ClickException(str(error)) from None
        try:
            now = time.time()
            people = Transcripts(store, settings.transcript_days).active_since(
                now - days * 86400, settings.max_conversations
            )
            figures = outcomes(people, now, days, OutcomeSettings.from_settings(settings))
        finally:
            store.close()
        click.echo(json.dumps(asdict(figures), indent=2, ensure_ascii=False) if as_json else lines(figures, settings))

    return report


def lines(figures: Outcomes, settings: Settings) -> str:
    """The figures as the terminal shows them."""

    def share(count: int) -> str:
        return f" ({count / figures.conversations:.0%})" if figures.conversations else ""

    rows = [
        f"Conversations started in the last {figures.days:g} days "
        f"(a new one after {settings.conversation_gap_hours:g} h of silence): {figures.conversations:,}",
        f"  resolved by the assistant: {figures.resolved:,} ({figures.resolution_rate:.0%} of those beyond greetings)",
        f"  handed over to a person:   {figures.handed_over:,}{share(figures.handed_over)}",
        f"  reopened:                  {figures.reopened:,}{share(figures.reopened)}",
        f"  greetings only:            {figures.greetings_only:,}",
        f"  still open (answered less than {settings.resolved_after_hours:g} h ago): {figures.open:,}",
    ]
    if not settings.transcript_days:
        rows.append("TRANSCRIPT_DAYS is 0: no transcripts are kept, so there is nothing to count.")
    if figures.not_covered:
        rows += ["", "Not covered by the knowledge, most asked first (what to add to KNOWLEDGE_DIR):"]
        rows += [f'  {group.count:4}  {group.words}  ("{group.example[:80]}")' for group in figures.not_covered]
    return "\n".join(rows)
