"""Memory benchmark: 20,000 people writing once each; the service's RSS at its peak and after idle expiry.

    python -m bench.memory
    python -m bench.memory --people 2000 --ttl 10     # a quick look

The store holds at most MAX_CONVERSATIONS people (default 10,000) and forgets a conversation
after CONVERSATION_TTL seconds of silence (shortened here so the run ends in minutes).
"""

from __future__ import annotations

import argparse
import re
import threading
import time

from bench.common import FakeGraph, FakeOpenAI, machine, parse, start
from tests.fakes import Reply, completion
from tests.helpers import PAGE_ID

BATCH = 100  # events per webhook POST (Meta batches up to 1,000)


def worst_case(people: int) -> None:
    """The in-memory store at its default bounds with every person at the most it keeps: a full history of the
    longest messages, every quote remembered, and event and sent ids to their caps; measured on `people` people
    (Python's allocations, by tracemalloc) and scaled to MAX_CONVERSATIONS."""
    import tracemalloc

    from inboxgpt.config import settings_from_mapping
    from inboxgpt.model import prompt
    from inboxgpt.store import MAX_QUOTES, Bounds, Queued
    from inboxgpt.store.memory import MemoryStore

    names = ("PAGE_ACCESS_TOKEN", "VERIFY_TOKEN", "APP_SECRET", "OPENAI_API_KEY")
    defaults = settings_from_mapping(dict.fromkeys(names, "x"))
    bounds = Bounds(
        defaults.history_max_messages,
        defaults.history_max_tokens,
        defaults.conversation_ttl,
        defaults.max_conversations,
        defaults.dedup_ttl,
        defaults.dedup_max_ids,
    )
    tracemalloc.start()
    store = MemoryStore(bounds)
    side = defaults.max_message_chars
    for person in range(people):
        psid = str(10**15 + person)
        for n in range(defaults.history_max_messages // 2):
            store.append(psid, prompt.within_history(prompt.Turn(f"{n}" + "q" * side, f"{n}" + "a" * side), 3000))
        for n in range(MAX_QUOTES):
            store.remember(psid, f"m_{psid}_{n:032d}", f"{n}" + "t" * prompt.REMEMBERED_CHARS)
    per_person = tracemalloc.get_traced_memory()[0] / people
    before = tracemalloc.get_traced_memory()[0]
    ids = 10_000
    store.accept([Queued(f"m_{n:064d}", "0", "") for n in range(ids)])
    store.remember_sent("0", [(f"m_{n:064d}", "") for n in range(ids)], ttl=3600)
    per_id = (tracemalloc.get_traced_memory()[0] - before) / ids
    tracemalloc.stop()
    total = per_person * bounds.max_conversations + per_id * bounds.dedup_max_ids
    print(f"  machine: {machine()}")
    print(f"  per person at the bounds  {per_person / 1024:.1f} KiB (history and {MAX_QUOTES} quotes)")
    print(f"  per event id and sent id  {per_id:.0f} bytes (with its queued item)")
    print(
        f"  worst case at the default bounds: {total / 2**20:.0f} MiB of Python objects "
        f"({bounds.max_conversations:,} people, {bounds.dedup_max_ids:,} event ids and as many sent ids)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument(
        "--worst-case", action="store_true", help="the store's size with every person at its bounds (no server)"
    )
    parser.add_argument(
        "--ttl", type=float, default=240.0, help="CONVERSATION_TTL for the run, seconds (longer than the writing)"
    )
    args = parse(parser, people=200, ttl=3.0)
    if args.worst_case:
        worst_case(min(args.people, 1000))
        return

    delivered = threading.Semaphore(0)

    def graph_answer(request: dict) -> Reply:
        if "message" in request:
            delivered.release()
        return Reply(body={"recipient_id": request["recipient"]["id"], "message_id": "m_sent"})

    graph, model = (
        FakeGraph(),
        FakeOpenAI(lambda request: completion("A reply of an ordinary length for a chat, a sentence or two long.")),
    )
    graph.default = graph_answer
    # Limits off: the global daily cap would stop the model calls long before 20,000 people.
    service = start(
        graph,
        model,
        CONVERSATION_TTL=str(args.ttl),
        LOG_LEVEL="INFO",
        LIMIT_PER_MINUTE="0",
        LIMIT_PER_DAY="0",
        LIMIT_GLOBAL_PER_DAY="0",
    )
    rss_idle = service.rss_kib() / 1024

    def write(first: int, last: int) -> None:
        for start_at in range(first, last, BATCH):
            events = [
                {
                    "sender": {"id": str(10**14 + n)},
                    "recipient": {"id": PAGE_ID},
                    "timestamp": n,
                    "message": {"mid": f"m_mem_{n}", "text": f"Hello, this is person {n}. What's the weather like?"},
                }
                for n in range(start_at, min(start_at + BATCH, last))
            ]
            assert (
                service.post({"object": "page", "entry": [{"id": PAGE_ID, "time": 0, "messaging": events}]}).status_code
                == 200
            )

    began = time.monotonic()
    share = args.people // 4
    writers = [
        threading.Thread(target=write, args=(k * share, args.people if k == 3 else (k + 1) * share)) for k in range(4)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    for _ in range(args.people):
        assert delivered.acquire(timeout=120), "a reply never arrived"
    written_in = time.monotonic() - began
    rss_written = service.rss_kib() / 1024
    peak = service.rss_kib("VmHWM") / 1024

    time.sleep(args.ttl + 1)  # everyone falls silent for longer than the TTL
    service.lines.skip_past()
    write(args.people, args.people + 1)  # one new message makes the store expire the rest
    forgot = service.lines.wait_for("idle conversations", timeout=60)
    assert delivered.acquire(timeout=60)
    rss_expired = service.rss_kib() / 1024
    # A second crowd of the same size: memory freed by expiry is reused, so RSS stays level.
    write(args.people + 1, 2 * args.people + 1)
    for _ in range(args.people):
        assert delivered.acquire(timeout=120), "a reply never arrived"
    rss_second = service.rss_kib() / 1024
    peak_second = service.rss_kib("VmHWM") / 1024
    service.stop()
    graph.close()
    model.close()

    held = re.search(r"forgot (\d+) idle conversations; (\d+) remain", forgot)
    print(
        f"{args.people:,} people writing once each (batches of {BATCH}), CONVERSATION_TTL {args.ttl:g} s, "
        "MAX_CONVERSATIONS 10,000"
    )
    print(f"  machine: {machine()}")
    print(f"  RSS at start        {rss_idle:.0f} MiB")
    print(f"  RSS after writing   {rss_written:.0f} MiB  (peak {peak:.0f} MiB; {written_in:.0f} s to answer everyone)")
    forgot, remain = held.groups() if held else ("?", "?")
    print(f"  idle expiry forgot  {forgot} conversations, {remain} remain")
    print(f"  RSS after expiry    {rss_expired:.0f} MiB  (CPython keeps freed memory for reuse)")
    print(f"  RSS after {args.people:,} more  {rss_second:.0f} MiB  (peak {peak_second:.0f} MiB)")


if __name__ == "__main__":
    main()
