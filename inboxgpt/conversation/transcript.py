"""Each conversation's transcript, for the owner's console: what the person said, the assistant's messages as
delivered, the staff's messages and notes, handovers, tool calls and delivery failures; and a summary of the
conversation (its channel, last message, how long the person has waited, whether they need a person).

It is kept apart from the history the model reads (bounded, forgotten after a day of silence), for TRANSCRIPT_DAYS;
0 keeps none. Recording never gets in the way of an answer: a store that fails loses the entry, logged.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum

from inboxgpt.events import Attachment, Event, Message, Postback
from inboxgpt.notify import HandoverNotifier
from inboxgpt.store import Store, StoreUnavailable

logger = logging.getLogger(__name__)

# The last message as the conversation list shows it.
LAST_TEXT_CHARS = 200


class Kind(StrEnum):
    """Who or what an entry is."""

    PERSON = "person"
    ASSISTANT = "assistant"
    STAFF = "staff"
    NOTE = "note"
    HANDOVER = "handover"
    TOOL = "tool"
    FAILURE = "failure"


class State(StrEnum):
    """Where a conversation stands, as the console's views sort it."""

    ASSISTANT = "assistant"  # the assistant answers
    NEEDS_PERSON = "needs_person"  # waiting for one of the staff
    TAKEN = "taken"  # one of the staff took it over: the assistant is silent until handed back
    RESOLVED = "resolved"  # the staff closed it; the assistant answers what comes next


# Why a person is in "Needs a person".
ASKED = "asked for a person"
TOOL_ASKED = "the assistant handed them over"
MODEL_FAILED = "the model failed"
MODERATED = "moderation refused their message"
LATE_REFUSED = "a late answer was refused"
UNDELIVERED = "a late answer refused by WhatsApp"


@dataclass(frozen=True)
class Entry:
    """One line of a transcript."""

    kind: Kind
    text: str
    at: float  # seconds since 1970
    by: str = ""  # the staff member, or which of the page's people (the Page Inbox)
    state: str = ""  # an outgoing message's delivery: sent, failed
    photos: tuple[Attachment, ...] = ()
    id: str = field(default_factory=lambda: secrets.token_hex(6))
    # The channel's id of a message sent (a later report of its failure names it); on a failure, the message's.
    mid: str = ""

    def encode(self) -> str:
        data = asdict(self)
        data["kind"] = self.kind.value
        data["photos"] = [{k: v for k, v in photo.items() if v is not None} for photo in data["photos"]]
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def decode(cls, text: str) -> Entry:
        data = json.loads(text)
        data["kind"] = Kind(data["kind"])
        data["photos"] = tuple(Attachment(**photo) for photo in data.get("photos", ()))
        return cls(**data)


def as_written(event: Message | Postback) -> tuple[str, tuple[Attachment, ...]]:
    """What a person sent, as the transcript shows it (photos as [photo], shown beside it), and its photos."""
    if isinstance(event, Postback):
        return f"[tapped: {event.title or event.payload}]", ()
    photos = tuple(one for one in event.attachments if one.type == "image" and not one.is_sticker)
    others = [f"[{'sticker' if one.is_sticker else one.type}]" for one in event.attachments if one not in photos]
    parts = [(event.text or event.quick_reply_payload or "").strip(), *["[photo]"] * len(photos), *others]
    return " ".join(part for part in parts if part) or "[message]", photos


