"""A throwaway redis-server on a free loopback port, for the store tests and the store benchmark."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.gunicorn_service import free_port


class RedisServer:
    """`redis-server` on 127.0.0.1; `url` once it accepts connections.

    Without `aof_dir` nothing is persisted; with it, every write is in the append-only file there
    before Redis answers (`appendfsync always`), as docs/production.md asks production to run it.
    """

    def __init__(self, aof_dir: Path | None = None) -> None:
        self._binary = shutil.which("redis-server")
        if self._binary is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        persistence = ["--appendonly", "no"]
        if aof_dir is not None:
            persistence = ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(aof_dir)]
        self._command = [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence]
        self.start()

    def start(self) -> None:
        """Start (or start again, on the same port and files) and wait until it accepts connections."""
        self.process = subprocess.Popen(self._command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "Ready to accept connections" in line:
                break
        else:
            raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        """Stop it as a crash would: SIGKILL, nothing flushed on the way out."""
        self.process.kill()
        self._reap()

    def stop(self) -> None:
        """Stop the server."""
        self.process.terminate()
        self._reap()

    def _reap(self) -> None:
        self.process.wait(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()
