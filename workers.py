"""Worker threads that answer people concurrently, one message at a time per person."""

from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

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
