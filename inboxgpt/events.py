"""Turn a Messenger or Instagram webhook body into the small typed events the bot answers or records.

Besides what people send: echoes of what the page sent them (by the bot, or by a person from
the page), what arrives under `standby` while another app owns the thread, and handover events.

An event's `psid` is the person's key everywhere (store, queues, limits, logs): a Messenger PSID
as Meta sends it, or an Instagram-scoped id behind "ig:", so the two channels never meet and
Messenger conversations keep the keys they had. Only the Send API sees the id without it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

MESSENGER = "messenger"
INSTAGRAM = "instagram"
# Webhook `object` -> channel.
CHANNELS = {"page": MESSENGER, "instagram": INSTAGRAM}
INSTAGRAM_KEY = "ig:"
HANDOVER_KINDS = ("pass_thread_control", "take_thread_control", "request_thread_control")
# Keys of a `messaging` item that name its kind; the first one present wins.
KNOWN_KINDS = (
    "message",
    "postback",
    "delivery",
    "read",
    "reaction",
    "message_edit",
    "referral",
    "optin",
    "account_linking",
    "pass_thread_control",
    "take_thread_control",
    "request_thread_control",
    "app_roles",
    "policy_enforcement",
)


# Ids longer than this are not Meta's (its PSIDs have about 16 digits, its mids about 100 characters).
MAX_ID_CHARS = 256
# Timestamps past this (year 5138, in milliseconds) are not real: they count as missing.
MAX_TIMESTAMP_MS = 10**14
# Valid JSON may carry lone UTF-16 surrogates ("\ud800"), which no store or HTTP client can encode.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
ID_TEXT = re.compile(r"[\x21-\x7e]+")


class BadBody(ValueError):
    """The body is JSON but not a Messenger or Instagram webhook."""


def person_key(channel: str, scoped_id: str) -> str:
    """The key of a person on a channel: the PSID itself on Messenger, "ig:" and the id on Instagram."""
    return INSTAGRAM_KEY + scoped_id if channel == INSTAGRAM else scoped_id


def recipient(key: str) -> tuple[str, str]:
    """The channel and the id Meta knows a person by, from their key."""
    if key.startswith(INSTAGRAM_KEY):
        return INSTAGRAM, key[len(INSTAGRAM_KEY) :]
    return MESSENGER, key


@dataclass(frozen=True)
class Attachment:
    """One attachment of a message."""

    type: str
    url: str | None = None
    sticker_id: int | None = None

    @property
    def is_sticker(self) -> bool:
        """True for stickers and the thumbs-up like (an image with a sticker_id)."""
        return self.type == "sticker" or self.sticker_id is not None


@dataclass(frozen=True)
class Message:
    """A message a person sent to the page."""

    psid: str
    mid: str
    timestamp: int
    text: str | None = None
    quick_reply_payload: str | None = None
    reply_to_mid: str | None = None
    attachments: tuple[Attachment, ...] = ()
    # Delivered under `standby`: another app owns the thread, so it is recorded, not answered.
    standby: bool = False
    channel: str = MESSENGER
    # On Instagram, a reply to the account's story.
    story_reply: bool = False

    # When the webhook took it (time.time()), for the reply latency; 0 when unknown.
    received: float = 0.0

    @property
    def event_id(self) -> str:
        """The id Meta repeats when it redelivers this event."""
        return person_key(self.channel, self.mid)


@dataclass(frozen=True)
class Echo:
    """A message the page sent to a person: by this bot, by another app, or by a person from the page."""

    psid: str  # the person it was sent to
    mid: str
    timestamp: int
    text: str | None = None
    app_id: str | None = None
    metadata: str | None = None
    attachments: tuple[Attachment, ...] = ()
    standby: bool = False
    channel: str = MESSENGER

    # When the webhook took it (time.time()), for the reply latency; 0 when unknown.
    received: float = 0.0

    @property
    def event_id(self) -> str:
        """The id Meta repeats when it redelivers this event."""
        return person_key(self.channel, self.mid)


@dataclass(frozen=True)
class Handover:
    """A change of who answers the person: thread control passed, taken or requested."""

    psid: str
    action: str  # one of HANDOVER_KINDS
    timestamp: int
    new_owner_app_id: str | None = None
    previous_owner_app_id: str | None = None
    requested_owner_app_id: str | None = None
    metadata: str | None = None
    standby: bool = False
    channel: str = MESSENGER

    # When the webhook took it (time.time()), for the reply latency; 0 when unknown.
    received: float = 0.0

    @property
    def event_id(self) -> str:
        """The id Meta repeats when it redelivers this event (it carries no mid)."""
        return f"{self.action}:{self.psid}:{self.timestamp}:{self.new_owner_app_id or self.requested_owner_app_id}"


@dataclass(frozen=True)
class Postback:
    """A button the person tapped, such as Get Started."""

    psid: str
    payload: str
    title: str
    timestamp: int
    mid: str | None = None
    standby: bool = False
    channel: str = MESSENGER

    # When the webhook took it (time.time()), for the reply latency; 0 when unknown.
    received: float = 0.0

    @property
    def event_id(self) -> str:
        """The id Meta repeats when it redelivers this event."""
        # Postbacks before Graph v11 carry no mid; the tap's time and payload identify it (the
        # payload by its digest, so the id stays short whatever the payload's length).
        digest = hashlib.sha256(self.payload.encode()).hexdigest()[:16]
        return person_key(self.channel, self.mid) if self.mid else f"postback:{self.psid}:{self.timestamp}:{digest}"


Event = Message | Postback | Echo | Handover


@dataclass(frozen=True)
class ParsedBody:
    """The events to answer, and a count of what was skipped, by kind."""

    events: tuple[Event, ...]
    skipped: Counter = field(default_factory=Counter)
    channel: str = MESSENGER


def parse_body(body: Any) -> ParsedBody:
    """Parse a decoded webhook body; raise BadBody if it is not a page (Messenger) or Instagram webhook."""
    if not isinstance(body, dict) or not isinstance(body.get("entry"), list):
        raise BadBody("expected an object with an 'entry' list")
    channel = CHANNELS.get(str(body.get("object")))
    if channel is None:
        raise BadBody("not a page or instagram webhook")
    events: list[Event] = []
    skipped: Counter = Counter()
    for entry in body["entry"]:
        if not isinstance(entry, dict):
            skipped["malformed"] += 1
            continue
        page_id = str(entry.get("id", ""))
        # Items under `standby` belong to a thread another app owns: recorded, never answered.
        for field_name, standby in (("messaging", False), ("standby", True)):
            items = entry.get(field_name)
            for item in items if isinstance(items, list) else ():
                event, kind = parse_item(item, page_id, standby, channel)
                if event is None:
                    skipped[kind] += 1
                else:
                    events.append(event)
    return ParsedBody(tuple(events), skipped, channel)


def parse_item(item: Any, page_id: str, standby: bool = False, channel: str = MESSENGER) -> tuple[Event | None, str]:
    """Parse one `messaging` (or `standby`) item; return the event (or None if skipped) and its kind."""
    if not isinstance(item, dict):
        return None, "malformed"
    kind = next((key for key in KNOWN_KINDS if key in item), "unknown")
    if kind not in ("message", "postback", *HANDOVER_KINDS):
        return None, kind
    sender = _id(item.get("sender"))
    if sender is None:
        return None, "malformed"
    psid = person_key(channel, sender)
    timestamp = _timestamp(item.get("timestamp"))
    event: Event | None
    if kind == "postback":
        event = _postback(item["postback"], psid, timestamp, standby, channel)
    elif kind in HANDOVER_KINDS:
        event = _handover(kind, item[kind], psid, timestamp, channel)
    else:
        message = item["message"]
        if isinstance(message, dict) and (message.get("is_echo") or sender == page_id):
            # The page wrote: the person is the recipient.
            to = _id(item.get("recipient"))
            event = _echo(message, person_key(channel, to), timestamp, standby, channel) if to else None
            kind = "echo"
        elif isinstance(message, dict) and (message.get("is_deleted") or message.get("is_unsupported")):
            # Instagram: a message the person took back, or one Meta cannot show.
            return None, "deleted" if message.get("is_deleted") else "unsupported"
        else:
            event = _message(message, psid, timestamp, standby, channel)
    return (event, kind) if event else (None, "malformed")


def _timestamp(value: Any) -> int:
    """Milliseconds since 1970, or 0 (unknown) for anything that is not a plausible time."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_TIMESTAMP_MS:
        return value
    return 0


