"""Webhook bodies of the Messenger Platform's shape (`entry[].messaging[]` and `entry[].standby[]`), which Messenger
and Instagram share, read into the shared events for a channel.

Ids are checked to be what Meta writes (printable ASCII of a sane length), text is kept with any
lone surrogate replaced, and anything malformed is counted as skipped, never raised.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from inboxgpt.events import (
    HANDOVER_KINDS,
    KNOWN_KINDS,
    Attachment,
    Echo,
    Event,
    Handover,
    Message,
    ParsedBody,
    Postback,
)

if TYPE_CHECKING:
    from inboxgpt.channels.base import Channel

# Ids longer than this are not Meta's (its PSIDs have about 16 digits, its mids about 100 characters).
MAX_ID_CHARS = 256
# Timestamps past this (year 5138, in milliseconds) are not real: they count as missing.
MAX_TIMESTAMP_MS = 10**14
# Valid JSON may carry lone UTF-16 surrogates ("\ud800"), which no store or HTTP client can encode.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
ID_TEXT = re.compile(r"[\x21-\x7e]+")


def read_messaging(body: dict[str, Any], channel: Channel) -> ParsedBody:
    """The events of a decoded webhook body of the Messenger Platform's shape, for `channel`."""
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
    return ParsedBody(tuple(events), skipped, channel.name)


def parse_item(item: Any, page_id: str, standby: bool, channel: Channel) -> tuple[Event | None, str]:
    """Parse one `messaging` (or `standby`) item; return the event (or None if skipped) and its kind."""
    if not isinstance(item, dict):
        return None, "malformed"
    kind = next((key for key in KNOWN_KINDS if key in item), "unknown")
    if kind not in ("message", "postback", *HANDOVER_KINDS):
        return None, kind
    sender = _id(item.get("sender"))
    if sender is None:
        return None, "malformed"
    psid = channel.key(sender)
    timestamp = _timestamp(item.get("timestamp"))
    event: Event | None
    if kind == "postback":
        event = _postback(item["postback"], psid, timestamp, standby, channel.name)
    elif kind in HANDOVER_KINDS:
        event = _handover(kind, item[kind], psid, timestamp, channel.name)
    else:
        message = item["message"]
        if isinstance(message, dict) and (message.get("is_echo") or sender == page_id):
            # The page wrote: the person is the recipient.
            to = _id(item.get("recipient"))
            event = _echo(message, channel.key(to), timestamp, standby, channel.name) if to else None
            kind = "echo"
        elif isinstance(message, dict) and (message.get("is_deleted") or message.get("is_unsupported")):
            # Instagram: a message the person took back, or one Meta cannot show.
            return None, "deleted" if message.get("is_deleted") else "unsupported"
        else:
            event = _message(message, psid, timestamp, standby, channel.name)
    return (event, kind) if event else (None, "malformed")


def _timestamp(value: Any) -> int:
    """Milliseconds since 1970, or 0 (unknown) for anything that is not a plausible time."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_TIMESTAMP_MS:
        return value
    return 0


def _id(party: Any) -> str | None:
    return identifier(party.get("id")) if isinstance(party, dict) else None


def identifier(value: Any) -> str | None:
    """An id as Meta writes them: printable ASCII of a sane length; anything else is malformed."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if isinstance(value, str) and len(value) <= MAX_ID_CHARS and ID_TEXT.fullmatch(value):
        return value
    return None


def text_field(value: Any) -> str | None:
    """A text field; lone surrogates (valid JSON, unencodable text) become U+FFFD."""
    return LONE_SURROGATE.sub("\ufffd", value) if isinstance(value, str) else None


def object_field(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _message(message: Any, psid: str, timestamp: int, standby: bool, channel: str) -> Message | None:
    if not isinstance(message, dict):
        return None
    mid = identifier(message.get("mid"))
    if not mid:
        return None
    quick_reply_payload = text_field(object_field(message.get("quick_reply")).get("payload"))
    reply_to = object_field(message.get("reply_to"))
    return Message(
        psid=psid,
        mid=mid,
        timestamp=timestamp,
        text=text_field(message.get("text")),
        quick_reply_payload=quick_reply_payload,
        reply_to_mid=identifier(reply_to.get("mid")),
        attachments=_attachments(message),
        standby=standby,
        channel=channel,
        story_reply=isinstance(reply_to.get("story"), dict),
    )


def _echo(message: dict, psid: str, timestamp: int, standby: bool, channel: str) -> Echo | None:
    mid = identifier(message.get("mid"))
    if not mid:
        return None
    return Echo(
        psid=psid,
        mid=mid,
        timestamp=timestamp,
        text=text_field(message.get("text")),
        app_id=identifier(message.get("app_id")),
        metadata=text_field(message.get("metadata")),
        attachments=_attachments(message),
        standby=standby,
        channel=channel,
    )


def _handover(kind: str, details: Any, psid: str, timestamp: int, channel: str) -> Handover:
    details = object_field(details)
    return Handover(
        psid=psid,
        action=kind,
        timestamp=timestamp,
        new_owner_app_id=identifier(details.get("new_owner_app_id")),
        previous_owner_app_id=identifier(details.get("previous_owner_app_id")),
        requested_owner_app_id=identifier(details.get("requested_owner_app_id")),
        metadata=text_field(details.get("metadata")),
        channel=channel,
    )


def _attachments(message: dict) -> tuple[Attachment, ...]:
    raw_attachments = message.get("attachments")
    if not isinstance(raw_attachments, list):
        return ()
    return tuple(_attachment(raw) for raw in raw_attachments if isinstance(raw, dict))


def _attachment(raw: dict) -> Attachment:
    payload = object_field(raw.get("payload"))  # a `fallback` may carry `payload: null`
    sticker_id = payload.get("sticker_id")
    return Attachment(
        type=text_field(raw.get("type")) or "unknown",
        url=text_field(payload.get("url")),
        sticker_id=sticker_id if isinstance(sticker_id, int) and not isinstance(sticker_id, bool) else None,
    )


def _postback(postback: Any, psid: str, timestamp: int, standby: bool, channel: str) -> Postback | None:
    if not isinstance(postback, dict):
        return None
    return Postback(
        psid=psid,
        payload=text_field(postback.get("payload")) or "",
        title=text_field(postback.get("title")) or "",
        timestamp=timestamp,
        mid=identifier(postback.get("mid")),
        standby=standby,
        channel=channel,
    )
