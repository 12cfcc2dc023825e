"""The `inboxgpt` command as a newcomer meets it: installed with pip outside the repository, `serve` answering Meta's
verification and a signed test message, `chat` answering with only a key; the page a browser gets at the address;
`send-test`."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from http import HTTPStatus
from pathlib import Path

import pytest
import requests
import responses

from inboxgpt.commands.send_test import TEST_PSID
from inboxgpt.config import OPTIONAL, REQUIRED
from tests.gunicorn_service import Lines
from tests.helpers import APP_SECRET, GRAPH_VERSION, PSID, VERIFY_TOKEN

ROOT = Path(__file__).resolve().parent.parent
# What `pip install <clone>` reads: the package, its metadata and the files the metadata names.
DISTRIBUTED = ("pyproject.toml", "README.md", "LICENSE", "requirements-serve.txt", "inboxgpt")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment outside the repository with the checkout pip-installed; its bin folder.

    The dependencies are the running environment's (a .pth file lends them), so nothing is downloaded for them;
    pip builds the package with setuptools from its configured index, as `pip install .` does."""
    work = tmp_path_factory.mktemp("install")
    clone = work / "clone"
    clone.mkdir()
    for name in DISTRIBUTED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, clone / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, clone / name)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (purelib,) = (venv / "lib").glob("python3*/site-packages")
    (purelib / "running-environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", str(clone)],
        check=True,
        cwd=work,
        env=outside_the_repository(),
        timeout=300,
    )
    return venv / "bin"


def outside_the_repository(**settings: str) -> dict[str, str]:
    """The environment without the bot's settings or a path into the repository, plus `settings`."""
    names = {*REQUIRED, *OPTIONAL, "PYTHONPATH", "HOST", "PORT", "WEB_CONCURRENCY", "FLASK_APP"}
    return {**{k: v for k, v in os.environ.items() if k not in names}, **settings}


def test_the_installed_command_serves_the_webhook_with_the_tuned_settings(installed, tmp_path, graph, openai_server):
    env = outside_the_repository(
        PAGE_ACCESS_TOKEN="EAAGtest",
        VERIFY_TOKEN=VERIFY_TOKEN,
        APP_SECRET=APP_SECRET,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=openai_server.base_url,
        GRAPH_API_URL=graph.url + GRAPH_VERSION,
        HOST="127.0.0.1",
        PORT="0",
    )
    server = subprocess.Popen(
        [installed / "inboxgpt", "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = Lines(server.stdout)
        port = lines.wait_for("Listening at: http://127.0.0.1:").rsplit(":", 1)[1].split()[0]
        lines.wait_for("ready:")
        assert "gthread" in "".join(lines.seen)  # the packaged gunicorn settings, not gunicorn's defaults
        url = f"http://127.0.0.1:{port}/"
        query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
        verified = requests.get(url, params=query, timeout=10)
        assert (verified.status_code, verified.text) == (200, "1158201444")

        sent = subprocess.run(
            [installed / "inboxgpt", "send-test", "hello", "--url", url, "--psid", PSID],
            cwd=tmp_path,
            env={**env, "PORT": port},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("200 EVENT_RECEIVED")
        assert graph.wait_for(lambda: graph.texts(PSID) == ["You said: hello"])
    finally:
        server.terminate()
        server.wait(timeout=60)


@pytest.mark.parametrize("command", [["inboxgpt"], ["python", "-m", "inboxgpt"]])
def test_the_installed_command_chats_with_only_a_key(installed, tmp_path, openai_server, command):
    program = [str(installed / command[0]), *command[1:]]
    env = outside_the_repository(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=openai_server.base_url)
    result = subprocess.run(
        [*program, "chat"], input="bonjour\n", cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "bot> You said: bonjour" in result.stdout


def test_the_commands_help_describes_the_bot_and_lists_every_command(installed, tmp_path):
    result = subprocess.run(
        [installed / "inboxgpt", "--help"], cwd=tmp_path, env=outside_the_repository(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "Messenger, Instagram and WhatsApp" in result.stdout
    for command in ("serve", "chat", "check", "knowledge", "leads", "usage", "page-setup", "send-test", "run"):
        assert f"  {command} " in result.stdout
    assert "--app" not in result.stdout  # the factory is the bot's own


# --- a browser at the address ---


def test_a_browser_at_the_address_learns_the_service_is_up_and_what_it_is_for(client, caplog):
    response = client.get("/")
    assert response.status_code == HTTPStatus.OK
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "inboxgpt is running" in page
    assert "Callback URL" in page
    assert VERIFY_TOKEN not in page
    assert "verification refused" not in caplog.text


def test_meta_with_a_wrong_token_is_still_refused(client):
    assert client.get("/?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1").status_code == 403


# --- send-test ---


@pytest.fixture
def served(app):
    """The test's app behind http://bot.test/ for requests (the command's own HTTP client)."""
    client = app.test_client()

    def forward(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        answer = client.post("/", data=request.body, headers=dict(request.headers))
        return answer.status_code, {}, answer.get_data(as_text=True)

    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, "http://bot.test/", callback=forward)
        yield app


def test_send_test_posts_a_message_the_server_takes_and_answers(served, graph):
    result = served.test_cli_runner().invoke(args=["send-test", "héllo /", "--url", "http://bot.test/", "--psid", PSID])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("200 EVENT_RECEIVED\nthe server took the message")
    assert graph.wait_for(lambda: graph.texts(PSID) == ["You said: héllo /"])


def test_send_test_says_a_made_up_person_gets_no_reply(served, graph):
    result = served.test_cli_runner().invoke(args=["send-test", "hi", "--url", "http://bot.test/"])
    assert result.exit_code == 0, result.output
    assert "a made-up person (Meta refuses to deliver it)" in result.output
    assert graph.wait_for(lambda: graph.texts(TEST_PSID) == ["You said: hi"])


def test_send_test_names_a_secret_the_server_does_not_share(config, make_app, served):
    config["APP_SECRET"] = "another-secret"
    result = make_app(config).test_cli_runner().invoke(args=["send-test", "hi", "--url", "http://bot.test/"])
    assert result.exit_code == 1
    assert "403 Forbidden" in result.output
    assert "the server's APP_SECRET is not the one this command read" in result.output


def test_send_test_says_when_nothing_runs_there(app):
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, "http://bot.test/", body=requests.ConnectionError("refused"))
        result = app.test_cli_runner().invoke(args=["send-test", "hi", "--url", "http://bot.test/"])
    assert result.exit_code == 1
    assert "no answer from http://bot.test/ (ConnectionError): is `inboxgpt serve` running there?" in result.output
