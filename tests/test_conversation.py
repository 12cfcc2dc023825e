"""The conversation as the person and OpenAI see it: history, bounds, commands, failures."""

from __future__ import annotations

import pytest

from inboxgpt import replies
from inboxgpt.channels.messenger import MessengerChannel
from inboxgpt.model import prompt
from inboxgpt.model.errors import Failure
from inboxgpt.model.prompt import estimate_tokens
from tests.fakes import Reply, completion, openai_error
from tests.helpers import OPENAI_KEY, PSID, page_body, text_event


def say(post, *texts: str, psid: str = PSID) -> None:
    """The person sends each text as its own webhook call."""
    for text in texts:
        post(page_body(text_event(text, psid=psid)))


def test_the_model_gets_system_prompt_history_and_new_message(post, openai_server, config):
    say(post, "hello", "how are you?")
    request = openai_server.requests[-1]
    assert request["messages"] == [
        {"role": "system", "content": bot_settings_prompt(config)},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "You said: hello"},
        {"role": "user", "content": "how are you?"},
    ]
    assert request["model"] == "gpt-4.1-mini"
    assert openai_server.headers[-1]["authorization"] == f"Bearer {OPENAI_KEY}"


def bot_settings_prompt(config) -> str:
    from inboxgpt.config import DEFAULT_SYSTEM_PROMPT

    return prompt.system_message(config.get("SYSTEM_PROMPT", DEFAULT_SYSTEM_PROMPT), MessengerChannel.formatting_note)


def test_settings_choose_model_prompt_and_reply_cap(config, openai_server, app_with):
    config.update(OPENAI_MODEL="llama3.2", SYSTEM_PROMPT="You are a pirate.", REPLY_MAX_TOKENS="77")
    post = app_with(config)
    say(post, "ahoy")
    request = openai_server.requests[-1]
    assert request["model"] == "llama3.2"
    system = prompt.system_message("You are a pirate.", MessengerChannel.formatting_note)
    assert request["messages"][0] == {"role": "system", "content": system}
    assert "/human" in request["messages"][0]["content"]
    # A custom base URL is an OpenAI-compatible server: it gets the widely known max_tokens.
    assert request["max_tokens"] == 77
    assert "max_completion_tokens" not in request


def test_history_keeps_newest_whole_turns_within_the_message_count(config, openai_server, app_with):
    config.update(HISTORY_MAX_MESSAGES="4")
    post = app_with(config)
    say(post, "one", "two", "three", "four")
    messages = openai_server.requests[-1]["messages"]
    assert [m["content"] for m in messages[1:]] == [
        "two",
        "You said: two",
        "three",
        "You said: three",
        "four",
    ]


