"""`flask --app app staff add|list|remove`: the console's staff accounts, kept in the store."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from inboxgpt.config import ConfigError, Settings
from inboxgpt.console.staff import Staff, StaffError
from inboxgpt.store import StoreUnavailable, open_store


def staff_command(load: Callable[[], Settings]) -> click.Group:
    """The command group, reading its settings with `load`."""

    @click.group("staff")
    def staff() -> None:
        """The console's staff accounts (the console is off until one exists)."""

    @staff.command("add")
    @click.argument("name")
    @click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
    def add(name: str, password_stdin: bool) -> None:
        """Add a staff account, or set a new password for one (its sessions end)."""
        with _staff(load, needs_key=True) as accounts:
            if password_stdin:
                password = sys.stdin.readline().rstrip("\r\n")
            else:
                password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
            try:
                accounts.add(name, password)
            except StaffError as error:
                raise click.ClickException(str(error)) from None
        click.echo(f"Staff account {name} can now sign in to the console.")

    @staff.command("list")
    def list_() -> None:
        """List the staff accounts."""
        with _staff(load) as accounts:
            names = accounts.names()
        click.echo("\n".join(names) if names else "No staff accounts: the console is off.")

    @staff.command("remove")
    @click.argument("name")
    def remove(name: str) -> None:
        """Remove a staff account; its sessions end at once."""
        with _staff(load) as accounts:
            if not accounts.remove(name):
                raise click.ClickException(f"there is no staff account {name}")
        click.echo(f"Staff account {name} removed.")

    return staff


@contextmanager
def _staff(load: Callable[[], Settings], needs_key: bool = False) -> Iterator[Staff]:
    """The staff accounts in the store the settings name, which must outlive this command."""
    try:
        settings = load()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    if settings.store_url.startswith("memory:"):
        raise click.ClickException(
            "staff accounts are kept in the store, and memory:// ends with this command: "
            "set STORE_URL to sqlite:///path or redis://"
        )
    if needs_key and settings.secret_key is None:
        raise click.ClickException(
            "set SECRET_KEY first (at least 32 characters, such as openssl rand -hex 32 makes): "
            "it signs the console's sessions"
        )
    try:
        store = open_store(settings)
    except StoreUnavailable as error:
        raise click.ClickException(str(error)) from None
    try:
        yield Staff(store)
    except StoreUnavailable as error:
        raise click.ClickException(str(error)) from None
    finally:
        store.close()
