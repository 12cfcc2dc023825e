"""The connections to Meta and the model's server honour the proxy the environment names, as requests would."""

from __future__ import annotations

import pytest

from inboxgpt.channels import page_channels
from inboxgpt.channels.graph import GraphClient, GraphSettings
from inboxgpt.config import settings_from_mapping
from inboxgpt.model.gpt import ChatModel, ModelSettings
from tests.helpers import PSID


@pytest.fixture
def proxy_variables(monkeypatch):
    """A clean slate of proxy variables; the test sets the ones it means."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def test_graph_calls_go_through_the_proxy_the_environment_names(config, graph, proxy_variables):
    proxy_variables.setenv("HTTP_PROXY", graph.url)  # the fake Graph API stands in for the proxy
    config.update(GRAPH_API_URL="http://graph.example.invalid/v23.0")
    settings = settings_from_mapping(config)
    channels = page_channels(GraphClient(GraphSettings.from_settings(settings)), settings)
    assert len(channels.send_text(PSID, "hi")) == 1
    # A proxy is asked for the whole address.
    assert graph.paths[0].startswith("http://graph.example.invalid/v23.0/me/messages?access_token=")
    assert graph.texts() == ["hi"]


def test_model_calls_go_through_the_proxy_the_environment_names(config, openai_server, proxy_variables):
    proxy_variables.setenv("HTTP_PROXY", openai_server.url)
    config.update(OPENAI_BASE_URL="http://model.example.invalid/v1")
    model = ChatModel(ModelSettings.from_settings(settings_from_mapping(config)))
    try:
        reply = model.complete([{"role": "user", "content": "hello"}], on_text=lambda text: True)
    finally:
        model.close()
    assert reply.text == "You said: hello"
    assert openai_server.paths == ["http://model.example.invalid/v1/chat/completions"]


def test_a_host_the_environment_exempts_is_reached_directly(config, graph, proxy_variables):
    proxy_variables.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    proxy_variables.setenv("NO_PROXY", "127.0.0.1")
    settings = settings_from_mapping(config)
    channels = page_channels(GraphClient(GraphSettings.from_settings(settings)), settings)
    assert len(channels.send_text(PSID, "hi")) == 1
    assert graph.paths[0].startswith("/v23.0/me/messages?")
