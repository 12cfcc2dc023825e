"""A store that is missing at start stops start-up; one that fails later gets Meta to send events again."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from config import ConfigError
from helpers import APP_SECRET, load, meta_json
from redis_server import RedisServer
from signature import sign


def test_an_unknown_store_stops_start_up(config, make_app):
    config.update(STORE_URL="mongodb://localhost/bot")
    with pytest.raises(ConfigError, match="STORE_URL is invalid"):
        make_app(config)


def test_an_unreachable_store_stops_start_up_without_its_password(config, make_app):
    config.update(STORE_URL="redis://:s3cret-pass@127.0.0.1:9/0")
    with pytest.raises(ConfigError, match=r"cannot reach Redis at 127\.0\.0\.1:9/0") as raised:
        make_app(config)
    assert "s3cret-pass" not in str(raised.value)


def test_a_store_that_goes_down_gives_503s_and_a_degraded_health_check(config, make_app, graph):
    try:
        server = RedisServer()
    except FileNotFoundError as missing:
        pytest.skip(str(missing))
    config.update(STORE_URL=server.url + "/0")
    client = make_app(config).test_client()
    assert client.get("/healthz").status_code == HTTPStatus.OK
    server.stop()

    health = client.get("/healthz")
    assert health.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert health.get_json()["status"] == "degraded"
    assert health.get_json()["store"] == "unreachable"
    raw = meta_json(load("text.json"))
    response = client.post("/", data=raw, headers={"X-Hub-Signature-256": sign(raw, APP_SECRET)})
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE  # Meta will send it again
    assert graph.calls == []
