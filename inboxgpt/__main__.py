"""`python -m inboxgpt`: the `inboxgpt` command."""

from inboxgpt.cli import main

main()
