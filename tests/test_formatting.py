"""The model's Markdown as each channel shows text: WhatsApp's markers, plain text on Messenger and Instagram."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inboxgpt.channels import formatting
from tests.fakes import completion
from tests.helpers import PSID, load, page_body, text_event

ANSWER = (
    "# Opening hours\n\n"
    "We are **open** on *Sundays* and ~~Mondays~~. See [our page](https://shop.example/hours) or __call__ us."
)
CODE = "```python\nx = a**2 * b\n# not a heading\n```\n\nUse `**kwargs` with care: snake_case_names and 2*3*4 stay."


def test_whatsapp_gets_its_own_markers():
    assert formatting.whatsapp(ANSWER) == (
        "*Opening hours*\n\n"
        "We are *open* on _Sundays_ and ~Mondays~. See our page (https://shop.example/hours) or *call* us."
    )


def test_messenger_and_instagram_get_plain_text():
    assert formatting.plain(ANSWER) == (
        "Opening hours\n\nWe are open on Sundays and Mondays. See our page (https://shop.example/hours) or call us."
    )


@pytest.mark.parametrize("convert", [formatting.whatsapp, formatting.plain])
def test_code_is_never_touched(convert):
    assert convert(CODE) == CODE


def test_a_bare_link_is_shown_once():
    assert formatting.plain("[https://shop.example](https://shop.example)") == "https://shop.example"


@given(st.text())
def test_conversion_never_lengthens_a_message(text):
    # Messages are cut to the channel's limit before they are converted: converted, they must still fit.
    assert len(formatting.whatsapp(text)) <= len(text)
    assert len(formatting.plain(text)) <= len(text)


def test_a_messenger_reply_reaches_meta_as_plain_text(post, graph, openai_server):
    openai_server.default = lambda request: completion("We are **open** on Sundays.")
    post(page_body(text_event("hours?")))
    assert graph.texts(PSID) == ["We are open on Sundays."]


def test_a_whatsapp_reply_reaches_meta_in_whatsapp_markers(post, graph, openai_server):
    openai_server.default = lambda request: completion("We are **open** on *Sundays*.")
    post(load("whatsapp/text.json"))
    assert graph.texts("16505551234") == ["We are *open* on _Sundays_."]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("text.json", "This conversation is on Messenger, which shows no formatting"),
        ("instagram/text.json", "This conversation is on Instagram, which shows no formatting"),
        ("whatsapp/text.json", "This conversation is on WhatsApp, which shows *bold*, _italic_"),
    ],
)
def test_the_model_is_told_how_the_persons_channel_shows_text(post, openai_server, body, says):
    post(load(body))
    system = openai_server.requests[0]["messages"][0]["content"]
    (note,) = [part for part in system.split("\n\n") if part.startswith("This conversation is on")]
    assert note.startswith(says)
    assert system.endswith(note)  # after the owner's prompt, which it refines
