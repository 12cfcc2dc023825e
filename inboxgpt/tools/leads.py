"""Leads: a person's contact details the model takes down with the built-in `save_contact` tool, kept in the store
once (whichever worker, however often the model calls it for the same details) and posted to LEADS_WEBHOOK_URL.
`flask --app app leads` lists them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import asdict, dataclass
from typing import Any

from inboxgpt import metrics
from inboxgpt.notify import OwnerWebhook
from inboxgpt.queues.store import Store

logger = logging.getLogger(__name__)

KIND = "lead"
FIELDS = ("name", "phone", "email", "note")
SAVE_CONTACT_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "The person's name", "maxLength": 200},
        "phone": {"type": "string", "description": "A phone number, as the person gave it", "maxLength": 50},
        "email": {"type": "string", "description": "An email address", "maxLength": 200},
        "note": {"type": "string", "description": "What they want, in a few words", "maxLength": 1000},
    },
    "required": ["note"],
}
# What the model is told of the tool.
SAVE_CONTACT: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "save_contact",
        "description": (
            "Save the person's contact details for the business to get back to them, when they ask to be called or "
            "written back, or leave their details. Ask for what is missing first; never invent details."
        ),
        "parameters": SAVE_CONTACT_PARAMETERS,
    },
}


# What an answer asks for, in its last paragraph, and the quick reply that offers it (Messenger fills in the person's
# own email or number, which they can edit before sending).
ASKED_FOR = {
    "user_phone_number": re.compile(r"\b(phone|number|call you)\b", re.IGNORECASE),
    "user_email": re.compile(r"\be-?mail\b", re.IGNORECASE),
}


def contact_offers(answer: str) -> tuple[str, ...]:
    """The quick replies to offer with an answer that ends by asking for the person's number or email."""
    last = answer.strip().rsplit("\n\n", 1)[-1]
    if "?" not in last:
        return ()
    return tuple(offer for offer, words in ASKED_FOR.items() if words.search(last))


@dataclass(frozen=True)
class Lead:
    """A person's details for the business to get back to them."""

    id: str
    time: float
    channel: str
    person: str  # the person's key
    name: str = ""
    phone: str = ""
    email: str = ""
    note: str = ""


def kept_leads(store: Store, since: float) -> list[Lead]:
    """The leads kept at or after `since`, oldest first."""
    return [Lead(**json.loads(text)) for text in store.records(KIND, since)]


class Leads:
    """Keeps leads in the store and posts each new one to the owner's webhook."""

    def __init__(self, store: Store, webhook: OwnerWebhook):
        self._store = store
        self._webhook = webhook

    def save(self, details: dict[str, Any], person: str, channel: str, now: float) -> str:
        """Keep the lead (once) and post it; return what the model is told."""
        given = {field: str(details.get(field) or "").strip() for field in FIELDS}
        # The same details from the same person are the same lead, however often the model saves them.
        digest = hashlib.sha256(json.dumps([person, given], sort_keys=True).encode()).hexdigest()[:16]
        lead = Lead(digest, now, channel, person, **given)
        if not self._store.keep_record(KIND, lead.id, json.dumps(asdict(lead), ensure_ascii=False), now):
            return "Already saved: the business has these details."
        metrics.LEADS.labels(channel).inc()
        logger.info("lead saved for psid=%s", person)
        self._webhook.post(asdict(lead), person)
        return "Saved: the business will get back to them."

    def close(self) -> None:
        """Post what is waiting."""
        self._webhook.close()
