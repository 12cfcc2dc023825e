"""The small typed events the bot answers or records, whichever channel they came from (each reads its own webhooks
into them: channels/).

Besides what people send: echoes of what the page sent them (by the bot, or by a person from
the page), what arrives under `standby` while another app owns the thread, and handover events.

An event's `psid` is the person's key everywhere (store, queues, limits, logs): the id Meta gives
them behind their channel's tag ("ig:"), so channels never meet; Messenger's keys are the PSIDs as
they are, so its conversations keep the keys they had. Only the channel sees the id without it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field

# The channel of events queued before events carried one (they were all Messenger's).
FIRST_CHANNEL = "messenger"
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


class BadBody(ValueError):
    """The body is JSON but not a webhook of any of the page's channels."""


def tag_of(key: str) -> str:
    """The channel's tag a person's key starts with ("ig:"), or "" for Messenger's keys, which are PSIDs (digits)."""
    head, colon, _ = key.partition(":")
    return head + colon if colon else ""


@dataclass(frozen=True)
class Attachment:
    """One attachment of a message."""

    type: str
    url: str | None = None
    sticker_id: int | None = None
    # A file the channel keeps behind an id of its own (WhatsApp's media), found through the channel.
    media_id: str | None = None
    # Its checksum, as the webhook gave it.
    sha256: str | None = None

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
    channel: str = FIRST_CHANNEL
    # On Instagram, a reply to the account's story.
    story_reply: bool = False
    # What brought the person here (the ad or post they came from), in a few words, when the channel says.
    came_from: str | None = None
    # Another key the person is known by on their channel (WhatsApp's business-scoped id beside their number): the
    # store links it to `psid`, so that an event under it alone reaches the same person.
    alias: str | None = None
    # When the channel stops taking answers to it (milliseconds since 1970; WhatsApp's 24-hour window): 0, never.
    answer_by: int = 0
    # The person's name as the webhook gave it (WhatsApp's profile name), for the console; None: not given.
    name: str | None = None

    # When the webhook took it (time.time()), for the reply latency; 0 when unknown.
    received: float = 0.0

    @property
    def event_id(self) -> str:
        """The id Meta repeats when it redelivers this event."""
        return tag_of(self.psid) + self.mid


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
    channel: str = FIRST_CHANNEL
    # As a message's: another key the person is known by.
    alias: str | None = None

    # When the webhook took it (time.time()), for the reply latency; 0 when unknown.
    received: float = 0.0

    @property
    def event_id(self) -> str:
        """The id Meta repeats when it redelivers this event."""
        return tag_of(self.psid) + self.mid


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
    channel: str = FIRST_CHANNEL

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
    channel: str = FIRST_CHANNEL
    # As a message's: another key the person is known by, and when the channel stops taking answers.
    alias: str | None = None
    answer_by: int = 0
    name: str | None = None

    # When the webhook took it (time.time()), for the reply latency; 0 when unknown.
    received: float = 0.0

    @property
    def event_id(self) -> str:
        """The id Meta repeats when it redelivers this event."""
        # Postbacks before Graph v11 carry no mid; the tap's time and payload identify it (the
        # payload by its digest, so the id stays short whatever the payload's length).
        digest = hashlib.sha256(self.payload.encode()).hexdigest()[:16]
        return tag_of(self.psid) + self.mid if self.mid else f"postback:{self.psid}:{self.timestamp}:{digest}"


@dataclass(frozen=True)
class Comment:
    """A person's new comment on the Page's post or the Instagram account's media (answered, if at all, with one
    private reply). Its person is keyed by the id the comment gives, which is not the id their conversation will
    have on Messenger: the private reply's answer names that one."""

    psid: str  # the commenter's key
    comment_id: str
    post_id: str  # the post's, or the Instagram media's, id
    text: str
    timestamp: int  # milliseconds since 1970; 0 when unknown
    channel: str = FIRST_CHANNEL
    received: float = 0.0
    # As every event has: a comment is never delivered under another app's thread.
    standby: bool = False

    @property
    def event_id(self) -> str:
        """The comment's id: Meta sends some (ads') twice, and a comment is answered once."""
        return "comment:" + self.comment_id


@dataclass(frozen=True)
class Undelivered:
    """Meta's word, after it took a message the bot sent, that the message never reached the person (WhatsApp's
    `failed` status: 131047 when the 24-hour window had closed)."""

    psid: str  # the person it was sent to
    mid: str  # the message's id, as Meta gave it when it took the message
    timestamp: int
    code: int | None = None
    reason: str = ""  # Meta's title for the error ("Re-engagement message")
    channel: str = FIRST_CHANNEL
    alias: str | None = None
    received: float = 0.0
    standby: bool = False

    @property
    def event_id(self) -> str:
        """The failure is reported once per message; Meta repeats it when it redelivers the webhook."""
        return "undelivered:" + tag_of(self.psid) + self.mid


Event = Message | Postback | Echo | Handover | Comment | Undelivered
# Fields events gained later, left out of a queued event when unset: a worker of the version before, still taking
# events during a deploy, reads every event that does not use them.
LATER_FIELDS = {"came_from": None, "alias": None, "answer_by": 0, "name": None}


@dataclass(frozen=True)
class ParsedBody:
    """The events to answer, and a count of what was skipped, by kind."""

    events: tuple[Event, ...]
    skipped: Counter = field(default_factory=Counter)
    channel: str = FIRST_CHANNEL


def encode(event: Event) -> str:
    """Serialise an event for a store's queue."""
    data = {key: value for key, value in asdict(event).items() if LATER_FIELDS.get(key, ...) != value}
    if "attachments" in data:
        # An attachment's fields left unset are left out: a worker of the version before, still taking events
        # during a deploy, then reads every event that has nothing its version lacks.
        data["attachments"] = [{k: v for k, v in one.items() if v is not None} for one in data["attachments"]]
    return json.dumps({"kind": type(event).__name__, **data})


def decode(text: str) -> Event:
    """The event `encode` serialised."""
    data = json.loads(text)
    kind = data.pop("kind")
    if kind == "Postback":
        return Postback(**data)
    if kind == "Handover":
        return Handover(**data)
    if kind == "Comment":
        return Comment(**data)
    if kind == "Undelivered":
        return Undelivered(**data)
    data["attachments"] = tuple(Attachment(**attachment) for attachment in data.get("attachments", ()))
    return Echo(**data) if kind == "Echo" else Message(**data)
