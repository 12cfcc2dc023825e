"""Settings: one clear error naming every problem, .env under the environment, secrets hidden."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from inboxgpt.config import OPTIONAL, REQUIRED, ConfigError, Secret, Settings, load_settings, settings_from_mapping

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = {
    "PAGE_ACCESS_TOKEN": "EAAGpage",
    "VERIFY_TOKEN": "verify-me",
    "APP_SECRET": "appsecret123",
    "OPENAI_API_KEY": "sk-key123",
}


def test_defaults_fill_everything_optional():
    settings = settings_from_mapping(MINIMAL)
    assert settings.openai_model == "gpt-4.1-mini"
    assert settings.graph_api_url == "https://graph.facebook.com/v23.0"
    assert settings.openai_base_url is None
    assert settings.page_access_token.reveal() == "EAAGpage"


def test_every_missing_and_bad_setting_is_named_in_one_error():
    with pytest.raises(ConfigError) as raised:
        settings_from_mapping(
            {
                "VERIFY_TOKEN": "v",
                "HISTORY_MAX_TOKENS": "lots",
                "OPENAI_BASE_URL": "localhost:11434",
                "WORKER_THREADS": "0",
                "OPENAI_TIMEOUT": "-1",
                "LOG_LEVEL": "LOUD",
            }
        )
    message = str(raised.value)
    for problem in [
        "PAGE_ACCESS_TOKEN is missing",
        "APP_SECRET is missing",
        "OPENAI_API_KEY is missing",
        "HISTORY_MAX_TOKENS is invalid: must be a number",
        "OPENAI_BASE_URL is invalid",
        "WORKER_THREADS is invalid",
        "OPENAI_TIMEOUT is invalid",
        "LOG_LEVEL is invalid",
    ]:
        assert problem in message
    assert "VERIFY_TOKEN" not in message
    assert len(raised.value.problems) == 8


def test_the_settings_of_handover_instagram_metrics_and_logs_are_checked():
    with pytest.raises(ConfigError) as raised:
        settings_from_mapping(
            {
                **MINIMAL,
                "APP_ID": "my-app",
                "HUMAN_PAUSE_MINUTES": "0",
                "HANDOVER_APP_ID": "inbox",
                "INSTAGRAM": "maybe",
                "LOG_FORMAT": "xml",
                "MODEL_CONTEXT_TOKENS": "-5",
            }
        )
    assert [problem.split(" is invalid")[0] for problem in raised.value.problems] == [
        "MODEL_CONTEXT_TOKENS",
        "LOG_FORMAT",
        "APP_ID",
        "HUMAN_PAUSE_MINUTES",
        "HANDOVER_APP_ID",
        "INSTAGRAM",
    ]
    settings = settings_from_mapping({**MINIMAL, "HUMAN_PAUSE_MINUTES": "0.5", "METRICS_TOKEN": "scrape-token"})
    assert settings.human_pause_minutes == 0.5
    assert "scrape-token" in settings.secrets()
    assert "scrape-token" not in repr(settings)


def test_a_bad_value_is_not_repeated_in_the_error():
    # A secret pasted into the wrong variable must not end up in a log.
    with pytest.raises(ConfigError) as raised:
        settings_from_mapping({**MINIMAL, "REPLY_MAX_TOKENS": "sk-proj-abcdef"})
    assert "sk-proj-abcdef" not in str(raised.value)


def test_secrets_never_show_in_repr_or_str():
    settings = settings_from_mapping(MINIMAL)
    for text in (repr(settings), str(settings), f"{settings.app_secret}"):
        for secret in MINIMAL.values():
            assert secret not in text
    assert repr(Secret("x")) == "Secret('**********')"


def test_every_setting_has_one_environment_variable():
    names = {name.lower() for name in REQUIRED} | {field for field, _ in OPTIONAL.values()}
    read_from_a_settings_file = {"tools"}  # TOOLS_FILE's content
    assert names | read_from_a_settings_file == {f.name for f in fields(Settings)}


def test_dotenv_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "PAGE_ACCESS_TOKEN=from-file\nVERIFY_TOKEN=v\nAPP_SECRET=s\nOPENAI_API_KEY=k\nOPENAI_MODEL=file-model\n"
    )
    monkeypatch.setenv("OPENAI_MODEL", "env-model")
    settings = load_settings(env_file=env_file)
    assert settings.page_access_token.reveal() == "from-file"
    assert settings.openai_model == "env-model"


@pytest.mark.parametrize("command", [["run", "--port", "0"], ["routes"], ["chat"]])
def test_flask_cli_shows_the_problems_at_start_without_a_traceback(tmp_path, command):
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED and k not in OPTIONAL}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    needed = ["OPENAI_API_KEY"] if command == ["chat"] else REQUIRED  # the chat needs no Messenger settings
    for name in REQUIRED:
        assert (f"{name} is missing" in result.stderr) == (name in needed)
    assert result.stderr.count("The bot cannot start") == 1
    assert "Traceback" not in result.stderr


def test_env_example_lists_every_setting():
    from dotenv import dotenv_values

    assert set(dotenv_values(ROOT / ".env.example")) == set(REQUIRED) | set(OPTIONAL)
