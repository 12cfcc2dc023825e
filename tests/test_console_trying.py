"""The console's Try it page through Flask's test client against the fake model: the answer as the customer would
see it, with what it drew on (knowledge sections, tool calls answered by the rehearsal's stub, tokens, cost, time);
no tool acts, nothing reaches Meta or the store; CSRF as on every console form."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from inboxgpt.console.trying import TRYING
from inboxgpt.evals.rehearsal import STUB
from inboxgpt.web.app import EXTENSION
from tests.fakes import FakeToolApi, completion, tool_calls
from tests.test_console import CSRF
from tests.test_console_reports import console  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tool_api():
    server = FakeToolApi()
    yield server
    server.close()


@pytest.fixture
def bakery(console, tool_api, tmp_path):  # noqa: F811 (the fixture)
    """The console of the example bakery, with a tool that would reach `tool_api` if it acted."""
    tools = tmp_path / "tools.toml"
    tools.write_text(
        '[[tool]]\nname = "order_status"\ndescription = "An order\'s status."\nmethod = "GET"\n'
        f'url = "{tool_api.url}/orders/{{number}}"\nresult = "order"\n'
        '[tool.parameters]\nrequired = ["number"]\n[tool.parameters.properties.number]\ntype = "string"\n'
    )
    return console(
        KNOWLEDGE_DIR=str(ROOT / "examples" / "knowledge"),
        TOOLS_FILE=str(tools),
        TOOLS_ALLOW_PRIVATE="on",
        OPENAI_MODEL="bakery-model",
        MODEL_PRICES="bakery-model=1/0.5/2",
    )


def try_it(browser, text: str, channel: str = "messenger", token: str | None = None):
    page = browser.get("/console/try").get_data(as_text=True)
    found = CSRF.search(page)
    assert found
    form = {"text": text, "channel": channel, "csrf_token": found.group(1) if token is None else token}
    return browser.post("/console/try", data=form)


def test_try_it_shows_the_answer_with_its_sections_tool_calls_and_cost(bakery, openai_server, tool_api, graph):
    app, browser = bakery
    openai_server.script.extend([tool_calls(("order_status", {"number": "1042"})), completion("It's **on its way**.")])

    response = try_it(browser, "where is my sourdough order 1042?", channel="messenger")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    answer = page[page.index('id="answer"') :]
    assert "It&#39;s on its way." in answer  # as Messenger shows it: plain text
    explanation = page[page.index('id="explanation"') :]
    assert "<li>prices.md &gt; Prices &gt; Bread</li>" in explanation
    calls = re.findall(r"<tr><td><code>(.*?)</code></td><td><code>(.*?)</code></td><td>(.*?)</td>", explanation)
    assert calls == [("order_status", "{&#34;number&#34;: &#34;1042&#34;}", "ok")]
    assert f'<td class="note-cell">{STUB}</td>' in explanation  # the rehearsal's stub answered the call
    assert "100 prompt + 20 completion tokens in 2 model calls, $0.000140, " in explanation
    assert tool_api.paths == []  # the tool never acted
    assert not [path for path in graph.paths if path.endswith("/messages")]  # nothing reached Meta
    assert app.extensions[EXTENSION].store.transcript_people(10) == []  # nothing kept in the service's store
    sent = openai_server.requests[0]
    assert sent["messages"][-1]["content"] == "where is my sourdough order 1042?"


def test_try_it_formats_the_answer_for_the_channel_chosen(bakery, openai_server):
    _, browser = bakery
    openai_server.default = lambda request: completion("We open at **9**.")
    page = try_it(browser, "when do you open?", channel="whatsapp").get_data(as_text=True)
    assert "We open at *9*." in page[page.index('id="answer"') :]  # WhatsApp's own bold


def test_try_it_refuses_bad_input_without_calling_the_model(bakery, openai_server):
    _, browser = bakery
    assert try_it(browser, "   ").status_code == 400
    assert try_it(browser, "x" * 4001).status_code == 400
    assert try_it(browser, "hello", channel="telegram").status_code == 400
    assert try_it(browser, "hello", token="forged").status_code == 400
    assert openai_server.requests == []


def test_one_try_at_a_time(bakery, openai_server):
    app, browser = bakery
    turn: threading.Lock = app.extensions[TRYING].turn
    with turn:  # a try under way
        response = try_it(browser, "hello")
    assert response.status_code == 429
    assert "Another try is under way" in response.get_data(as_text=True)
    assert openai_server.requests == []


def test_try_it_needs_a_signed_in_staff_member(bakery):
    app, _ = bakery
    assert app.test_client().get("/console/try").status_code == 302
