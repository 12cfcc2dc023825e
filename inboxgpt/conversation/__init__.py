"""The conversation: routing decides what an event is, the bot answers it (commands, handover, model replies)."""