class Transcripts:
    """Records each conversation's transcript and summary in the store."""

    def __init__(
        self,
        store: Store,
        days: float,
        notifier: HandoverNotifier | None = None,
        clock: Callable[[], float] = time.time,
        names: Callable[[str], str] = lambda key: "",
    ):
        self._store = store
        self.on = days > 0
        self._notifier = notifier or HandoverNotifier(None)
        self._clock = clock
        # A person's name asked of their channel (bounded in time by its client, "" on failure).
        self._names = names

    def read_by_staff(self) -> bool:
        """Whether the business's people read the transcripts in the owner's console: transcripts are kept and a staff
        account exists (one cannot be made without SECRET_KEY). The console is then an inbox on every channel."""
        return self.on and bool(self._store.staff_names())

    # --- the person ---

    def person(self, event: Event, text: str | None = None) -> None:
        """A person's message (or button), as they sent it (or `text`: what a voice message said); they wait from
        then until someone answers. Their name is the one the event carries, or else asked of their channel once."""
        if not self.on or not isinstance(event, Message | Postback):
            return
        written, photos = as_written(event)
        at = event.timestamp / 1000 if event.timestamp else self._clock()
        summary = self._summary(event.psid)
        fields = {"channel": event.channel, "person_at": repr(at)}
        if not summary.get("waiting_since"):
            fields["waiting_since"] = repr(at)
        if summary.get("state", State.RESOLVED.value) == State.RESOLVED.value:
            fields["state"] = State.ASSISTANT.value
        if event.name:
            fields["name"] = event.name
        elif "name" not in summary:
            # Asked once a person, when first recorded; "" is kept too, so that a name refused is not asked again.
            fields["name"] = self._names(event.psid)
        self._keep(event.psid, Entry(Kind.PERSON, text or written, at, photos=photos), fields)

    # --- what reached the person, or did not ---

    def sent(self, psid: str, text: str, by: str = "", mid: str = "") -> None:
        """A message Meta took for the person (its id `mid`): the assistant's, or (`by`) a staff member's."""
        kind = Kind.STAFF if by else Kind.ASSISTANT
        self._keep(psid, Entry(kind, text, self._clock(), by=by, state="sent", mid=mid), {"waiting_since": ""})

    def not_delivered(self, psid: str, text: str, why: str, by: str = "") -> None:
        """A message Meta refused: the message, marked failed, with why."""
        kind = Kind.STAFF if by else Kind.ASSISTANT
        self._keep(psid, Entry(kind, text, self._clock(), by=by, state=f"failed: {why}"), {})

    def undelivered(self, event: Event, why: str) -> None:
        """Meta took a message (the event's `mid`) and later reported it undelivered: the message shows as failed,
        with why, and the person goes to "Needs a person" (the owner was told of the failure already)."""
        mid = getattr(event, "mid", "") or ""
        self._keep(
            event.psid, Entry(Kind.FAILURE, f"Not delivered: {why}", self._clock(), state=f"failed: {why}", mid=mid), {}
        )
        self.needs_person(event, UNDELIVERED, notify=False)

    def page_wrote(self, psid: str, text: str, by: str = "") -> None:
        """A message the page's people wrote outside the console (the Page Inbox, the WhatsApp Business app)."""
        self._keep(psid, Entry(Kind.STAFF, text, self._clock(), by=by, state="sent"), {"waiting_since": ""})

    def tool(self, psid: str, name: str, outcome: str) -> None:
        """A tool the model called, and how it went (never its arguments or answer: they may hold the person's
        details, which the owner's own system keeps)."""
        self._keep(psid, Entry(Kind.TOOL, f"{name}: {outcome}", self._clock()), {})

    # --- handovers ---

    def needs_person(self, event: Event, why: str, notify: bool = True) -> None:
        """The person needs one of the staff: the conversation goes to "Needs a person" (unless one of them has it
        already), and the owner is told at HANDOVER_NOTIFY_URL unless `notify` is off (told already)."""
        if not self.on:
            return
        psid = event.psid
        summary = self._summary(psid)
        fields = {"reason": why}
        if summary.get("state") != State.TAKEN.value:
            fields["state"] = State.NEEDS_PERSON.value
        self._keep(psid, Entry(Kind.HANDOVER, f"Needs a person: {why}", self._clock()), fields)
        if notify:
            self._notifier.notify(event.channel, psid, "needs_person", "")

    def handed_back(self, psid: str, text: str, by: str = "") -> None:
        """The assistant answers the person again (they asked for it, the staff handed it back, the thread came
        back)."""
        fields = {"state": State.ASSISTANT.value, "reason": "", "taken_by": ""}
        self._keep(psid, Entry(Kind.HANDOVER, text, self._clock(), by=by), fields)

    def taken_over(self, psid: str, by: str) -> None:
        """One of the staff took the conversation over."""
        fields = {"state": State.TAKEN.value, "taken_by": by}
        self._keep(psid, Entry(Kind.HANDOVER, "Took over: the assistant stays silent", self._clock(), by=by), fields)

    def resolved(self, psid: str, by: str) -> None:
        """One of the staff closed the conversation: nobody waits any more."""
        fields = {"state": State.RESOLVED.value, "reason": "", "taken_by": "", "waiting_since": ""}
        self._keep(psid, Entry(Kind.HANDOVER, "Resolved", self._clock(), by=by), fields)

    def note(self, psid: str, text: str, by: str) -> None:
        """A private note of the staff's: never sent."""
        self._keep(psid, Entry(Kind.NOTE, text, self._clock(), by=by), {})

    # --- reading ---

    def entries(self, psid: str) -> list[Entry]:
        """The person's transcript, oldest first; a message Meta later reported undelivered shows as failed (the
        report itself only where the message is no longer kept)."""
        if not self.on:
            return []
        entries = [Entry.decode(entry) for entry in self._store.transcript(psid)]
        failed = {entry.mid: entry.state for entry in entries if entry.kind is Kind.FAILURE and entry.mid}
        sent = {entry.mid for entry in entries if entry.kind is not Kind.FAILURE and entry.mid}
        return [
            replace(entry, state=failed[entry.mid]) if entry.kind is not Kind.FAILURE and entry.mid in failed else entry
            for entry in entries
            if not (entry.kind is Kind.FAILURE and entry.mid in sent)
        ]

    def active_since(self, since: float, limit: int) -> Iterator[list[Entry]]:
        """The transcripts of the people who wrote or were written to since `since`, of the `limit` most recently
        active; only theirs are read."""
        for psid, summary in self._store.transcript_people(limit) if self.on else []:
            if float(summary.get("last_at") or 0) >= since:
                yield self.entries(psid)

    def _summary(self, psid: str) -> dict[str, str]:
        try:
            return self._store.transcript_summary(psid)
        except StoreUnavailable:
            return {}

    def _keep(self, psid: str, entry: Entry, fields: Mapping[str, str]) -> None:
        if not self.on:
            return
        summary = {"last_text": entry.text[:LAST_TEXT_CHARS], "last_kind": entry.kind.value, "last_at": repr(entry.at)}
        try:
            self._store.keep_transcript(psid, entry.encode(), {**summary, **fields})
        except StoreUnavailable as exc:
            logger.warning("psid=%s: a transcript entry (%s) was not kept: %s", psid, entry.kind.value, exc)
