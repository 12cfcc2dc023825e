"""Reply CPU benchmark: the service's own CPU for one reply, with nothing else competing for it.

    python -m bench.reply_cpu
    python -m bench.reply_cpu --stream      # a ~300-token answer in four paragraphs, streamed
    python -m bench.reply_cpu --channel whatsapp    # WhatsApp's webhooks and Cloud API instead of Messenger's

`bench/load.py` measures CPU under load, where 40 threads contend for one interpreter and the load
generator and fake APIs share the machine's two cores. Here the fake Graph API and fake OpenAI run
in a process of their own, and the service in this one answers one message at a time, through its
real webhook (the Flask app), dispatcher, bot, model client and Send API client. Reported: this
process's CPU time per reply (all its threads: typing and seen included), median of the rounds.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import statistics
import time
from multiprocessing.connection import Connection

from bench.common import FakeGraph, FakeOpenAI, parse
from bench.load import LONG_ANSWER
from inboxgpt.web.app import EXTENSION, create_app
from tests.fakes import completion
from tests.helpers import (
    APP_SECRET,
    OPENAI_KEY,
    PAGE_TOKEN,
    VERIFY_TOKEN,
    WHATSAPP_NUMBER_ID,
    WHATSAPP_TOKEN,
    meta_json,
    page_body,
    signed_headers,
    text_event,
)

SHORT_ANSWER = "An answer of a typical length, a sentence or two."
MODEL_SECONDS = 0.02


def serve_fakes(connection: Connection, answer: str) -> None:
    """Run both fake APIs until the benchmark says it is done."""
    graph, model = FakeGraph(), FakeOpenAI()
    # A model that takes a moment, as every real one does: typing and seen go out before its answer (an
    # answer faster than their turn would leave them out, and their CPU with them).
    model.default = lambda request: completion(answer, delay=MODEL_SECONDS)
    connection.send((graph.url, model.base_url))
    connection.recv()  # until the benchmark says it is done
    graph.close()
    model.close()


def whatsapp_text(person: str, mid: str, text: str) -> dict:
    """A WhatsApp webhook body carrying one text message, as the Cloud API sends it."""
    message = {"from": person, "id": f"wamid.{mid}", "timestamp": str(int(time.time())), "type": "text"}
    value = {"messaging_product": "whatsapp", "messages": [{**message, "text": {"body": text}}]}
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stream", action="store_true", help="a ~300-token answer in four paragraphs, streamed")
    parser.add_argument("--replies", type=int, default=400, help="replies per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--channel", choices=("messenger", "whatsapp"), default="messenger")
    args = parse(parser, replies=20, rounds=1)

    ours, theirs = multiprocessing.Pipe()
    fakes = multiprocessing.Process(target=serve_fakes, args=(theirs, LONG_ANSWER if args.stream else SHORT_ANSWER))
    fakes.start()
    graph_url, model_url = ours.recv()
    app = create_app(
        {
            "PAGE_ACCESS_TOKEN": PAGE_TOKEN,
            "VERIFY_TOKEN": VERIFY_TOKEN,
            "APP_SECRET": APP_SECRET,
            "OPENAI_API_KEY": OPENAI_KEY,
            "OPENAI_BASE_URL": model_url,
            "GRAPH_API_URL": graph_url + "/v23.0",
            "LIMIT_PER_MINUTE": "0",
            "LIMIT_PER_DAY": "0",
            "LIMIT_GLOBAL_PER_DAY": "0",
            "STREAM": "on" if args.stream else "off",
            "LOG_LEVEL": "WARNING",
            "WHATSAPP_TOKEN": WHATSAPP_TOKEN,
            "WHATSAPP_PHONE_NUMBER_ID": WHATSAPP_NUMBER_ID,
        }
    )
    service = app.extensions[EXTENSION]
    client = app.test_client()
    mids = itertools.count()

    def reply(n: int) -> None:
        # Forty people in turn, so histories grow as in bench/load.py.
        person, mid = str(1000 + n % 40), f"m_{next(mids)}"
        body = whatsapp_text(person, mid, f"question {n}") if args.channel == "whatsapp" else None
        raw = meta_json(body or page_body(text_event(f"question {n}", psid=person, mid=mid)))
        client.post("/", data=raw, headers=signed_headers(raw))
        assert service.dispatcher.wait_idle(timeout=30)

    try:
        for n in range(40):  # warm up: connections opened, code paths loaded
            reply(n)
        per_reply = []
        for _ in range(args.rounds):
            started = time.process_time()
            for n in range(args.replies):
                reply(n)
            per_reply.append((time.process_time() - started) * 1000 / args.replies)
    finally:
        service.close()
        ours.send("done")
        fakes.join(timeout=10)
    what = "a ~300-token answer, streamed" if args.stream else "a short answer, not streamed"
    what += f", {args.channel}"
    print(
        f"{what}: {statistics.median(per_reply):.2f} ms of CPU per reply "
        f"(median of {args.rounds} rounds of {args.replies}: {', '.join(f'{ms:.2f}' for ms in per_reply)})"
    )


if __name__ == "__main__":
    main()
