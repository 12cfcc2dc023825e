"""Models with small context windows: learn the window, fit every prompt to it, never leave a person stuck."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inboxgpt import replies
from inboxgpt.model import prompt
from tests.fakes import SmallWindow, completion, server_tokens, streamed
from tests.helpers import PSID, load, page_body, text_event

EXAMPLE_KNOWLEDGE = Path(__file__).resolve().parent.parent / "examples" / "knowledge"
QUESTION = "Tell me more about the history of the city, its old town and the river that runs through it."


def say(post, *texts: str) -> None:
    for text in texts:
        post(page_body(text_event(text)))


def fits(request: dict, window: int) -> bool:
    return sum(server_tokens(m) for m in request["messages"]) + request["max_tokens"] <= window


def apologies(graph) -> list[str]:
    return [text for text in graph.texts(PSID) if text in replies.APOLOGIES.values()]


def contents(request: dict) -> list[str]:
    return [message["content"] for message in request["messages"]]


@pytest.fixture
def small_model(openai_server):
    """The fake server as llama.cpp serving SmolLM2-135M with `--n_ctx 1024`: long answers, refusals over 1,024."""
    model = SmallWindow(1024, answer_chars=1200)
    openai_server.default = model
    return model


def test_forty_turns_with_long_answers_fit_a_1024_token_window_after_one_refusal(post, graph, small_model):
    say(post, *(f"{n}. {QUESTION}" for n in range(40)))
    assert apologies(graph) == []
    assert small_model.refused == 1
    assert small_model.answered == 40
    assert len(graph.texts(PSID)) == 40


def test_every_request_after_the_refusal_fits_with_some_history(post, openai_server, small_model):
    small_model.answer_chars = 600
    say(post, *(f"{n}. {QUESTION}" for n in range(8)))
    refused_at = next(n for n, r in enumerate(openai_server.requests) if not fits(r, 1024))
    later = openai_server.requests[refused_at + 1 :]
    assert len(later) == 8 - refused_at
    for request in later:
        assert fits(request, 1024)
        assert request["max_tokens"] >= prompt.MIN_REPLY_TOKENS
    assert len(later[-1]["messages"]) > 2, "the history was dropped although some fits"


def test_a_small_window_still_carries_the_last_exchange(post, openai_server, small_model):
    say(post, *(f"{n}. {QUESTION}" for n in range(3)), "My name is Ana.", "What is my name?")
    assert small_model.refused == 1
    asked = openai_server.requests[-1]
    assert fits(asked, 1024)
    assert contents(asked)[1:] == [
        "My name is Ana.",
        contents(asked)[2],
        "What is my name?",
    ]
    assert contents(asked)[2].startswith("A long answer.")


def test_after_the_window_is_learned_every_prompt_carries_history(post, openai_server, small_model):
    say(post, *(f"{n}. {QUESTION}" for n in range(12)))
    learned = next(n for n, r in enumerate(openai_server.requests) if not fits(r, 1024))
    later = openai_server.requests[learned + 1 :]
    assert len(later) == 12 - learned
    for n, request in enumerate(later[1:], start=learned + 1):
        assert fits(request, 1024)
        assert contents(request)[-3] == f"{n - 1}. {QUESTION}", "the last exchange was left out"


def test_the_newest_exchange_is_cut_to_fit_rather_than_left_out():
    system = {"role": "system", "content": "Be brief."}
    past = prompt.Turn("My name is Ana.", "Nice to meet you, Ana! " * 200).messages()
    fitted = prompt.fit([system, *past, {"role": "user", "content": "What is my name?"}], 1024, 500)
    assert fitted is not None
    user, answer = (message["content"] for message in fitted.messages[1:3])
    assert user == "My name is Ana."
    assert answer.startswith("Nice to meet you, Ana!")
    assert answer.endswith("…")
    assert prompt.MIN_REPLY_TOKENS <= fitted.reply_tokens < 500


def test_the_learned_window_is_logged_once(post, small_model, caplog):
    with caplog.at_level(logging.INFO, logger="inboxgpt.model.window"):
        say(post, *(f"{n}. {QUESTION}" for n in range(5)))
    learned = [r.getMessage() for r in caplog.records if "context window" in r.getMessage()]
    assert learned == ["the model's context window is 1024 tokens: prompts are fitted to it"]


def test_a_server_that_names_no_window_is_retried_with_less_history_until_it_fits(post, graph, openai_server):
    model = SmallWindow(1024, answer_chars=1200, named=False)
    openai_server.default = model
    say(post, *(f"{n}. {QUESTION}" for n in range(12)))
    assert apologies(graph) == []
    assert model.answered == 12


def test_a_5000_character_message_is_cut_to_fit_and_answered(config, app_with, graph, openai_server, small_model):
    config.update(MAX_MESSAGE_CHARS="10000")
    post = app_with(config)
    long_message = ("word " * 1000).strip()
    say(post, long_message)
    assert small_model.answered == 1
    notice, answer = graph.texts(PSID)
    assert notice == replies.CUT_TO_FIT
    assert answer.startswith("A long answer.")
    sent = openai_server.requests[-1]["messages"][-1]["content"]
    assert long_message.startswith(sent.removesuffix("…"))
    assert len(sent) < len(long_message)


def test_a_long_message_is_cut_even_when_the_server_names_no_window(config, app_with, graph, openai_server):
    openai_server.default = model = SmallWindow(1024, named=False)
    config.update(MAX_MESSAGE_CHARS="10000")
    post = app_with(config)
    say(post, ("word " * 1000).strip())
    assert model.answered == 1
    assert graph.texts(PSID)[0] == replies.CUT_TO_FIT
    assert apologies(graph) == []


def test_the_reply_cap_shrinks_when_the_window_is_tiny(config, app_with, graph, openai_server):
    openai_server.default = model = SmallWindow(400)
    config.update(MODEL_CONTEXT_TOKENS="400", REPLY_MAX_TOKENS="500")
    post = app_with(config)
    say(post, QUESTION)
    assert model.refused == 0
    cap = openai_server.requests[-1]["max_tokens"]
    assert 100 <= cap < 400
    assert apologies(graph) == []


def test_a_configured_window_fits_the_first_prompt(config, app_with, openai_server):
    # Ollama cuts an oversized prompt from the front instead of refusing: it must never get one.
    openai_server.default = model = SmallWindow(1024, answer_chars=1200)
    config.update(MODEL_CONTEXT_TOKENS="1024")
    post = app_with(config)
    say(post, *(f"{n}. {QUESTION}" for n in range(10)))
    assert model.refused == 0
    assert model.answered == 10


def test_a_system_prompt_too_long_for_the_window_is_an_apology_and_an_error_for_the_owner(
    config, app_with, graph, openai_server, caplog
):
    openai_server.default = SmallWindow(300)
    config.update(SYSTEM_PROMPT="Be helpful. " * 200)
    post = app_with(config)
    with caplog.at_level(logging.ERROR):
        say(post, "hello")
    assert apologies(graph) == [replies.APOLOGIES[replies.Failure.TOO_LONG]]
    assert any("SYSTEM_PROMPT" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


def test_photos_too_large_for_the_window_are_an_apology_not_a_complaint_about_the_system_prompt(
    config, app_with, graph, openai_server, caplog
):
    config.update(MODEL_CONTEXT_TOKENS="1024", VISION_DETAIL="high")
    post = app_with(config)
    with caplog.at_level(logging.WARNING):
        post(load("image.json"))
    assert openai_server.requests == []
    assert apologies(graph) == [replies.APOLOGIES[replies.Failure.TOO_LONG]]
    assert [r.getMessage() for r in caplog.records if r.name == "inboxgpt.model.window"] == [
        "the photos do not fit the model's context window of 1024 tokens"
    ]


def test_a_configured_window_that_cannot_hold_the_system_prompt_is_refused_at_start(config):
    from app import create_app
    from inboxgpt.config import ConfigError

    config.update(MODEL_CONTEXT_TOKENS="300", SYSTEM_PROMPT="Be helpful. " * 200)
    with pytest.raises(ConfigError, match="SYSTEM_PROMPT"):
        create_app(config)


words = st.text(alphabet=st.sampled_from("abc déf 日本 🙂"), max_size=3000)


@given(
    history=st.lists(st.tuples(words, words), max_size=12),
    said=words,
    window=st.integers(min_value=250, max_value=4000),
    reply_cap=st.integers(min_value=1, max_value=1000),
)
def test_a_fitted_prompt_and_its_reply_fit_the_window_by_the_estimate(history, said, window, reply_cap):
    system = {"role": "system", "content": "Be brief."}
    past = [m for user, bot in history for m in prompt.Turn(user, bot).messages()]
    messages = [system, *past, {"role": "user", "content": said}]
    fitted = prompt.fit(messages, window, reply_cap)
    assert fitted is not None
    assert prompt.prompt_tokens(fitted.messages) + fitted.reply_tokens + prompt.WINDOW_MARGIN_TOKENS <= window
    assert fitted.reply_tokens <= reply_cap
    assert fitted.messages[0] == system
    kept_past = fitted.messages[1:-1]
    assert len(kept_past) % 2 == 0
    newest = past[len(past) - len(kept_past) :] if kept_past else []
    if kept_past != newest:  # the newest exchange alone, cut to fit
        assert len(kept_past) == 2
        for kept, whole in zip(kept_past, newest, strict=True):
            assert kept["role"] == whole["role"]
            assert whole["content"].startswith(kept["content"].removesuffix("…").rstrip())
    new = fitted.messages[-1]["content"]
    if fitted.cut_said is None:
        assert new == said
    else:
        assert new == fitted.cut_said
        assert said.startswith(new.removesuffix("…").rstrip())
        assert kept_past == []


@pytest.fixture
def llama_cpp(openai_server):
    """The fake server as llama-cpp-python's, refusing streamed requests by an empty or unfinished stream."""
    model = SmallWindow(1024, answer_chars=1200, streams_like_llama_cpp=True)
    openai_server.default = model
    return model


