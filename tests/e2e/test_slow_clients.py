"""Under gunicorn: clients that trickle their body cannot keep Meta's webhooks waiting, and no body is cut silently."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http import HTTPStatus

import requests

from tests.helpers import meta_json, page_body, signed_headers, text_event

SLOW_CLIENTS = 20


def trickle(url: str, stop: threading.Event, answers: list[tuple[str, int]], order: list[str]) -> None:
    """Send headers at once, then a body of 1,000 bytes one byte a second; note the answer when it comes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        sock.settimeout(1.0)  # how long a byte waits: the trickle's pace
        for _ in range(60):  # bounded: a minute at most
            try:
                answer = sock.recv(200)
            except TimeoutError:
                if stop.is_set():
                    return
                sock.sendall(b" ")
                continue
            answers.append((answer.split(b"\r\n", 1)[0].decode(), len(answer)))
            order.append("slow client refused")
            return


def test_twenty_slow_clients_do_not_hold_up_a_signed_post(service, fakes, person):
    graph, _ = fakes
    stop = threading.Event()
    answers: list[tuple[str, int]] = []
    order: list[str] = []
    clients = [threading.Thread(target=trickle, args=(service.url, stop, answers, order)) for _ in range(SLOW_CLIENTS)]
    for client in clients:
        client.start()
    try:
        response = service.post(page_body(text_event("am I stuck behind them?", psid=person)), timeout=30)
        order.append("signed post answered")
        assert response.status_code == HTTPStatus.OK
        assert graph.wait_for(lambda: graph.texts(person) == ["You said: am I stuck behind them?"])
        for client in clients:
            client.join(timeout=60)
    finally:
        stop.set()
    # Meta's POST was answered while every slow client was still trickling; then each was refused.
    assert order[0] == "signed post answered"
    assert [status for status, _ in answers] == ["HTTP/1.1 408 Request Timeout"] * SLOW_CLIENTS


def chunks(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * min(64 * 1024, total - sent)
        sent += 64 * 1024


def test_a_chunked_body_over_the_cap_gets_413_not_403(service):
    # requests sends a generator as Transfer-Encoding: chunked, with no Content-Length.
    response = requests.post(service.url + "/", data=chunks(1024 * 1024 + 10), timeout=30)
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def test_a_chunked_body_under_the_cap_is_read_whole(service, fakes, person):
    graph, _ = fakes
    raw = meta_json(page_body(text_event("sent in chunks", psid=person)))
    headers = signed_headers(raw)
    response = requests.post(service.url + "/", data=iter([raw[:10], raw[10:]]), headers=headers, timeout=30)
    assert response.status_code == HTTPStatus.OK
    assert graph.wait_for(lambda: graph.texts(person) == ["You said: sent in chunks"])
