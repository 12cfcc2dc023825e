"""Models with small context windows: learn the window, fit every prompt to it, never leave a person stuck."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inboxgpt import replies
from inboxgpt.model import prompt
from tests.fakes import SmallWindow, server_tokens
from tests.helpers import PSID, load, page_body, text_event

QUESTION = "Tell me more about the history of the city, its old town and the river that runs through it."


def say(post, *texts: str) -> None:
    for text in texts:
        post(page_body(text_event(text)))


def fits(request: dict, window: int) -> bool:
    return sum(server_tokens(m) for m in request["messages"]) + request["max_tokens"] <= window


def apologies(graph) -> list[str]:
    return [text for text in graph.texts(PSID) if text in replies.APOLOGIES.values()]


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


def test_the_learned_window_is_logged_once(post, small_model, caplog):
    with caplog.at_level(logging.INFO, logger="inboxgpt.model.gpt"):
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
    assert [r.getMessage() for r in caplog.records if r.name == "inboxgpt.model.gpt"] == [
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
    assert kept_past == (past[len(past) - len(kept_past) :] if kept_past else [])
    assert len(kept_past) % 2 == 0
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


def test_25_long_turns_are_answered_when_the_server_refuses_streams_by_cutting_them(post, graph, llama_cpp):
    say(post, *(f"{n}. {QUESTION}" for n in range(25)))
    assert apologies(graph) == []
    assert len(graph.texts(PSID)) == 25
    assert llama_cpp.refused + llama_cpp.cut_streams <= 3
    assert replies.CUT_OFF not in graph.texts(PSID)


def test_the_terminal_chat_learns_the_window_from_cut_streams_too(app, llama_cpp):
    questions = "".join(f"{n}. {QUESTION}\n" for n in range(25))
    result = app.test_cli_runner().invoke(args=["chat"], input=questions)
    assert result.exit_code == 0, result.output
    assert replies.APOLOGY_TRY_LATER not in result.output
    assert result.output.count("bot> A long answer.") == 25
    assert llama_cpp.refused + llama_cpp.cut_streams <= 3
