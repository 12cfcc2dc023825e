"""The model client against OpenAI itself (no base URL), through an injected HTTP transport."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2
import pytest
from openai import OpenAI

from inboxgpt.config import settings_from_mapping
from inboxgpt.model.errors import Failure, ModelError
from inboxgpt.model.gpt import ChatModel, ModelSettings
from inboxgpt.model.prompt import drop_older_half
from tests.fakes import Reply, completion, streamed


def test_openai_itself_gets_max_completion_tokens(config):
    del config["OPENAI_BASE_URL"]
    seen: list[httpx2.Request] = []

    def openai_api(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(
            200,
            json={
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-4.1-mini",
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": " Hi! "}}
                ],
            },
        )

    settings = settings_from_mapping(config)
    client = OpenAI(
        api_key=settings.openai_api_key.reveal(), http_client=httpx2.Client(transport=httpx2.MockTransport(openai_api))
    )
    reply = ChatModel(ModelSettings.from_settings(settings), client=client).complete(
        [{"role": "user", "content": "hello"}]
    )
    assert reply.text == "Hi!"
    assert reply.prompt_tokens is None
    assert str(seen[0].url) == "https://api.openai.com/v1/chat/completions"
    body = json.loads(seen[0].content)
    assert body["max_completion_tokens"] == 500
    assert "max_tokens" not in body


def test_the_default_client_talks_to_openai_with_a_chat_sized_timeout(config, monkeypatch):
    del config["OPENAI_BASE_URL"]
    monkeypatch.setenv("OPENAI_BASE_URL", "http://elsewhere.invalid/v1")
    model = ChatModel(ModelSettings.from_settings(settings_from_mapping(config)))
    client = model._client
    assert str(client.base_url) == "https://api.openai.com/v1/"
    assert client.timeout == 5.0
    assert client.max_retries == 0


def test_dropping_the_older_half_keeps_whole_turns():
    system = {"role": "system", "content": "s"}
    turns = [{"role": r, "content": f"{r}{n}"} for n in range(5) for r in ("user", "assistant")]
    new = {"role": "user", "content": "new"}
    shorter = drop_older_half([system, *turns, new])
    assert shorter == [system, *turns[-4:], new]
    assert drop_older_half([system, new]) == [system, new]


def stream_body(reply: Reply, malformed_after: int | None = None) -> bytes:
    """A streamed chat completion's bytes, as the server sends them; with a malformed event after so many."""
    assert reply.chunks is not None
    events = [f"data: {json.dumps(chunk)}\n\n".encode() for chunk in reply.chunks] + [b"data: [DONE]\n\n"]
    if malformed_after is not None:
        events.insert(malformed_after, b'data: {"choices": [\n\n')
    return b"".join(events)


def model_reading(config: dict, reads: list[bytes]) -> ChatModel:
    """A model whose server's streamed answer arrives in exactly these reads."""

    def openai_api(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=Reads(reads))

    settings = settings_from_mapping(config)
    client = OpenAI(
        api_key=settings.openai_api_key.reveal(), http_client=httpx2.Client(transport=httpx2.MockTransport(openai_api))
    )
    return ChatModel(ModelSettings.from_settings(settings), client=client)


class Reads(httpx2.SyncByteStream):
    def __init__(self, reads: list[bytes]):
        self._reads = reads

    def __iter__(self) -> Iterator[bytes]:
        yield from self._reads


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
def test_a_stream_gives_the_same_answer_however_it_is_cut_into_reads(config, size):
    body = stream_body(streamed(completion("Hello there, how can I help you today?", completion_tokens=9)))
    pieces: list[str] = []
    reply = model_reading(config, [body[at : at + size] for at in range(0, len(body), size)]).complete(
        [{"role": "user", "content": "hello"}], on_text=pieces.append
    )
    assert "".join(pieces) == "Hello there, how can I help you today?"
    assert not reply.broken
    assert reply.completion_tokens == 9


@pytest.mark.parametrize("line_end", [b"\r\n", b"\r"])
def test_a_stream_whose_lines_end_in_carriage_returns_reads_the_same(config, line_end):
    body = stream_body(streamed(completion("Hello there, how can I help you today?"))).replace(b"\n", line_end)
    pieces: list[str] = []
    reply = model_reading(config, [body[at : at + 5] for at in range(0, len(body), 5)]).complete(
        [{"role": "user", "content": "hello"}], on_text=pieces.append
    )
    assert "".join(pieces) == "Hello there, how can I help you today?"
    assert not reply.broken


def test_a_malformed_event_keeps_what_came_before_it_in_the_same_read(config):
    # The role, then "Open" and "ing": the answer as far as the malformed event.
    body = stream_body(streamed(completion("Opening words of the answer")), malformed_after=3)
    pieces: list[str] = []
    reply = model_reading(config, [body]).complete([{"role": "user", "content": "hello"}], on_text=pieces.append)
    assert "".join(pieces) == "Opening"
    assert reply.broken


def test_the_model_server_is_not_told_about_the_machine(config, openai_server):
    model = ChatModel(ModelSettings.from_settings(settings_from_mapping(config)))
    try:
        assert model.complete([{"role": "user", "content": "hello"}]).text == "You said: hello"
    finally:
        model.close()
    (headers,) = openai_server.headers
    assert headers["authorization"] == f"Bearer {config['OPENAI_API_KEY']}"
    assert not [
        name for name in headers if name.startswith("x-stainless-") and "retry" not in name and "timeout" not in name
    ]


class CutOff(httpx2.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b'{"choices": ['
        raise httpx2.ReadError("connection reset by peer")


def test_a_whole_answer_to_a_streamed_request_cut_off_midway_is_a_failure_not_a_crash(config):
    def openai_api(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "application/json"}, stream=CutOff())

    settings = settings_from_mapping(config)
    client = OpenAI(
        api_key=settings.openai_api_key.reveal(), http_client=httpx2.Client(transport=httpx2.MockTransport(openai_api))
    )
    model = ChatModel(ModelSettings.from_settings(settings), client=client)
    with pytest.raises(ModelError) as failed:
        model.complete([{"role": "user", "content": "hello"}], on_text=lambda text: True)
    assert failed.value.failure is Failure.SERVER
