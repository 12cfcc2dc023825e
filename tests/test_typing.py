"""The person sees the bot working: seen and typing before the model call, typing renewed while it runs."""

from __future__ import annotations

import threading

from inboxgpt import replies
from tests.fakes import Reply, completion
from tests.helpers import PSID, load, page_body, text_event


def test_seen_and_typing_are_shown_while_the_model_thinks(post, graph, openai_server):
    typing_shown = threading.Event()

    def note_typing(call: dict) -> None:
        if call.get("sender_action") == "typing_on":
            typing_shown.set()

    def answer_once_typing_shows(request: dict) -> Reply:
        # The model is already thinking when typing appears: the indicator does not delay it.
        if not typing_shown.wait(timeout=20):
            return Reply(status=500, body={"error": {"message": "no typing indicator", "type": "server_error"}})
        return completion("hi")

    graph.on_call = note_typing
    openai_server.default = answer_once_typing_shows
    post(page_body(text_event("hello")))
    assert graph.sequence(PSID) == ["typing_on", "mark_seen", "text:hi"]


def test_a_reply_never_overtakes_a_typing_call_under_way(post, graph, openai_server, service):
    typing_started, reply_waits = threading.Event(), threading.Event()
    order: list[str] = []
    service.typing.on_wait = lambda psid: reply_waits.set()

    def answer_once_typing_started(request: dict) -> Reply:
        typing_started.wait(timeout=10)
        return completion("quick answer")

    def slow_typing(call: dict) -> None:
        if call.get("sender_action") == "typing_on":
            typing_started.set()
            # Meta is slow with the indicator: it answers only once the reply is ready and waiting.
            order.append("typing done" if reply_waits.wait(timeout=10) else "the reply did not wait")
        elif "message" in call:
            order.append("reply")

    graph.on_call = slow_typing
    openai_server.default = answer_once_typing_started
    post(page_body(text_event("quick question")))
    assert order == ["typing done", "reply"]


def test_typing_is_renewed_during_a_long_model_call_and_stops_with_the_reply(config, graph, openai_server, app_with):
    config.update(TYPING_RENEW_SECONDS="0.02")
    renewed = threading.Event()

    def note_renewals(call: dict) -> None:
        if graph.actions(PSID).count("typing_on") >= 3:
            renewed.set()

    graph.on_call = note_renewals

    def answer_once_renewed(request: dict) -> Reply:
        # The model "thinks" until typing has been renewed twice after the first typing_on.
        if not renewed.wait(timeout=20):
            return Reply(status=500, body={"error": {"message": "typing was not renewed", "type": "server_error"}})
        return completion("done thinking")

    openai_server.default = answer_once_renewed
    post = app_with(config)
    post(page_body(text_event("a hard question")))
    sequence = graph.sequence(PSID)
    assert sequence[:2] == ["typing_on", "mark_seen"]
    assert sequence.count("typing_on") >= 3
    assert sequence[-1] == "text:done thinking"


def test_commands_and_stickers_get_no_typing_indicator(post, graph):
    post(page_body(text_event("/help")))
    post(load("sticker.json"))
    assert graph.texts(PSID)[1] == replies.STICKER_THANKS  # the sticker was answered, without the model
    assert graph.actions(PSID) == []


def test_a_reply_still_goes_out_when_the_indicator_can_no_longer_run(post, graph, service):
    service.typing.close()  # as at interpreter exit: its thread pool takes no more work
    post(page_body(text_event("still there?")))
    assert graph.sequence(PSID) == ["text:You said: still there?"]


def test_typing_asked_again_while_the_last_call_is_on_its_way_is_sent_once_it_is_back():
    from inboxgpt.precedence import Precedence
    from inboxgpt.typing_indicator import TypingIndicator

    first_call_on_its_way, meta_answers = threading.Event(), threading.Event()
    sent: list[str] = []
    arrived = threading.Condition()

    def send_action(psid: str, action: str, message_id: str | None) -> bool:
        if not sent:
            first_call_on_its_way.set()
            meta_answers.wait(timeout=10)  # Meta is slow with the first indicator
        with arrived:
            sent.append(action)
            arrived.notify_all()
        return True

    indicator = TypingIndicator(send_action, interval=60, max_workers=2, precedence=Precedence(quiet=0.001))
    try:
        with indicator.shown("ada", deferred=True) as begin:
            begin()
            assert first_call_on_its_way.wait(timeout=10)
            indicator.again("ada")  # a paragraph went out: typing must show again
            # Time for the renewer to look at it while the first call is still on its way (where it was lost).
            looked = threading.Event()
            looked.wait(0.5)
            meta_answers.set()
            with arrived:
                # Not lost until the next renewal, a minute away.
                assert arrived.wait_for(lambda: sent.count("typing_on") == 2, timeout=10)
    finally:
        indicator.close()
