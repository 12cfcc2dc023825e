"""Cost benchmark: the prompt sent to the model over one person's 200-turn conversation.

    python -m bench.cost
    python -m bench.cost --turns 200 --context-window 128000
    python -m bench.cost --bursts     # 20 turns, every second one a burst of 3 messages

This service (bounded history) against the seed design (the whole history, every time), both
under gunicorn, talking to a fake model that refuses prompts over its context window as a
real one does. Prompt size is measured at the fake model, in characters and in tokens by
OpenAI's rule of thumb of four characters a token.

With --bursts: one person's 20 turns, every second one a burst of three messages sent one
after another as Meta delivers them while the model (--model-delay) answers; the model calls and prompt
tokens it costs, with BURST_WAIT_SECONDS 0 (the default) and 1.
"""

from __future__ import annotations

import argparse
import random

from bench.common import FakeGraph, FakeOpenAI, parse, start
from inboxgpt.prices import CHAT_PRICES, Price
from tests.fakes import Reply, completion, openai_error
from tests.helpers import PAGE_ID

CHECKPOINTS = (10, 50, 100, 200)
WORDS = [
    "the",
    "a",
    "to",
    "of",
    "and",
    "in",
    "is",
    "it",
    "you",
    "that",
    "for",
    "on",
    "with",
    "as",
    "be",
    "this",
    "are",
    "have",
    "can",
    "not",
    "but",
    "what",
    "how",
    "when",
    "which",
    "would",
    "could",
    "should",
    "about",
    "there",
    "their",
    "time",
    "people",
    "water",
    "garden",
    "recipe",
    "train",
    "ticket",
    "weather",
    "tomorrow",
    "holiday",
    "battery",
    "phone",
    "laptop",
    "booking",
    "price",
    "delivery",
    "order",
    "refund",
    "address",
    "question",
    "answer",
    "help",
    "thanks",
    "please",
    "maybe",
    "really",
    "great",
]


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--context-window", type=int, default=128_000, help="tokens the fake model accepts")
    parser.add_argument("--bursts", action="store_true", help="every second turn a burst of three messages")
    parser.add_argument("--model-delay", type=float, default=0.3, help="seconds the fake model takes (--bursts)")
    args = parse(parser, turns=12, model_delay=0.05)
    if args.bursts:
        turns = min(args.turns, 20)
        print(f"One person, {turns} turns, every second one a burst of 3 messages ({turns * 2} messages)")
        for wait in (0.0, 1.0 if args.model_delay >= 0.3 else 0.2):
            tokens, calls, replies = burst_chat(turns, wait, args.model_delay)
            print(f"BURST_WAIT_SECONDS={wait:g}: {calls} model calls, {replies} replies, {tokens:,} prompt tokens")
        return
    ours = conversation(args.turns, args.context_window, baseline=False)
    seed = conversation(args.turns, args.context_window, baseline=True)
    print(
        f"One person, {args.turns} turns; user messages ~20 words, replies ~80 words; "
        f"context window {args.context_window:,} tokens"
    )
    print(f"{'turn':>6} | {'this service':>22} | {'seed design':>22}")
    for turn in [t for t in CHECKPOINTS if t <= args.turns]:
        print(f"{turn:>6} | {describe(ours, turn):>22} | {describe(seed, turn):>22}")
    for name, sizes in (("this service", ours), ("seed design", seed)):
        sent = [s for s in sizes if s is not None]
        tokens = sum(sent) // 4
        dollars = PRICE.of(tokens, 0, REPLY_TOKENS * len(sent))
        print(
            f"{name}: {tokens:,} prompt tokens over {len(sent)} answered turns, "
            f"${dollars:.4f} at gpt-4.1-mini's prices (replies of ~{REPLY_TOKENS} tokens)"
        )


# gpt-4.1-mini's price (prices.py), and a reply of ~80 words.
PRICE = Price(*CHAT_PRICES["gpt-4.1-mini"])
REPLY_TOKENS = 110


def describe(sizes: list[int | None], turn: int) -> str:
    size = sizes[turn - 1]
    return "refused (too long)" if size is None else f"{size // 4:,} tok ({size:,} chars)"


def conversation(turns: int, context_window: int, baseline: bool) -> list[int | None]:
    """Return the prompt size in characters at each turn, or None where the model refused it."""
    rng = random.Random(7)
    sizes: list[int | None] = []

    def model(request: dict) -> Reply:
        chars = sum(len(m["content"]) for m in request["messages"])
        sizes.append(chars)
        if chars // 4 > context_window:
            sizes[-1] = None
            return openai_error(
                400,
                f"This model's maximum context length is {context_window} tokens.",
                "invalid_request_error",
                "context_length_exceeded",
            )
        return completion(" ".join(sentence(rng, 16) for _ in range(5)))

    graph, fake_model = FakeGraph(), FakeOpenAI(model)
    # Limits off: one person writing 200 times in a row would pass the per-minute limit.
    service = start(graph, fake_model, baseline=baseline, LIMIT_PER_MINUTE="0", LIMIT_PER_DAY="0")
    psid = "4242"
    try:
        for turn in range(turns):
            event = {
                "sender": {"id": psid},
                "recipient": {"id": PAGE_ID},
                "timestamp": turn,
                "message": {"mid": f"m_cost_{turn}", "text": sentence(rng, 20)},
            }
            service.post({"object": "page", "entry": [{"id": PAGE_ID, "time": turn, "messaging": [event]}]}, timeout=60)
            # The next message is sent once the model has been asked and the reply is out.
            answered = turn + 1
            fake_model.wait_for(lambda: len(fake_model.requests) >= answered)  # noqa: B023 (waited on at once)
            graph.wait_for(lambda: len(graph.texts(psid)) >= answered or sizes[-1] is None, timeout=10)  # noqa: B023
    finally:
        service.stop()
        graph.close()
        fake_model.close()
    return sizes


def burst_chat(turns: int, wait_seconds: float, model_delay: float) -> tuple[int, int, int]:
    """Prompt tokens, model calls and replies of a chat whose every second turn is a burst of three messages."""
    rng = random.Random(7)
    chars: list[int] = []

    def model(request: dict) -> Reply:
        chars.append(sum(len(m["content"]) for m in request["messages"]))
        return completion(" ".join(sentence(rng, 16) for _ in range(5)), delay=model_delay)

    graph, fake_model = FakeGraph(), FakeOpenAI(model)
    service = start(
        graph, fake_model, LIMIT_PER_MINUTE="0", LIMIT_PER_DAY="0", BURST_WAIT_SECONDS=str(wait_seconds), STREAM="off"
    )
    psid = "4343"
    sent = 0
    try:
        for turn in range(turns):
            for _ in range(3 if turn % 2 else 1):
                text = sentence(rng, 12)
                event = {
                    "sender": {"id": psid},
                    "recipient": {"id": PAGE_ID},
                    "timestamp": sent,
                    "message": {"mid": f"m_burst_{sent}", "text": text},
                }
                sent += 1
                service.post({"object": "page", "entry": [{"id": PAGE_ID, "time": 0, "messaging": [event]}]})
            # The next turn comes once every message of this one has been answered.
            fake_model.wait_for(lambda: any(text in r["messages"][-1]["content"] for r in fake_model.requests))  # noqa: B023
            graph.wait_for(lambda: len(graph.texts(psid)) >= len(fake_model.requests))
    finally:
        service.stop()
        graph.close()
        fake_model.close()
    return sum(chars) // 4, len(chars), len(graph.texts(psid))


if __name__ == "__main__":
    main()
