"""Under gunicorn, a worker stopped with SIGTERM finishes the replies it has started."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import requests

from conftest import APP_SECRET, OPENAI_KEY, PAGE_TOKEN, VERIFY_TOKEN, meta_json, page_body, text_event
from fakes import FakeGraph, FakeOpenAI, Reply, completion
from signature import sign

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Lines:
    """Reads a process's stderr on a thread so the test can wait for a given line."""

    def __init__(self, stream) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put("")

    def wait_for(self, text: str, timeout: float = 30) -> str:
        while True:
            line = self._queue.get(timeout=timeout)
            self.seen.append(line)
            if text in line:
                return line
            assert line, f"process ended before printing {text!r}:\n{''.join(self.seen)}"


def test_sigterm_lets_a_started_reply_finish(tmp_path):
    graph, model = FakeGraph(), FakeOpenAI()
    asked, release = threading.Event(), threading.Event()

    def slow_answer(request: dict) -> Reply:
        asked.set()
        release.wait(timeout=30)
        return completion("finished after SIGTERM")

    model.default = slow_answer
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PAGE_ACCESS_TOKEN": PAGE_TOKEN, "VERIFY_TOKEN": VERIFY_TOKEN,
        "APP_SECRET": APP_SECRET, "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": model.base_url, "GRAPH_API_URL": graph.url + "/v23.0",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", "app:create_app()"],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = Lines(server.stderr)
        lines.wait_for("ready:")
        raw = meta_json(page_body(text_event("please answer")))
        response = requests.post(
            f"http://127.0.0.1:{port}/", data=raw, timeout=10,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, APP_SECRET)},
        )
        assert response.status_code == 200
        assert asked.wait(timeout=30), "the model was never asked"

        server.send_signal(signal.SIGTERM)
        lines.wait_for("Worker exiting")  # the worker has stopped serving; its reply is still waiting
        release.set()
        assert server.wait(timeout=30) == 0
        assert graph.texts() == ["finished after SIGTERM"]
    finally:
        release.set()
        if server.poll() is None:
            server.kill()
        graph.close()
        model.close()
