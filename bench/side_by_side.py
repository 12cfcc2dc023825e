"""Side by side on the seed's own job: a sudden crowd, answered by the seed and by this service in one run.

    python -m bench.side_by_side                  # 40 people x 4 messages, model 1.0 s; pinned, then unpinned
    python -m bench.side_by_side --runs 3         # the median of 3 runs of each
    python -m bench.side_by_side --only service --env STREAM=off
    python -m bench.side_by_side --only service --env WEB_CONCURRENCY=2 --env 'STORE_URL=sqlite:///{data}/bot.db'
    python -m bench.side_by_side --quick          # a few seconds (what CI runs)

The seed (bench/seed/seed_app.py) runs as it runs itself: Flask's threaded development server, the model
called inline, in a virtual environment of its own with openai 0.28.1, which this script builds once (in
~/.cache/inboxgpt-bench/seed-venv; if it cannot, the seed's half is skipped with a line saying so). This
service runs as its README says production runs: `gunicorn -c gunicorn.conf.py` with a new owner's
defaults (only the credentials and the two upstream addresses are set, plus any --env).

The workload (../shared/seed-bench/README.md): everyone sends a first message in the same instant, then
each sends the next only after the reply to the last reached the fake Send API. The fake model answers
every request after --model-delay seconds (a streamed answer: the same delay, then all of it at once),
the fake Graph API at once. Reported per server: webhook ack p50/p95, reply latency (webhook sent ->
reply text at the Send API) p50/p95 as a multiple of the model's delay, the first typing_on after each
message (p95), and the CPU (user + system) of the server's whole process tree per reply, from /proc. Each reply's
latency is also split where the fake model sees it: webhook sent -> request at the model (each person's first
message, all sent in the same instant, apart from their later ones), and the model's answer -> reply at the Send API;
and the server's CPU until the last first message's request reached the model, per person (read every 2 ms; /proc
counts in 10 ms ticks).

Pinned: the server on core 1 (`taskset -c 1`), this process with the load and the fakes on core 0, so the
load's CPU does not queue inside the server. Unpinned: everything shares every core.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, fields
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import requests

from bench.common import FakeGraph, FakeOpenAI, machine, parse, percentile, signed_message
from tests.fakes import Reply, completion
from tests.gunicorn_service import GunicornService, Lines, cpu_seconds, descendants, free_port
from tests.helpers import APP_SECRET, OPENAI_KEY, PAGE_TOKEN, VERIFY_TOKEN

SEED_DIR = Path(__file__).resolve().parent / "seed"
SEED_VENV = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "inboxgpt-bench" / "seed-venv"
SEED_REQUIREMENTS = ("openai==0.28.1", "flask", "requests")
ANSWER = "An answer of a typical length, a sentence or two."


@dataclass(frozen=True)
class Figures:
    """One server's figures from one run (times in seconds; latencies as multiples of the model's delay)."""

    cpu_per_reply: float
    reply_p50: float
    reply_p95: float
    ack_p50: float
    ack_p95: float
    typing_p95: float | None
    replies_per_second: float
    lost: int
    first_to_model_p95: float  # webhook sent -> request at the model, each person's first message
    first_cpu_per_person: float  # the server's CPU until every first message's request was at the model, per person
    later_to_model_p50: float  # the same, their later messages
    to_reply_p95: float  # the model's answer -> reply at the Send API


class Server(Protocol):
    url: str

    def cpu_seconds(self) -> float: ...

    def stop(self) -> object: ...


class SeedServer:
    """The seed under `flask run`, as its README starts it."""

    def __init__(self, python: Path, graph_url: str, model_url: str, prefix: tuple[str, ...]):
        port = free_port()
        env = {
            **os.environ,
            "PAGE_ACCESS_TOKEN": PAGE_TOKEN,
            "VERIFY_TOKEN": VERIFY_TOKEN,
            "OPENAI_API_KEY": OPENAI_KEY,
            "OPENAI_BASE_URL": model_url + "/v1",
            "GRAPH_API_URL": graph_url,
        }
        command = [*prefix, str(python), "-m", "flask", "--app", "seed_app", "run", "--port", str(port)]
        self.process = subprocess.Popen(
            command, cwd=SEED_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines = Lines(self.process.stdout)
        self.lines.wait_for("Running on")
        self.url = f"http://127.0.0.1:{port}"

    def cpu_seconds(self) -> float:
        return cpu_seconds([self.process.pid, *descendants(self.process.pid)])

    def stop(self) -> object:
        self.process.terminate()
        return self.process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--messages", type=int, default=4, help="messages each person sends, one after another")
    parser.add_argument("--model-delay", type=float, default=1.0, help="seconds the fake model takes to answer")
    parser.add_argument("--runs", type=int, default=1, help="runs of each server per placement; medians reported")
    parser.add_argument("--only", choices=("both", "seed", "service"), default="both")
    parser.add_argument("--placement", choices=("both", "pinned", "unpinned"), default="both")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for this service (repeatable)")
    args = parse(parser, people=4, messages=2, model_delay=0.05, runs=1, placement="pinned")
    extra = dict(item.split("=", 1) for item in args.env)
    seed = seed_python() if args.only in ("both", "seed") else None
    pinnable = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    placements = ["pinned", "unpinned"] if args.placement == "both" else [args.placement]
    if "pinned" in placements and not pinnable:
        print("pinned runs skipped: they need taskset and at least 2 cores")
        placements.remove("pinned")
    print(
        f"side by side: {args.people} people x {args.messages} messages, all starting at once; "
        f"model {args.model_delay:g} s, Graph API at once" + (f"; service with {' '.join(args.env)}" if extra else "")
    )
    print(f"  machine: {machine()}")
    for placement in placements:
        pinned = placement == "pinned"
        results: dict[str, list[Figures]] = defaultdict(list)
        for _ in range(args.runs):
            if seed is not None:
                results["seed"].append(run(args, "seed", pinned, seed, extra))
            if args.only in ("both", "service"):
                results["service"].append(run(args, "service", pinned, None, extra))
        print(report(placement, args.runs, {name: median(runs) for name, runs in results.items()}))


def seed_python() -> Path | None:
    """The seed's interpreter, in a virtual environment built on first use; None if it cannot be built."""
    python = SEED_VENV / "bin" / "python"
    built = SEED_VENV / ".built"
    if built.exists():
        return python
    print(f"building the seed's virtual environment in {SEED_VENV} (once)", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(SEED_VENV)], check=True, capture_output=True)
        install = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *SEED_REQUIREMENTS]
        subprocess.run(install, check=True, capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as error:
        print(f"the seed's half is skipped: its virtual environment could not be built ({error})")
        return None
    built.touch()
    return python


def run(args: argparse.Namespace, name: str, pinned: bool, seed: Path | None, extra: dict[str, str]) -> Figures:
    """One server through the whole workload, with fresh fakes."""
    # Processes and threads inherit the affinity of the thread that starts them: the fakes' and the load's,
    # this one's.
    os.sched_setaffinity(0, {0} if pinned else set(range(os.cpu_count() or 1)))
    prefix = ("taskset", "-c", "1") if pinned else ()
    graph, model = Fake("graph", args.model_delay), Fake("model", args.model_delay)
    data = tempfile.TemporaryDirectory(prefix="side-by-side-")
    server: Server
    if seed is not None:
        server = SeedServer(seed, graph.url, model.url, prefix)
    else:
        # Only what an owner must set, and the --env given ("{data}" in one names a fresh folder for this run).
        owner = {
            "PAGE_ACCESS_TOKEN": PAGE_TOKEN,
            "VERIFY_TOKEN": VERIFY_TOKEN,
            "APP_SECRET": APP_SECRET,
            "OPENAI_API_KEY": OPENAI_KEY,
            "OPENAI_BASE_URL": model.url + "/v1",
            "GRAPH_API_URL": graph.url + "/v23.0",
        }
        given = {name: value.replace("{data}", data.name) for name, value in extra.items()}
        service = GunicornService({**owner, **given}, prefix=prefix)
        service.session.get(service.url + "/healthz", timeout=30).raise_for_status()
        server = service
    try:
        return workload(server, graph, model, args)
    finally:
        server.stop()
        graph.close()
        model.close()
        data.cleanup()
        print(f"  ({name}, {'pinned' if pinned else 'unpinned'}: done)", flush=True)


class Fake:
    """A fake API in a process of its own: with the load in the same interpreter, each would queue behind the
    other's threads, and the server's figures would carry the harness's waits. The fake Graph API reports each
    reply and typing indicator it receives back to this process, with the time it arrived; the fake model, each
    request, by the text of its last message."""

    def __init__(self, kind: str, model_delay: float):
        self._connection, theirs = multiprocessing.Pipe()
        self._process = multiprocessing.Process(target=_serve, args=(kind, theirs, model_delay), daemon=True)
        self._process.start()
        self.url: str = self._connection.recv()
        self.replies: dict[str, queue.Queue[float]] = defaultdict(queue.Queue)
        self.typing: dict[str, list[float]] = defaultdict(list)
        self.asked: dict[str, float] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        with contextlib.suppress(EOFError, OSError):
            while True:
                what, key, at = self._connection.recv()
                if what == "reply":
                    self.replies[key].put(at)
                elif what == "asked":
                    self.asked[key] = at
                else:
                    self.typing[key].append(at)

    def close(self) -> None:
        self._process.terminate()
        self._process.join()


def _serve(kind: str, connection: Connection, model_delay: float) -> None:
    """Serve one fake API until terminated, telling its URL first."""
    sending = threading.Lock()

    def graph_answer(request: dict) -> Reply:
        psid = request.get("recipient", {}).get("id", "")
        kind = "reply" if request.get("message", {}).get("text") else request.get("sender_action")
        if kind in ("reply", "typing_on"):
            with sending:
                connection.send((kind, psid, time.monotonic()))
        return Reply(body={"recipient_id": psid, "message_id": "m_sent"})

    def model_answer(request: dict) -> Reply:
        with sending:
            connection.send(("asked", last_text(request), time.monotonic()))
        return completion(ANSWER, delay=model_delay)

    if kind == "graph":
        graph = FakeGraph()
        graph.default = graph_answer
        connection.send(graph.url)
    else:
        model = FakeOpenAI(model_answer)
        connection.send(model.url)
    threading.Event().wait()


def last_text(request: dict) -> str:
    """The text of a chat request's last message (a string, or the text parts of a list)."""
    content = (request.get("messages") or [{}])[-1].get("content") or ""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def workload(server: Server, graph: Fake, model: Fake, args: argparse.Namespace) -> Figures:
    replies, typing = graph.replies, graph.typing
    acks: list[float] = []
    latencies: list[float] = []
    typing_latencies: list[float] = []
    # (message's place in the person's turn, seconds from sent to the model, from the model's answer to the reply)
    splits: list[tuple[int, float, float]] = []
    lost = 0
    lock = threading.Lock()
    ready = threading.Barrier(args.people + 1)

    def person(psid: str) -> None:
        nonlocal lost
        session = requests.Session()
        ready.wait()
        for n in range(args.messages):
            text = f"question {n} from {psid}"
            raw, headers = signed_message(psid, f"m_{psid}_{n}", text)
            sent = time.monotonic()
            response = session.post(server.url + "/", data=raw, headers=headers, timeout=120)
            acked = time.monotonic()
            try:
                arrived = replies[psid].get(timeout=args.model_delay * 20 + 30)
            except queue.Empty:
                with lock:
                    lost += 1
                continue
            shown = [t for t in typing[psid] if sent <= t <= arrived]
            asked = model.asked.get(text)
            with lock:
                acks.append(acked - sent)
                latencies.append((arrived - sent) / args.model_delay)
                if shown:
                    typing_latencies.append(shown[0] - sent)
                if asked is not None:
                    splits.append((n, asked - sent, arrived - asked - args.model_delay))
            assert response.status_code == 200, response.status_code

    psids = [str(10**15 + n) for n in range(args.people)]
    people = [threading.Thread(target=person, args=(psid,)) for psid in psids]
    for thread in people:
        thread.start()
    cpu_before = server.cpu_seconds()
    ready.wait()
    began = time.monotonic()
    cpu_read: list[tuple[float, float]] = []  # (when, the server's CPU), through the first messages' requests
    reading = threading.Thread(target=read_cpu, args=(server, cpu_read, began + args.model_delay), daemon=True)
    reading.start()
    for thread in people:
        thread.join()
    reading.join()
    elapsed = time.monotonic() - began
    cpu = server.cpu_seconds() - cpu_before
    first = [to_model for n, to_model, _ in splits if n == 0]
    later = [to_model for n, to_model, _ in splits if n > 0]
    firsts_at = [model.asked[text] for psid in psids if (text := f"question 0 from {psid}") in model.asked]
    everyone = len(firsts_at) == args.people and bool(cpu_read)
    firsts_cpu = cpu_until(cpu_read, max(firsts_at)) - cpu_before if everyone else 0.0
    return Figures(
        cpu_per_reply=cpu / max(1, len(latencies)),
        reply_p50=percentile(latencies, 50),
        reply_p95=percentile(latencies, 95),
        ack_p50=percentile(acks, 50),
        ack_p95=percentile(acks, 95),
        typing_p95=percentile(typing_latencies, 95) if typing_latencies else None,
        replies_per_second=len(latencies) / elapsed,
        lost=lost,
        first_to_model_p95=percentile(first, 95) if first else 0.0,
        first_cpu_per_person=firsts_cpu / args.people,
        later_to_model_p50=percentile(later, 50) if later else 0.0,
        to_reply_p95=percentile([to_reply for _, _, to_reply in splits], 95) if splits else 0.0,
    )


def read_cpu(server: Server, readings: list[tuple[float, float]], until: float) -> None:
    """Read the server's CPU every 2 ms until `until`."""
    while (now := time.monotonic()) < until:
        readings.append((now, server.cpu_seconds()))
        time.sleep(0.002)


def cpu_until(readings: list[tuple[float, float]], moment: float) -> float:
    """The server's CPU at the last reading before `moment` (the first one if none was)."""
    before = [cpu for when, cpu in readings if when <= moment]
    return before[-1] if before else readings[0][1]


def median(runs: list[Figures]) -> Figures:
    """Each figure's median over the runs (a typing figure only if every run had one)."""
    values: dict[str, Any] = {}
    for field in fields(Figures):
        column = [getattr(figures, field.name) for figures in runs]
        values[field.name] = None if None in column else statistics.median(column)
    return Figures(**values)


def report(placement: str, runs: int, figures: dict[str, Figures]) -> str:
    where = "servers on core 1, load and fakes on core 0" if placement == "pinned" else "everything on every core"
    names = {"seed": "seed (flask run)", "service": "this service (gunicorn)"}
    shown = [name for name in ("seed", "service") if name in figures]
    both = len(shown) == 2
    ms = lambda seconds: f"{seconds * 1000:.0f} ms"  # noqa: E731
    rows = [
        ("CPU per reply", lambda f: f"{f.cpu_per_reply * 1000:.1f} ms", lambda s, t: t.cpu_per_reply / s.cpu_per_reply),
        ("reply p95 / model", lambda f: f"{f.reply_p95:.2f}", lambda s, t: t.reply_p95 / s.reply_p95),
        ("reply p50 / model", lambda f: f"{f.reply_p50:.2f}", None),
        ("webhook ack p95", lambda f: ms(f.ack_p95), None),
        ("webhook ack p50", lambda f: ms(f.ack_p50), None),
        ("first typing p95", lambda f: ms(f.typing_p95) if f.typing_p95 is not None else "never", None),
        ("to model p95, 1st", lambda f: ms(f.first_to_model_p95), None),
        ("CPU per 1st, to model", lambda f: f"{f.first_cpu_per_person * 1000:.1f} ms", None),
        ("to model p50, later", lambda f: ms(f.later_to_model_p50), None),
        ("answer to reply p95", lambda f: ms(f.to_reply_p95), None),
        ("replies per second", lambda f: f"{f.replies_per_second:.1f}", None),
        ("lost replies", lambda f: str(f.lost), None),
    ]
    lines = [f"{placement} ({where}), median of {runs} run(s):"]
    lines.append(f"  {'':<20}" + "".join(f"{names[name]:>26}" for name in shown) + ("  service / seed" if both else ""))
    for label, show, ratio in rows:
        line = f"  {label:<20}" + "".join(f"{show(figures[name]):>26}" for name in shown)
        if both and ratio is not None:
            line += f"  {ratio(figures['seed'], figures['service']):>14.2f}"
        lines.append(line)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
