"""`flask chat --explain`: after each answer, what it drew on: the knowledge sections used, each tool call with its
arguments and result, tokens, cost and time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import FakeToolApi, completion, tool_calls

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tool_api():
    server = FakeToolApi()
    yield server
    server.close()


def test_explain_shows_the_sections_the_tool_call_and_the_cost(config, make_app, openai_server, tool_api, tmp_path):
    tools = tmp_path / "tools.toml"
    tools.write_text(
        '[[tool]]\nname = "order_status"\ndescription = "An order\'s status."\nmethod = "GET"\n'
        f'url = "{tool_api.url}/orders/{{number}}"\nresult = "order"\n'
        '[tool.parameters]\nrequired = ["number"]\n[tool.parameters.properties.number]\ntype = "string"\n'
    )
    config.update(
        KNOWLEDGE_DIR=str(ROOT / "examples" / "knowledge"),
        TOOLS_FILE=str(tools),
        TOOLS_ALLOW_PRIVATE="on",
        OPENAI_MODEL="bakery-model",
        MODEL_PRICES="bakery-model=1/0.5/2",
    )
    openai_server.script.extend([tool_calls(("order_status", {"number": "1042"})), completion("It's on its way.")])

    result = (
        make_app(config)
        .test_cli_runner()
        .invoke(args=["chat", "--explain"], input="where is my sourdough order 1042?\n")
    )

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    answer = lines.index("you> bot> It's on its way.")
    explanation = lines[answer + 1 : answer + 4]
    assert explanation[0].startswith("  knowledge: ")
    assert "prices.md > Prices > Bread" in explanation[0]
    assert explanation[1] == (
        '  tool order_status {"number": "1042"} -> ok: {"number": "1042", "status": "out for delivery"}'
    )
    # Two model calls of 50 + 10 tokens each (the fake's usage), at $1 and $2 a million.
    assert explanation[2].startswith("  100 prompt + 20 completion tokens in 2 model calls, $0.000140, ")
    assert explanation[2].endswith(" s")
    assert tool_api.paths == ["/orders/1042"]  # the tools act in a chat, as for a customer


def test_without_explain_the_chat_prints_only_the_answers(config, make_app, openai_server):
    result = make_app(config).test_cli_runner().invoke(args=["chat"], input="hello\n")
    assert "knowledge:" not in result.output
    assert "tokens in" not in result.output
