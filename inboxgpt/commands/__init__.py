"""The terminal commands: chat, usage, check, page-setup, leads, send-test (`inboxgpt <command>`, or in the
repository `flask --app app <command>`)."""
