"""GET /metrics read back after real requests: the series move, the token guards them, no label names a person."""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from inboxgpt import replies
from inboxgpt.web.app import EXTENSION
from tests.fakes import openai_error
from tests.helpers import PSID, load, page_body, poster, text_event

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def scrape(client, **headers: str) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == HTTPStatus.OK
    assert response.content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: dict, after: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_the_series_move_as_messages_are_answered(post, client, openai_server):
    before = scrape(client)
    post(page_body(text_event("hello")))
    post(page_body(text_event("again")))
    post(load("delivery.json"))
    post(load("text.json"), signature="sha256=" + "0" * 64)
    after = scrape(client)
    assert moved(before, after, "bot_webhook_requests_total", status="200") == 3
    assert moved(before, after, "bot_webhook_requests_total", status="403") == 1
    assert moved(before, after, "bot_events_total", kind="message", channel="messenger") == 2
    assert moved(before, after, "bot_events_total", kind="delivery", channel="messenger") == 1
    assert moved(before, after, "bot_replies_total", outcome="sent", channel="messenger") == 2
    assert moved(before, after, "bot_reply_latency_seconds_count") == 2
    assert moved(before, after, "bot_model_latency_seconds_count") == 2
    assert moved(before, after, "bot_model_tokens_total", type="prompt") == 100
    assert moved(before, after, "bot_model_tokens_total", type="completion") == 20
    assert value(after, "bot_page_token_valid") == 1
    assert value(after, "bot_queue_people") == 0


def test_redeliveries_limits_and_meta_errors_are_counted(config, make_app, graph, openai_server):
    config.update(LIMIT_PER_MINUTE="1")
    app = make_app(config)
    post, client = poster(app), app.test_client()
    before = scrape(client)
    body = page_body(text_event("one"))
    post(body)
    post(body)  # Meta sends it again
    graph.fail_next(400, code=100, messages_only=True)
    post(page_body(text_event("two")))  # over the limit: the notice is refused by Meta
    after = scrape(client)
    assert moved(before, after, "bot_events_total", kind="redelivered", channel="messenger") == 1
    assert moved(before, after, "bot_limited_total", limit="minute") == 1
    assert moved(before, after, "bot_replies_total", outcome="limited", channel="messenger") == 1
    assert moved(before, after, "bot_graph_errors_total", code="100") == 1


def test_the_token_guards_metrics(config, make_app):
    config.update(METRICS_TOKEN="scrape-me-0123")
    client = make_app(config).test_client()
    assert client.get("/metrics").status_code == HTTPStatus.UNAUTHORIZED
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == HTTPStatus.UNAUTHORIZED
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123"}).status_code == HTTPStatus.OK


def test_no_label_carries_a_person_or_their_words(post, client, graph):
    post(page_body(text_event("my secret plan", psid="9988776655443322")))
    graph.fail_next(400, code=190)
    post(page_body(text_event("second", psid="9988776655443322")))
    page = client.get("/metrics").get_data(as_text=True)
    assert "9988776655443322" not in page
    assert "secret plan" not in page
    assert PSID not in page


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_people_waiting_are_counted_from_the_store(config, make_app, tmp_path, store):
    if store == "sqlite":
        config.update(STORE_URL=f"sqlite:///{tmp_path}/bot.db")
    app = make_app(config)
    service = app.extensions[EXTENSION]
    service.dispatcher.close(finish_queued=False)  # nothing is answered: what is queued stays
    from inboxgpt.store import Queued

    service.store.accept([Queued("e1", "111", "x"), Queued("e2", "222", "y"), Queued("e3", "222", "z")])
    assert value(scrape(app.test_client()), "bot_queue_people") == 2


def test_model_failures_and_apologies_are_counted(post, client, graph, openai_server):
    before = scrape(client)
    openai_server.script.append(
        openai_error(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key")
    )
    post(load("text.json"))
    after = scrape(client)
    assert graph.texts(PSID) == [replies.APOLOGY_UNAVAILABLE]
    assert moved(before, after, "bot_model_failures_total", failure="auth") == 1
    assert moved(before, after, "bot_replies_total", outcome="apology", channel="messenger") == 1


def test_the_dashboard_and_the_alerts_use_only_series_the_bot_exports(client):
    page = client.get("/metrics").get_data(as_text=True)
    exported = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", page, re.MULTILINE):
        suffixes = {"counter": ("",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}[kind]
        exported |= {name + suffix for suffix in suffixes}  # a counter's TYPE line names it with _total
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    exprs += re.findall(r"^\s+expr: (.+)$", (DEPLOY / "bot-alerts.yml").read_text(), re.MULTILINE)
    used = {series for expr in exprs for series in re.findall(r"\bbot_[a-z_]+", expr)}
    assert used <= exported, used - exported
    assert len(dashboard["panels"]) >= 10
    scrape = (DEPLOY / "prometheus.yml").read_text()
    assert "metrics_path: /metrics" in scrape
    assert "type: Bearer" in scrape
