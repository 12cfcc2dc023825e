"""The whole service over real HTTP: gunicorn, signed webhooks in, what reaches Meta and OpenAI out."""

from __future__ import annotations

from http import HTTPStatus
from http.client import HTTPConnection

import requests

from inboxgpt import replies
from tests.fakes import Reply, completion, echo_answer, openai_error
from tests.helpers import PAGE_ID, each_message, load, page_body, text_event


def replies_arrived(graph, psid: str, count: int) -> bool:
    return graph.wait_for(lambda: len(graph.texts(psid)) >= count)


def test_a_message_is_answered_with_seen_typing_then_the_reply(service, fakes, person):
    graph, model = fakes

    def answer_once_typing_shows(request: dict) -> Reply:
        # A real model takes longer than the typing call; this one waits for it to be sure.
        graph.wait_for(lambda: "mark_seen" in graph.sequence(person), timeout=10)
        return echo_answer(request)

    model.default = answer_once_typing_shows
    assert service.post(page_body(text_event("Bonjour, ça va ?", psid=person))).status_code == HTTPStatus.OK
    assert replies_arrived(graph, person, 1)
    assert graph.sequence(person) == ["typing_on", "mark_seen", "text:You said: Bonjour, ça va ?"]
    assert model.requests[-1]["messages"][-1] == {"role": "user", "content": "Bonjour, ça va ?"}
    assert graph.paths[-1].startswith("/v23.0/me/messages?access_token=")


def test_replies_come_in_the_order_messages_were_sent(service, fakes, person):
    graph, model = fakes
    model.default = lambda request: completion("re: " + request["messages"][-1]["content"], delay=0.05)
    texts = [f"message {n}" for n in range(5)]
    for text in texts:
        assert service.post(page_body(text_event(text, psid=person))).status_code == HTTPStatus.OK
    # Messages sent while the first is answered come back answered together: each once, in order.
    assert graph.wait_for(lambda: len(each_message(graph.texts(person))) >= 5)
    assert each_message(graph.texts(person), "re: ") == texts


def test_history_carries_over_between_messages(service, fakes, person):
    graph, model = fakes
    service.post(page_body(text_event("my name is Ada", psid=person)))
    assert replies_arrived(graph, person, 1)
    service.post(page_body(text_event("what is my name?", psid=person)))
    assert replies_arrived(graph, person, 2)
    assert [m["content"] for m in model.requests[-1]["messages"][1:]] == [
        "my name is Ada",
        "You said: my name is Ada",
        "what is my name?",
    ]


def test_a_long_reply_arrives_split_and_whole(service, fakes, person):
    graph, model = fakes
    long_reply = "\n\n".join(f"Part {n}. " + "lorem ipsum " * 120 for n in range(5)).strip()
    model.script.append(completion(long_reply))
    service.post(page_body(text_event("a long answer please", psid=person)))
    assert graph.wait_for(lambda: " ".join(graph.texts(person)).split() == long_reply.split())
    assert len(graph.texts(person)) > 1
    assert all(len(t) <= 2000 for t in graph.texts(person))


def test_a_passing_graph_failure_is_retried(service, fakes, person):
    graph, model = fakes
    accepted = graph.default
    refused: list[dict] = []

    def refuse_the_first_message_once(request: dict) -> Reply:
        if "message" in request and not refused:
            refused.append(request)
            return Reply(
                status=500,
                body={
                    "error": {
                        "message": "An unknown error occurred",
                        "type": "OAuthException",
                        "code": 1,
                        "is_transient": True,
                        "fbtrace_id": "A1",
                    }
                },
            )
        return accepted(request)

    graph.default = refuse_the_first_message_once
    service.post(page_body(text_event("retry me", psid=person)))
    assert replies_arrived(graph, person, 2)
    assert graph.texts(person) == ["You said: retry me", "You said: retry me"]  # refused once, then delivered
    assert len(refused) == 1