@pytest.mark.parametrize("answer_chars", [300, 600, 1200])
def test_25_long_turns_are_answered_when_the_server_refuses_streams_by_cutting_them(
    post, graph, llama_cpp, answer_chars
):
    llama_cpp.answer_chars = answer_chars
    say(post, *(f"{n}. {QUESTION}" for n in range(25)))
    assert apologies(graph) == []
    assert len(graph.texts(PSID)) == 25
    assert llama_cpp.refused + llama_cpp.cut_streams <= 3
    assert replies.CUT_OFF not in graph.texts(PSID)


def test_a_stream_the_server_ended_for_another_request_teaches_no_window(post, graph, openai_server, caplog):
    # llama-cpp-python ends a stream, with [DONE] and no finish reason, when another request comes in: asked again
    # without streaming, the answer finishes. Taken for an overflow, this once taught a window of 259 tokens, after
    # which every prompt with the page's knowledge was refused as too long.
    interrupted = streamed(completion("The old town is built around"), include_usage=False)
    assert interrupted.chunks is not None
    interrupted.chunks = interrupted.chunks[:-1]  # no finish reason, yet "data: [DONE]"
    openai_server.script.extend([interrupted, completion("The old town is built around the river.")])
    with caplog.at_level(logging.INFO):
        say(post, QUESTION, "And the river?")
    assert graph.texts(PSID) == ["The old town is built around the river.", "You said: And the river?"]
    assert "context window is" not in caplog.text
    assert contents(openai_server.requests[-1])[1:] == [
        QUESTION,
        "The old town is built around the river.",
        "And the river?",
    ]