def _id(party: Any) -> str | None:
    return _identifier(party.get("id")) if isinstance(party, dict) else None


def _identifier(value: Any) -> str | None:
    """An id as Meta writes them: printable ASCII of a sane length; anything else is malformed."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if isinstance(value, str) and len(value) <= MAX_ID_CHARS and ID_TEXT.fullmatch(value):
        return value
    return None


def _str(value: Any) -> str | None:
    """A text field; lone surrogates (valid JSON, unencodable text) become U+FFFD."""
    return LONE_SURROGATE.sub("\ufffd", value) if isinstance(value, str) else None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _message(message: Any, psid: str, timestamp: int, standby: bool, channel: str) -> Message | None:
    if not isinstance(message, dict):
        return None
    mid = _identifier(message.get("mid"))
    if not mid:
        return None
    quick_reply_payload = _str(_dict(message.get("quick_reply")).get("payload"))
    reply_to = _dict(message.get("reply_to"))
    return Message(
        psid=psid,
        mid=mid,
        timestamp=timestamp,
        text=_str(message.get("text")),
        quick_reply_payload=quick_reply_payload,
        reply_to_mid=_identifier(reply_to.get("mid")),
        attachments=_attachments(message),
        standby=standby,
        channel=channel,
        story_reply=isinstance(reply_to.get("story"), dict),
    )


def _echo(message: dict, psid: str, timestamp: int, standby: bool, channel: str) -> Echo | None:
    mid = _identifier(message.get("mid"))
    if not mid:
        return None
    return Echo(
        psid=psid,
        mid=mid,
        timestamp=timestamp,
        text=_str(message.get("text")),
        app_id=_identifier(message.get("app_id")),
        metadata=_str(message.get("metadata")),
        attachments=_attachments(message),
        standby=standby,
        channel=channel,
    )


def _handover(kind: str, details: Any, psid: str, timestamp: int, channel: str) -> Handover:
    details = _dict(details)
    return Handover(
        psid=psid,
        action=kind,
        timestamp=timestamp,
        new_owner_app_id=_identifier(details.get("new_owner_app_id")),
        previous_owner_app_id=_identifier(details.get("previous_owner_app_id")),
        requested_owner_app_id=_identifier(details.get("requested_owner_app_id")),
        metadata=_str(details.get("metadata")),
        channel=channel,
    )


def _attachments(message: dict) -> tuple[Attachment, ...]:
    raw_attachments = message.get("attachments")
    if not isinstance(raw_attachments, list):
        return ()
    return tuple(_attachment(raw) for raw in raw_attachments if isinstance(raw, dict))


def _attachment(raw: dict) -> Attachment:
    payload = _dict(raw.get("payload"))  # a `fallback` may carry `payload: null`
    sticker_id = payload.get("sticker_id")
    return Attachment(
        type=_str(raw.get("type")) or "unknown",
        url=_str(payload.get("url")),
        sticker_id=sticker_id if isinstance(sticker_id, int) and not isinstance(sticker_id, bool) else None,
    )


def _postback(postback: Any, psid: str, timestamp: int, standby: bool, channel: str) -> Postback | None:
    if not isinstance(postback, dict):
        return None
    return Postback(
        psid=psid,
        payload=_str(postback.get("payload")) or "",
        title=_str(postback.get("title")) or "",
        timestamp=timestamp,
        mid=_identifier(postback.get("mid")),
        standby=standby,
        channel=channel,
    )


def encode(event: Event) -> str:
    """Serialise an event for a store's queue."""
    return json.dumps({"kind": type(event).__name__, **asdict(event)})


def decode(text: str) -> Event:
    """The event `encode` serialised."""
    data = json.loads(text)
    kind = data.pop("kind")
    if kind == "Postback":
        return Postback(**data)
    if kind == "Handover":
        return Handover(**data)
    data["attachments"] = tuple(Attachment(**attachment) for attachment in data.get("attachments", ()))
    return Echo(**data) if kind == "Echo" else Message(**data)
