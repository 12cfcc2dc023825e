"""Queue benchmark: store calls per event for one person's steady queue, and how fast a big webhook is acknowledged.

    python -m bench.dispatch
    python -m bench.dispatch --events 1000 --steady 6

For each backend (memory, SQLite in a temporary folder, a real redis-server started here):
- one person sends `--steady` messages while the first is being answered; the store calls the
  dispatcher makes are counted (target: one lock take, one peek and one pop per event, plus one
  release per drain);
- one webhook POST of `--events` messages from different people is acknowledged by the service
  under gunicorn while it answers them: the median time to the 200 over `--runs` POSTs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter

from bench.common import (
    FakeGraph,
    FakeOpenAI,
    machine,
    parse,
    start,
)

# isort: split
from inboxgpt.store import Bounds, Store
from inboxgpt.store.memory import MemoryStore
from inboxgpt.store.redis import RedisStore
from inboxgpt.store.sqlite import SQLiteStore
from tests.fakes import CountingStore
from tests.helpers import PAGE_ID, answer_a_steady_queue
from tests.redis_server import RedisServer

BOUNDS = Bounds(
    max_messages=20, max_tokens=3000, ttl=86400, max_conversations=100_000, dedup_ttl=3600, dedup_max_ids=100_000
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steady", type=int, default=6, help="messages one person sends while the first is answered")
    parser.add_argument("--events", type=int, default=1000, help="events in the big webhook POST")
    parser.add_argument("--runs", type=int, default=3, help="big POSTs timed per backend")
    args = parse(parser, events=50, runs=2)
    print(f"machine: {machine()}")
    print(f"{'backend':<8} | store calls per event ({args.steady} queued by one person) | {args.events:,}-event POST")
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer()
        try:
            urls = {"memory": "memory://", "sqlite": f"sqlite:///{folder}/bot.db", "redis": server.url + "/0"}
            for name, url in urls.items():
                store = open_backend(name, url)
                calls = steady_queue(CountingStore(store), args.steady)
                per_event = ", ".join(f"{method} {count / args.steady:.2f}" for method, count in sorted(calls.items()))
                print(f"{name:<8} | {per_event:<52} | {big_post(url, args.events, args.runs) * 1000:,.0f} ms")
        finally:
            server.stop()


def open_backend(name: str, url: str) -> Store:
    if name == "memory":
        return MemoryStore(BOUNDS)
    if name == "sqlite":
        return SQLiteStore(url, BOUNDS)
    return RedisStore(url, BOUNDS)


def steady_queue(store: CountingStore, count: int) -> Counter[str]:
    """The store calls made while one person's `count` messages are answered, all but the first queued meanwhile."""
    answer_a_steady_queue(store, count, psid=f"steady-{time.monotonic_ns()}")
    del store.calls["accept"]
    return store.calls


def big_post(url: str, events: int, runs: int) -> float:
    """Median seconds for the service under gunicorn to acknowledge one POST of `events` messages from as
    many people, while it answers them (the fake model and Graph API answer at once)."""
    graph, model = FakeGraph(), FakeOpenAI()
    service = start(graph, model, STORE_URL=url, LIMIT_PER_MINUTE="0", LIMIT_PER_DAY="0", LIMIT_GLOBAL_PER_DAY="0")
    timings = []
    try:
        for run in range(runs):
            items = [
                {
                    "sender": {"id": f"{run + 1}{n:06d}"},
                    "recipient": {"id": PAGE_ID},
                    "timestamp": n + 1,
                    "message": {"mid": f"m_big_{run}_{n}", "text": "hello"},
                }
                for n in range(events)
            ]
            started = time.perf_counter()
            response = service.post({"object": "page", "entry": [{"id": PAGE_ID, "time": 0, "messaging": items}]})
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
            # Everyone answered before the next POST, so each run starts alike.
            assert graph.wait_for(lambda: len(graph.texts()) >= (run + 1) * events, timeout=300)  # noqa: B023
    finally:
        service.stop()
        graph.close()
        model.close()
    return statistics.median(timings)


if __name__ == "__main__":
    main()
