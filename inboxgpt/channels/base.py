"""What every channel (an inbox: Messenger, Instagram, the terminal) does, and the one object that routes to them.

A channel reads its webhook bodies into the shared event types (events.py), names its people
(a key the store, queues, limits and logs use: the id Meta gives, behind the channel's tag), cuts
a reply into the messages it takes, and sends text and sender actions. Handing the conversation to
the page's people is an optional capability. Nothing outside this package asks which channel an
event came from: the conversation talks to `Channels`, which finds the channel by the person's key.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

from inboxgpt.events import Attachment, BadBody, ParsedBody
from inboxgpt.media import MediaError, MediaLink

# A person's name as Meta gives it, at most this long (the console shows it in a list).
MAX_NAME_CHARS = 100

# Where a template's body takes its parameters: {{1}}, {{2}}...
PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")


class Window(Enum):
    """How one of the page's people may write to a person now."""

    OPEN = "open"  # within the reply window: as any reply
    HUMAN_AGENT = "human_agent"  # past it, within the HUMAN_AGENT tag's days: tagged
    CLOSED = "closed"  # past both: not at all (on WhatsApp, only approved templates)


@dataclass(frozen=True)
class Template:
    """A message template the channel's owner had approved: what the page's people may send when nothing else may
    go (WhatsApp past its 24-hour window)."""

    name: str
    language: str  # its code: en_US
    body: str  # with {{1}}, {{2}}... where its parameters go
    parameters: int

    def filled(self, values: Sequence[str]) -> str:
        """The body as the person reads it, the values in place."""

        def value(found: re.Match[str]) -> str:
            number = int(found.group(1))
            return values[number - 1] if 0 < number <= len(values) else found.group(0)

        return PLACEHOLDER.sub(value, self.body)


@dataclass(frozen=True)
class Inbox:
    """Where /human hands a channel's conversations: the app of the page's inbox, and the setting naming it."""

    app_id: str
    setting: str


