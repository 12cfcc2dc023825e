"""The console under load: its pages with 10,000 conversations in the store, and the webhook's acknowledgements
while a staff member's browser polls it.

    python -m bench.console                       # 10,000 conversations, SQLite and Redis
    python -m bench.console --poll-every 2.5      # the browser polling as console.js does (default: 25 times faster)
    python -m bench.console --quick               # 500 conversations, a few seconds (what CI runs)

1. Pages. The store (SQLite in a temporary folder, then a real redis-server started here on a free loopback port)
   is filled with --conversations conversations of a few entries each, and one of --messages messages; then the
   service runs under gunicorn (`gunicorn -c gunicorn.conf.py`, pinned to core 1 with taskset where there are two
   cores; this process on core 0), a staff member signs in, and each page is asked for --requests times, one
   after another: the conversation list (the whole page, and the part console.js re-reads), the conversation of
   --messages messages (the same two), a search, the Leads and Usage pages. Reported: p50 and p95 of each, against
   the target of 100 ms for the list and the long conversation.
2. Acknowledgements. The same service (SQLite) gets --webhooks signed webhooks, one after another, each a new
   message to a fake model; the ack latency (POST sent -> 200 received) is measured without, then with, a thread
   that reads the console's live list and the long conversation's live part every --poll-every seconds (console.js
   reads them every 2.5 s; the default stresses it 25 times as hard), in turns, twice. Reported: ack p50/p95 of
   each run.

Figures are reported, never asserted: the quick mode runs on CI machines whose noise would fail any threshold.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from bench.common import FakeGraph, FakeOpenAI, machine, parse, percentile, settings, signed_message
from inboxgpt.console.staff import Staff
from inboxgpt.conversation.transcript import Entry, Kind
from inboxgpt.store import Bounds, Store
from inboxgpt.store.redis import RedisStore
from inboxgpt.store.sqlite import SQLiteStore
from tests.fakes import completion
from tests.gunicorn_service import GunicornService
from tests.redis_server import RedisServer

SECRET_KEY = "bench-console-secret-key-of-at-least-32-characters"
PASSWORD = "a bench password"
LONG = "7100000000000000"  # the conversation of --messages messages
TARGET_MS = 100
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# Room for every conversation seeded and the webhooks' new ones: none is pushed out during a run.
MAX_CONVERSATIONS = 100_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=200, help="messages of the long conversation")
    parser.add_argument("--requests", type=int, default=100, help="requests of each page")
    parser.add_argument("--webhooks", type=int, default=1000, help="webhooks of each acknowledgement run")
    parser.add_argument(
        "--poll-every", type=float, default=0.1, help="seconds between the browser's reads (console.js: 2.5)"
    )
    args = parse(parser, conversations=500, requests=20, webhooks=60)
    pinned = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    print(f"machine: {machine()}; server {'pinned to core 1, load on core 0' if pinned else 'not pinned'}")
    if pinned:
        os.sched_setaffinity(0, {0})
    prefix = ("taskset", "-c", "1") if pinned else ()
    with tempfile.TemporaryDirectory(prefix="bench-console-") as folder:
        url = f"sqlite:///{Path(folder) / 'bot.db'}"
        seed(SQLiteStore(url, bounds()), args.conversations, args.messages)
        with serve(url, prefix) as service:
            pages("sqlite", service.url, args)
            acks(service, args)
    server = RedisServer()  # on core 0 with the load (it inherits this process's affinity), not with the service
    try:
        url = server.url + "/0"
        seed(RedisStore(url, bounds()), args.conversations, args.messages)
        with serve(url, prefix) as service:
            pages("redis", service.url, args)
    finally:
        server.stop()


def bounds() -> Bounds:
    return Bounds(
        max_messages=20,
        max_tokens=3000,
        ttl=86400,
        max_conversations=MAX_CONVERSATIONS,
        dedup_ttl=36 * 3600,
        dedup_max_ids=100_000,
    )


def seed(store: Store, conversations: int, messages: int) -> None:
    """Conversations of three entries each (a question, an answer, a question waiting), every tenth waiting for a
    person; and the long one, most recently active."""
    started = time.perf_counter()
    now = time.time() - conversations - messages
    for number in range(conversations):
        psid = f"70{number:014d}"
        at = now + number
        for kind, text in ((Kind.PERSON, "Do you deliver on Sundays?"), (Kind.ASSISTANT, "Yes, until 2 pm.")):
            keep(store, psid, Entry(kind, text, at), {"channel": "messenger"})
        state = "needs_person" if number % 10 == 0 else "assistant"
        keep(store, psid, Entry(Kind.PERSON, f"And order {number}?", at), {"state": state, "waiting_since": repr(at)})
    for number in range(messages):
        kind = Kind.PERSON if number % 2 == 0 else Kind.ASSISTANT
        text = f"Message {number} of a long conversation, " + "a sentence of about the usual length. " * 2
        keep(store, LONG, Entry(kind, text, time.time() - messages + number, state="sent"), {"channel": "messenger"})
    Staff(store).add("maria", PASSWORD)
    store.close()
    took = time.perf_counter() - started
    print(f"  seeded {conversations:,} conversations and one of {messages} messages in {took:.1f} s")


def keep(store: Store, psid: str, entry: Entry, fields: dict[str, str]) -> None:
    summary = {"last_text": entry.text[:200], "last_kind": entry.kind.value, "last_at": repr(entry.at)}
    store.keep_transcript(psid, entry.encode(), {**summary, **fields})


@contextmanager
def serve(store_url: str, prefix: tuple[str, ...]) -> Iterator[GunicornService]:
    """The service under gunicorn on this store, with the console on, wired to a fake model and Graph API."""
    graph, model = FakeGraph(), FakeOpenAI()
    model.default = lambda request: completion("An answer.", delay=0.05)
    extra = {
        "STORE_URL": store_url,
        "SECRET_KEY": SECRET_KEY,
        "CONSOLE_INSECURE_COOKIES": "on",
        "MAX_CONVERSATIONS": str(MAX_CONVERSATIONS),
    }
    service = GunicornService(settings(graph, model, **extra), ready_line="Booting worker", prefix=prefix)
    try:
        service.session.get(service.url + "/healthz", timeout=30).raise_for_status()
        yield service
    finally:
        service.stop()
        graph.close()
        model.close()


def signed_in(base: str) -> requests.Session:
    session = requests.Session()
    page = session.get(base + "/console/login", timeout=30).text
    token = CSRF.search(page)
    assert token, "the sign-in page has no CSRF token"
    form = {"name": "maria", "password": PASSWORD, "csrf_token": token.group(1)}
    signed = session.post(base + "/console/login", data=form, timeout=30, allow_redirects=False)
    assert signed.status_code == 302, signed.status_code
    return session


def pages(name: str, base: str, args: argparse.Namespace) -> None:
    session = signed_in(base)
    print(f"{name}: {args.conversations:,} conversations; ms, over {args.requests} requests each")
    print(f"  {'page':<44} | {'p50':>7} | {'p95':>7}")
    for label, path, target in (
        ("conversation list (Everyone)", "/console/?view=everyone", True),
        ("conversation list, live part", "/console/?view=everyone&part=list", True),
        (f"conversation of {args.messages} messages", f"/console/c/{LONG}", True),
        (f"conversation of {args.messages} messages, live part", f"/console/c/{LONG}?part=entries", True),
        ("search, a word in every conversation", "/console/?view=everyone&q=sundays", False),
        ("search, a word in none (every one read)", "/console/?view=everyone&q=zanzibar", False),
        ("leads", "/console/leads", False),
        ("usage (30 days)", "/console/usage", False),
    ):
        times = timed(functools.partial(get, session, base + path), args.requests)
        p95 = percentile(times, 95) * 1000
        verdict = ("  within" if p95 <= TARGET_MS else "  OVER") + f" {TARGET_MS} ms" if target else ""
        print(f"  {label:<44} | {percentile(times, 50) * 1000:>7.1f} | {p95:>7.1f}{verdict}")


def get(session: requests.Session, url: str) -> None:
    answer = session.get(url, timeout=30, allow_redirects=False)
    assert answer.status_code == 200, (url, answer.status_code)


def timed(call: Callable[[], None], count: int) -> list[float]:
    call()  # the first, which fills caches, is not counted
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def acks(service: GunicornService, args: argparse.Namespace) -> None:
    """Ack latency of signed webhooks, one after another, without and with the console polled, in turns (twice
    each), so that the machine's drift falls on both alike."""
    print(f"webhook acks (sqlite), {args.webhooks} webhooks a run; ms")
    for round_ in range(2):
        quiet = ack_times(service, args.webhooks, f"quiet{round_}")
        stop, polling = threading.Event(), threading.Event()
        reads: list[float] = []
        # Signed in beforehand: the password's hash (scrypt) is not the polling's cost.
        browser = signed_in(service.url)
        poller = threading.Thread(
            target=poll, args=(browser, service.url, args.poll_every, stop, polling, reads), daemon=True
        )
        poller.start()
        polling.wait(timeout=30)
        try:
            polled = ack_times(service, args.webhooks, f"polled{round_}")
        finally:
            stop.set()
            poller.join(timeout=30)
        for label, times in (("without the console", quiet), (f"console polled every {args.poll_every} s", polled)):
            print(
                f"  {label:<44} | p50 {percentile(times, 50) * 1000:>6.1f} | p95 {percentile(times, 95) * 1000:>6.1f}"
            )
        print(f"  (the console's {len(reads)} reads meanwhile: p95 {percentile(reads, 95) * 1000:.1f} ms)")


def ack_times(service: GunicornService, count: int, run: str) -> list[float]:
    session = requests.Session()
    times = []
    for number in range(count):
        raw, headers = signed_message(f"72{number:014d}", f"m_{run}_{number}", "Do you deliver on Sundays?")
        started = time.perf_counter()
        answer = session.post(service.url + "/", data=raw, headers=headers, timeout=30)
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.status_code
    return times


def poll(
    session: requests.Session,
    base: str,
    every: float,
    stop: threading.Event,
    polling: threading.Event,
    reads: list[float],
) -> None:
    """A staff member's browser: the live list and the open conversation, read again and again (`polling` set once
    the first reads are done)."""
    paths = ("/console/?view=needs&part=list", f"/console/c/{LONG}?part=entries")
    while not stop.is_set():
        for path in paths:
            started = time.perf_counter()
            get(session, base + path)
            reads.append(time.perf_counter() - started)
        polling.set()
        stop.wait(every)


if __name__ == "__main__":
    main()
