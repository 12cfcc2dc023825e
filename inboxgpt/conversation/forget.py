"""Erasing a person: everything the service keeps under their key (history, transcript, pause, leads, their usage
records and counters, remembered and sent message ids, queued events), and the same under every key linked to it
(WhatsApp's username id beside their number), so that nothing of them is left in the store. `flask --app app forget`
and Meta's data deletion callback (web/data_deletion.py) both erase through here."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from inboxgpt.store import Store

logger = logging.getLogger(__name__)


def forget_everywhere(store: Store, keys: Iterable[str]) -> list[str]:
    """Erase each key and, in turn, every key linked to one erased; return the keys erased, in order. May raise
    StoreUnavailable (part may then be erased: erasing again finishes it)."""
    waiting, erased = list(keys), []
    while waiting:
        key = waiting.pop(0)
        if key in erased:
            continue
        erased.append(key)
        waiting += store.forget_person(key)
    logger.info("forgot everything kept under %d key(s)", len(erased))
    return erased
