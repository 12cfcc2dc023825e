"""Long answers sent as they are written: paragraph by paragraph, never inside a code block or a list."""

from __future__ import annotations

import logging

import pytest

from inboxgpt import replies
from inboxgpt.model.streaming import ParagraphSender, ready
from tests.fakes import Gate, Reply, completion, streamed
from tests.helpers import PSID, page_body, text_event

PARAGRAPHS = [
    f"Paragraph {n}: " + " ".join(f"word{n}x{k}" for k in range(30)) + "." for n in range(4)
]  # each long enough to stand alone
ANSWER = "\n\n".join(PARAGRAPHS)


def chunk_starting(reply, offset: int) -> int:
    """The number of the stream's chunk that carries the answer's character at `offset`."""
    written = 0
    for number, chunk in enumerate(reply.chunks):
        for choice in chunk["choices"]:
            written += len(choice["delta"].get("content") or "")
        if written > offset:
            return number
    raise AssertionError("offset beyond the answer")


def ask(post, text: str = "tell me") -> None:
    post(page_body(text_event(text)))


def test_the_model_is_asked_to_stream_with_usage(post, openai_server):
    ask(post)
    request = openai_server.requests[-1]
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}


def test_the_first_paragraph_arrives_while_the_model_still_writes_and_typing_stays_on(post, graph, openai_server):
    reply = streamed(completion(ANSWER))
    # The stream stops before the third paragraph until the first one has reached Meta, and typing
    # has been shown again after it.
    gate = reply.gate = Gate(at=chunk_starting(reply, ANSWER.index("Paragraph 2")))

    def open_once_typing_follows_a_paragraph(call: dict) -> None:
        sequence = graph.sequence(PSID)  # the call is recorded before this runs
        texts = [n for n, entry in enumerate(sequence) if entry.startswith("text:")]
        if texts and "typing_on" in sequence[texts[0] :]:
            gate.opened.set()

    graph.on_call = open_once_typing_follows_a_paragraph
    openai_server.script.append(reply)
    ask(post)
    assert gate.in_time, "the first paragraph waited for the whole answer"
    texts = graph.texts(PSID)
    assert texts[0] == PARAGRAPHS[0]
    assert " ".join(texts).split() == ANSWER.split()
    sequence = graph.sequence(PSID)
    assert "typing_on" in sequence[sequence.index("text:" + PARAGRAPHS[0]) :]


def test_a_one_paragraph_answer_is_one_message(post, graph, openai_server):
    openai_server.script.append(completion("Just one paragraph, however it streams, " * 5))
    ask(post)
    assert graph.texts(PSID) == [("Just one paragraph, however it streams, " * 5).strip()]


def test_a_short_paragraph_waits_to_join_the_next(post, graph, openai_server):
    openai_server.script.append(completion("Sure!\n\n" + ANSWER))
    ask(post)
    assert graph.texts(PSID)[0] == "Sure!\n\n" + PARAGRAPHS[0]


@pytest.mark.parametrize(
    "block",
    [
        "```python\ndef f():\n\n    return 1\n\n\nprint(f())\n```",
        "- first item of the list\n\n- second item of the list\n\n- third item of the list",
        "1. one\n\n2. two\n\n3. three",
        "Here is how to do it:\n\nStep one, then step two.",
    ],
    ids=["code", "bullets", "numbers", "announcement"],
)
def test_code_blocks_lists_and_what_announces_them_are_never_cut_inside(post, graph, openai_server, block):
    answer = f"{PARAGRAPHS[0]}\n\n{block}\n\n{PARAGRAPHS[1]}"
    openai_server.script.append(completion(answer))
    ask(post)
    assert any(block in text for text in graph.texts(PSID)), graph.texts(PSID)


def test_a_stream_without_usage_still_answers(post, graph, openai_server, caplog):
    openai_server.script.append(streamed(completion(ANSWER), include_usage=False))
    with caplog.at_level(logging.INFO):
        ask(post)
    assert " ".join(graph.texts(PSID)).split() == ANSWER.split()
    assert "usage=estimated" in caplog.text  # the tokens it cost are estimated, not left out


def cut_points() -> dict[str, int]:
    reply = streamed(completion(ANSWER_WITH_CODE))
    assert reply.chunks is not None
    return {
        "mid-word": chunk_starting(reply, 5),
        "mid-paragraph": chunk_starting(reply, ANSWER_WITH_CODE.index("word1x15")),
        "after-two-paragraphs": chunk_starting(reply, ANSWER_WITH_CODE.index("```")) + 1,
        "inside-the-code-block": chunk_starting(reply, ANSWER_WITH_CODE.index("return")),
        "before-the-usage-chunk": len(reply.chunks) - 1,
    }


ANSWER_WITH_CODE = f"{PARAGRAPHS[0]}\n\n{PARAGRAPHS[1]}\n\n```\ndef f():\n\n    return 1\n```\n\n{PARAGRAPHS[2]}"


