"""Tool round benchmark: what one round of tool calls adds to a reply, in the service's CPU and in latency.

    python -m bench.tool_round

The same short question is answered two ways, alternating round by round: without tools (TOOLS_FILE unset), and
with one round of tools (the model asks for `order_status`, the service calls a local API, then the model answers
from the result). The fake model and the tool API answer at once, in a process of their own, so what is measured is
the service's own work: the tools offered in the request, the streamed call joined, the arguments checked, the
HTTP call made, the second request. Reported: CPU per reply (this process, all its threads) and the median time
from the webhook to the reply's last Send API call, each the median of the rounds.

Then two slow tools, straight through the toolbox: how long another person's two calls take while one reply's 40
calls hang on an API that answers in `--slow` seconds, and how long one call with `timeout = 1` takes against an API
that sends its headers a byte every `--trickle` seconds (100 bytes).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import statistics
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from bench.common import FakeGraph, FakeOpenAI, parse
from inboxgpt.model.completion import ToolCall
from inboxgpt.tools.http import Caller, ToolError, call_tool
from inboxgpt.tools.spec import HttpTool
from inboxgpt.tools.toolbox import Toolbox
from inboxgpt.web.app import EXTENSION, create_app
from tests.fakes import FakeToolApi, Reply, Trickle, completion, tool_calls
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


class ToolApi(FakeToolApi):
    """The order API, slow for the flood's calls."""

    def __init__(self, slow: float):
        super().__init__()
        self._slow = slow

    def route(self, path: str, request: dict) -> Reply:
        order = {"order": {"number": "1042", "status": "out for delivery"}}
        return Reply(body=order, delay=self._slow if "customer=flood" in path else 0.0)


def serve_fakes(connection: Connection, slow: float) -> None:
    """Run the fake APIs until the benchmark says it is done; the flood's orders take `slow` seconds."""
    graph, model, api = FakeGraph(), FakeOpenAI(), ToolApi(slow)
    model.default = model_answer
    connection.send((graph.url, model.base_url, api.url))
    connection.recv()
    for server in (graph, model, api):
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replies", type=int, default=300, help="replies per round and way")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slow", type=float, default=1.0, help="seconds the flooded API takes per call")
    parser.add_argument("--trickle", type=float, default=0.1, help="seconds between the trickling API's bytes")
    args = parse(parser, replies=10, rounds=1, slow=0.2, trickle=0.02)
    ours, theirs = multiprocessing.Pipe()
    fakes = multiprocessing.Process(target=serve_fakes, args=(theirs, args.slow))
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
        flooded = flood(apps["one tool round"].extensions[EXTENSION].toolbox)
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
    others, whole = flooded
    print(
        f"another person's 2 calls during a flood of 40 ({args.slow:g} s each): {others:.2f} s; the flood {whole:.2f} s"
    )
    print(
        f"a call with timeout = 1 against headers sent a byte every {args.trickle:g} s: {trickled(args.trickle):.2f} s"
    )


def flood(toolbox: Toolbox | None) -> tuple[float, float]:
    """Seconds another person's two calls take while one reply's 40 calls wait on a slow API, and the flood's own."""
    assert toolbox is not None
    calls = [ToolCall(f"call_{n}", "order_status", '{"order_number": "1042"}') for n in range(40)]
    started = time.perf_counter()
    flooding = threading.Thread(target=toolbox.run, args=(calls, Caller("flood", "messenger")))
    flooding.start()
    time.sleep(0.1)  # the flood's calls are under way
    mine = time.perf_counter()
    toolbox.run(calls[:2], Caller("1000", "messenger"))
    others = time.perf_counter() - mine
    flooding.join()
    return others, time.perf_counter() - started


def trickled(delay: float) -> float:
    """Seconds one call with a timeout of 1 s takes against a server that sends 100 bytes of headers slowly."""
    answer = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100 + b"\r\nContent-Length: 2\r\n\r\n{}"
    slow = Trickle(answer, fast=17, delay=delay)
    tool = HttpTool("order_status", "An order's status.", {}, "GET", slow.url + "/orders/1", timeout=1.0)
    started = time.perf_counter()
    try:
        call_tool(tool, {}, Caller("1000", "messenger"), allow_private=True)
    except ToolError:
        pass  # late, as it should be
    finally:
        slow.close()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