def test_history_keeps_the_whole_prompt_within_the_token_budget(config, openai_server, app_with):
    config.update(SYSTEM_PROMPT="Be brief.", HISTORY_MAX_TOKENS="400", HISTORY_MAX_MESSAGES="100")
    post = app_with(config)
    for n in range(30):
        say(post, f"message number {n} " + "x" * 100)
    for request in openai_server.requests:
        messages = request["messages"]
        assert sum(estimate_tokens(m["content"]) for m in messages) <= 400
        assert messages[0]["role"] == "system"
        assert messages[-1]["role"] == "user"
        # Whole turns only: user and assistant alternate after the system prompt.
        assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * ((len(messages) - 2) // 2) + ["user"]
    last = openai_server.requests[-1]["messages"]
    assert last[-1]["content"].startswith("message number 29")
    assert last[-3]["content"].startswith("message number 28")  # the newest turns are the ones kept
    assert len(last) < 2 * 30


def test_each_person_has_their_own_history(post, openai_server):
    say(post, "I am Ann", psid="100")
    say(post, "I am Bob", psid="200")
    contents = [m["content"] for m in openai_server.requests[-1]["messages"]]
    assert "I am Ann" not in contents


@pytest.mark.parametrize("command", ["/reset", "reset", "RESET", " /Reset "])
def test_reset_forgets_the_history_and_confirms(post, graph, openai_server, command):
    say(post, "remember the number 7")
    say(post, command)
    assert graph.texts(PSID)[-1] == replies.RESET_DONE
    say(post, "what number?")
    assert len(openai_server.requests) == 2  # the command itself never reached the model
    contents = [m["content"] for m in openai_server.requests[-1]["messages"]]
    assert "remember the number 7" not in contents


def test_help_explains_the_bot_without_the_model(post, graph, openai_server):
    say(post, "/help")
    (help_text,) = graph.texts(PSID)
    assert "/reset" in help_text
    assert "photos and voice messages" in help_text
    assert openai_server.requests == []


def test_a_long_reply_is_split_in_order_losing_nothing(post, graph, openai_server):
    paragraphs = [f"Paragraph {n}. " + "word " * 150 for n in range(8)]
    long_reply = "\n\n".join(paragraphs).strip()
    openai_server.script.append(completion(long_reply))
    say(post, "tell me a long story")
    texts = graph.texts(PSID)
    assert len(texts) > 1
    assert all(len(text) <= 2000 for text in texts)
    assert " ".join(texts).split() == long_reply.split()
    assert all(text.startswith("Paragraph") for text in texts)  # cut at paragraph boundaries


def test_empty_content_gets_a_fallback_and_is_not_remembered(post, graph, openai_server):
    openai_server.script.append(completion(None))
    say(post, "hmm")
    assert graph.texts(PSID)[-1] == replies.EMPTY_REPLY
    say(post, "again")
    assert [m["content"] for m in openai_server.requests[-1]["messages"][1:]] == ["again"]


def test_a_refusal_is_sent_as_the_answer(post, graph, openai_server):
    refusal = completion(None)
    refusal.body["choices"][0]["message"]["refusal"] = "I can't help with that."
    openai_server.script.append(refusal)
    say(post, "something bad")
    assert graph.texts(PSID) == ["I can't help with that."]


def test_a_reply_cut_by_the_token_cap_is_still_sent(post, graph, openai_server):
    openai_server.script.append(completion("The answer is", finish_reason="length"))
    say(post, "question")
    assert graph.texts(PSID) == ["The answer is"]


def test_context_length_error_retries_once_with_a_shorter_history(post, graph, openai_server):
    say(post, "one", "two", "three", "four")
    openai_server.script.append(
        openai_error(
            400,
            "This model's maximum context length is 8192 tokens.",
            "invalid_request_error",
            "context_length_exceeded",
        )
    )
    say(post, "five")
    failed, retried = openai_server.requests[-2:]
    assert len(failed["messages"]) == 1 + 8 + 1
    assert [m["content"] for m in retried["messages"][1:]] == [
        "three",
        "You said: three",
        "four",
        "You said: four",
        "five",
    ]
    assert graph.texts(PSID)[-1] == "You said: five"


def test_compatible_servers_context_error_by_message_is_recognised(post, graph, openai_server):
    say(post, "one", "two")
    openai_server.script.append(
        openai_error(400, "Requested tokens exceed the maximum context length of 4096", "BadRequestError")
    )
    say(post, "three")
    assert graph.texts(PSID)[-1] == "You said: three"


def test_context_length_error_twice_ends_with_an_apology(post, graph, openai_server):
    error = openai_error(400, "maximum context length exceeded", "invalid_request_error", "context_length_exceeded")
    openai_server.script.extend([error, error])
    say(post, "a very long message")
    assert graph.texts(PSID) == [replies.APOLOGIES[Failure.TOO_LONG]]


FAILURES = [
    (
        openai_error(429, "Rate limit reached for gpt-4.1-mini", "requests", "rate_limit_exceeded"),
        replies.APOLOGY_TRY_LATER,
        "rate limited",
    ),
    (
        openai_error(429, "You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
        replies.APOLOGY_UNAVAILABLE,
        "no quota",
    ),
    (
        openai_error(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
        replies.APOLOGY_UNAVAILABLE,
        "API key was refused",
    ),
    (
        openai_error(403, "Project does not have access to model", "invalid_request_error", "model_not_found"),
        replies.APOLOGY_UNAVAILABLE,
        "may not use",
    ),
    (
        openai_error(404, "The model `gpt-9` does not exist", "invalid_request_error", "model_not_found"),
        replies.APOLOGY_UNAVAILABLE,
        "does not exist",
    ),
    (openai_error(500, "The server had an error", "server_error"), replies.APOLOGY_TRY_LATER, "server failed"),
    (
        openai_error(503, "The engine is currently overloaded", "server_error"),
        replies.APOLOGY_TRY_LATER,
        "server failed",
    ),
    (openai_error(400, "Invalid 'messages'", "invalid_request_error"), replies.APOLOGIES[Failure.REJECTED], "rejected"),
    # Streamed (the default), a body that is no event stream is the server failing.
    (Reply(status=200, body={"not": "a completion"}), replies.APOLOGY_TRY_LATER, "server failed"),
]


@pytest.mark.parametrize(("reply", "apology", "logged"), FAILURES)
def test_model_failures_end_in_an_apology_and_a_log_line_without_the_text(
    post, graph, openai_server, caplog, reply, apology, logged
):
    openai_server.script.append(reply)
    with caplog.at_level("INFO"):
        say(post, "my secret diary entry")
    assert graph.texts(PSID) == [apology]
    if logged:
        assert logged in caplog.text
    assert "my secret diary entry" not in caplog.text
    # The service carries on, and the failed message left no half turn behind.
    say(post, "next")
    assert graph.texts(PSID)[-1] == "You said: next"
    assert [m["role"] for m in openai_server.requests[-1]["messages"]] == ["system", "user"]


def test_model_timeout_ends_in_an_apology(config, openai_server, graph, app_with):
    config.update(OPENAI_TIMEOUT="0.2")
    post = app_with(config)
    never = completion("too late")
    never.hold = True
    openai_server.script.append(never)
    say(post, "are you there?")
    assert graph.texts(PSID) == [replies.APOLOGY_TRY_LATER]
    openai_server.released.set()


def test_model_unreachable_ends_in_an_apology(config, graph, app_with):
    config.update(OPENAI_BASE_URL="http://127.0.0.1:9/v1")  # the discard port: nothing listens
    post = app_with(config)
    say(post, "hello?")
    assert graph.texts(PSID) == [replies.APOLOGY_TRY_LATER]


def test_sdk_retries_a_passing_server_error(config, graph, openai_server, app_with):
    config.update(OPENAI_MAX_RETRIES="2")
    post = app_with(config)
    retry_soon = {"retry-after-ms": "1"}
    openai_server.script.extend(
        [
            Reply(status=503, body={"error": {"message": "overloaded", "type": "server_error"}}, headers=retry_soon),
            Reply(status=429, body={"error": {"message": "slow down", "type": "requests"}}, headers=retry_soon),
        ]
    )
    say(post, "hi")
    assert len(openai_server.requests) == 3
    assert graph.texts(PSID) == ["You said: hi"]


def test_a_reply_meta_refuses_is_not_remembered(post, graph, openai_server):
    graph.fail_next(400, 10, 2018278, messages_only=True)
    say(post, "first")
    say(post, "second")
    assert [m["content"] for m in openai_server.requests[-1]["messages"][1:]] == ["second"]