@pytest.mark.parametrize("where", list(cut_points()))
def test_a_stream_cut_anywhere_keeps_what_was_sent_and_says_so(post, graph, openai_server, where):
    cut = cut_points()[where]
    openai_server.script.extend([streamed(completion(ANSWER_WITH_CODE), cut_after=cut), completion(ANSWER_WITH_CODE)])
    ask(post)
    texts = graph.texts(PSID)
    if where == "before-the-usage-chunk":
        # The answer was whole (its finish reason had come): only the usage is missing.
        assert " ".join(texts).split() == ANSWER_WITH_CODE.split()
        return
    if where == "mid-word":
        # Nothing had reached the person: the answer is asked again without streaming, and arrives whole.
        assert "stream" not in openai_server.requests[-1]
        assert " ".join(texts).split() == ANSWER_WITH_CODE.split()
        return
    assert texts[-1] == replies.CUT_OFF
    delivered = texts[:-1]
    words = " ".join(delivered).replace("…", "").split()
    assert words == ANSWER_WITH_CODE.split()[: len(words)], "what was sent is the answer's beginning, in order"
    if where == "after-two-paragraphs":
        assert delivered[:2] == PARAGRAPHS[:2]
    # The history keeps what the person got, not what the model meant to write.
    ask(post, "go on")
    history = openai_server.requests[-1]["messages"][1:-1]
    if not delivered:
        assert history == []  # nothing reached the person: nothing to remember
        return
    assert history[1]["role"] == "assistant"
    assert history[1]["content"].split() == " ".join(delivered).split()


def test_a_stream_cut_before_any_text_is_asked_again_without_streaming(post, graph, openai_server):
    openai_server.script.append(streamed(completion(ANSWER), cut_after=1))
    ask(post)
    assert [request.get("stream") for request in openai_server.requests] == [True, None]
    assert graph.texts(PSID) == ["You said: tell me"]


def test_a_stream_that_breaks_again_when_asked_whole_is_an_apology(post, graph, openai_server):
    openai_server.script.extend([streamed(completion(ANSWER), cut_after=1), Reply(status=500, body={})])
    ask(post)
    assert graph.texts(PSID) == [replies.APOLOGY_TRY_LATER]


def test_a_refusal_of_a_paragraph_stops_the_rest(post, graph, openai_server):
    graph.fail_next(400, code=100, messages_only=True)
    openai_server.script.append(completion(ANSWER))
    ask(post)
    assert graph.texts(PSID) == [PARAGRAPHS[0]]  # refused: nothing after it was sent


def test_with_streaming_off_the_answer_is_sent_whole(config, app_with, graph, openai_server):
    config.update(STREAM="off")
    post = app_with(config)
    openai_server.script.append(completion(ANSWER))
    ask(post)
    assert "stream" not in openai_server.requests[-1]
    assert " ".join(graph.texts(PSID)).split() == ANSWER.split()


@pytest.mark.parametrize(
    ("text", "cut"),
    [
        ("one paragraph", None),
        ("x" * 100 + "\n\n", None),  # nothing follows the break yet
        ("x" * 100 + "\n\ny", (100, 102)),
        ("x" * 100 + "\n\n-", None),  # a list item, or not: not known yet
        ("x" * 100 + "\n\n12.", None),
        ("- " + "x" * 100 + "\n\n- next item", None),  # one list, even with a blank line between items
        ("- " + "x" * 100 + "\n\n-5 degrees", (102, 104)),
        ("short\n\ny", None),
        ("x" * 100 + "\n\n```\ncode\n\nmore", (100, 102)),
        ("x" * 100 + "\n\n```\ncode\n\nmore\n```\n\nafter", (len("x" * 100 + "\n\n```\ncode\n\nmore\n```"), None)),
    ],
)
def test_where_an_answer_being_written_can_be_cut(text, cut):
    found = ready(text)
    if cut is None:
        assert found is None
    elif cut[1] is None:
        assert found is not None
        assert found[0] == cut[0]
    else:
        assert found == cut


def test_a_long_list_with_blank_lines_between_items_is_one_message(post, graph, openai_server):
    items = "\n\n".join(f"- item {n} of a list long enough to pass the shortest paragraph on its own" for n in range(4))
    openai_server.script.append(completion(f"{PARAGRAPHS[0]}\n\n{items}\n\n{PARAGRAPHS[1]}"))
    ask(post)
    assert graph.texts(PSID) == [PARAGRAPHS[0], items, PARAGRAPHS[1]]


ODD_CHUNKS = [None, 42, "text", {"choices": "abc"}, {"choices": [{"delta": "abc"}]}, {"choices": [7]}, {"usage": 5}]


@pytest.mark.parametrize("odd", ODD_CHUNKS, ids=[repr(odd) for odd in ODD_CHUNKS])
def test_an_oddly_shaped_chunk_ends_the_answer_as_a_broken_stream_would(post, graph, openai_server, odd):
    reply = streamed(completion(ANSWER))
    assert reply.chunks is not None
    # After the chunk that starts the third paragraph, which sends the second.
    reply.chunks.insert(chunk_starting(reply, ANSWER.index("Paragraph 2")) + 1, odd)
    openai_server.script.append(reply)
    ask(post)
    texts = graph.texts(PSID)
    if odd == {"usage": 5}:
        # A usage that is no count is no count: the answer itself was whole.
        assert " ".join(texts).split() == ANSWER.split()
        return
    assert texts[:2] == PARAGRAPHS[:2]
    assert texts[-1] == replies.CUT_OFF
    ask(post, "go on")
    history = openai_server.requests[-1]["messages"][1:-1]
    assert history == [
        {"role": "user", "content": "tell me"},
        {"role": "assistant", "content": "\n\n".join(PARAGRAPHS[:2])},
    ]


