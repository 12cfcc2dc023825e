"""A request body must arrive whole, within a deadline and a size cap, before the app sees it.

WSGI servers hand the app a stream and block a thread on every read of it; a client trickling its
body a byte a second would hold that thread for as long as it likes. `BodyLimits` reads the body
first, under a deadline that a watchdog enforces by shutting the socket's read side (so a
trickle cannot renew it byte by byte): a late body gets `408`, one over the cap `413`, chunked
or not. The headers arrive before the app is called, so a proxy that buffers requests (nginx,
see deploy/) is still what shields the server's threads from slow headers.
"""

from __future__ import annotations

import contextlib
import heapq
import io
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
# Where the WSGI servers we run under put the request's socket.
SOCKET_KEYS = ("gunicorn.socket", "werkzeug.socket")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Late:
    """Whether the watchdog cut a request's body off."""

    def __init__(self) -> None:
        self.cut = False


class Watchdog:
    """One thread per process that shuts the read side of sockets whose deadline has passed."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._deadlines: list[tuple[float, int, socket.socket, Late]] = []
        self._order = itertools.count()
        self._pid: int | None = None

    @contextlib.contextmanager
    def watch(self, sock: socket.socket | None, seconds: float) -> Iterator[Late]:
        """Cut `sock`'s reading off if the block has not ended within `seconds`."""
        late = Late()
        if sock is None:
            yield late
            return
        entry = (time.monotonic() + seconds, next(self._order), sock, late)
        with self._changed:
            if self._pid != os.getpid():  # first use, or first use after a fork: a thread of our own
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="body-watchdog", daemon=True).start()
            heapq.heappush(self._deadlines, entry)
            self._changed.notify()
        try:
            yield late
        finally:
            with self._changed:
                if entry in self._deadlines:
                    self._deadlines.remove(entry)
                    heapq.heapify(self._deadlines)

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                while self._deadlines and self._deadlines[0][0] <= now:
                    _, _, sock, late = heapq.heappop(self._deadlines)
                    late.cut = True
                    with contextlib.suppress(OSError):  # the client may be gone already
                        sock.shutdown(socket.SHUT_RD)
                self._changed.wait(self._deadlines[0][0] - now if self._deadlines else None)


class BodyLimits:
    """WSGI middleware: the body is read whole within `seconds` and `max_bytes`, or refused."""

    def __init__(self, app: WSGIApp, max_bytes: int, seconds: float, watchdog: Watchdog | None = None):
        self._app = app
        self._max_bytes = max_bytes
        self._seconds = seconds
        self._watchdog = watchdog or Watchdog()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return self._app(environ, start_response)
        declared = environ.get("CONTENT_LENGTH") or ""
        length = int(declared) if declared.isdigit() else None  # None: chunked
        if length is not None and length > self._max_bytes:
            return refuse(start_response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        sock = next((environ[key] for key in SOCKET_KEYS if key in environ), None)
        with self._watchdog.watch(sock, self._seconds) as late:
            try:
                body = read_capped(environ["wsgi.input"], length, self._max_bytes)
            except OSError:
                body = None
        if late.cut or body is None:
            logger.warning("request refused: its body did not arrive within %g s", self._seconds)
            return refuse(start_response, HTTPStatus.REQUEST_TIMEOUT)
        if len(body) > self._max_bytes:
            return refuse(start_response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        # The app reads the body from memory, as if it had come with a Content-Length.
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = True
        return self._app(environ, start_response)


def read_capped(stream: Any, length: int | None, max_bytes: int) -> bytes | None:
    """Up to max_bytes + 1 bytes of the body (one more shows it is too large); None if it ended short."""
    wanted = max_bytes + 1 if length is None else length
    parts: list[bytes] = []
    received = 0
    while received < wanted:
        part = stream.read(min(CHUNK, wanted - received))
        if not part:
            break
        parts.append(part)
        received += len(part)
    if length is not None and received < length:
        return None
    return b"".join(parts)


def refuse(start_response: Callable[..., Any], status: HTTPStatus) -> list[bytes]:
    """A short text answer that also closes the connection: what is left of the body is not read."""
    text = status.phrase.encode()
    start_response(
        f"{status.value} {status.phrase}",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(text))), ("Connection", "close")],
    )
    return [text]
