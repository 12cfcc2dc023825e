"""Instagram: the Direct messages of the Instagram account linked to the Page, through the same Graph API."""

from __future__ import annotations

from typing import Any, Self

from inboxgpt.channels import formatting
from inboxgpt.channels.base import Inbox
from inboxgpt.channels.graph import GraphClient
from inboxgpt.channels.messenger import PageChannel
from inboxgpt.channels.text import split_text, utf8_units
from inboxgpt.config import Settings

# Instagram's limit: Meta's pages say both "1000 characters" and "1000 bytes"; bytes is the safe reading.
INSTAGRAM_MAX_BYTES = 1000


class InstagramChannel(PageChannel):
    """The Instagram account's conversations: keys are Instagram-scoped ids behind "ig:"; replies go bare (the
    bot's own echoes are known by the message ids it noted)."""

    name = "instagram"
    formatting_note = formatting.PLAIN_NOTE.format(channel="Instagram")
    webhook_object = "instagram"
    tag = "ig:"
    post_text_field = "caption"
    public_reply_edge = "replies"
    message_length = "1,000 bytes (1,000 letters of English, about 330 of Chinese or Japanese)"
    # Meta's rate limits page: "750 calls per hour per Facebook Page for private replies to comments on Instagram
    # posts and reels" (Facebook's own comments have no such figure: their refusals are backed off from instead).
    private_replies_per_hour = 750
    profile_fields = "name,username"

    @classmethod
    def from_settings(cls, graph: GraphClient, settings: Settings) -> Self:
        inbox = Inbox(settings.instagram_handover_app_id, "INSTAGRAM_HANDOVER_APP_ID")
        return cls(graph, inbox, enabled=settings.instagram and settings.page_configured)

    def profile_name(self, profile: dict[str, Any]) -> str:
        """The name an Instagram profile gives, or else its @username."""
        name, username = profile.get("name"), profile.get("username")
        if isinstance(name, str) and name.strip():
            return name.strip()
        return f"@{username.strip()}" if isinstance(username, str) and username.strip() else ""

    def split(self, text: str) -> list[str]:
        """Messages of at most 1,000 UTF-8 bytes."""
        return split_text(text, INSTAGRAM_MAX_BYTES, utf8_units)
