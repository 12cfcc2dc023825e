"""The model: the prompt (history, knowledge, photos), the chat model's client, streaming, the page's knowledge."""
