"""The moderation endpoint asked about a person's words or an answer (MODERATION), for messages and comments alike:
what it flags is counted and logged by category, never by its text; an endpoint that fails lets the text through."""

from __future__ import annotations

import logging

from inboxgpt import metrics
from inboxgpt.model.errors import ModelError
from inboxgpt.model.gpt import ChatModel

logger = logging.getLogger(__name__)


def flagged(model: ChatModel, psid: str, text: str, photos: tuple[str, ...], what: str) -> bool:
    """Whether the moderation endpoint flags `text` (and `photos`), a "message" of `psid`'s or an "answer" to them."""
    try:
        categories = model.moderate(text, photos)
    except ModelError as error:
        logger.warning("moderation failed for psid=%s (%s): the %s goes through", psid, error.failure.value, what)
        metrics.MODERATION.labels(what, "failed").inc()
        return False
    for category in categories:
        metrics.MODERATION.labels(what, category).inc()
    if categories:
        logger.info("%s of psid=%s flagged by moderation: %s", what, psid, ", ".join(categories))
    return bool(categories)
