"""The model client against OpenAI itself (no base URL), through an injected HTTP transport."""

from __future__ import annotations

import json

import httpx2
from openai import OpenAI

from inboxgpt.config import settings_from_mapping
from inboxgpt.model.gpt import ChatModel, ModelSettings, drop_older_half


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
