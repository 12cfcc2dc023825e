"""The real service under gunicorn with the project's config, on a free loopback port, for e2e tests and benchmarks."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import requests

from tests.helpers import meta_json, signed_headers

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """The process ids of a process's children, their children, and so on (those still running)."""
    found: list[int] = []
    try:
        children = [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return found  # it has just exited
    for child in children:
        found += [child, *descendants(child)]
    return found


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) used so far by these processes (0 for one that has exited)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


class Lines:
    """Reads a process's output on a thread, so a caller can wait for a given line (and none is lost)."""

    def __init__(self, stream) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        with stream:
            for line in stream:
                self._queue.put(line)
        self._queue.put("")

    def skip_past(self) -> None:
        """Mark everything printed so far as read."""
        while not self._queue.empty():
            self.seen.append(self._queue.get_nowait())

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """Return the first unread line containing `text`; fail if the output ends first."""
        while True:
            line = self._queue.get(timeout=timeout)
            self.seen.append(line)
            if text in line:
                return line
            if not line:
                raise AssertionError(f"process ended before printing {text!r}:\n{''.join(self.seen)}")


class GunicornService:
    """`gunicorn -c gunicorn.conf.py` started with the given settings; stopped with SIGTERM."""

    def __init__(
        self,
        settings: dict[str, str],
        app: str | None = None,
        ready_line: str = "ready:",
        prefix: tuple[str, ...] = (),
    ):
        """`prefix` goes before the command (`taskset -c 1`, to pin the server to a core)."""
        self.app_secret = settings["APP_SECRET"]
        # Port 0: gunicorn binds a free port itself and says which. A port probed free beforehand
        # could be taken (by any outgoing connection's ephemeral port) before gunicorn binds it.
        env = {**os.environ, **settings, "PYTHONPATH": str(ROOT), "HOST": "127.0.0.1", "PORT": "0"}
        command = [*prefix, sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
        if app:
            command.append(app)
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = Lines(self.process.stdout)
        listening = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", self.lines.wait_for("Listening at:"))
        assert listening is not None
        self.port = int(listening.group(1))
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines.wait_for(ready_line)
        self.session = requests.Session()

    def post(self, payload: object, signature: str | None = None, timeout: float = 30) -> requests.Response:
        """POST a webhook body signed as Meta signs it."""
        raw = payload if isinstance(payload, bytes) else meta_json(payload)
        headers = signed_headers(raw, self.app_secret)
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        return self.session.post(self.url + "/", data=raw, headers=headers, timeout=timeout)

    def worker_pids(self) -> list[int]:
        """Process ids of the master's descendants (the gunicorn workers and any process they started)."""
        return descendants(self.process.pid)

    def rss_kib(self, field: str = "VmRSS") -> int:
        """Resident memory (or VmHWM, its peak) of master and workers together, in KiB."""
        total = 0
        for pid in [self.process.pid, *self.worker_pids()]:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        return total

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by master and workers."""
        return cpu_seconds([self.process.pid, *self.worker_pids()])

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as a redeploy does; return the exit code."""
        self.session.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