def test_a_server_that_answers_a_streamed_request_with_plain_json_is_read_whole(post, graph, openai_server, caplog):
    openai_server.script.append(Reply(body=completion(ANSWER).body, plain=True))
    with caplog.at_level(logging.WARNING):
        ask(post)
    assert " ".join(graph.texts(PSID)).split() == ANSWER.split()
    assert "STREAM=off" in caplog.text


# --- an answer's deadline (MODEL_ANSWER_SECONDS) and its cap on messages (MAX_MESSAGES_PER_REPLY) ---

MANY_PARAGRAPHS = [
    f"Part {n} of an answer that would go on for a long while, one paragraph after another." for n in range(40)
]


def test_a_server_that_only_keeps_the_stream_alive_is_given_up_at_the_deadline(config, app_with, graph, openai_server):
    config.update(MODEL_ANSWER_SECONDS="1", OPENAI_TIMEOUT="5")
    post = app_with(config)
    reply = streamed(completion(ANSWER))
    reply.comments, reply.chunk_delay = 200, 0.05  # ten seconds of ": keep-alive" before any text
    openai_server.script.append(reply)
    ask(post)
    assert graph.texts(PSID) == [replies.APOLOGY_TRY_LATER]


def test_an_answer_that_goes_on_and_on_is_cut_at_the_deadline(config, app_with, graph, openai_server):
    config.update(MODEL_ANSWER_SECONDS="1", MAX_MESSAGES_PER_REPLY="100")
    post = app_with(config)
    answer = "\n\n".join(MANY_PARAGRAPHS)
    openai_server.script.append(streamed(completion(answer), tokens_per_second=200))  # about six seconds
    ask(post)
    texts = graph.texts(PSID)
    assert texts[-1] == replies.CUT_OFF
    delivered = texts[:-1]
    assert 0 < len(delivered) < len(MANY_PARAGRAPHS)
    assert " ".join(delivered).replace("…", "").split() == answer.split()[: len(" ".join(delivered).split())]
    ask(post, "go on")
    kept = openai_server.requests[-1]["messages"][2]["content"]
    assert kept.replace("…", "").split() == " ".join(delivered).replace("…", "").split()


@pytest.mark.parametrize("stream", ["on", "off"])
def test_an_answer_becomes_at_most_max_messages_then_says_it_was_cut(config, app_with, graph, openai_server, stream):
    config.update(MAX_MESSAGES_PER_REPLY="3", STREAM=stream)
    post = app_with(config)
    long_paragraphs = [f"Part {n}. " + "word " * 390 for n in range(6)]  # each about 2,000 characters
    openai_server.script.append(completion("\n\n".join(long_paragraphs)))
    ask(post)
    texts = graph.texts(PSID)
    assert len(texts) == 4
    assert texts[-1] == replies.CUT_OFF
    assert " ".join(texts[:-1]).split() == " ".join(long_paragraphs).split()[: len(" ".join(texts[:-1]).split())]


def test_when_meta_refuses_a_paragraph_the_history_keeps_only_what_was_delivered(post, graph, openai_server):
    delivered: list[str] = []

    def refuse_the_second(call: dict) -> None:
        if "message" in call:
            delivered.append(call["message"]["text"])
            if len(delivered) == 2:
                graph.fail_next(400, code=100, messages_only=True)

    graph.on_call = refuse_the_second
    openai_server.script.append(completion(ANSWER))
    ask(post)
    graph.on_call = None
    assert graph.texts(PSID)[:2] == PARAGRAPHS[:2]
    ask(post, "go on")
    assert openai_server.requests[-1]["messages"][2] == {"role": "assistant", "content": PARAGRAPHS[0]}


def test_with_a_pace_the_paragraphs_finished_within_it_go_together_in_the_next_message():
    now = [0.0]
    sent: list[str] = []

    def send(piece: str) -> list[tuple[str, str]]:
        sent.append(piece)
        return [("mid", piece)]

    sender = ParagraphSender(send, pace=6.0, clock=lambda: now[0])
    first, second, third, fourth = PARAGRAPHS
    sender.feed(f"{first}\n\nP")  # the first paragraph is finished once the next starts: out at once
    now[0] = 1.0
    sender.feed(f"{second[1:]}\n\nP")
    now[0] = 2.0
    sender.feed(f"{third[1:]}\n\nP")
    assert sent == [first]  # within the pace: held
    now[0] = 7.0
    sender.feed(fourth[1:20])  # the pace has passed: what was held goes, joined
    sender.feed(fourth[20:])
    sender.finish()
    assert sent == [first, f"{second}\n\n{third}", fourth]
