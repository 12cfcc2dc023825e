"""Messenger: the Facebook Page's conversations, through the Graph API's Send API and thread control."""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any, Self

from inboxgpt.channels import formatting
from inboxgpt.channels.base import Channel, Inbox
from inboxgpt.channels.comments import read_comments
from inboxgpt.channels.graph import GraphClient, GraphError
from inboxgpt.channels.graph_webhook import read_messaging
from inboxgpt.channels.text import MAX_TEXT_LENGTH, split_text
from inboxgpt.config import Settings
from inboxgpt.events import ParsedBody

logger = logging.getLogger(__name__)

# Put in the metadata of every message the bot sends: its echo carries it back, telling it apart
# from a message written by a person from the page.
BOT_MARKER = "inboxgpt:bot"
# Every marker the bot's messages carry back, earlier names included: a message sent before a deploy
# echoes after it with the marker it was sent with.
BOT_MARKERS = frozenset({BOT_MARKER, "messenger-gpt:bot"})


class GraphChannel(Channel):
    """A channel of the Messenger Platform's shape: its webhooks read alike, and it sends through the page's Graph
    client (sender actions and thread control alike)."""

    def __init__(self, graph: GraphClient, inbox: Inbox | None, enabled: bool = True):
        self._graph = graph
        self.inbox = inbox
        self.enabled = enabled

    @classmethod
    @abstractmethod
    def from_settings(cls, graph: GraphClient, settings: Settings) -> Self:
        """The channel as the settings configure it (its inbox, whether it is on)."""

    def send_text(self, key: str, text: str, offers: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """Send one message, as the channel shows text, retrying passing failures; return (message id, text). May
        raise GraphError. Only Messenger offers the person's own email or number (`offers`)."""
        payload = self._text_payload(self.scoped_id(key), self.shown(text), offers)
        answer = self._graph.post(payload, psid=key, what="message", max_retries=self._graph.max_retries)
        return [(str(answer.get("message_id", "")), text)]

    def token_state(self) -> tuple[str, bool | None]:
        return self._graph.token_setting, self._graph.token_works

    def shown(self, text: str) -> str:
        """The model's Markdown as the channel shows text: plain (Messenger and Instagram render none)."""
        return formatting.plain(text)

    def _text_payload(self, to: str, text: str, offers: tuple[str, ...]) -> dict:
        """The Send API's body for one message."""
        return {"recipient": {"id": to}, "message": self._message_body(text, offers)}

    def _message_body(self, text: str, offers: tuple[str, ...]) -> dict:
        """The `message` of a send, a comment's private reply included; Messenger's marker and its quick replies
        that fill in the person's own email or phone number (`offers`) are its own: other channels send the text
        alone."""
        return {"text": text}

    def send_action(self, key: str, action: str, message_id: str | None = None) -> bool:
        """Send a sender action (mark_seen, typing_on, typing_off) once; return False if it failed. Messenger's apply
        to the conversation, not to one message."""
        # Not retried: an indicator that comes late is worse than none, and the reply waits for it.
        payload = {"recipient": {"id": self.scoped_id(key)}, "sender_action": action}
        return self._graph.accepted(payload, psid=key, max_retries=0)


class PageChannel(GraphChannel):
    """A channel of the Page itself (Messenger, and the linked Instagram account): its webhooks carry messages in
    `messaging` and comments in `changes`; its conversations can be handed to the page's inbox; its comments get
    private replies."""

    # A post's text, and where a reply under a comment goes: Facebook's; Instagram's differ.
    post_text_field = "message"
    public_reply_edge = "comments"
    # Messenger's and Instagram's HUMAN_AGENT tag: a person from the page may answer for 7 days.
    human_agent_window = 7 * 24 * 3600.0
    # What a person's name is read from (GET /{id}?fields=...): Messenger's profile; Instagram's differ.
    profile_fields = "first_name,last_name"

    def display_name(self, key: str) -> str:
        """The person's name from their profile, in one call (no retries: a name can wait for none); "" if Meta
        refuses (Messenger's profile needs Advanced Access) or gives none."""
        try:
            profile = self._graph.get_object(self.scoped_id(key), self.profile_fields)
        except GraphError as error:
            logger.info("psid=%s: no name from Meta (%s)", key, error.meaning)
            return ""
        return self.profile_name(profile)

    def profile_name(self, profile: dict[str, Any]) -> str:
        """The name a profile gives: first and last."""
        parts = (profile.get(field) for field in ("first_name", "last_name"))
        return " ".join(part.strip() for part in parts if isinstance(part, str) and part.strip())

    def send_staff_text(self, key: str, text: str, tagged: bool) -> list[tuple[str, str]]:
        """Send one message of the page's people; past the reply window with Meta's HUMAN_AGENT tag."""
        payload = self._text_payload(self.scoped_id(key), self.shown(text), ())
        if tagged:
            payload.update(messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
        answer = self._graph.post(payload, psid=key, what="staff message", max_retries=self._graph.max_retries)
        return [(str(answer.get("message_id", "")), text)]

    def read(self, body: dict[str, Any]) -> ParsedBody:
        """The events of one of its webhook bodies: its messages, and the comments among its changes."""
        parsed = read_messaging(body, self)
        comments, skipped = read_comments(body, self)
        if not comments and not skipped:
            return parsed
        return ParsedBody(parsed.events + tuple(comments), parsed.skipped + skipped, self.name)

    def post_text(self, post_id: str) -> str:
        """The post's text (a Page post's `message`, an Instagram media's `caption`); "" if Meta refuses."""
        try:
            found = self._graph.get_object(post_id, self.post_text_field)
        except GraphError:
            return ""  # logged by the client; the comment is answered from itself and the knowledge
        text = found.get(self.post_text_field)
        return text if isinstance(text, str) else ""

    def reply_privately(self, comment_id: str, text: str) -> tuple[str, str] | None:
        """The comment's one private reply through the Send API; its answer names the person's id there. A refusal
        is raised (GraphError): one for a rate limit may be tried again later, by the caller."""
        # Marked as any send is: its echo may reach the conversation's queue before Meta answers with its id.
        payload = {"recipient": {"comment_id": comment_id}, "message": self._message_body(self.shown(text), ())}
        answer = self._graph.post(payload, psid=f"comment {comment_id}", what="private reply", max_retries=1)
        person = answer.get("recipient_id")
        return (self.key(str(person)), str(answer.get("message_id", ""))) if person else None

    def reply_publicly(self, comment_id: str, text: str) -> bool:
        """A reply under the comment (it needs pages_manage_engagement, or instagram_manage_comments)."""
        return self._graph.accepted(
            {"message": text},
            psid=f"comment {comment_id}",
            max_retries=1,
            endpoint=f"{comment_id}/{self.public_reply_edge}",
            on_object=True,
        )

    def pass_thread(self, key: str, target_app_id: str, metadata: str) -> bool:
        """Pass the conversation to another app (the page's inbox); return False if Meta refused."""
        payload = {"recipient": {"id": self.scoped_id(key)}, "target_app_id": target_app_id, "metadata": metadata}
        return self._graph.accepted(
            payload, psid=key, max_retries=self._graph.max_retries, endpoint="pass_thread_control", quiet=True
        )

    def take_thread(self, key: str, metadata: str) -> bool:
        """Take the conversation back from the app that controls it; return False if Meta refused."""
        payload = {"recipient": {"id": self.scoped_id(key)}, "metadata": metadata}
        return self._graph.accepted(
            payload, psid=key, max_retries=self._graph.max_retries, endpoint="take_thread_control", quiet=True
        )


class MessengerChannel(PageChannel):
    """The Page's Messenger conversations: keys are PSIDs as they are; replies are marked as the bot's."""

    name = "messenger"
    formatting_note = formatting.PLAIN_NOTE.format(channel="Messenger")
    webhook_object = "page"

    @classmethod
    def from_settings(cls, graph: GraphClient, settings: Settings) -> Self:
        # Without the Page's token (WhatsApp alone), its webhooks are acknowledged and ignored.
        return cls(graph, Inbox(settings.handover_app_id, "HANDOVER_APP_ID"), enabled=settings.page_configured)

    def split(self, text: str) -> list[str]:
        """Messages of at most 2,000 characters, counted as Meta does (UTF-16)."""
        return split_text(text, MAX_TEXT_LENGTH)

    def _text_payload(self, to: str, text: str, offers: tuple[str, ...]) -> dict:
        return {"recipient": {"id": to}, "messaging_type": "RESPONSE", "message": self._message_body(text, offers)}

    def _message_body(self, text: str, offers: tuple[str, ...]) -> dict:
        message: dict = {"text": text, "metadata": BOT_MARKER}
        if offers:
            message["quick_replies"] = [{"content_type": offer} for offer in offers]
        return message