def test_the_terminal_chat_learns_the_window_from_cut_streams_too(app, llama_cpp):
    questions = "".join(f"{n}. {QUESTION}\n" for n in range(25))
    result = app.test_cli_runner().invoke(args=["chat"], input=questions)
    assert result.exit_code == 0, result.output
    assert replies.APOLOGY_TRY_LATER not in result.output
    assert result.output.count("bot> A long answer.") == 25
    assert llama_cpp.refused + llama_cpp.cut_streams <= 3


def test_with_the_page_knowledge_a_small_window_answers_short_questions(
    config, app_with, graph, openai_server, llama_cpp, caplog
):
    config.update(KNOWLEDGE_DIR=str(EXAMPLE_KNOWLEDGE))
    post = app_with(config)
    with caplog.at_level(logging.INFO):
        say(post, "How much is a sourdough loaf?", "My name is Ana.", "What is my name?")
    assert apologies(graph) == []
    assert len(graph.texts(PSID)) == 3
    loaf = [r for r in openai_server.requests if contents(r)[-1] == "How much is a sourdough loaf?"]
    assert "Sourdough loaf (800 g): £4.80." in contents(loaf[-1])[0]
    assert fits(openai_server.requests[-1], 1024)
    assert "My name is Ana." in contents(openai_server.requests[-1])
    # Nothing blames the owner's prompt or the person's message (the start's word on WhatsApp's handover is another
    # matter).
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [w for w in warnings if not w.startswith("On whatsapp, asking for a person")] == []
    cuts = [r.getMessage() for r in caplog.records if "knowledge was cut" in r.getMessage()]
    assert cuts
    assert cuts[0].startswith("the page's knowledge was cut to fit the model's context window of ")