def test_echoes_receipts_and_other_events_get_no_reply(service, fakes, person):
    graph, model = fakes
    quiet = [
        {
            "sender": {"id": PAGE_ID},
            "recipient": {"id": person},
            "timestamp": 1,
            "message": {"mid": f"echo-{person}", "is_echo": True, "text": "echo"},
        },
        {
            "sender": {"id": person},
            "recipient": {"id": PAGE_ID},
            "timestamp": 2,
            "delivery": {"mids": ["x"], "watermark": 1},
        },
        {"sender": {"id": person}, "recipient": {"id": PAGE_ID}, "timestamp": 3, "read": {"watermark": 1}},
        {
            "sender": {"id": person},
            "recipient": {"id": PAGE_ID},
            "timestamp": 4,
            "reaction": {"reaction": "like", "action": "react", "mid": "x"},
        },
    ]
    # The last message comes after the others from the same person: once it is answered,
    # anything the others had caused would have arrived before it.
    service.post(page_body(*quiet, text_event("the only question", psid=person)))
    assert replies_arrived(graph, person, 1)
    assert graph.texts(person) == ["You said: the only question"]
    assert len(model.requests) == 1


def test_a_redelivered_event_is_answered_once(service, fakes, person):
    graph, model = fakes
    body = page_body(text_event("only once", psid=person, mid=f"m_once_{person}"))
    for _ in range(3):
        assert service.post(body).status_code == HTTPStatus.OK
    service.post(page_body(text_event("after that", psid=person)))
    assert replies_arrived(graph, person, 2)
    assert graph.texts(person) == ["You said: only once", "You said: after that"]


def test_the_person_gets_an_apology_when_the_model_fails(service, fakes, person):
    graph, model = fakes
    model.script.append(openai_error(500, "The server had an error while processing your request.", "server_error"))
    service.post(page_body(text_event("are you ok?", psid=person)))
    assert replies_arrived(graph, person, 1)
    assert graph.texts(person) == [replies.APOLOGY_TRY_LATER]


def test_a_batch_from_many_people_is_answered_for_each(service, fakes, person):
    graph, model = fakes
    people = [f"{person}{n}" for n in range(10)]
    service.post(page_body(*(text_event(f"hi from {p}", psid=p) for p in people)))
    assert graph.wait_for(lambda: all(graph.texts(p) for p in people))
    for p in people:
        assert graph.texts(p) == [f"You said: hi from {p}"]


def test_verification_and_signatures_over_http(service, fakes):
    url = service.url
    ok = service.session.get(
        url + "/", params={"hub.mode": "subscribe", "hub.verify_token": "my-verify-token-42", "hub.challenge": "987"}
    )
    assert (ok.status_code, ok.text) == (HTTPStatus.OK, "987")
    assert (
        service.session.get(
            url + "/", params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"}
        ).status_code
        == HTTPStatus.FORBIDDEN
    )
    assert service.post(load("text.json"), signature="sha256=" + "0" * 64).status_code == HTTPStatus.FORBIDDEN
    assert too_large_is_refused_before_the_body(service.port)
    assert service.session.get(url + "/healthz").json()["status"] == "ok"


def too_large_is_refused_before_the_body(port: int) -> bool:
    """Announce a body over 1 MiB and send none of it: the service must answer 413 at once."""
    # Sending the body too would race the server closing the connection once it has answered.
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("POST", "/")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(1024 * 1024 + 1))
    connection.endheaders()
    status = connection.getresponse().status
    connection.close()
    return status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def test_an_instagram_conversation_over_gunicorn(service, fakes, person):
    graph, model = fakes
    for n, text in enumerate(("Hi from Instagram, my name is Ada", "what is my name?")):
        body = load("instagram/text.json")
        item = body["entry"][0]["messaging"][0]
        item["sender"]["id"] = person
        item["message"].update(text=text, mid=f"ig-{person}-{n}")
        assert service.post(body).status_code == HTTPStatus.OK
        assert replies_arrived(graph, person, n + 1)
    assert [m["content"] for m in model.requests[-1]["messages"][1:]] == [
        "Hi from Instagram, my name is Ada",
        "You said: Hi from Instagram, my name is Ada",
        "what is my name?",
    ]
    sent = [r for r in graph.requests if r.get("recipient", {}).get("id") == person and "message" in r]
    assert [r["message"] for r in sent] == [
        {"text": "You said: Hi from Instagram, my name is Ada"},
        {"text": "You said: what is my name?"},
    ]


def test_a_path_cannot_forge_a_log_line(service, fakes):
    forged = "/y%0a1999-01-01 12:00:00 ERROR bot: model failed FORGED"
    assert requests.get(service.url + forged, timeout=10).status_code == 404
    line = service.lines.wait_for('"GET /y')
    assert "/y%0A1999-01-01%2012:00:00%20ERROR%20bot:%20model%20failed%20FORGED" in line
    assert not any(seen.startswith("1999-01-01") for seen in service.lines.seen)
