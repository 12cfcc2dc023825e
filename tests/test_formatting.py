"""The model's Markdown as each channel shows text: WhatsApp's markers, plain text on Messenger and Instagram."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from inboxgpt.channels import formatting
from tests.fakes import completion
from tests.helpers import PSID, load, page_body, text_event

ANSWER = (
    "# Opening hours\n\n"
    "We are **open** on *Sundays* and ~~Mondays~~. See [our page](https://shop.example/hours) or __give us a call__."
)
CODE = "```python\nx = a**2 * b\n# not a heading\n```\n\nUse `**kwargs` with care: snake_case_names and 2*3*4 stay."


def test_whatsapp_gets_its_own_markers():
    assert formatting.whatsapp(ANSWER) == (
        "*Opening hours*\n\n"
        "We are *open* on *Sundays* and ~Mondays~. See our page (https://shop.example/hours) or *give us a call*."
    )


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        # The model is told to write WhatsApp's markers: its *bold* stays bold, never turned italic.
        ("*Opening hours*: 9-17", "*Opening hours*: 9-17"),
        ("_Closed_ on *Sundays* and ~holidays~.", "_Closed_ on *Sundays* and ~holidays~."),
        ("## 1. **Step one**", "*1. Step one*"),
        ("# Hours: *9-17*", "*Hours: 9-17*"),
        # Names, files and addresses are no emphasis.
        ("Edit __init__.py, then call __main__ and my_snake_case_name.", None),
        ("Price: 2*3*4 or x**2 + y**2", None),
        ("See https://shop.example/a_b_c/**d** or www.shop.example/__x__", None),
        ("**https://shop.example/x_y**.", "*https://shop.example/x_y*."),
        ("[our __new__ page](https://shop.example/a_b__c__)", "our __new__ page (https://shop.example/a_b__c__)"),
        ("__very important__", "*very important*"),
    ],
)
def test_whatsapp_markers_names_and_addresses_are_kept(written, shown):
    assert formatting.whatsapp(written) == (written if shown is None else shown)


@pytest.mark.parametrize(
    "written",
    ["Edit __init__.py and my_snake_case_name", "https://shop.example/a_b_c/*x*", "__main__ or 2*3*4"],
)
def test_plain_text_keeps_names_and_addresses(written):
    assert formatting.plain(written) == written


@given(st.text(alphabet=st.sampled_from("*_~#`[]() \nab1.:/htps")) | st.text())
@example("We are **open** on *Sundays*.")
def test_converting_for_whatsapp_twice_changes_nothing(text):
    once = formatting.whatsapp(text)
    assert formatting.whatsapp(once) == once


def test_messenger_and_instagram_get_plain_text():
    assert formatting.plain(ANSWER) == (
        "Opening hours\n\n"
        "We are open on Sundays and Mondays. See our page (https://shop.example/hours) or give us a call."
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
    openai_server.default = lambda request: completion("We are **open** on *Sundays*, see __init__.py.")
    post(load("whatsapp/text.json"))
    assert graph.texts("16505551234") == ["We are *open* on *Sundays*, see __init__.py."]


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
