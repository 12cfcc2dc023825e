"""Leads: a person's contact details the model takes down with the built-in `save_contact` tool, kept in the store
once (whichever worker, however often the model calls it for the same details), at most
MAX_LEADS_PER_PERSON_PER_DAY a person, and posted to LEADS_WEBHOOK_URL. `flask --app app leads` lists them, as text
or CSV; what a person wrote is shown so that it can neither act on a terminal nor run as a spreadsheet's formula.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from inboxgpt import metrics
from inboxgpt.notify import OwnerWebhook
from inboxgpt.periods import DAY, Periods
from inboxgpt.store import Store

logger = logging.getLogger(__name__)

KIND = "lead"
FIELDS = ("name", "phone", "email", "note")
COLUMNS = ("time", "channel", "person", *FIELDS)
# A person (or a model asked to, or looping) cannot fill the owner's list and webhook: more in a day (UTC) are refused.
MAX_LEADS_PER_PERSON_PER_DAY = 5
# How a cell that a spreadsheet would take for a formula starts (OWASP's list); such a cell is written after a quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Unicode's direction marks and overrides: text after them shows reversed, so a line can show what it does not say.
DIRECTION_MARKS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
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

    def cells(self) -> list[str]:
        """The lead's columns (COLUMNS) as texts, its time in UTC to the minute."""
        when = datetime.fromtimestamp(self.time, UTC).strftime("%Y-%m-%d %H:%M")
        return [when, self.channel, self.person, *(getattr(self, field) for field in FIELDS)]


def write_csv(leads: Iterable[Lead], out: TextIO) -> None:
    """The leads as CSV, a header line first, each cell safe to open in a spreadsheet."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([spreadsheet_cell(cell) for cell in lead.cells()] for lead in leads)


def spreadsheet_cell(text: str) -> str:
    """A text a spreadsheet shows as it is: one that would start a formula (`=HYPERLINK(...)`, `@SUM(...)`, even
    `+44 7700 900123`) gets a leading single quote, which spreadsheets take as "this is text" and do not show."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def printable(text: str) -> str:
    """A text as a terminal can show it on one line: control characters (a line break that would start a line of
    its own, an escape sequence), Unicode's line separators and direction marks written as escapes (`\\n`,
    `\\x1b`), never acted on."""
    return "".join(char.encode("unicode_escape").decode() if _unsafe(char) else char for char in text)


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in DIRECTION_MARKS


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
        today = f"leads:{person}:{Periods().day(now)}"
        if self._store.increment(today, 1, 2 * DAY) > MAX_LEADS_PER_PERSON_PER_DAY:
            logger.warning("lead refused for psid=%s: %d a day at most", person, MAX_LEADS_PER_PERSON_PER_DAY)
            return "Not saved: the business already has this person's details from today. Do not save more."
        if not self._store.keep_record(KIND, lead.id, json.dumps(asdict(lead), ensure_ascii=False), now):
            self._store.increment(today, -1, 2 * DAY)  # not a new lead: the day's count is of leads kept
            return "Already saved: the business has these details."
        metrics.LEADS.labels(channel).inc()
        logger.info("lead saved for psid=%s", person)
        self._webhook.post(asdict(lead), person)
        return "Saved: the business will get back to them."

    def close(self) -> None:
        """Post what is waiting."""
        self._webhook.close()
