"""Load benchmark: N people each sending messages one after another, against a model that takes a second.

    python -m bench.load --people 40
    python -m bench.load --people 200
    python -m bench.load --people 40 --baseline     # the seed design, for comparison
    python -m bench.load --people 40 --stream       # a four-paragraph answer of ~300 tokens, streamed

Each person sends a message as Meta delivers it (one signed POST), waits for the reply to reach
the fake Graph API and be delivered (the Graph API's answer), and sends the next. Reported: webhook
ack latency, reply latency (message sent -> reply received by the Graph API) as a ratio to the
model's delay, typing indicator
latency, throughput, peak RSS of the service, and lost or duplicated replies.
"""

from __future__ import annotations

import argparse
import itertools
import queue
import random
import threading
import time
from collections import defaultdict

import requests

from bench.common import FakeGraph, FakeOpenAI, machine, parse, percentile, signed_message, start
from tests.fakes import Reply, completion

# About 300 tokens in four paragraphs, as a model writes a longer answer.
LONG_ANSWER = "\n\n".join(
    f"Part {n} of the answer goes into some detail about the question, " + "with a few more words to read " * 9
    for n in range(4)
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--messages", type=int, default=5, help="messages each person sends, one after another")
    parser.add_argument("--model-delay", type=float, default=1.0, help="seconds the fake model takes to answer")
    parser.add_argument("--graph-latency", type=float, default=0.1, help="seconds the fake Graph API takes to answer")
    parser.add_argument("--baseline", action="store_true", help="run the seed design instead")
    parser.add_argument("--burst", action="store_true", help="everyone sends the first message at the same instant")
    parser.add_argument(
        "--stream", action="store_true", help="a ~300-token answer in four paragraphs, streamed (default: not)"
    )
    parser.add_argument("--workers", type=int, default=1, help="gunicorn worker processes (WEB_CONCURRENCY)")
    parser.add_argument("--store", default="memory://", help="STORE_URL; several workers need sqlite:/// or redis://")
    args = parse(parser, people=4, messages=2, model_delay=0.05, graph_latency=0.01)
    print(
        run(
            args.people,
            args.messages,
            args.model_delay,
            args.graph_latency,
            args.baseline,
            args.burst,
            args.workers,
            args.store,
            args.stream,
        )
    )


def run(
    people: int,
    messages: int,
    model_delay: float,
    graph_latency: float,
    baseline: bool,
    burst: bool,
    workers: int = 1,
    store_url: str = "memory://",
    stream: bool = False,
) -> str:
    replies: dict[str, queue.Queue[float]] = defaultdict(queue.Queue)
    typing: dict[str, list[float]] = defaultdict(list)

    # A streamed answer comes in one message per paragraph: the reply is whole with its last.
    pieces = LONG_ANSWER.count("\n\n") + 1 if stream else 1
    received: dict[str, int] = defaultdict(int)
    first_pieces: dict[str, list[float]] = defaultdict(list)

    def graph_answer(request: dict) -> Reply:
        now = time.monotonic()
        psid = request.get("recipient", {}).get("id", "")
        if "message" in request:
            received[psid] += 1
            if received[psid] % pieces == 1 % pieces:
                first_pieces[psid].append(now)
            if received[psid] % pieces == 0:
                replies[psid].put(now)
        elif request.get("sender_action") == "typing_on":
            typing[psid].append(now)
        return Reply(body={"recipient_id": psid, "message_id": "m_sent"}, delay=graph_latency)

    graph, model = FakeGraph(), FakeOpenAI()
    graph.default = graph_answer
    answer = LONG_ANSWER if stream else "An answer of a typical length, a sentence or two."
    model.default = lambda request: completion(answer, delay=model_delay)
    service = start(
        graph,
        model,
        baseline=baseline,
        WORKER_THREADS=str(max(64, people)),
        WEB_CONCURRENCY=str(workers),
        STORE_URL=store_url,
        LIMIT_PER_MINUTE="0",
        LIMIT_PER_DAY="0",
        LIMIT_GLOBAL_PER_DAY="0",
        STREAM="on" if stream else "off",
    )
    mids = itertools.count()
    acks: list[float] = []
    reply_latencies: list[float] = []
    first_latencies: list[float] = []
    typing_latencies: list[float] = []
    lost = 0
    lock = threading.Lock()
    ready = threading.Barrier(people + 1)

    def person(psid: str, offset: float) -> None:
        nonlocal lost
        session = requests.Session()
        ready.wait()
        # People start writing at random moments within the first model delay, not all in
        # the same millisecond; after that each writes as soon as the last reply is delivered.
        time.sleep(offset)
        for n in range(messages):
            raw, headers = signed_message(psid, f"m_{next(mids)}", f"question {n} from {psid}")
            sent = time.monotonic()
            response = session.post(service.url + "/", data=raw, timeout=120, headers=headers)
            acked = time.monotonic()
            try:
                arrived = replies[psid].get(timeout=model_delay * 20 + 30)
            except queue.Empty:
                with lock:
                    lost += 1
                continue
            # The person reads the reply once Meta has taken it, one Graph API round trip later.
            time.sleep(max(0.0, arrived + graph_latency - time.monotonic()))
            shown = [t for t in typing[psid] if t >= sent]
            with lock:
                acks.append(acked - sent)
                reply_latencies.append(arrived - sent)
                first_latencies.append(max(t for t in first_pieces[psid] if t <= arrived) - sent)
                if shown:
                    typing_latencies.append(shown[0] - sent)
            assert response.status_code == 200

    start_within = 0.0 if burst else model_delay
    offsets = random.Random(people)
    threads = [
        threading.Thread(target=person, args=(str(10**15 + n), offsets.uniform(0, start_within))) for n in range(people)
    ]
    for thread in threads:
        thread.start()
    ready.wait()
    began = time.monotonic()
    cpu_before = service.cpu_seconds()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    peak_rss_mib = service.rss_kib("VmHWM") / 1024
    cpu_seconds = service.cpu_seconds() - cpu_before
    service.stop()
    duplicated = sum(q.qsize() for q in replies.values())  # replies beyond one per message
    graph.close()
    model.close()

    design = "seed design (model called inline)" if baseline else "this service"
    ms = lambda seconds: f"{seconds * 1000:.0f} ms"  # noqa: E731
    lines = [
        f"{design}: {people} people x {messages} messages, model {model_delay:g} s, "
        f"Graph API {graph_latency * 1000:.0f} ms"
        + (", all starting at once" if burst else "")
        + (", a ~300-token answer streamed" if stream else "")
        + f", {workers} worker(s), {store_url}",
        f"  machine: {machine()}",
        f"  webhook ack      p50 {ms(percentile(acks, 50))}  p95 {ms(percentile(acks, 95))}"
        f"  p99 {ms(percentile(acks, 99))}",
        f"  reply latency    p50 {percentile(reply_latencies, 50) / model_delay:.2f}x"
        f"  p95 {percentile(reply_latencies, 95) / model_delay:.2f}x  (of the model's delay)",
        f"  first message    p50 {percentile(first_latencies, 50) / model_delay:.2f}x"
        f"  p95 {percentile(first_latencies, 95) / model_delay:.2f}x",
        f"  typing shown     p95 {ms(percentile(typing_latencies, 95))}"
        if typing_latencies
        else "  typing shown     never",
        f"  throughput       {len(reply_latencies) / elapsed:.1f} replies/s over {elapsed:.1f} s",
        f"  service CPU      {cpu_seconds / max(1, len(reply_latencies)) * 1000:.1f} ms per reply",
        f"  peak RSS         {peak_rss_mib:.0f} MiB (gunicorn master + workers)",
        f"  lost replies     {lost}   duplicated replies {duplicated}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
