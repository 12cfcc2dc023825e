"""Long answers: the messages they become on each channel, and the CPU the paragraph sender and the message
splitter spend on them.

    python -m bench.long_answers
    python -m bench.long_answers --quick

In this process (no network: `send` is a list):
  - ordinary answers of about 5,000, 16,000 and 50,000 characters (paragraphs of 200 to 550
    characters, now and then a list or a code block), streamed as the service streams them
    (`ParagraphSender` into an `Outbox` of MAX_MESSAGES_PER_REPLY=8 with the channel's split, WhatsApp
    paced, the model writing 50 tokens a second): the messages each becomes on Messenger (2,000
    characters), Instagram (1,000 bytes) and WhatsApp (4,096 characters), and whether it arrived whole.
    Target: up to about 8 messages' worth arrives whole; a runaway answer is cut with the notice.
  - a code answer of N tokens (a token being four characters), streamed in four-character
    pieces through `ParagraphSender`: every piece is read as it arrives. Targets: under 50 ms
    for 4,000 tokens, and growing in step with the answer (linear), not with its square.
  - a 1 MB answer cut into Messenger's 2,000-character messages and Instagram's 1,000-byte ones.
Each CPU figure is the median of a few runs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from bench.common import machine
from inboxgpt import replies
from inboxgpt.channels.instagram import INSTAGRAM_MAX_BYTES
from inboxgpt.channels.text import MAX_TEXT_LENGTH, split_text, utf8_units, utf16_units
from inboxgpt.channels.whatsapp import PAIR_RATE_SECONDS, WHATSAPP_MAX_CHARS
from inboxgpt.conversation.outbox import Outbox
from inboxgpt.model.streaming import ParagraphSender

# The default MAX_MESSAGES_PER_REPLY.
CAP = 8
# Seconds the model takes to write one four-character piece: 50 tokens a second.
PIECE_SECONDS = 0.02
# Each channel as the service sees it: how it splits text, how it counts a message's length, its limit, its pace.
CHANNELS: dict[str, tuple[Callable[[str], list[str]], Callable[[str], int], int, float]] = {
    "Messenger": (lambda text: split_text(text, MAX_TEXT_LENGTH), utf16_units, MAX_TEXT_LENGTH, 0.0),
    "Instagram": (lambda text: split_text(text, INSTAGRAM_MAX_BYTES, utf8_units), utf8_units, INSTAGRAM_MAX_BYTES, 0.0),
    "WhatsApp": (lambda text: split_text(text, WHATSAPP_MAX_CHARS), utf16_units, WHATSAPP_MAX_CHARS, PAIR_RATE_SECONDS),
}
WORDS = ("the", "shop", "opens", "at", "nine", "and", "closes", "at", "six", "on", "weekdays", "so", "come", "by")


def ordinary_answer(chars: int) -> str:
    """A long answer as a model writes one: prose paragraphs of 200 to 550 characters, every seventh a list and
    every eleventh a code block, until it is `chars` characters or more."""
    rng = random.Random(chars)
    paragraphs: list[str] = []
    while sum(len(paragraph) + 2 for paragraph in paragraphs) < chars:
        number = len(paragraphs) + 1
        if number % 7 == 0:
            paragraphs.append("\n".join(f"- item {item}: " + " ".join(rng.choices(WORDS, k=8)) for item in range(4)))
        elif number % 11 == 0:
            paragraphs.append("```python\n" + "\n".join(f"print({line} * {line})" for line in range(20)) + "\n```")
        else:
            words, length = [f"Paragraph {number}."], rng.randint(200, 550)
            while sum(len(word) + 1 for word in words) < length:
                words.append(rng.choice(WORDS))
            paragraphs.append(" ".join(words) + ".")
    return "\n\n".join(paragraphs)


def streamed_messages(answer: str, channel: str) -> tuple[list[str], bool]:
    """The messages `answer` becomes on `channel` when streamed as the service streams it (stopping once the
    outbox is full, as the reply does), and whether it was cut."""
    split, _, _, pace = CHANNELS[channel]
    now = [0.0]
    sent: list[str] = []

    def send(piece: str, offers: tuple[str, ...]) -> list[tuple[str, str]]:
        sent.append(piece)
        return [("mid", piece)]

    outbox = Outbox(send, split, CAP)
    sender = ParagraphSender(outbox, "", pace, lambda: now[0], outbox.fits)
    for start in range(0, len(answer), 4):
        now[0] += PIECE_SECONDS
        sender.feed(answer[start : start + 4])
        if outbox.spent:
            break  # as the reply stops reading the model
    sender.finish()
    if outbox.full:
        outbox.notice(replies.CUT_OFF)
    return sent, outbox.full


def print_messages() -> None:
    """Print the messages each ordinary answer becomes on each channel."""
    print(f"{'answer, chars':>14} {'channel':>10} {'messages':>9} {'longest':>8} {'delivered, chars':>17}  cut off")
    for chars in (5_000, 16_000, 50_000):
        answer = ordinary_answer(chars)
        for channel, (_, units, limit, _) in CHANNELS.items():
            sent, cut = streamed_messages(answer, channel)
            delivered = sent[:-1] if cut else sent
            longest = max(sum(map(units, message)) for message in delivered)
            words = " ".join(delivered).split()
            assert longest <= limit
            assert words == answer.split()[: len(words)]
            print(
                f"{len(answer):>14,} {channel:>10} {len(delivered):>9} {longest:>8,}"
                f" {sum(map(len, delivered)):>17,}  {'yes, and says so' if cut else 'no'}"
            )


def code_answer(tokens: int) -> str:
    """An answer that is one long code block, with blank lines inside it, of about `tokens` tokens."""
    lines = ["Here is the code:", "", "```python"]
    while sum(len(line) + 1 for line in lines) < tokens * 4:
        n = len(lines)
        lines += [f"def step_{n}(value):", f"    return value * {n}", ""]
    return "\n".join([*lines, "```", "", "That is all."])


def streamed_seconds(answer: str) -> float:
    """CPU seconds to stream `answer` through the paragraph sender in four-character pieces."""
    pieces = [answer[i : i + 4] for i in range(0, len(answer), 4)]
    sent: list[str] = []

    def send(text: str) -> list[tuple[str, str]]:
        sent.append(text)
        return [("mid", text)]

    sender = ParagraphSender(send)
    started = time.process_time()
    for piece in pieces:
        sender.feed(piece)
    sender.finish()
    elapsed = time.process_time() - started
    assert " ".join(sent).split() == answer.split()
    return elapsed


def split_seconds(answer: str, instagram: bool) -> tuple[float, int]:
    """CPU seconds to cut `answer` into messages, and how many."""
    started = time.process_time()
    pieces = split_text(answer, INSTAGRAM_MAX_BYTES, utf8_units) if instagram else split_text(answer)
    elapsed = time.process_time() - started
    assert "".join(pieces) == answer
    return elapsed, len(pieces)


def median_ms(measure, repeats: int) -> float:
    return statistics.median(measure() for _ in range(repeats)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run: that it works (CI)")
    args = parser.parse_args()
    repeats = 1 if args.quick else 5
    sizes = (500, 1000) if args.quick else (500, 1000, 2000, 4000, 8000)
    print(machine())
    print_messages()
    print(f"{'code answer, tokens':>20} {'streamed, ms':>13} {'ms per 1,000 tokens':>20}")
    for tokens in sizes:
        answer = code_answer(tokens)
        ms = median_ms(lambda answer=answer: streamed_seconds(answer), repeats)
        print(f"{tokens:>20,} {ms:>13.1f} {ms / tokens * 1000:>20.2f}")
    size = 100_000 if args.quick else 1_000_000
    prose = ("A sentence of a very long answer, written on and on. " * (size // 53 + 1))[:size]
    for name, instagram in (("Messenger", False), ("Instagram", True)):
        ms = median_ms(lambda instagram=instagram: split_seconds(prose, instagram)[0], repeats)
        count = split_seconds(prose, instagram)[1]
        print(f"{size:,}-character answer split for {name}: {ms:.1f} ms, {count:,} messages")


if __name__ == "__main__":
    main()
