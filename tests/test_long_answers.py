"""Long answers arrive whole: after its first paragraphs, a streamed answer fills messages up to the channel's limit,
so an ordinary long answer stays within MAX_MESSAGES_PER_REPLY and only a runaway one is cut."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from inboxgpt import replies
from inboxgpt.channels.instagram import INSTAGRAM_MAX_BYTES
from inboxgpt.channels.text import MAX_TEXT_LENGTH, split_text
from inboxgpt.conversation.outbox import Outbox
from inboxgpt.model.streaming import OWN_MESSAGES, ParagraphSender
from tests.fakes import completion
from tests.helpers import PSID, load, page_body, text_event

IGSID = "1122334455667788"
CAP = 8  # MAX_MESSAGES_PER_REPLY's default


def prose(number: int, chars: int = 371) -> str:
    """A paragraph of about `chars` characters, its words numbered so that any one lost or repeated shows."""
    words = [f"Part {number}: the café"]
    while sum(len(word) + 1 for word in words) < chars:
        words.append(f"word{number}x{len(words)}")
    return " ".join(words) + "."


# A line that announces what follows, then a code block with blank lines inside: one paragraph for the sender.
CODE = (
    "Here is a script that adds up a day's orders:\n\n```python\ndef total(orders):\n\n"
    + "".join(f"    # step {n}: read the orders of the day, one by one\n" for n in range(4))
    + "    return sum(order.price for order in orders)\n\n\nprint(total(todays_orders()))\n```"
)
# A list with blank lines between its items: one paragraph too.
LIST = "\n\n".join(
    f"- Step {n}: take the order, check the stock, confirm the day and tell the customer when" for n in range(4)
)
PARTS = [*map(prose, range(3)), CODE, *map(prose, range(3, 7)), LIST, *map(prose, range(7, 12))]
# 14 paragraphs of about 370 characters, 5,200 in all: an ordinary long answer.
LONG_ANSWER = "\n\n".join(PARTS)


def test_the_long_answer_is_what_the_issue_says():
    assert len(PARTS) == 14
    assert all(340 <= len(part) <= 400 for part in PARTS)
    assert 5_100 <= len(LONG_ANSWER) <= 5_300


def messenger_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def instagram_units(text: str) -> int:
    return len(text.encode())


def ig_text(text: str) -> dict:
    body = load("instagram/text.json")
    body["entry"][0]["messaging"][0]["message"].update(text=text, mid=f"m_{len(text)}")
    return body


# Each channel: the webhook of a person's message, the key its texts reach, its limit on a message in its units.
CHANNELS: dict[str, tuple[Callable[[str], dict], str, int, Callable[[str], int]]] = {
    "messenger": (lambda text: page_body(text_event(text)), PSID, MAX_TEXT_LENGTH, messenger_units),
    "instagram": (ig_text, IGSID, INSTAGRAM_MAX_BYTES, instagram_units),
}


@pytest.fixture
def post_long(config, app_with):
    # A history that keeps a whole 5,200-character answer, so that what it keeps can be compared with what arrived.
    config.update(HISTORY_MAX_TOKENS="40000")
    return app_with(config)


@pytest.mark.parametrize("channel", list(CHANNELS))
def test_an_ordinary_long_answer_arrives_whole_within_the_cap(post_long, graph, openai_server, channel):
    body, key, limit, units = CHANNELS[channel]
    openai_server.script.append(completion(LONG_ANSWER))
    post_long(body("tell me everything"))
    texts = graph.texts(key)
    assert replies.CUT_OFF not in texts
    assert " ".join(texts).split() == LONG_ANSWER.split()
    assert len(texts) <= CAP
    assert all(units(text) <= limit for text in texts)
    # Never cut inside the code block or the list, nor the code from the line that announces it.
    assert any(CODE in text for text in texts)
    assert any(LIST in text for text in texts)
    # The first paragraphs went out on their own, as soon as each was written.
    assert texts[:OWN_MESSAGES] == PARTS[:OWN_MESSAGES]
    # The history keeps the answer as the person got it.
    post_long(body("go on"))
    assert openai_server.requests[-1]["messages"][2] == {"role": "assistant", "content": LONG_ANSWER}


@pytest.mark.parametrize("channel", list(CHANNELS))
def test_a_runaway_answer_is_still_cut_at_the_cap_and_says_so(post_long, graph, openai_server, channel):
    body, key, limit, units = CHANNELS[channel]
    runaway = "\n\n".join(prose(n) for n in range(130))  # 50,000 characters
    openai_server.script.append(completion(runaway))
    post_long(body("tell me everything"))
    texts = graph.texts(key)
    assert len(texts) == CAP + 1
    assert texts[-1] == replies.CUT_OFF
    delivered = texts[:-1]
    assert all(units(text) <= limit for text in delivered)
    words = " ".join(delivered).split()
    assert words == runaway.split()[: len(words)], "what was sent is the answer's beginning, in whole paragraphs"
    assert len(" ".join(delivered)) > (CAP - OWN_MESSAGES) * limit * 3 // 4, "the messages were filled"
    post_long(body("go on"))
    kept = openai_server.requests[-1]["messages"][2]
    assert kept == {"role": "assistant", "content": "\n\n".join(delivered)}


def messages_of(answer: str, fits: Callable[[str], bool], pace: float = 0.0, clock=lambda: 0.0) -> list[str]:
    """The messages a sender makes of `answer` streamed in four-character pieces (the clock read by the caller)."""
    sent: list[str] = []

    def send(piece: str) -> list[tuple[str, str]]:
        sent.append(piece)
        return [("mid", piece)]

    sender = ParagraphSender(send, pace=pace, clock=clock, fits=fits)
    for start in range(0, len(answer), 4):
        sender.feed(answer[start : start + 4])
    sender.finish()
    return sent


def test_after_the_first_paragraphs_each_message_takes_as_many_whole_paragraphs_as_fit():
    paragraphs = [prose(n, chars=90) for n in range(9)]  # two fit in 200 characters, three do not
    sent = messages_of("\n\n".join(paragraphs), lambda text: len(text) <= 200)
    own = OWN_MESSAGES
    joined = ["\n\n".join(paragraphs[n : n + 2]) for n in range(own, len(paragraphs), 2)]
    assert sent == paragraphs[:own] + joined


def test_a_paragraph_that_fits_no_message_goes_on_its_own_for_the_channel_to_split():
    paragraphs = [prose(n, chars=90) for n in range(OWN_MESSAGES)] + [prose(8, chars=500), prose(9, chars=90)]
    sent = messages_of("\n\n".join(paragraphs), lambda text: len(text) <= 200)
    assert sent == paragraphs


def test_with_a_pace_the_held_paragraphs_go_one_message_at_a_time_each_within_the_limit():
    now = [0.0]
    paragraphs = [prose(n, chars=90) for n in range(5)]
    sent: list[str] = []

    def send(piece: str) -> list[tuple[str, str]]:
        sent.append(piece)
        return [("mid", piece)]

    sender = ParagraphSender(send, pace=6.0, clock=lambda: now[0], fits=lambda text: len(text) <= 200)
    for number, paragraph in enumerate(paragraphs):
        now[0] = float(number)  # all written within the pace of the first message
        sender.feed(f"{paragraph}\n\n")
    sender.feed("Last")
    assert sent == paragraphs[:1]
    now[0] = 7.0
    sender.feed(" words")  # the pace has passed: one message, as full as the limit allows, not all that is held
    assert sent == [paragraphs[0], "\n\n".join(paragraphs[1:3])]
    sender.finish()
    assert sent == [paragraphs[0], "\n\n".join(paragraphs[1:3]), "\n\n".join(paragraphs[3:5]), "Last words"]


def test_the_outbox_says_what_fits_in_one_message_and_when_the_cap_is_spent():
    sent: list[str] = []

    def send(piece: str, offers: tuple[str, ...]) -> list[tuple[str, str]]:
        sent.append(piece)
        return [("mid", piece)]

    outbox = Outbox(send, lambda text: split_text(text, 100), 2)
    assert outbox.fits("x" * 100)
    assert not outbox.fits("x " * 51)
    outbox("first message")
    assert not outbox.spent
    outbox("second message")
    assert outbox.spent
    assert not outbox.full  # spent, but nothing was cut yet
    outbox("third")
    assert outbox.full
    assert sent == ["first message", "second message"]
