"""One queue per person: each event is queued once in the store and answered in order, people in parallel.

The queue and the person's lock live in the store, so with a shared store (SQLite, Redis) one
person's events are answered one at a time and in order even when they reach different
processes or machines, and what one process leaves queued (a deploy, a crash) another answers.
An event leaves the queue only once it was answered, or refused as unreadable; a failure that
is not the event's fault (the store is down, the process is stopping) leaves it queued.

The handler sees what is queued behind the event in hand (a burst: "hi" / "I have a question" /
"about my order") and says how many of them it answered together.

Work that can wait (comments under a post that went viral) gets a bounded share of the threads: at most
`background_threads` people whose queue starts with such work are answered at once in this process; the others
wait their turn with their events in the store, so that a person's message never queues behind the flood.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from inboxgpt.events import Event, decode, encode
from inboxgpt.precedence import Precedence, Stage
from inboxgpt.store import Queued, Store, StoreUnavailable

logger = logging.getLogger(__name__)

# Waits between tries while the store is unavailable (the last one repeats until it is back):
# short, so a queue resumes within seconds of the store coming back.
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)
# Events of one person the handler is shown at once: more than anyone types while one answer is written.
MAX_BURST = 20

# Answers the first of a person's queued events, and any after it it can answer together; returns how many.
Handler = Callable[[list[Event]], int]
# Seconds to wait for more before answering these events (a burst still being typed); 0: answer now.
Gather = Callable[[list[Event]], float]
# Whether an event is work that can wait behind people's messages (a comment).
Background = Callable[[Event], bool]


class Stopping(Exception):
    """The dispatcher is closing: what is still queued stays in the store for the next process."""


class Dispatcher:
    """Queues events per person in the store and answers each queue on a thread pool, one drain per person."""

    def __init__(
        self,
        store: Store,
        handle: Handler,
        threads: int,
        lock_ttl: float,
        gather: Gather | None = None,
        wait: Callable[[float], object] | None = None,
        renew_every: float | None = None,
        precedence: Precedence | None = None,
        background: Background | None = None,
        background_threads: int = 1,
    ):
        self._store = store
        self._handle = handle
        self._gather = gather
        self._lock_ttl = lock_ttl
        self._renew_every = renew_every or lock_ttl / 4
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="reply")
        self._nonce = uuid.uuid4().hex[:8]
        self._changed = threading.Condition()
        # Person -> how many events were queued for them since their drain last looked at the store.
        # A person is in here while a drain runs or waits for them, so at most one is scheduled.
        self._drains: dict[str, int] = {}
        self._stopping = threading.Event()
        self._wait = wait or self._stopping.wait
        self._sweeper: threading.Thread | None = None
        # People whose lock this process holds, renewed by `_renewer` while their answer runs. A renewal and a
        # release take `_renewal` around their store call, so a lock let go of is never renewed after.
        self._held: set[str] = set()
        self._renewal = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._precedence = precedence or Precedence()
        self._background = background
        self._background_threads = background_threads
        # Threads answering people whose queue starts with background work, and the people waiting for one
        # (in `_drains` meanwhile, their events in the store).
        self._background_running = 0
        self._background_waiting: deque[str] = deque()

    @property
    def _owner(self) -> str:
        """Who holds a lock: this machine and process (read each time, so a fork is someone else)."""
        return f"{socket.gethostname()}:{os.getpid()}:{self._nonce}"

    def submit(self, events: Sequence[Event]) -> int:
        """Queue the events not seen before, all in one store step; return how many were new.

        Each person's drain answers their new events after their earlier ones.
        """
        events = self._as_known(events)
        queued = self._store.accept([Queued(event.event_id, event.psid, encode(event)) for event in events])
        background: dict[str, bool] = {}
        for event, new in zip(events, queued, strict=True):
            if new:
                background[event.psid] = background.get(event.psid, True) and self._is_background(event)
        for psid, waits in background.items():
            self._schedule(psid, waits)
        return sum(queued)

    def _as_known(self, events: Sequence[Event]) -> list[Event]:
        """The events, each under the key its person was first known by: an event's alias (WhatsApp's business-scoped
        id, beside the person's number or alone) stands for the key the store linked it to, so that one person has
        one queue, history and pause however Meta names them."""
        links = [(alias, event.psid) for event in events if (alias := getattr(event, "alias", None))]
        if not links:
            return list(events)
        keys = iter(self._store.link_keys(links))
        return [replace(event, psid=next(keys)) if getattr(event, "alias", None) else event for event in events]

    def resume(self) -> None:
        """Answer events left queued by a process that stopped or crashed before handling them."""
        for psid in self._store.pending():
            self._schedule(psid, None)

    def resume_every(self, seconds: float) -> None:
        """Call `resume` from a background thread, so a crashed holder's lock, once expired, frees its queue."""

        def sweep() -> None:
            while not self._stopping.wait(seconds):
                try:
                    self.resume()
                except StoreUnavailable:
                    logger.warning("store unavailable; will look for queued events again in %.0f s", seconds)

        self._sweeper = threading.Thread(target=sweep, name="resume-queued", daemon=True)
        self._sweeper.start()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no drain runs or waits; return False if `timeout` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._drains, timeout)

    def close(self, finish_queued: bool) -> None:
        """Stop: finish the answer in hand, and every queued one too if `finish_queued` (nobody else would)."""
        if not finish_queued:
            self._stopping.set()
        self._pool.shutdown(wait=True)
        self._stopping.set()
        for thread in (self._sweeper, self._renewer):
            if thread is not None:
                thread.join()

    def _is_background(self, event: Event) -> bool:
        return self._background is not None and self._background(event)

    def _schedule(self, psid: str, background: bool | None) -> None:
        """Have the person's queue answered (`background`: it starts with work that can wait; None: look)."""
        with self._changed:
            if psid in self._drains:
                self._drains[psid] += 1
                return
        if background is None:
            head = _readable(self._store.peek(psid)) if self._background is not None else []
            background = bool(head) and self._is_background(head[0])
        with self._changed:
            if psid in self._drains:
                self._drains[psid] += 1
                return
            self._drains[psid] = 1
            if background:
                if self._background_running >= self._background_threads:
                    self._background_waiting.append(psid)
                    return
                self._background_running += 1
        try:
            self._pool.submit(self._run_background if background else self._run, psid)
        except RuntimeError:
            # The pool is shut down: the event stays queued in the store for the next process.
            if background:
                self._background_done()
            self._finished(psid)

    def _run_background(self, psid: str) -> None:
        """Answer the person's queue, then those of the people waiting for a background thread, one after another."""
        person: str | None = psid
        while person is not None:
            self._run(person)
            with self._changed:
                person = self._background_waiting.popleft() if self._background_waiting else None
                if person is not None and self._stopping.is_set():
                    self._background_waiting.appendleft(person)
                    person = None
            if person is None:
                self._background_done()

    def _background_done(self) -> None:
        """A background thread is free; when stopping, the people still waiting stay queued in the store."""
        with self._changed:
            self._background_running -= 1
            if self._stopping.is_set():
                for waiting in self._background_waiting:
                    del self._drains[waiting]
                self._background_waiting.clear()
                self._changed.notify_all()

    def _run(self, psid: str) -> None:
        failures = 0
        while True:
            try:
                if not self._drain(psid):
                    break  # another process holds the person's lock: its drain answers them
                # Let go of the lock, then look again: an event another process queued while this
                # one held the lock found it taken, and was left for this one.
                if self._store.shared and self._store.peek(psid):
                    continue
                if self._let_go_unless_queued(psid):
                    return
            except StoreUnavailable as exc:
                if self._stopping.is_set():
                    logger.warning("store unavailable while stopping; psid=%s stays queued (%s)", psid, exc)
                    break
                delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
                (logger.warning if failures == 0 else logger.debug)(
                    "store unavailable; psid=%s stays queued, tried again in %.1f s (%s)", psid, delay, exc
                )
                failures += 1
                self._stopping.wait(delay)
            except Stopping:
                break
            except Exception:
                # A bug, not the store: the thread must not die holding the person's place in `_drains`,
                # or nothing would ever answer them again. What stays queued is answered at their next event
                # (or by the sweeper, with a shared store).
                logger.exception("the queue of psid=%s stopped on an unexpected error; it resumes later", psid)
                break
        self._finished(psid)

    def _let_go_unless_queued(self, psid: str) -> bool:
        """Let go of the person, unless this process queued an event for them since the drain last looked.

        Checked and done under one lock, so an event queued right after is scheduled anew, never stranded.
        """
        with self._changed:
            if self._drains[psid] > 0:
                return False
            del self._drains[psid]
            self._changed.notify_all()
            return True

    def _finished(self, psid: str) -> None:
        with self._changed:
            del self._drains[psid]
            self._changed.notify_all()

    def _looking(self, psid: str) -> None:
        """Note that the drain is about to read the queue: events queued before now, it will see."""
        with self._changed:
            self._drains[psid] = 0

    def _drain(self, psid: str) -> bool:
        """Answer the person's queue under their lock, renewed meanwhile; False if another process holds it."""
        if not self._store.take_lock(psid, self._owner, self._lock_ttl):
            return False
        self._hold(psid)
        try:
            self._looking(psid)
            items = self._store.peek(psid, MAX_BURST)
            while items:
                if self._stopping.is_set():
                    raise Stopping
                items = self._gathered(psid, items)
                answered = self._answer(psid, items)
                self._looking(psid)
                # Removed only once answered (after a crash, they are answered on restart), by what they are, and
                # only while the lock is still this process's: if it ran out, whoever took it answers them.
                following = self._store.pop(psid, self._owner, items[:answered], MAX_BURST)
                if following is None:
                    logger.warning("the lock on psid=%s ran out during an answer; another worker took over", psid)
                    return False
                items = following
        finally:
            self._let_go(psid)
        return True

    def _hold(self, psid: str) -> None:
        """Keep the person's lock renewed until `_let_go`, however long an answer runs."""
        with self._renewal:
            self._held.add(psid)
        with self._changed:
            if self._renewer is None:
                # Started on first use, not at import, so that each forked server worker has its own.
                self._renewer = threading.Thread(target=self._renew_held, name="renew-locks", daemon=True)
                self._renewer.start()

    def _let_go(self, psid: str) -> None:
        with self._renewal, contextlib.suppress(StoreUnavailable):  # the lock runs out by itself
            self._held.discard(psid)
            self._store.release_lock(psid, self._owner)

    def _renew_held(self) -> None:
        """Every quarter of the lock's lifetime, extend the locks this process holds."""
        while not self._stopping.wait(self._renew_every):
            with self._renewal:
                held = list(self._held)
            for psid in held:
                try:
                    with self._renewal:
                        if psid not in self._held:
                            continue  # let go of since: renewing it would hold the queue for nobody
                        if not self._store.take_lock(psid, self._owner, self._lock_ttl):
                            logger.warning("the lock on psid=%s was lost to another worker", psid)
                except StoreUnavailable as exc:
                    logger.warning("store unavailable; the lock on psid=%s was not renewed (%s)", psid, exc)

    def _gathered(self, psid: str, items: list[str]) -> list[str]:
        """The queue's head, once the person has stopped typing for the handler's wait (none by default)."""
        while self._gather is not None and (seconds := self._gather_seconds(psid, items)) > 0:
            self._wait(seconds)
            if self._stopping.is_set():
                raise Stopping
            items = self._store.peek(psid, MAX_BURST) or items
        return items

    def _gather_seconds(self, psid: str, items: list[str]) -> float:
        """The handler's wait for these events; none if it fails (the events are answered, or dropped, by
        `_answer`)."""
        assert self._gather is not None
        try:
            return self._gather(_readable(items))
        except StoreUnavailable:
            raise
        except Exception:
            logger.exception("deciding whether to wait for more events for psid=%s failed; answering now", psid)
            return 0.0

    def _answer(self, psid: str, items: list[str]) -> int:
        """Answer the first event and whatever the handler takes with it; return how many may leave the queue."""
        events = _readable(items)
        if not events:
            logger.error("an unreadable event for psid=%s was dropped", psid)
            return 1
        # After the webhooks under way; urgent until the answer's request has left (see precedence.py).
        self._precedence.wait_turn(Stage.ASK)
        try:
            with self._precedence.working(Stage.ASK):
                return max(1, self._handle(events))
        except StoreUnavailable:
            raise
        except Exception:
            # A fault of this event's (a bug it triggers): answering it again would fail again.
            logger.exception("answering an event for psid=%s failed; it was dropped", psid)
            return 1


def _readable(items: list[str]) -> list[Event]:
    """The queued events up to the first that cannot be read (none if the first cannot)."""
    events = []
    for item in items:
        try:
            events.append(decode(item))
        except (ValueError, TypeError, KeyError):
            break
    return events
