"""Comment flood benchmark: how long a person's direct message waits behind a flood of comments under a post.

    python -m bench.comment_flood
    python -m bench.comment_flood --floods 1000 5000 --model-seconds 1

The service runs under gunicorn (memory store, the default 64 reply threads, COMMENTS=all, no limits) against
the fake Graph API and a fake model that takes `--model-seconds` to answer anything. For each flood, the comments
arrive in webhooks of 1,000, and right after them one direct message; reported: the time from the message's
POST to its reply reaching the Graph API, and its wait (that time less the model's own). Target: under 2 s of
wait whatever the flood. The comments left queued are not waited for.
"""

from __future__ import annotations

import argparse
import time

from bench.common import FakeGraph, FakeOpenAI, machine, parse, signed_message, start

# isort: split
from tests.fakes import completion
from tests.helpers import PAGE_ID

PER_WEBHOOK = 1000  # comments in one webhook body, well within its 1 MiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--floods", type=int, nargs="+", default=[1000, 5000], help="comments before the message")
    parser.add_argument("--model-seconds", type=float, default=1.0, help="how long the fake model takes to answer")
    args = parse(parser, floods=[200], model_seconds=0.2)
    print(f"machine: {machine()}")
    print(f"fake model: {args.model_seconds:.1f} s an answer")
    print(f"{'comments':>8} | message answered after | of which waiting")
    for flood in args.floods:
        answered = message_behind(flood, args.model_seconds)
        print(f"{flood:>8,} | {answered:>20.2f} s | {answered - args.model_seconds:>14.2f} s")


def comments(first: int, count: int) -> dict:
    """A Page's webhook of `count` new comments by as many people under one post."""
    now = int(time.time())
    changes = [
        {
            "field": "feed",
            "value": {
                "item": "comment",
                "verb": "add",
                "comment_id": f"8765_{n}",
                "post_id": "1234567890_8765",
                "parent_id": "1234567890_8765",
                "from": {"id": f"7{n:09d}", "name": "Someone"},
                "message": "How much is the sourdough?",
                "created_time": now,
            },
        }
        for n in range(first, first + count)
    ]
    return {"object": "page", "entry": [{"id": PAGE_ID, "time": now, "changes": changes}]}


def message_behind(flood: int, model_seconds: float) -> float:
    """Seconds from a direct message's POST to its reply, sent right after `flood` comments."""
    graph, model = FakeGraph(), FakeOpenAI(lambda request: completion("Thanks for asking!", delay=model_seconds))
    graph.posts["1234567890_8765"] = "Our new sourdough is out of the oven!"
    service = start(
        graph,
        model,
        COMMENTS="all",
        COMMENTS_PER_DAY="0",
        LIMIT_PER_MINUTE="0",
        LIMIT_PER_DAY="0",
        LIMIT_GLOBAL_PER_DAY="0",
        OPENAI_TIMEOUT="600",
    )
    try:
        for first in range(0, flood, PER_WEBHOOK):
            response = service.post(comments(first, min(PER_WEBHOOK, flood - first)))
            assert response.status_code == 200, response.status_code
        raw, headers = signed_message("5550001", "m_flood_dm", "Are you open on Sunday?")
        started = time.perf_counter()
        assert service.session.post(service.url + "/", data=raw, headers=headers, timeout=30).status_code == 200
        assert graph.wait_for(lambda: bool(graph.texts("5550001")), timeout=3600), "the message was never answered"
        return time.perf_counter() - started
    finally:
        service.stop()
        graph.close()
        model.close()


if __name__ == "__main__":
    main()
