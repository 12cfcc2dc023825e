"""`flask --app app knowledge [question]`: what the folder holds, and the sections a question brings."""

from __future__ import annotations

from collections.abc import Callable

import click

from inboxgpt.config import ConfigError, Settings
from inboxgpt.model.gpt import ChatModel, ModelSettings
from inboxgpt.model.knowledge import Knowledge, open_knowledge


def knowledge_command(load: Callable[[], Settings]) -> click.Command:
    """The `knowledge` command, reading its settings with `load`."""

    @click.command("knowledge")
    @click.argument("question", required=False)
    def knowledge(question: str | None) -> None:
        """Show the page's knowledge (KNOWLEDGE_DIR), or the sections QUESTION would bring to the model."""
        try:
            settings = load()
        except ConfigError as error:
            raise click.ClickException(str(error)) from None
        if settings.knowledge_dir is None:
            raise click.ClickException("KNOWLEDGE_DIR is not set: name the folder of the page's documents")
        model = (
            ChatModel(ModelSettings.from_settings(settings))
            if settings.embedding_model and settings.openai_api_key.reveal()
            else None
        )
        found = open_knowledge(settings, model.embed if model else None)
        assert found is not None
        try:
            if question is None:
                _describe(found, settings)
            else:
                _explain(found, question)
        finally:
            found.close()
            if model is not None:
                model.close()

    return knowledge


def _describe(found: Knowledge, settings: Settings) -> None:
    shelf = found.shelf
    library = shelf.library
    click.echo(
        f"{settings.knowledge_dir}: {len(library.files)} files, {len(library.sections)} sections, "
        f"about {shelf.tokens} tokens"
    )
    if not found.searched(shelf):
        click.echo(f"mode: whole, in every prompt (within KNOWLEDGE_MAX_TOKENS={found.max_tokens})")
    else:
        how = f"words (BM25) and embeddings ({settings.embedding_model})" if shelf.vectors else "words (BM25)"
        click.echo(f"mode: searched for each message by {how}, up to KNOWLEDGE_MAX_TOKENS={found.max_tokens}")
    if settings.embedding_model and not settings.openai_api_key.reveal():
        click.echo("EMBEDDING_MODEL is set but OPENAI_API_KEY is not: shown as searched by words only")
    for name, why in library.skipped:
        click.echo(f"skipped: {name}: {why}")
    click.echo("sections:")
    for section in library.sections:
        click.echo(f"  {section.title} ({section.tokens()} tokens)")


def _explain(found: Knowledge, question: str) -> None:
    chosen = found.choose(question)
    if not chosen.searched:
        click.echo(f"whole: every message brings all {len(chosen.sections)} sections ({chosen.tokens} tokens)")
        for section in chosen.sections:
            click.echo(f"  {section.title}")
        return
    click.echo(f"searched: {len(chosen.sections)} sections, {chosen.tokens} tokens")
    for section, score in zip(chosen.sections, chosen.scores, strict=True):
        click.echo(f"  {score:7.3f}  {section.title}")
    if not chosen.sections:
        click.echo("  (none: the model is told the knowledge does not cover it)")
