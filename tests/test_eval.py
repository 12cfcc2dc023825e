"""`flask eval`: the example business's test set against the fake model, through the conversation that answers
customers, with nothing reaching Meta and no tool acting; failures that say why; JSON and JUnit for CI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path

import pytest

from inboxgpt.channels.formatting import WHATSAPP_NOTE
from inboxgpt.evals.cases import EvalFile, read_eval_file
from inboxgpt.evals.judge import CUSTOMER_PROMPT, GROUNDED_PROMPT
from tests.fakes import Reply, completion, openai_error, tool_calls

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "knowledge" / "evals.toml"
GROUNDED = '{"grounded": true, "unsupported": []}'


def last_said(request: dict) -> str:
    """What the person said last, as the model got it."""
    said = [m["content"] for m in request["messages"] if m["role"] == "user" and isinstance(m["content"], str)]
    return said[-1] if said else ""


def is_judge(request: dict, prompt: str) -> bool:
    return request["messages"][0]["content"].startswith(prompt[:40])


def answering(
    evals: EvalFile, customer: Callable[[dict], str] | None = None, judge: str = GROUNDED
) -> Callable[[dict], Reply]:
    """A model that answers each case of `evals` as it expects (its tool called with its arguments, then an answer
    with its mentions); the judge's verdict is `judge`, and `customer` plays the simulations' customers."""
    cases = {case.say[-1]: case for case in evals.cases}

    def answer(request: dict) -> Reply:
        if is_judge(request, GROUNDED_PROMPT):
            return completion(judge)
        if is_judge(request, CUSTOMER_PROMPT):
            assert customer is not None
            return completion(customer(request))
        said = last_said(request)
        case = cases.get(said)
        if case is None:
            if "table" in said and request.get("tools") and request["messages"][-1]["role"] != "tool":
                return tool_calls(("book_table", {"day": "saturday", "people": 4}))
            return completion("Sorry, I can't help with that.")
        expect = case.expect
        if expect.tool and request["messages"][-1]["role"] != "tool" and request.get("tools"):
            return tool_calls((expect.tool, expect.tool_args))
        return completion(" ".join(expect.mentions) or "I don't know that; send /human to ask the team.")

    return answer


def regular_customer(request: dict) -> str:
    """A customer who asks for a table, and says so once it is booked."""
    answers = [m["content"] for m in request["messages"][1:] if m["role"] == "user"]
    return "GOAL MET" if len(answers) > 1 else "table for 4 on saturday pls"


@pytest.fixture
def bakery(config) -> dict:
    """The example business: its knowledge and tools."""
    config.update(
        KNOWLEDGE_DIR=str(ROOT / "examples" / "knowledge"),
        TOOLS_FILE=str(ROOT / "examples" / "tools" / "tools.toml"),
        SHOP_API_KEY="a-key-never-sent",
    )
    return config


def run_eval(make_app, config: dict, *args: str):
    return make_app(config).test_cli_runner().invoke(args=["eval", *args])


def test_the_example_test_set_passes_against_the_fake_model(bakery, make_app, openai_server, graph, tmp_path):
    evals = read_eval_file(EXAMPLE)
    assert len(evals.cases) >= 25
    openai_server.default = answering(evals, regular_customer)
    junit = tmp_path / "evals.xml"

    result = run_eval(make_app, bakery, str(EXAMPLE), "--json", "--junit", str(junit), "--jobs", "8")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["failed"] == 0, [(r["name"], r["why"]) for r in report["results"] if not r["passed"]]
    by_name = {r["name"]: r for r in report["results"]}
    # The tools never acted: the booking was answered from the file's [tool_results.book_table].
    booking = by_name["books a table"]["tool_calls"]
    assert booking[0]["name"] == "book_table"
    assert booking[0]["arguments"] == {"day": "saturday", "people": 4}
    assert "T-sat-4" in booking[0]["result"]
    assert by_name["a regular books a table"]["tool_calls"][0]["name"] == "book_table"
    assert by_name["sunday hours"]["knowledge_sections"]  # the knowledge searched, as for a customer
    assert graph.requests == []  # nothing reached Meta
    suite = ElementTree.parse(junit).getroot()
    assert suite.tag == "testsuite"
    assert (suite.get("tests"), suite.get("failures")) == (str(evals.size), "0")


def test_an_impossible_expectation_fails_naming_the_case_and_why(bakery, make_app, openai_server, tmp_path):
    copy = tmp_path / "evals.toml"
    impossible = '\n[[case]]\nname = "unicorns"\nsay = "Where can I park?"\nmentions = ["unicorn"]\n'
    copy.write_text(EXAMPLE.read_text() + impossible)
    openai_server.default = answering(read_eval_file(EXAMPLE), regular_customer)
    junit = tmp_path / "evals.xml"

    result = run_eval(make_app, bakery, str(copy), "--junit", str(junit))

    assert result.exit_code == 1
    [row] = [line.split() for line in result.output.splitlines() if line.startswith("FAIL  ")]
    assert (row[1], row[-2:]) == ("unicorns", ["missing", "'unicorn'"])
    details = result.output.split("FAIL unicorns (case): missing 'unicorn'")[1]
    assert "person> Where can I park?" in details
    assert "answer> Quayside" in details
    assert "tool calls: none" in details
    assert "knowledge used: directions.md > Finding us > Parking" in details
    assert f"{read_eval_file(copy).size - 1} of {read_eval_file(copy).size} passed" in result.output
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("failures") == "1"
    failures = [case for case in suite.iter("testcase") if case.find("failure") is not None]
    assert [case.get("name") for case in failures] == ["unicorns"]
    message = failures[0].find("failure")
    assert message is not None
    assert message.get("message") == "missing 'unicorn'"


def test_min_pass_lets_a_share_of_failures_through(bakery, make_app, openai_server, tmp_path):
    copy = tmp_path / "evals.toml"
    copy.write_text('[[case]]\nname = "a"\nsay = "hi"\nmentions = ["hi"]\n[[case]]\nname = "b"\nsay = "yo"\n')
    openai_server.default = lambda request: completion("hi")
    assert run_eval(make_app, bakery, str(copy), "--min-pass", "0.5").exit_code == 0
    copy.write_text('[[case]]\nname = "a"\nsay = "hi"\nmentions = ["bye"]\n[[case]]\nname = "b"\nsay = "yo"\n')
    assert run_eval(make_app, bakery, str(copy), "--min-pass", "0.5").exit_code == 0
    assert run_eval(make_app, bakery, str(copy), "--min-pass", "0.6").exit_code == 1


def test_a_simulation_whose_goal_cannot_be_met_stops_at_max_turns_and_fails(bakery, make_app, openai_server, tmp_path):
    file = tmp_path / "evals.toml"
    file.write_text(
        '[[simulation]]\nname = "a party of 40"\ngoal = "book a table for 40 on Monday"\nmax_turns = 3\n'
        'tool = "book_table"\n'
    )
    customer_asks = []

    def model(request: dict) -> Reply:
        if is_judge(request, CUSTOMER_PROMPT):
            customer_asks.append(request)
            return completion("can I book for 40 people on monday?")
        return completion("Sorry, we only take bookings on Friday to Sunday.")

    openai_server.default = model
    result = run_eval(make_app, bakery, str(file))

    assert result.exit_code == 1
    assert "FAIL a party of 40 (simulation): stopped at max_turns (3); book_table was not called" in result.output
    assert len(customer_asks) == 3
    assert result.output.count("person> can I book for 40 people on monday?") == 3


def test_grounded_is_judged_against_the_knowledge_the_answer_was_given(bakery, make_app, openai_server, tmp_path):
    file = tmp_path / "evals.toml"
    file.write_text('[[case]]\nname = "pizza"\nsay = "Do you sell pizza?"\ngrounded = true\n')
    judged = []

    def model(request: dict) -> Reply:
        if is_judge(request, GROUNDED_PROMPT):
            judged.append(request["messages"][1]["content"])
            return completion('Here: {"grounded": false, "unsupported": ["a margherita costs £9"]}')
        return completion("Yes! A margherita costs £9.")

    openai_server.default = model
    result = run_eval(make_app, bakery, str(file))

    assert result.exit_code == 1
    assert "FAIL pizza (case): not in the knowledge: a margherita costs £9" in result.output
    assert "Answer:\nYes! A margherita costs £9." in judged[0]
    assert "## " in judged[0].split("Customer:")[0]  # the sections the answer was given, as the model read them


@pytest.mark.parametrize(
    "judge",
    ["I think it is fine", '{"grounded": "maybe"}', ""],
)
def test_a_judge_that_answers_nonsense_fails_the_case_and_the_run_goes_on(
    judge, bakery, make_app, openai_server, tmp_path
):
    file = tmp_path / "evals.toml"
    file.write_text('[[case]]\nname = "hours"\nsay = "hours?"\ngrounded = true\n[[case]]\nname = "b"\nsay = "b"\n')
    openai_server.default = lambda r: completion(judge if is_judge(r, GROUNDED_PROMPT) else "9 to 5")
    result = run_eval(make_app, bakery, str(file))
    assert result.exit_code == 1
    assert "FAIL hours (case): the judge's verdict could not be read" in result.output
    assert "1 of 2 passed" in result.output


def test_a_failing_model_fails_its_cases_without_stopping_the_run(bakery, make_app, openai_server, tmp_path):
    file = tmp_path / "evals.toml"
    file.write_text('[[case]]\nname = "a"\nsay = "hi"\nmentions = ["hello"]\n')
    openai_server.default = lambda request: openai_error(500, "The server had an error", "server_error")
    result = run_eval(make_app, bakery, str(file), "--json")
    assert result.exit_code == 1
    [case] = json.loads(result.output)["results"]
    assert case["why"] == ["missing 'hello'"]
    assert case["turns"][0]["answer"]  # the apology a customer would get


def test_answers_get_their_channels_formatting(bakery, make_app, openai_server, tmp_path):
    file = tmp_path / "evals.toml"
    file.write_text(
        '[[case]]\nname = "wa"\nsay = "menu?"\nchannel = "whatsapp"\nmentions = ["*Breakfast*"]\n'
        '[[case]]\nname = "fb"\nsay = "menu?"\nmentions = ["Breakfast"]\nnot_mentions = ["*"]\n'
    )
    openai_server.default = lambda request: completion("**Breakfast** until 11:30")
    result = run_eval(make_app, bakery, str(file))
    assert result.exit_code == 0, result.output
    # Each model was told how its channel shows text, as for a customer.
    notes = sorted(WHATSAPP_NOTE in request["messages"][0]["content"] for request in openai_server.requests)
    assert notes == [False, True]


def test_a_bad_eval_file_is_refused_with_each_problem(bakery, make_app, tmp_path):
    file = tmp_path / "evals.toml"
    file.write_text('[[case]]\nname = "a"\n[[case]]\nname = "a"\nsay = "x"\nchannel = "fax"\nhands_over = "yes"\n')
    result = run_eval(make_app, bakery, str(file))
    assert result.exit_code == 2
    for problem in (
        "case 'a': say must be a message",
        "case 'a': channel must be one of messenger, instagram, whatsapp",
        "case 'a': hands_over must be true or false",
    ):
        assert problem in result.output