def test_knowledge_too_large_for_a_configured_window_is_no_error_at_start(config, app_with, graph, openai_server):
    openai_server.default = model = SmallWindow(1024, answer_chars=1200)
    config.update(KNOWLEDGE_DIR=str(EXAMPLE_KNOWLEDGE), MODEL_CONTEXT_TOKENS="1024")
    post = app_with(config)
    say(post, "How much is a sourdough loaf?")
    assert model.refused == 0
    assert "£4.80" in contents(openai_server.requests[-1])[0]
    assert apologies(graph) == []


@pytest.mark.parametrize(
    ("server", "asked"),
    [
        ("llama.cpp", ["/props"]),
        ("vllm", ["/props", "/v1/models"]),
        ("ollama", ["/props", "/v1/models", "/api/show"]),
    ],
)
def test_a_server_that_says_its_window_is_never_sent_a_prompt_over_it(post, graph, openai_server, server, asked):
    model = SmallWindow(1024, answer_chars=1200, streams_like_llama_cpp=True, says_window=server)
    openai_server.default = model
    say(post, *(f"{n}. {QUESTION}" for n in range(25)))
    assert model.refused + model.cut_streams == 0
    assert all(fits(request, 1024) for request in openai_server.requests)
    assert len(graph.texts(PSID)) == 25
    assert openai_server.asked_window == asked


def test_a_server_that_says_nothing_is_asked_once(post, openai_server, llama_cpp):
    say(post, *(f"{n}. {QUESTION}" for n in range(5)))
    assert openai_server.asked_window == ["/props", "/v1/models", "/api/show"]


def test_the_owners_window_wins_and_the_server_is_not_asked(config, app_with, openai_server):
    openai_server.default = SmallWindow(1024, says_window="llama.cpp")
    config.update(MODEL_CONTEXT_TOKENS="700")
    post = app_with(config)
    say(post, *(f"{n}. {QUESTION}" for n in range(3)))
    assert openai_server.asked_window == []
    assert all(fits(request, 700) for request in openai_server.requests)


def test_knowledge_in_a_small_window_keeps_its_most_relevant_sections_then_the_best_one_cut():
    sections = ("## Hours\n" + "open " * 100, "## Bread\nSourdough loaf: £4.80.", "## Cakes\n" + "cake " * 200)
    knowledge = prompt.PageKnowledge(sections, searched=True, ranking=(1, 0, 2))
    kept = knowledge.within(len(knowledge.text([1]).encode()) + 20)
    assert kept is not None
    text, given_up = kept
    assert "Sourdough loaf: £4.80." in text
    assert "## Hours" not in text
    assert given_up == "1 of 3 sections kept"
    long_ones = prompt.PageKnowledge((sections[0], sections[2]), searched=True, ranking=(1, 0))
    kept = long_ones.within(len(long_ones.text([]).encode()) + 300)
    assert kept is not None
    text, given_up = kept
    assert "## Cakes\ncake cake" in text
    assert "## Hours" not in text
    assert text.endswith("…")
    assert given_up == "the most relevant of 2 sections kept, shortened"
    assert knowledge.within(100) is None