class Channel(ABC):
    """One inbox of the page."""

    # Its name in logs, metrics and usage ("messenger").
    name: ClassVar[str]
    # The `object` of its webhook bodies ("page"); None for a channel with no webhook (the terminal).
    webhook_object: ClassVar[str | None] = None
    # What its people's keys start with ("ig:"); Messenger's keys are the PSIDs as they are.
    tag: ClassVar[str] = ""
    # Its webhooks are read and answered; one turned off is acknowledged and ignored.
    enabled: bool = True
    # Where /human hands its conversations; None: it has no inbox to hand them to.
    inbox: Inbox | None = None
    # What the model is told about how the channel shows its answers (appended to the system message).
    formatting_note: ClassVar[str] = ""
    # Seconds a streamed answer leaves between its messages to one person; what is written meanwhile is joined.
    message_gap: ClassVar[float] = 0.0
    # How long one message may be, as the model is told when its answer must fit one (a comment's private reply).
    message_length: ClassVar[str] = "2,000 characters"
    # Private replies to comments Meta takes an hour from the account (0: no limit of their own is known).
    private_replies_per_hour: ClassVar[int] = 0
    # How long after a person's last message the page may write to them freely; and how long one of the page's
    # people may still, with Meta's HUMAN_AGENT tag (None: the channel has no such tag).
    reply_window: ClassVar[float] = 24 * 3600.0
    human_agent_window: ClassVar[float | None] = None

    def key(self, scoped_id: str) -> str:
        """A person's key: the id Meta gives them on this channel, behind its tag."""
        return self.tag + scoped_id

    def scoped_id(self, key: str) -> str:
        """The id Meta knows a person by, from their key."""
        return key[len(self.tag) :]

    def read(self, body: dict[str, Any]) -> ParsedBody:
        """The events of one of its webhook bodies; raise BadBody if it is not one."""
        raise BadBody(f"{self.name} has no webhook")

    @abstractmethod
    def split(self, text: str) -> list[str]:
        """The messages `text` becomes, within the channel's length limit."""

    @abstractmethod
    def send_text(self, key: str, text: str, offers: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """Send one message; return (message id, text) of what it took. May raise GraphError. `offers`: the
        person's own details to offer with it as quick replies (user_email, user_phone_number), where the channel
        has them."""

    def send_staff_text(self, key: str, text: str, tagged: bool) -> list[tuple[str, str]]:
        """Send one message written by one of the page's people (the console); `tagged`: with the HUMAN_AGENT tag,
        past the reply window. May raise GraphError."""
        return self.send_text(key, text)

    @abstractmethod
    def send_action(self, key: str, action: str, message_id: str | None = None) -> bool:
        """Show a sender action such as typing_on, about the person's message `message_id` when known; return False
        if it failed."""

    def templates(self) -> list[Template]:
        """The approved templates the page's people may send past the reply window; none on a channel without them.
        May raise GraphError."""
        return []

    def send_template(self, key: str, template: Template, values: Sequence[str]) -> list[tuple[str, str]]:
        """Send one of `templates()` with its parameters' values; return (message id, the text as sent). May raise
        GraphError."""
        raise NotImplementedError(f"{self.name} has no templates")

    def display_name(self, key: str) -> str:
        """The person's name, asked of Meta (once per person: the transcript keeps it); "" if the channel has no
        such call (its webhooks carry names), none is given, or Meta refuses."""
        return ""

    def media_link(self, attachment: Attachment) -> MediaLink:
        """Where a person's photo or voice note can be downloaded; MediaError if it cannot be found."""
        if attachment.url is None:
            raise MediaError(f"the {attachment.type} came without a link")
        return MediaLink(attachment.url)

    def pass_thread(self, key: str, target_app_id: str, metadata: str) -> bool:
        """Hand the conversation to another app (the page's inbox); return False if refused."""
        return True

    def take_thread(self, key: str, metadata: str) -> bool:
        """Take the conversation back from the app that controls it; return False if refused."""
        return True

    def post_text(self, post_id: str) -> str:
        """The text of the post (or media) a comment is under; "" if it has none or cannot be read."""
        return ""

    def reply_privately(self, comment_id: str, text: str) -> tuple[str, str] | None:
        """Send a comment's one private reply; return the key of the conversation it opens and the message's id
        (None from a channel without comments, or an answer that names nobody). Raise GraphError if Meta refused
        (logged)."""
        return None

    def reply_publicly(self, comment_id: str, text: str) -> bool:
        """Reply under the comment, for everyone to see; False if refused (logged)."""
        return False

    def token_state(self) -> tuple[str, bool | None] | None:
        """The setting of the token it sends with, and whether that worked on its last use (None before its first);
        None for a channel that sends with no token."""
        return None

    def close(self) -> None:  # noqa: B027 - most channels hold nothing of their own (the Graph client is shared)
        """Let go of connections."""


class Channels:
    """The page's channels, found by a person's key or a webhook's `object`: what the conversation sends through."""

    def __init__(self, channels: Iterable[Channel]):
        self.all: Sequence[Channel] = tuple(channels)
        # Longest tag first, so that a channel without one (Messenger) takes only the keys no other claims.
        self._by_tag = sorted(self.all, key=lambda channel: -len(channel.tag))
        self._by_object = {channel.webhook_object: channel for channel in self.all if channel.webhook_object}

    @property
    def names(self) -> list[str]:
        """The channels' names, in the order given."""
        return [channel.name for channel in self.all]

    def keys_of(self, scoped_id: str) -> list[str]:
        """Every key a person Meta names by this id would have on these channels (the id behind each one's tag):
        where Meta does not say which channel an id is from, such as its data deletion requests."""
        return [channel.key(scoped_id) for channel in self.all]

    def of(self, key: str) -> Channel:
        """The channel a person's key belongs to; LookupError if none of these channels has such people."""
        for channel in self._by_tag:
            if key.startswith(channel.tag):
                return channel
        raise LookupError(f"no channel of {', '.join(self.names)} has a person keyed so")

    def for_webhook(self, body: Any) -> Channel:
        """The channel a webhook body is from; raise BadBody if none of the page's."""
        if not isinstance(body, dict) or not isinstance(body.get("entry"), list):
            raise BadBody("expected an object with an 'entry' list")
        channel = self._by_object.get(str(body.get("object")))
        if channel is None:
            raise BadBody(f"not a webhook of {', '.join(self._by_object) or 'any channel'}")
        return channel

    def split(self, key: str, text: str) -> list[str]:
        """The messages `text` becomes for this person, within their channel's length limit."""
        return self.of(key).split(text)

    def send_text(self, key: str, text: str) -> list[tuple[str, str]]:
        """Send `text` as one or more messages, in order; return (message id, text) for each. May raise GraphError."""
        channel = self.of(key)
        sent: list[tuple[str, str]] = []
        for piece in channel.split(text):
            if piece.strip():
                sent += channel.send_text(key, piece)
        return sent

    def send_message(self, key: str, piece: str, offers: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """Send one message already within the channel's length limit (a piece of `split`), with `offers` where the
        channel has them. May raise GraphError."""
        return self.of(key).send_text(key, piece, offers)

    def send_action(self, key: str, action: str, message_id: str | None = None) -> bool:
        """Show a sender action such as typing_on (about the person's message `message_id`); False if it failed."""
        return self.of(key).send_action(key, action, message_id)

    def staff_window(self, key: str, since_last_message: float) -> Window:
        """Whether one of the page's people may write to this person, `since_last_message` seconds after their last
        message: freely, only with the HUMAN_AGENT tag, or not at all."""
        channel = self.of(key)
        if since_last_message <= channel.reply_window:
            return Window.OPEN
        if channel.human_agent_window is not None and since_last_message <= channel.human_agent_window:
            return Window.HUMAN_AGENT
        return Window.CLOSED

    def send_staff(self, key: str, text: str, window: Window) -> list[tuple[str, str]]:
        """Send what one of the page's people wrote, as one or more messages, as the window allows (never CLOSED).
        May raise GraphError."""
        channel = self.of(key)
        sent: list[tuple[str, str]] = []
        for piece in channel.split(text):
            if piece.strip():
                sent += channel.send_staff_text(key, piece, tagged=window is Window.HUMAN_AGENT)
        return sent

    def formatting_note(self, key: str) -> str:
        """What the model is told about how this person's channel shows its answers."""
        return self.of(key).formatting_note

    def message_length(self, key: str) -> str:
        """How long one message to this person may be, in words the model understands."""
        return self.of(key).message_length

    def message_gap(self, key: str) -> float:
        """Seconds a streamed answer leaves between its messages to this person."""
        return self.of(key).message_gap

    def templates(self, key: str) -> list[Template]:
        """The approved templates the page's people may send this person past the reply window. May raise
        GraphError."""
        return self.of(key).templates()

    def send_template(self, key: str, template: Template, values: Sequence[str]) -> list[tuple[str, str]]:
        """Send this person one of their channel's templates; (message id, text as sent). May raise GraphError."""
        return self.of(key).send_template(key, template, values)

    def display_name(self, key: str) -> str:
        """The person's name as their channel asks it of Meta; "" if none (or no channel has such people)."""
        try:
            channel = self.of(key)
        except LookupError:
            return ""
        return channel.display_name(key)[:MAX_NAME_CHARS]

    def media_link(self, key: str, attachment: Attachment) -> MediaLink:
        """Where this person's photo or voice note can be downloaded; MediaError if it cannot be found."""
        return self.of(key).media_link(attachment)

    def post_text(self, key: str, post_id: str) -> str:
        """The text of the post a comment by this person is under ("" if none)."""
        return self.of(key).post_text(post_id)

    def reply_privately(self, key: str, comment_id: str, text: str) -> tuple[str, str] | None:
        """Send the private reply to a comment by this person; the conversation's key and the message's id (None if
        Meta named nobody). Raise GraphError if refused."""
        return self.of(key).reply_privately(comment_id, text)

    def private_reply_gap(self, key: str) -> float:
        """Seconds between two private replies to comments on this person's channel (0: no pace)."""
        per_hour = self.of(key).private_replies_per_hour
        return 3600 / per_hour if per_hour else 0.0

    def reply_publicly(self, key: str, comment_id: str, text: str) -> bool:
        """Reply under a comment by this person, for everyone to see; False if refused."""
        return self.of(key).reply_publicly(comment_id, text)

    def inbox(self, key: str) -> Inbox | None:
        """Where /human hands this person's conversation; None if their channel has no inbox."""
        return self.of(key).inbox

    def pass_thread(self, key: str, target_app_id: str, metadata: str) -> bool:
        """Hand the conversation to another app (the page's inbox); return False if refused."""
        return self.of(key).pass_thread(key, target_app_id, metadata)

    def take_thread(self, key: str, metadata: str) -> bool:
        """Take the conversation back from the app that controls it; return False if refused."""
        return self.of(key).take_thread(key, metadata)

    def token_states(self) -> dict[str, bool | None]:
        """Each token the channels that are on send with, by its setting: whether it worked on its last use."""
        states = (channel.token_state() for channel in self.all if channel.enabled)
        return dict(state for state in states if state is not None)

    def close(self) -> None:
        """Let go of every channel's connections."""
        for channel in self.all:
            channel.close()
