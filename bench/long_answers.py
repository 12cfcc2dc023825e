"""Long answers: the CPU the paragraph sender and the message splitter spend on them.

    python -m bench.long_answers
    python -m bench.long_answers --quick

Two figures, each the median of a few runs, in this process (no network: `send` is a list):
  - a code answer of N tokens (a token being four characters), streamed in four-character
    pieces through `ParagraphSender`: every piece is read as it arrives. Targets: under 50 ms
    for 4,000 tokens, and growing in step with the answer (linear), not with its square.
  - a 1 MB answer cut into Messenger's 2,000-character messages and Instagram's 1,000-byte ones.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.common import machine
from inboxgpt.channels.instagram import INSTAGRAM_MAX_BYTES
from inboxgpt.channels.text import split_text, utf8_units
from inboxgpt.model.streaming import ParagraphSender


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
