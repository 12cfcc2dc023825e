"""Keep Messenger's typing indicator on while a reply is being written."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

logger = logging.getLogger(__name__)


class TypingIndicator:
    """Shows typing to a person and renews it from one background thread until the reply is ready."""

    def __init__(self, send_typing: Callable[[str], object], interval: float, clock: Callable[[], float] = time.monotonic):
        self._send_typing = send_typing
        self._interval = interval
        self._clock = clock
        self._changed = threading.Condition()
        self._due: dict[str, float] = {}
        self._sending: set[str] = set()
        self._thread: threading.Thread | None = None

    @contextmanager
    def shown(self, psid: str) -> Iterator[None]:
        """Show typing now and keep it on until the block ends."""
        self._send_typing(psid)
        with self._changed:
            self._due[psid] = self._clock() + self._interval
            if self._thread is None:
                # Started on first use rather than at import, so a forking server gets it per worker.
                self._thread = threading.Thread(target=self._renew_forever, name="typing", daemon=True)
                self._thread.start()
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                del self._due[psid]
                # A renewal landing after the reply would show typing for 20 s more: wait it out.
                self._changed.wait_for(lambda: psid not in self._sending)

    def _renew_forever(self) -> None:
        while True:
            with self._changed:
                due = self._take_due()
                while not due:
                    # Woken early whenever someone starts or stops typing, to recompute the wait.
                    self._changed.wait(self._next_wait())
                    due = self._take_due()
                self._sending.update(due)
            for psid in due:
                try:
                    self._send_typing(psid)
                finally:
                    with self._changed:
                        self._sending.discard(psid)
                        self._changed.notify_all()

    def _take_due(self) -> list[str]:
        now = self._clock()
        due = [psid for psid, at in self._due.items() if at <= now]
        for psid in due:
            self._due[psid] = now + self._interval
        return due

    def _next_wait(self) -> float | None:
        if not self._due:
            return None
        return max(0.0, min(self._due.values()) - self._clock())
