"""Store benchmark: appends and reads per second, p95 latency, and memory or disk per 1,000 conversations.

    python -m bench.stores
    python -m bench.stores --people 10000 --turns 3

For each backend (memory, SQLite in a temporary folder, a real redis-server started here):
10,000 people each get `--turns` turns appended (a question of ~100 characters and an answer
of ~400), one at a time from one thread, then every person's history is read once. Then, in a
fresh store of each kind, each person's reply is counted in the day's usage as a priced model's
is (its tokens and dollars, by channel and person, and the month's spend): the median time per reply.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

import redis as redis_client

from bench.common import machine, parse, percentile
from inboxgpt.model.completion import Completion
from inboxgpt.periods import Periods
from inboxgpt.store import Bounds, Store, Turn
from inboxgpt.store.memory import MemoryStore
from inboxgpt.store.redis import RedisStore
from inboxgpt.store.sqlite import SQLiteStore
from inboxgpt.usage import Usage
from tests.redis_server import RedisServer

TURN = Turn(
    "How long does it take to cook pasta al dente, and should I salt the water first?",
    "About 8 to 12 minutes depending on the shape: check the packet and taste a minute early. "
    "Salt the water generously once it boils, roughly a tablespoon for four litres, because "
    "it seasons the pasta from the inside. Keep a cup of the cooking water to loosen the "
    "sauce at the end. Drain, toss with the sauce in the pan for a minute, and serve.",
)
# A reply as a priced model's is counted: its tokens and what it cost.
PRICED_REPLY = Completion(TURN.assistant, "stop", 120, 100, cost=0.0001)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--turns", type=int, default=3)
    args = parse(parser, people=200, turns=2)
    bounds = Bounds(
        max_messages=20,
        max_tokens=3000,
        ttl=86400,
        max_conversations=args.people,
        dedup_ttl=3600,
        dedup_max_ids=100_000,
    )
    print(f"{args.people:,} people x {args.turns} turns, one thread; machine: {machine()}")
    print(
        f"{'backend':<8} | {'appends/s':>9} | {'append p95':>10} | {'reads/s':>8} | {'read p95':>8} | "
        "per 1,000 conversations"
    )
    with tempfile.TemporaryDirectory() as folder:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        memory = MemoryStore(bounds)
        row(
            "memory",
            memory,
            args,
            lambda: (
                f"{(tracemalloc.get_traced_memory()[0] - before) / args.people * 1000 / 2**20:.2f} "
                "MiB of Python objects"
            ),
        )
        tracemalloc.stop()
        usage_times = {"memory": usage_seconds(MemoryStore(bounds), args.people)}

        path = Path(folder) / "bot.db"
        sqlite = SQLiteStore(f"sqlite:///{path}", bounds)
        row(
            "sqlite",
            sqlite,
            args,
            lambda: f"{disk(path) / args.people * 1000 / 2**20:.2f} MiB on disk (database + WAL)",
        )
        usage_times["sqlite"] = usage_seconds(
            SQLiteStore(f"sqlite:///{Path(folder) / 'usage.db'}", bounds), args.people
        )

        server = RedisServer()
        try:
            client = redis_client.Redis.from_url(server.url)
            base = client.info("memory")["used_memory"]
            store = RedisStore(server.url + "/0", bounds)
            row(
                "redis",
                store,
                args,
                lambda: (
                    f"{(client.info('memory')['used_memory'] - base) / args.people * 1000 / 2**20:.2f} "
                    "MiB of Redis memory"
                ),
            )
            usage_times["redis"] = usage_seconds(RedisStore(server.url + "/1", bounds), args.people)
        finally:
            server.stop()
    print("a reply counted in the usage (p50): " + ", ".join(f"{n} {s * 1000:.3f} ms" for n, s in usage_times.items()))


def usage_seconds(store: Store, people: int) -> float:
    """The median time to count one priced reply in the day's usage."""
    usage = Usage(store, Periods())
    times: list[float] = []
    for n in range(people):
        started = time.perf_counter()
        usage.record(PRICED_REPLY, time.time(), "messenger", str(n))
        times.append(time.perf_counter() - started)
    return percentile(times, 50)


def disk(path: Path) -> int:
    return sum(os.path.getsize(p) for p in (path, Path(f"{path}-wal")) if p.exists())


def row(name: str, store, args, footprint) -> None:
    append_times: list[float] = []
    for _ in range(args.turns):
        for n in range(args.people):
            started = time.perf_counter()
            store.append(str(n), TURN)
            append_times.append(time.perf_counter() - started)
    read_times: list[float] = []
    for n in range(args.people):
        started = time.perf_counter()
        assert len(store.get(str(n))) == args.turns
        read_times.append(time.perf_counter() - started)
    print(
        f"{name:<8} | {len(append_times) / sum(append_times):>9,.0f} | {percentile(append_times, 95) * 1000:>7.2f} ms"
        f" | {len(read_times) / sum(read_times):>8,.0f} | {percentile(read_times, 95) * 1000:>5.2f} ms | {footprint()}"
    )


if __name__ == "__main__":
    main()
