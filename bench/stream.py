"""Streaming benchmark: when the first message of a long answer reaches Meta, against the whole answer's time.

    python -m bench.stream
    python -m bench.stream --rate 50 --repeats 5

The fake model streams its answer as server-sent events at a set rate (tokens a second, a token
being about four characters). Measured under gunicorn, from the model request's arrival at the
fake model to each message's arrival at the fake Graph API:
  - a four-paragraph answer, streamed: the first message, as a share of the whole answer's time;
  - a one-paragraph answer, streamed and not (the non-streamed fake waits the same time, then
    answers at once): the reply's time, which must be the same within 5%.
"""

from __future__ import annotations

import argparse
import statistics

from bench.common import FakeGraph, FakeOpenAI, machine, parse, start
from inboxgpt.model.streaming import OWN_MESSAGES
from tests.fakes import completion, streamed
from tests.helpers import PAGE_ID

FOUR_PARAGRAPHS = "\n\n".join(
    f"Part {n} of the answer explains one more step of what was asked, " + "in plain and friendly words " * 8
    for n in range(4)
)
ONE_PARAGRAPH = "A single paragraph of an answer, " + "short and to the point " * 10


def chunks_of(text: str) -> int:
    """How many chunks the fake streams for `text` (role, content pieces, finish, usage)."""
    reply = streamed(completion(text))
    assert reply.chunks is not None
    return len(reply.chunks)


def timed(answer: str, rate: float, stream: bool, repeats: int) -> list[tuple[float, float]]:
    """(first message, last message) seconds after the model was asked, for each repeat."""
    graph, model = FakeGraph(), FakeOpenAI()
    model.tokens_per_second = rate
    whole = (chunks_of(answer) - 1) / rate
    # Not streamed, the model answers once it has written everything: the same time.
    model.default = lambda request: completion(answer, delay=0.0 if request.get("stream") else whole)
    service = start(graph, model, STREAM="on" if stream else "off", LIMIT_PER_MINUTE="0", LIMIT_PER_DAY="0")
    results = []
    try:
        for n in range(repeats):
            psid = str(7000 + n)
            event = {
                "sender": {"id": psid},
                "recipient": {"id": PAGE_ID},
                "timestamp": n,
                "message": {"mid": f"m_stream_{n}", "text": "tell me"},
            }
            sent_before = len(graph.texts())
            service.post({"object": "page", "entry": [{"id": PAGE_ID, "time": 0, "messaging": [event]}]})
            # Streamed, the four paragraphs are the first OWN_MESSAGES on their own, then the rest filling one.
            expected = 1 if answer == ONE_PARAGRAPH or not stream else OWN_MESSAGES + 1
            assert graph.wait_for(lambda: len(graph.texts(psid)) >= expected, timeout=60)  # noqa: B023
            asked = model.arrived[-1]
            arrivals = [
                at
                for at, call in zip(graph.arrived, graph.requests, strict=True)
                if "message" in call and call["recipient"]["id"] == psid
            ]
            assert len(graph.texts()) > sent_before
            results.append((arrivals[0] - asked, arrivals[-1] - asked))
    finally:
        service.stop()
        graph.close()
        model.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0, help="tokens a second the fake model writes")
    parser.add_argument("--repeats", type=int, default=5)
    args = parse(parser, rate=400.0, repeats=1)
    print(f"machine: {machine()}; the model writes {args.rate:g} tokens a second")

    whole = (chunks_of(FOUR_PARAGRAPHS) - 1) / args.rate
    runs = timed(FOUR_PARAGRAPHS, args.rate, True, args.repeats)
    first = statistics.median(first for first, _ in runs)
    last = statistics.median(last for _, last in runs)
    print(
        f"four paragraphs, streamed: first message {first:.2f} s = {first / whole:.2f}x of the answer's "
        f"{whole:.2f} s (target <= 0.35x); last {last:.2f} s"
    )

    streamed_runs = timed(ONE_PARAGRAPH, args.rate, True, args.repeats)
    whole_runs = timed(ONE_PARAGRAPH, args.rate, False, args.repeats)
    streamed_s = statistics.median(first for first, _ in streamed_runs)
    whole_s = statistics.median(first for first, _ in whole_runs)
    print(
        f"one paragraph: streamed {streamed_s:.3f} s, not streamed {whole_s:.3f} s: "
        f"{streamed_s / whole_s:.3f}x (target within 5%)"
    )


if __name__ == "__main__":
    main()
