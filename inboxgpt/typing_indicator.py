"""Show a person that the bot has seen their message and is typing, while the model writes the reply."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

from inboxgpt.precedence import Precedence, Stage

logger = logging.getLogger(__name__)

# (person, action, the message it is about) -> whether it was shown
SendAction = Callable[[str, str, str | None], object]


class TypingIndicator:
    """Sends typing_on and mark_seen once the model request has left (after every other request under way), renews
    typing, and never lets it follow the reply."""

    def __init__(
        self,
        send_action: SendAction,
        interval: float,
        max_workers: int,
        precedence: Precedence | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._send_action = send_action
        self._precedence = precedence or Precedence()
        self._interval = interval
        self._clock = clock
        # The indicator's calls run on threads of their own so the model call starts at once
        # instead of waiting two Send API round trips.
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="typing")
        self._changed = threading.Condition()
        self._due: dict[str, float] = {}
        self._in_flight: dict[str, Future] = {}
        self._unseen: set[str] = set()  # people whose typing is due but whose message is not yet marked seen
        self._about: dict[str, str | None] = {}  # the message each person's indicator is about (WhatsApp marks it read)
        self._renewer: threading.Thread | None = None
        # Called with the person's id when a reply waits for an indicator call under way (a test's hook).
        self.on_wait: Callable[[str], object] = lambda psid: None

    @contextmanager
    def shown(self, psid: str, deferred: bool = False, message_id: str | None = None) -> Iterator[Callable[[], None]]:
        """Show seen and typing (about the person's message `message_id`) while the block runs, from its start or
        (`deferred`) from when the block calls the function it is given; on leaving, wait out any indicator call
        under way."""

        def begin() -> None:
            # Called as the model request leaves: this thread's urgent work is done (see precedence.py).
            self._precedence.done()
            with self._changed:
                if psid in self._due:
                    return
                # Due now, sent by the renewer once every request under way has left.
                self._due[psid] = self._clock()
                self._unseen.add(psid)
                self._about[psid] = message_id
                if self._renewer is None:
                    # Started on first use, not at import, so that each forked server worker has its own.
                    self._renewer = threading.Thread(target=self._renew_forever, name="typing-renewer", daemon=True)
                    self._renewer.start()
                self._changed.notify_all()

        if not deferred:
            begin()
        try:
            yield begin
        finally:
            with self._changed:
                self._due.pop(psid, None)
                self._unseen.discard(psid)
                self._about.pop(psid, None)
                call = self._in_flight.pop(psid, None)
            # Typing that arrived after the reply would show for 20 s more: the reply waits for
            # a call already under way, and one not yet started (or not yet due) is dropped.
            if call is not None and not call.cancel():
                self.on_wait(psid)
                call.result()

    def again(self, psid: str) -> None:
        """Show typing again now, while the block of `shown` runs: a message sent midway turned it off."""
        with self._changed:
            if psid in self._due:
                self._due[psid] = self._clock()
                self._changed.notify_all()

    def close(self) -> None:
        """Stop the indicator's threads, once no reply is being written."""
        self._pool.shutdown(wait=True)

    def _submit(self, psid: str, message_id: str | None, *actions: str) -> Future:
        try:
            return self._pool.submit(self._send, psid, message_id, *actions)
        except RuntimeError:
            # The process is shutting down: the reply still goes out, without an indicator.
            skipped: Future = Future()
            skipped.set_result(None)
            return skipped

    def _send(self, psid: str, message_id: str | None, *actions: str) -> None:
        try:
            for action in actions:
                self._send_action(psid, action, message_id)
        except Exception:
            # Only an indicator: its failure must not cost the person their reply.
            logger.exception("typing indicator for psid=%s failed", psid)

    def _renew_forever(self) -> None:
        while True:
            with self._changed:
                while not self._due_now():
                    # Woken whenever someone starts or stops typing or a call ends, to recompute the wait.
                    self._changed.wait(self._next_wait())
            # Every person's request under way leaves before anyone's typing (see precedence.py).
            self._precedence.wait_turn(Stage.REST)
            with self._changed:
                for psid in self._take_due():
                    # Typing first: it is what tells the person an answer is coming.
                    actions = ("typing_on", "mark_seen") if psid in self._unseen else ("typing_on",)
                    self._unseen.discard(psid)
                    call = self._submit(psid, self._about.get(psid), *actions)
                    self._in_flight[psid] = call
                    # A person's next renewal waits for this call: its end may make one due.
                    call.add_done_callback(self._call_done)

    def _call_done(self, call: Future) -> None:
        with self._changed:
            self._changed.notify_all()

    def _ready(self, psid: str) -> bool:
        """No indicator call for the person under way: a due one may be sent (typing after a paragraph included,
        which must not be lost while the last call is still on its way)."""
        call = self._in_flight.get(psid)
        return call is None or call.done()

    def _due_now(self) -> list[str]:
        now = self._clock()
        return [psid for psid, at in self._due.items() if at <= now and self._ready(psid)]

    def _take_due(self) -> list[str]:
        due = self._due_now()
        for psid in due:
            self._due[psid] = self._clock() + self._interval
        return due

    def _next_wait(self) -> float | None:
        """Until the next renewal, of those not waiting for a call under way (its end wakes the renewer)."""
        waiting = [at for psid, at in self._due.items() if self._ready(psid)]
        return max(0.0, min(waiting) - self._clock()) if waiting else None
