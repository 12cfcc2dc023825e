"""Small-window benchmark: one person's conversation with a model whose context window is 1,024 tokens.

    python -m bench.small_window
    python -m bench.small_window --turns 25 --window 1024 --quick

The fake model answers as llama-cpp-python's server does (tests/fakes.py SmallWindow: a prompt over its window
gets an empty stream then a 400 naming it, an answer that would overflow a stream cut short) with answers of
1,200 characters, and says nothing of its window when asked. The person asks long questions, then says
"My name is Ana." and asks "What is my name?". Run with and without the example knowledge (KNOWLEDGE_DIR):
the prompt tokens the model got for each turn (its own count, about four bytes a token), how many messages of
history each carried, the refusals it took to learn the window, the apologies the person got, and whether the
last prompt still carried "My name is Ana.".
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from app import create_app
from bench.common import ROOT, machine, parse, settings
from inboxgpt import replies
from inboxgpt.web.app import EXTENSION
from tests.fakes import FakeGraph, FakeOpenAI, SmallWindow, server_tokens
from tests.helpers import PSID, page_body, poster, text_event

QUESTION = "Tell me more about the history of the city, its old town and the river that runs through it."
NAME = "My name is Ana."


def conversation(turns: int) -> list[str]:
    """What the person says: long questions, then their name, then whether the bot remembers it."""
    return [*(f"{n}. {QUESTION}" for n in range(1, turns - 1)), NAME, "What is my name?"]


@dataclass(frozen=True)
class Result:
    """One conversation, as the model got it."""

    tokens: list[int]  # the prompt of each turn's answered request, by the server's count
    history: list[int]  # messages of history it carried
    refusals: int
    apologies: int
    remembered: bool  # the last prompt carried "My name is Ana."


def run(turns: int, window: int, knowledge: bool) -> Result:
    graph, model = FakeGraph(), FakeOpenAI()
    fake = SmallWindow(window, answer_chars=1200, streams_like_llama_cpp=True)
    model.default = fake
    extra = {"KNOWLEDGE_DIR": str(ROOT / "examples" / "knowledge")} if knowledge else {}
    app = create_app({**settings(graph, model, **extra), "LOG_LEVEL": "ERROR", "LIMIT_PER_MINUTE": "0"})
    post = poster(app)
    tokens, history = [], []
    try:
        for text in conversation(turns):
            post(page_body(text_event(text)))
            answered = model.requests[-1]["messages"]
            tokens.append(sum(server_tokens(message) for message in answered))
            history.append(len(answered) - 2)
        last = [message["content"] for message in model.requests[-1]["messages"]]
        sent = graph.texts(PSID)
    finally:
        app.extensions[EXTENSION].close()
        model.close()
        graph.close()
    apologies = sum(text in replies.APOLOGIES.values() for text in sent)
    return Result(tokens, history, fake.refused + fake.cut_streams, apologies, NAME in last)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=25)
    parser.add_argument("--window", type=int, default=1024)
    args = parse(parser, turns=8)
    print(f"{machine()}; {args.turns} turns against a {args.window}-token window (llama-cpp-python's refusals)")
    for knowledge in (False, True):
        result = run(args.turns, args.window, knowledge)
        print(f"\n{'with' if knowledge else 'without'} the example knowledge:")
        print("  prompt tokens per turn:", " ".join(map(str, result.tokens)))
        print("  history messages:      ", " ".join(map(str, result.history)))
        print(
            f"  refusals to learn the window: {result.refusals}; apologies: {result.apologies}; "
            f"the last prompt remembers the name: {'yes' if result.remembered else 'no'}"
        )


if __name__ == "__main__":
    main()
