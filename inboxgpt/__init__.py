"""A business's assistant for its Meta inboxes: Messenger and Instagram conversations answered by a GPT model.

The path of a message, top to bottom: `web` (verify, signature, parse, queue, acknowledge) →
`queues` (one queue per person, in the store) → `conversation` (routing decides the case, the
conversation handles it) → `model` (the prompt with history and knowledge, the model, streaming)
→ `channels` (the adapter that sends). `commands` are the terminal commands; `cli.py` is the `inboxgpt`
command around them.
"""
