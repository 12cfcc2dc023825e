"""Worker threads that answer people concurrently, one message at a time per person."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Callable

from events import Event, decode, encode
from store import Store, StoreUnavailable

logger = logging.getLogger(__name__)

Task = Callable[[], None]


class KeyedWorkers:
    """Runs tasks on a thread pool; tasks with the same key run one at a time, in order."""

    def __init__(self, max_workers: int):
        # Python joins a ThreadPoolExecutor's threads at interpreter exit, after they have
        # run everything queued, so a worker stopped by gunicorn (SIGTERM) finishes its replies.
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="reply")
        self._lock = threading.Condition()
        self._queues: dict[str, deque[Task]] = {}
        self._pending = 0

    def submit(self, key: str, task: Task) -> None:
        """Queue `task` behind any earlier task for `key`."""
        with self._lock:
            self._pending += 1
            queue = self._queues.get(key)
            if queue is not None:
                queue.append(task)
                return
            self._queues[key] = deque([task])
        self._pool.submit(self._drain, key)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued task has run; return False if `timeout` passed first."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending == 0, timeout)

    def shutdown(self) -> None:
        """Run what is queued, then stop the threads."""
        self._pool.shutdown(wait=True)

    def _drain(self, key: str) -> None:
        # One drain per key at a time: it runs the key's tasks until its queue is empty.
        while True:
            with self._lock:
                queue = self._queues[key]
                if not queue:
                    del self._queues[key]
                    return
                task = queue[0]
            try:
                task()
            except Exception:
                logger.exception("reply task failed")
            finally:
                with self._lock:
                    queue.popleft()
                    self._pending -= 1
                    self._lock.notify_all()


class Dispatcher:
    """Queues each event in the store, then answers each person's queue in order under the person's lock.

    The lock lives in the store, so with a shared store one person's events are answered one at a
    time and in order even when they reach different processes or machines.
    """

    def __init__(self, store: Store, handle: Callable[[Event], None], workers: KeyedWorkers, lock_ttl: float):
        self._store = store
        self._handle = handle
        self._workers = workers
        self._lock_ttl = lock_ttl
        self._nonce = uuid.uuid4().hex[:8]

    @property
    def _owner(self) -> str:
        """Who holds a lock: this machine and process (read each time, so a fork is someone else)."""
        return f"{socket.gethostname()}:{os.getpid()}:{self._nonce}"

    def submit(self, event: Event) -> bool:
        """Queue an event unless it was seen before; a worker answers it after the person's earlier ones."""
        if not self._store.accept(event.event_id, event.psid, encode(event)):
            return False
        self._workers.submit(event.psid, partial(self._drain, event.psid))
        return True

    def resume(self) -> None:
        """Answer events left queued by a process that stopped or crashed before handling them."""
        for psid in self._store.pending():
            self._workers.submit(psid, partial(self._drain, psid))

    def resume_every(self, seconds: float) -> None:
        """Call `resume` from a background thread, so a crashed holder's lock, once expired, frees its queue."""

        def loop() -> None:
            while True:
                time.sleep(seconds)
                try:
                    self.resume()
                except StoreUnavailable:
                    logger.warning("store unavailable; will retry queued events later")

        threading.Thread(target=loop, name="resume-queued", daemon=True).start()

    def _drain(self, psid: str) -> None:
        # Whoever holds the person's lock answers their queue until it is empty; the others leave
        # it to them. The queue is looked at again after letting go, so an event queued meanwhile
        # by another process is never stranded.
        while self._store.take_lock(psid, self._owner, self._lock_ttl):
            try:
                while (item := self._store.peek(psid)) is not None:
                    try:
                        self._handle(decode(item))
                    except Exception:
                        logger.exception("answering an event for psid=%s failed", psid)
                    # Removed only once handled: after a crash, the event is answered on restart.
                    self._store.pop(psid)
                    if not self._store.take_lock(psid, self._owner, self._lock_ttl):
                        return  # the lock expired and another worker took over
            finally:
                self._store.release_lock(psid, self._owner)
            if self._store.peek(psid) is None:
                return
