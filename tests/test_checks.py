"""`flask --app app check`: every part of the set-up tried against the fakes, and what the owner is told."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
import responses

from tests.fakes import openai_error
from tests.helpers import WHATSAPP_NUMBER_ID, WHATSAPP_TOKEN
from tests.test_terminal import flask

WEBHOOK_URL = "https://bot.example.com/"


@pytest.fixture
def check(config, make_app):
    """Run the check command with the test's settings (changed in `config` until it runs)."""
    runner = make_app(config).test_cli_runner()
    return lambda *args: runner.invoke(args=["check", *args])


def test_a_working_set_up_passes_every_check(check, graph):
    result = check()
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "✓ page token: works for the page Test Page (id 1234567890)",
        "✓ webhook fields: messages, messaging_postbacks, message_echoes, messaging_handovers, standby",
        "✓ WhatsApp: the token works for the number +1 555-078-3881 (Test Shop)",
        "! handover: on whatsapp /human reaches no one (there is no inbox): the bot says no one is available and goes "
        "on answering; add a staff account for the console (staff add) or set HANDOVER_NOTIFY_URL to be told when a "
        "person asks for someone",
        "✓ OpenAI: the key works and the model gpt-4.1-mini exists",
        "✓ prices: gpt-4.1-mini has no price: it counts as free, and SPEND_* caps cannot apply (set MODEL_PRICES to "
        "price it)",
        "✓ store: memory store reachable and writable",
    ]
    page, subscription, number = graph.all_calls
    assert [call["endpoint"] for call in (page, subscription, number)] == ["me", "subscribed_apps", WHATSAPP_NUMBER_ID]
    assert page["params"]["appsecret_proof"]
    assert subscription["params"]["appsecret_proof"]
    assert number["params"] == {}  # the WhatsApp token goes in a header
    assert graph.headers[-1]["authorization"] == f"Bearer {WHATSAPP_TOKEN}"


def test_a_dead_whatsapp_token_says_how_to_get_one_that_lasts(check, graph):
    graph.fail_next(400, code=190, endpoint=WHATSAPP_NUMBER_ID)
    result = check()
    assert result.exit_code == 1
    assert "✗ WhatsApp: the token was refused (the WhatsApp token is invalid or expired: renew WHATSAPP_TOKEN)" in (
        result.output
    )


def test_without_whatsapp_set_up_it_is_not_checked(config, check, graph):
    config.update(WHATSAPP_TOKEN="", WHATSAPP_PHONE_NUMBER_ID="")
    result = check()
    assert result.exit_code == 0, result.output
    assert "WhatsApp" not in result.output


def test_an_expired_page_token_says_how_to_renew_it(check, graph):
    graph.fail_next(400, code=190, subcode=463, endpoint="me")
    result = check()
    assert result.exit_code == 1
    assert "✗ page token: refused (the page access token has expired: renew PAGE_ACCESS_TOKEN)" in result.output


def test_a_missing_webhook_field_is_named(check, graph):
    graph.subscribed_fields = ["messages"]
    result = check()
    assert result.exit_code == 1
    assert "✗ webhook fields: missing messaging_postbacks: in the app's Messenger API Settings" in result.output


def test_a_page_subscribed_to_no_app_is_told_where_to_subscribe(check, graph):
    graph.subscribed_fields = []
    assert "✗ webhook fields: the page is not subscribed to this app" in check().output


def test_missing_handover_fields_warn_but_pass(check, graph):
    graph.subscribed_fields = ["messages", "messaging_postbacks"]
    result = check()
    assert result.exit_code == 0
    assert "! handover fields: missing message_echoes, messaging_handovers, standby" in result.output


def test_a_refused_openai_key(check, openai_server):
    openai_server.script.append(
        openai_error(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key")
    )
    result = check()
    assert result.exit_code == 1
    assert "✗ OpenAI: the key was refused: check OPENAI_API_KEY" in result.output


def test_an_unknown_model(config, check):
    config["OPENAI_MODEL"] = "gpt-9-imaginary"
    result = check()
    assert result.exit_code == 1
    assert "✗ OpenAI: the model gpt-9-imaginary does not exist here: check OPENAI_MODEL" in result.output


def test_a_server_that_only_lists_its_models_is_understood(config, check, openai_server):
    openai_server.models.add("local-model")
    config["OPENAI_MODEL"] = "local-model"
    openai_server.script.append(openai_error(404, "Not Found", "not_found"))  # no GET /v1/models/{id}
    assert "✓ OpenAI: the key works and the model local-model exists" in check().output


def test_a_store_that_is_down(config, check):
    config["STORE_URL"] = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    result = check()
    assert result.exit_code == 1
    assert "✗ store: STORE_URL: cannot reach Redis at 127.0.0.1:1/0" in result.output


@pytest.mark.parametrize(
    ("verify_token", "line"),
    [
        (None, "✓ webhook URL: answers Meta's verification"),
        ("another-token", "✗ webhook URL: refused the verify token"),
    ],
)
def test_the_webhook_url_answers_meta_s_verification(config, make_app, http_edge, graph, verify_token, line):
    served = make_app(config).test_client()  # the bot behind the public URL

    def public_url(request):
        answer = served.get("/", query_string=urlsplit(request.url).query)
        return answer.status_code, {}, answer.get_data()

    http_edge.add_callback(responses.GET, WEBHOOK_URL, callback=public_url)
    if verify_token:
        config["VERIFY_TOKEN"] = verify_token  # the settings the check runs with differ from the server's
    result = make_app(config).test_cli_runner().invoke(args=["check", "--webhook-url", WEBHOOK_URL])
    assert line in result.output


def test_missing_settings_are_all_named(config):
    result = flask("check", OPENAI_API_KEY="sk-test")
    assert result.returncode == 1
    assert "✗ settings: The bot cannot start: 3 setting(s) missing or invalid." in result.stdout
    assert "PAGE_ACCESS_TOKEN is missing" in result.stdout


# --- when nothing answers: the network named, no "code None" ---


def closed_port() -> int:
    """A loopback port nothing listens on: a connection there is refused, as to a server that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_meta_out_of_reach_names_the_network_not_a_missing_code(config, check):
    config["GRAPH_API_URL"] = f"http://127.0.0.1:{closed_port()}/v23.0"
    result = check()
    assert result.exit_code == 1
    network = "check this machine's network (DNS, a firewall, HTTPS_PROXY)"
    assert f"✗ page token: no answer from Meta (NewConnectionError): {network}" in result.output
    assert f"✗ WhatsApp: no answer from Meta (NewConnectionError): {network}\n" in result.output
    assert "None" not in result.output


def test_a_model_server_that_is_down_is_named_with_its_address(config, check):
    config["OPENAI_BASE_URL"] = url = f"http://127.0.0.1:{closed_port()}/v1"
    result = check()
    assert f"✗ OpenAI: could not connect to {url}: is the server running there? Check OPENAI_BASE_URL" in result.output
    assert "None" not in result.output


def test_openai_out_of_reach_without_a_base_url_names_the_network(config, check, monkeypatch):
    del config["OPENAI_BASE_URL"]
    # The way out of this machine is closed: the connection fails before anything leaves it.
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{closed_port()}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    result = check()
    assert "✗ OpenAI: could not connect to api.openai.com: check this machine's network" in result.output
    assert "OPENAI_BASE_URL" not in result.output
