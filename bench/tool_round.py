"""Tool round benchmark: what one round of tool calls adds to a reply, in the service's CPU and in latency.

    python -m bench.tool_round

The same short question is answered two ways, alternating round by round: without tools (TOOLS_FILE unset), and
with one round of tools (the model asks for `order_status`, the service calls a local API, then the model answers
from the result). The fake model and the tool API answer at once, in a process of their own, so what is measured is
the service's own work: the tools offered in the request, the streamed call joined, the arguments checked, the
HTTP call made, the second request. Reported: CPU per reply (this process, all its threads) and the median time
from the webhook to the reply's last Send API call, each the median of the rounds.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from bench.common import FakeGraph, FakeOpenAI, parse
from inboxgpt.web.app import EXTENSION, create_app
from tests.fakes import FakeToolApi, Reply, completion, tool_calls
from tests.helpers import (
    APP_SECRET,
    OPENAI_KEY,
    PAGE_TOKEN,
    VERIFY_TOKEN,
    meta_json,
    page_body,
    signed_headers,
    text_event,
)

TOOLS = """
[[tool]]
name = "order_status"
description = "An order's status by its number."
url = "{api}/orders/{{order_number}}?customer={{person}}"
result = "order.status"
[tool.parameters]
required = ["order_number"]
[tool.parameters.properties.order_number]
type = "string"
pattern = "^[0-9]{{1,10}}$"
"""


def model_answer(request: dict) -> Reply:
    """Asks for the order's status when offered tools, then answers from the result."""
    last = request["messages"][-1]
    if last["role"] == "tool":
        return completion(f"Your order is {last['content']}.")
    if request.get("tools"):
        return tool_calls(("order_status", {"order_number": "1042"}))
    return completion("Your order is out for delivery.")


def serve_fakes(connection: Connection) -> None:
    """Run the fake APIs until the benchmark says it is done."""
    graph, model, api = FakeGraph(), FakeOpenAI(), FakeToolApi()
    model.default = model_answer
    connection.send((graph.url, model.base_url, api.url))
    connection.recv()
    for server in (graph, model, api):
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replies", type=int, default=300, help="replies per round and way")
    parser.add_argument("--rounds", type=int, default=5)
    args = parse(parser, replies=10, rounds=1)
    ours, theirs = multiprocessing.Pipe()
    fakes = multiprocessing.Process(target=serve_fakes, args=(theirs,))
    fakes.start()
    graph_url, model_url, api_url = ours.recv()
    folder = tempfile.TemporaryDirectory()
    tools_file = Path(folder.name) / "tools.toml"
    tools_file.write_text(TOOLS.format(api=api_url))
    settings = {
        "PAGE_ACCESS_TOKEN": PAGE_TOKEN,
        "VERIFY_TOKEN": VERIFY_TOKEN,
        "APP_SECRET": APP_SECRET,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": model_url,
        "GRAPH_API_URL": graph_url + "/v23.0",
        "LIMIT_PER_MINUTE": "0",
        "LIMIT_PER_DAY": "0",
        "LIMIT_GLOBAL_PER_DAY": "0",
        "LOG_LEVEL": "WARNING",
    }
    apps = {
        "without tools": create_app(settings),
        "one tool round": create_app({**settings, "TOOLS_FILE": str(tools_file), "TOOLS_ALLOW_PRIVATE": "on"}),
    }
    mids = itertools.count()

    def reply(app, n: int) -> float:
        service, person, mid = app.extensions[EXTENSION], str(1000 + n % 40), f"m_{next(mids)}"
        raw = meta_json(page_body(text_event("where is my order 1042?", psid=person, mid=mid)))
        started = time.perf_counter()
        app.test_client().post("/", data=raw, headers=signed_headers(raw))
        assert service.dispatcher.wait_idle(timeout=30)
        return (time.perf_counter() - started) * 1000

    cpu: dict[str, list[float]] = {way: [] for way in apps}
    latency: dict[str, list[float]] = {way: [] for way in apps}
    try:
        for app in apps.values():
            for n in range(20):  # warm up: connections opened, code paths loaded
                reply(app, n)
        for _ in range(args.rounds):
            for way, app in apps.items():
                started = time.process_time()
                times = [reply(app, n) for n in range(args.replies)]
                cpu[way].append((time.process_time() - started) * 1000 / args.replies)
                latency[way].append(statistics.median(times))
    finally:
        for app in apps.values():
            app.extensions[EXTENSION].close()
        ours.send("done")
        fakes.join(timeout=10)
        folder.cleanup()
    print(f"{'':16} | CPU per reply | reply latency (median)")
    for way in apps:
        print(f"{way:16} | {statistics.median(cpu[way]):8.2f} ms   | {statistics.median(latency[way]):8.2f} ms")
    extra_cpu = statistics.median(cpu["one tool round"]) - statistics.median(cpu["without tools"])
    extra_ms = statistics.median(latency["one tool round"]) - statistics.median(latency["without tools"])
    print(f"one tool round adds {extra_cpu:.2f} ms of CPU and {extra_ms:.2f} ms of latency ({args.rounds} rounds)")


if __name__ == "__main__":
    main()
