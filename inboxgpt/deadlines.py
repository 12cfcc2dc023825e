"""Wall-clock deadlines for the calls the service makes to other people's servers: an owner's tool, a person's media.

A socket timeout bounds each read, not the call: a server that sends its headers or its body a byte at a time renews
it with every byte, and a timeout of 1 s can hold a thread for minutes. Inside `deadline(seconds)`, every connection
the classes below open or reuse on this thread is watched, and when the time is up one watchdog thread per process
shuts it both ways: the read under way ends at once (as a connection error, or as a body that ends early), and
`Deadline.passed` tells the caller why.

urllib3's pools take the connection classes through `HTTPConnectionPool`/`HTTPSConnectionPool` below, and requests
through `WatchedAdapter`.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests.adapters
import urllib3
import urllib3.connection


class Deadline:
    """The end of one call's time, and the sockets it shuts when that comes."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.passed = False
        self._ended = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []

    def remaining(self) -> float:
        """Seconds left, never below a millisecond (a socket timeout of 0 would mean "do not block")."""
        return max(self.expires - time.monotonic(), 0.001)

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock` when the time is up (at once if it is up already)."""
        # A duplicate of our own: the library may close its socket whenever it likes, and the number of a closed
        # descriptor can be given to somebody else's connection before the watchdog comes round.
        own = socket.fromfd(sock.fileno(), sock.family, sock.type)
        with self._lock:
            self._sockets.append(own)
            if self.passed:
                _shut(own)

    def expire(self) -> None:
        """The time is up: shut every socket watched (the watchdog calls this)."""
        with self._lock:
            if self._ended:
                return
            self.passed = True
            for sock in self._sockets:
                _shut(sock)

    def end(self) -> None:
        """The call is over: nothing more to shut."""
        with self._lock:
            self._ended = True
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the server may have closed it already
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One thread per process that expires deadlines when their time comes."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._waiting: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._pid: int | None = None

    def add(self, limit: Deadline) -> None:
        with self._changed:
            if self._pid != os.getpid():  # first use, or first use after a fork: a thread of our own
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="call-deadlines", daemon=True).start()
            heapq.heappush(self._waiting, (limit.expires, next(self._order), limit))
            self._changed.notify()

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                while self._waiting and self._waiting[0][0] <= now:
                    heapq.heappop(self._waiting)[2].expire()  # a call that ended in time ignores it
                self._changed.wait(self._waiting[0][0] - now if self._waiting else None)


WATCHDOG = _Watchdog()
_current = threading.local()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Bound what this thread's watched connections do within the block to `seconds` of wall clock."""
    limit = Deadline(seconds)
    outer = getattr(_current, "deadline", None)
    _current.deadline = limit
    WATCHDOG.add(limit)
    try:
        yield limit
    finally:
        _current.deadline = outer
        limit.end()


def _watch(connection: Any, sock: socket.socket) -> None:
    """Put a connection's socket under this thread's deadline, once per deadline."""
    limit = getattr(_current, "deadline", None)
    if limit is not None and getattr(connection, "_deadline", None) is not limit:
        connection._deadline = limit
        limit.watch(sock)


class WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    """A connection whose socket is under the thread's deadline: from its opening, or from its next request when it
    was kept alive from an earlier call."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(self, sock)  # before any TLS handshake, which a server can trickle too
        return sock

    def putrequest(self, method: str, url: str, skip_host: bool = False, skip_accept_encoding: bool = False) -> None:
        if self.sock is not None:
            _watch(self, self.sock)
        super().putrequest(method, url, skip_host=skip_host, skip_accept_encoding=skip_accept_encoding)


class WatchedHTTPSConnection(WatchedHTTPConnection, urllib3.connection.HTTPSConnection):
    """The same over TLS."""


class HTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection


class HTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


POOLS = {"http": HTTPConnectionPool, "https": HTTPSConnectionPool}


class WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with watched connections, directly or through a proxy."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> urllib3.PoolManager:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS has connection classes of its own
            manager.pool_classes_by_scheme = POOLS
        return manager
