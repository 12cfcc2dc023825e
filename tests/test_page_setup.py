"""`flask --app app page-setup`: the page's Messenger profile in one call, as Meta receives it."""

from __future__ import annotations

import json

import pytest

from inboxgpt import replies
from inboxgpt.config import ConfigError, settings_from_mapping
from tests.helpers import load
from tests.test_terminal import flask

QUESTIONS = "What are your opening hours?|Do you deliver?|Where are you?"


@pytest.fixture
def runner(config, make_app):
    config.update(GREETING="Hi {{user_first_name}}! Ask us anything.", ICE_BREAKERS=QUESTIONS)
    return make_app(config).test_cli_runner()


def test_page_setup_sends_the_whole_profile_in_one_call(runner, graph):
    result = runner.invoke(args=["page-setup"])
    assert result.exit_code == 0, result.output
    (call,) = graph.all_calls
    assert call["endpoint"] == "messenger_profile"
    assert call["params"]["appsecret_proof"]
    assert call["get_started"] == {"payload": "GET_STARTED"}
    assert call["greeting"] == [{"locale": "default", "text": "Hi {{user_first_name}}! Ask us anything."}]
    assert call["ice_breakers"] == [
        {
            "locale": "default",
            "call_to_actions": [{"question": q, "payload": q} for q in QUESTIONS.split("|")],
        }
    ]
    assert call["persistent_menu"] == [
        {
            "locale": "default",
            "composer_input_disabled": False,
            "call_to_actions": [
                {"type": "postback", "title": "Start over", "payload": "START_OVER"},
                {"type": "postback", "title": "Talk to a person", "payload": "TALK_TO_A_PERSON"},
            ],
        }
    ]


def test_dry_run_prints_the_body_and_sends_nothing(runner, graph):
    result = runner.invoke(args=["page-setup", "--dry-run"])
    assert result.exit_code == 0, result.output
    first_line, body = result.output.split("\n", 1)
    assert first_line == "POST /me/messenger_profile"
    assert json.loads(body)["greeting"][0]["text"] == "Hi {{user_first_name}}! Ask us anything."
    assert graph.all_calls == []


def test_delete_removes_every_field_it_sets(runner, graph):
    assert runner.invoke(args=["page-setup", "--delete"]).exit_code == 0
    (call,) = graph.all_calls
    assert call["fields"] == ["get_started", "greeting", "ice_breakers", "persistent_menu"]


def test_a_refused_profile_says_why_and_fails(runner, graph):
    graph.fail_next(400, code=100, endpoint="messenger_profile")
    result = runner.invoke(args=["page-setup"])
    assert result.exit_code == 1
    assert "Meta refused the Messenger profile" in result.output


def test_without_a_greeting_the_default_one_is_sent_and_no_ice_breakers(config, make_app, graph):
    make_app(config).test_cli_runner().invoke(args=["page-setup"])
    (call,) = graph.all_calls
    assert call["greeting"][0]["text"] == replies.PAGE_GREETING
    assert "ice_breakers" not in call


def test_the_menu_buttons_do_what_they_say(config, app_with, graph, openai_server):
    post = app_with(config)
    for payload, title in (("START_OVER", "Start over"), ("TALK_TO_A_PERSON", "Talk to a person")):
        body = load("postback_menu.json")
        body["entry"][0]["messaging"][0]["postback"].update(payload=payload, title=title, mid=f"m_{payload}")
        post(body)
    assert graph.texts() == [replies.RESET_DONE, replies.HUMAN_COMING]
    assert openai_server.requests == []


@pytest.mark.parametrize(
    ("setting", "value", "problem"),
    [
        ("GREETING", "x" * 161, "GREETING is invalid: must be at most 160 characters"),
        ("ICE_BREAKERS", "a|b|c|d|e", "ICE_BREAKERS is invalid: must be at most 4 questions"),
        ("ICE_BREAKERS", "fine|" + "y" * 81, "ICE_BREAKERS is invalid: question 2 is over 80 characters"),
    ],
)
def test_profile_settings_are_checked_at_start(config, setting, value, problem):
    config[setting] = value
    with pytest.raises(ConfigError, match=problem):
        settings_from_mapping(config)


def test_flask_page_setup_needs_only_the_messenger_settings():
    result = flask(
        "page-setup",
        "--dry-run",
        PAGE_ACCESS_TOKEN="EAAGtoken",
        VERIFY_TOKEN="v",
        APP_SECRET="s",
        ICE_BREAKERS="Do you deliver?",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.split("\n", 1)[1])["ice_breakers"][0]["call_to_actions"][0]["question"] == (
        "Do you deliver?"
    )
    assert "EAAGtoken" not in result.stdout + result.stderr
