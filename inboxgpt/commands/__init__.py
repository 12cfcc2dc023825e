"""The terminal commands: chat, usage, check, page-setup, knowledge (`flask --app app <command>`)."""
