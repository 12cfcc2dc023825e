"""The page's inboxes, each a channel behind one interface (base.py): Messenger and Instagram over one Graph API
client, WhatsApp over a client of its own, and the terminal. A channel is added as one module and one line in
`PAGE_CHANNELS`."""

from __future__ import annotations

from inboxgpt.channels.base import Channels
from inboxgpt.channels.graph import GraphClient
from inboxgpt.channels.instagram import InstagramChannel
from inboxgpt.channels.messenger import GraphChannel, MessengerChannel
from inboxgpt.channels.whatsapp import WhatsAppChannel
from inboxgpt.config import Settings

# Every channel the page may have, in the order they are shown (usage).
PAGE_CHANNELS: tuple[type[GraphChannel], ...] = (MessengerChannel, InstagramChannel, WhatsAppChannel)
NAMES = tuple(channel.name for channel in PAGE_CHANNELS)


def page_channels(graph: GraphClient, settings: Settings) -> Channels:
    """The page's channels, sending through its Graph client."""
    return Channels(channel.from_settings(graph, settings) for channel in PAGE_CHANNELS)
