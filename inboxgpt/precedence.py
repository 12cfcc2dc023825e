"""The order in which one process does a burst's work: Meta's webhooks are acknowledged first, then each person's
message goes on to the model, then the rest (typing, seen) follows.

The threads of one interpreter take turns on it. When forty people write in the same second, the work of answering
would otherwise hold up the webhooks (Meta waits for their acknowledgement, and retries slow ones), and typing
indicators would hold up the model requests (every millisecond before a request leaves is a millisecond more before
its answer). A thread about to do later work waits until no earlier work is under way and none has ended for a
moment (the quiet period, which bridges the gap between two webhooks of a burst while the server reads the next),
but never longer than the longest wait: under a load that never pauses, every stage still moves.

A person's request waits for the webhooks under way only when they are a burst (several being taken at once): a
crowd that writes a few at a time keeps webhooks under way nearly all the time, and a request held until none is
would wait tens of milliseconds for other people's acknowledgements, which take a millisecond each.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum

QUIET_SECONDS = 0.002
LONGEST_WAIT_SECONDS = 0.25
# Webhooks being taken at once that make a burst, which a person's request waits for (the first of forty written in
# the same instant make one; people writing one after another, a few at a time, do not).
BURST_WEBHOOKS = 8


class Stage(IntEnum):
    """What a piece of work is, earliest first."""

    ACK = 0  # a webhook: checked, queued and acknowledged
    ASK = 1  # a person's message, until its request has left for the model
    REST = 2  # typing and seen


LATER = {stage: [later for later in Stage if later > stage] for stage in Stage}


class Precedence:
    """Gates for each stage after the first, open while no earlier work is under way or has just ended."""

    def __init__(
        self,
        quiet: float = QUIET_SECONDS,
        longest_wait: float = LONGEST_WAIT_SECONDS,
        burst: int = BURST_WEBHOOKS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._quiet = quiet
        self._longest_wait = longest_wait
        self._burst = burst
        self._clock = clock
        self._under_way = [0] * len(Stage)
        self._last_ended = [float("-inf")] * len(Stage)
        self._open = {stage: threading.Event() for stage in Stage}
        for gate in self._open.values():
            gate.set()
        self._changed = threading.Condition()
        self._mine = threading.local()
        self._usher: threading.Thread | None = None

    @contextmanager
    def working(self, stage: Stage) -> Iterator[None]:
        """Count the block as `stage` work under way, until it ends or calls `done`."""
        with self._changed:
            self._under_way[stage] += 1
            for later in LATER[stage]:
                self._open[later].clear()
        self._mine.stage = stage
        try:
            yield
        finally:
            self.done()

    def done(self) -> None:
        """End this thread's work early (its model request has left: what follows is not urgent)."""
        stage = getattr(self._mine, "stage", None)
        if stage is None:
            return
        self._mine.stage = None
        with self._changed:
            self._under_way[stage] -= 1
            self._last_ended[stage] = self._clock()
            if self._usher is None:
                # Started on first use, not at import, so that each forked server worker has its own.
                self._usher = threading.Thread(target=self._open_gates, name="precedence", daemon=True)
                self._usher.start()
            self._changed.notify()

    def wait_turn(self, stage: Stage) -> None:
        """Wait until the earlier stages are quiet, or the longest wait has passed; a request waits only for a
        burst of webhooks."""
        if stage is Stage.ASK and self._under_way[Stage.ACK] < self._burst:
            return
        self._open[stage].wait(self._longest_wait)

    def _open_gates(self) -> None:
        """Open each closed gate once the stages before it have been quiet for the quiet period."""
        with self._changed:
            while True:
                wait = None
                for stage in LATER[Stage.ACK]:  # nothing comes before a webhook: its gate never closes
                    if self._open[stage].is_set() or any(self._under_way[:stage]):
                        continue
                    left = max(self._last_ended[:stage]) + self._quiet - self._clock()
                    if left <= 0:
                        self._open[stage].set()
                    else:
                        wait = left if wait is None else min(wait, left)
                self._changed.wait(wait)
