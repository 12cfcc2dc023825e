"""The page's inboxes, each a channel behind one interface (base.py): Messenger and Instagram over one Graph API
client, and the terminal. A channel is added as one module and one line in `page_channels`."""

from __future__ import annotations

from inboxgpt.channels.base import Channel, Channels
from inboxgpt.channels.graph import GraphClient
from inboxgpt.channels.instagram import InstagramChannel
from inboxgpt.channels.messenger import MessengerChannel
from inboxgpt.config import Settings

# Every channel the page may have, for what counts by channel (usage).
NAMES = (MessengerChannel.name, InstagramChannel.name)


def page_channels(graph: GraphClient, settings: Settings) -> Channels:
    """The page's channels, sending through its Graph client."""
    channels: list[Channel] = [
        MessengerChannel.from_settings(graph, settings),
        InstagramChannel.from_settings(graph, settings),
    ]
    return Channels(channels)
