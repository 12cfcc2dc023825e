"""The order of a burst's work in one process: webhooks first, then model requests, then typing and seen."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from inboxgpt.events import Message
from inboxgpt.precedence import Precedence, Stage
from inboxgpt.queues.dispatcher import Dispatcher
from inboxgpt.store import Bounds
from inboxgpt.store.memory import MemoryStore
from inboxgpt.typing_indicator import TypingIndicator

# Long enough that work which waits for its turn is seen waiting; short enough for a quick test.
NOT_YET = 0.2


@contextmanager
def under_way(precedence: Precedence, stage: Stage) -> Iterator[threading.Event]:
    """Work of `stage` under way on a thread of its own until the event it yields is set."""
    entered, release = threading.Event(), threading.Event()

    def work() -> None:
        with precedence.working(stage):
            entered.set()
            release.wait(timeout=10)

    thread = threading.Thread(target=work)
    thread.start()
    assert entered.wait(timeout=10)
    try:
        yield release
    finally:
        release.set()
        thread.join()


def turn_of(precedence: Precedence, stage: Stage) -> threading.Event:
    """An event set once a thread that waits for the turn of `stage` gets it."""
    turn = threading.Event()

    def wait() -> None:
        precedence.wait_turn(stage)
        turn.set()

    threading.Thread(target=wait, daemon=True).start()
    return turn


def test_later_work_waits_for_earlier_work_to_end():
    precedence = Precedence(quiet=0.01, longest_wait=10, burst=1)
    with under_way(precedence, Stage.ACK) as release:
        turn = turn_of(precedence, Stage.ASK)
        assert not turn.wait(NOT_YET)
        release.set()
        assert turn.wait(timeout=10)


def test_a_request_waits_for_a_burst_of_webhooks_but_not_for_a_few():
    precedence = Precedence(quiet=0.01, longest_wait=10, burst=3)
    with under_way(precedence, Stage.ACK), under_way(precedence, Stage.ACK) as second:
        # Two people's webhooks being taken: the request goes at once, and typing still waits.
        assert turn_of(precedence, Stage.ASK).wait(timeout=10)
        assert not turn_of(precedence, Stage.REST).wait(NOT_YET)
        with under_way(precedence, Stage.ACK) as third:
            turn = turn_of(precedence, Stage.ASK)
            assert not turn.wait(NOT_YET)
            third.set()
            second.set()
            assert turn.wait(timeout=10)


def test_later_work_does_not_wait_for_work_of_its_own_stage_or_after():
    precedence = Precedence(quiet=10, longest_wait=10)
    with under_way(precedence, Stage.ASK), under_way(precedence, Stage.REST):
        turn = turn_of(precedence, Stage.ASK)
        assert turn.wait(timeout=10)


def test_no_work_waits_longer_than_the_longest_wait():
    precedence = Precedence(quiet=0.01, longest_wait=0.05)
    with under_way(precedence, Stage.ACK):
        turn = turn_of(precedence, Stage.REST)
        assert turn.wait(timeout=10)


def test_a_request_that_has_left_lets_typing_go_before_its_answer():
    precedence = Precedence(quiet=0.01, longest_wait=10)
    left, answered = threading.Event(), threading.Event()

    def ask() -> None:
        with precedence.working(Stage.ASK):
            precedence.done()  # the request has left; the answer takes its time
            left.set()
            answered.wait(timeout=10)

    asking = threading.Thread(target=ask)
    asking.start()
    assert left.wait(timeout=10)
    assert turn_of(precedence, Stage.REST).wait(timeout=10)
    answered.set()
    asking.join()


def test_no_answer_starts_while_a_burst_of_webhooks_is_being_taken():
    precedence = Precedence(quiet=0.01, longest_wait=10, burst=1)
    handled = threading.Event()

    def handle(events: list) -> int:
        handled.set()
        return len(events)

    dispatcher = Dispatcher(
        MemoryStore(Bounds(20, 3000, 3600, 100, 3600, 1000)), handle, threads=2, lock_ttl=60, precedence=precedence
    )
    try:
        with under_way(precedence, Stage.ACK) as release:
            assert dispatcher.submit([Message(psid="1", mid="m1", timestamp=0, text="hello")]) == 1
            assert not handled.wait(NOT_YET)
            release.set()
            assert handled.wait(timeout=10)
    finally:
        dispatcher.close(finish_queued=True)


def test_typing_and_seen_wait_for_the_other_requests_under_way_and_never_follow_a_reply():
    precedence = Precedence(quiet=0.01, longest_wait=10)
    sent: list[tuple[str, str]] = []
    arrived = threading.Condition()

    def send_action(psid: str, action: str, message_id: str | None) -> bool:
        with arrived:
            sent.append((psid, action))
            arrived.notify_all()
        return True

    indicator = TypingIndicator(send_action, interval=60, max_workers=2, precedence=precedence)
    try:
        with under_way(precedence, Stage.ASK) as release:  # another person's request is being prepared
            with indicator.shown("ada", deferred=True) as begin:
                begin()  # Ada's request has left
                with arrived:
                    assert not arrived.wait_for(lambda: sent, NOT_YET)
                release.set()
                with arrived:
                    assert arrived.wait_for(lambda: len(sent) == 2, timeout=10)
            assert sent == [("ada", "typing_on"), ("ada", "mark_seen")]
            # A reply that came before the turn of its typing drops it.
            with under_way(precedence, Stage.ASK), indicator.shown("bob", deferred=True) as begin:
                begin()
        with arrived:
            assert not arrived.wait_for(lambda: len(sent) > 2, NOT_YET)
    finally:
        indicator.close()
