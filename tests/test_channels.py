"""The contract every channel keeps (channels/base.py), run against each: Messenger, Instagram, WhatsApp, the
terminal."""

from __future__ import annotations

import pytest

from inboxgpt.channels import page_channels
from inboxgpt.channels.base import Channel, Channels
from inboxgpt.channels.graph import GraphClient, GraphSettings
from inboxgpt.channels.terminal import TerminalChannel
from inboxgpt.config import settings_from_mapping
from inboxgpt.events import BadBody, Message
from tests.helpers import load

# A realistic webhook body of each channel that has webhooks, and the id Meta gives its person.
BODIES = {
    "messenger": ("text.json", "6543210987654321"),
    "instagram": ("instagram/text.json", "1122334455667788"),
    "whatsapp": ("whatsapp/text.json", "16505551234"),
}
LONG = "A sentence of a long answer, with an emoji 🙂 now and then. " * 200


@pytest.fixture(params=["messenger", "instagram", "whatsapp", "terminal"])
def channel(request, config, graph) -> Channel:
    if request.param == "terminal":
        return TerminalChannel()
    settings = settings_from_mapping(config)
    channels = page_channels(GraphClient(GraphSettings.from_settings(settings)), settings)
    return next(channel for channel in channels.all if channel.name == request.param)


def test_a_key_names_one_person_on_one_channel(channel):
    key = channel.key("123456")
    assert key.startswith(channel.tag)
    assert channel.scoped_id(key) == "123456"
    assert Channels([channel]).of(key) is channel


def test_a_reply_is_split_into_messages_that_lose_nothing(channel):
    pieces = channel.split(LONG)
    assert "".join(pieces) == LONG
    assert all(piece for piece in pieces)
    assert channel.split("Hi!") == ["Hi!"]


def test_sending_returns_the_message_id_and_text(channel, graph):
    key = channel.key("123456")
    (sent,) = channel.send_text(key, "Hello!")
    assert sent[1] == "Hello!"
    assert sent[0]
    if channel.webhook_object:
        assert graph.texts("123456") == ["Hello!"]  # to Meta's id, never the key
        assert graph.message_ids == [sent[0]]


def test_sender_actions_say_whether_they_went(channel, graph):
    assert channel.send_action(channel.key("123456"), "typing_on", "m_about") is True
    if channel.webhook_object:
        # Messenger's typing is the conversation's; WhatsApp's rides on the read receipt of the message.
        assert graph.sequence()[-1] in ("typing_on", "read+typing:m_about")


def test_a_webhook_body_becomes_events_keyed_by_the_channel(channel):
    if channel.webhook_object is None:
        with pytest.raises(BadBody):
            channel.read({"object": "page", "entry": []})
        return
    name, scoped_id = BODIES[channel.name]
    parsed = channel.read(load(name))
    (event,) = parsed.events
    assert isinstance(event, Message)
    assert event.psid == channel.key(scoped_id)
    assert event.channel == channel.name
    assert parsed.channel == channel.name


def test_a_channel_with_an_inbox_can_hand_the_conversation_over(channel, graph):
    key = channel.key("123456")
    assert channel.pass_thread(key, "263902037430900", "why") is True
    assert channel.take_thread(key, "why") is True
    if channel.inbox is not None:
        assert channel.inbox.app_id
        assert channel.inbox.setting.endswith("HANDOVER_APP_ID")
        assert [endpoint for endpoint, _ in graph.thread_calls()] == ["pass_thread_control", "take_thread_control"]


def test_the_router_finds_each_channel_by_key_and_by_webhook(config):
    settings = settings_from_mapping(config)
    channels = page_channels(GraphClient(GraphSettings.from_settings(settings)), settings)
    assert channels.names == ["messenger", "instagram", "whatsapp"]
    assert channels.of("ig:42").name == "instagram"
    assert channels.of("wa:42").name == "whatsapp"
    assert channels.of("42").name == "messenger"
    assert channels.for_webhook(load("instagram/text.json")).name == "instagram"
    assert channels.for_webhook(load("whatsapp/text.json")).name == "whatsapp"
    with pytest.raises(BadBody):
        channels.for_webhook({"object": "user", "entry": []})
    with pytest.raises(LookupError):
        Channels([TerminalChannel()]).of("42")
