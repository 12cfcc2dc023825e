"""Serving files: the packaged gunicorn settings (and gunicorn.conf.py, which reads them), the Dockerfile (linted: it
cannot be built here) and the Procfile."""

from __future__ import annotations

import re
import runpy
from dataclasses import fields
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from inboxgpt.config import OPTIONAL, REQUIRED, Settings

ROOT = Path(__file__).resolve().parent.parent
# The gunicorn settings, shipped in the package.
CONF = "inboxgpt.web.gunicorn_conf"


def gunicorn_settings() -> dict[str, Any]:
    """The packaged gunicorn settings, run afresh with the environment as it is now."""
    return runpy.run_module(CONF)


def instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


@pytest.fixture
def environment(monkeypatch, tmp_path):
    """The Messenger and OpenAI settings in the environment, in a folder without a .env."""
    monkeypatch.chdir(tmp_path)
    for name in (*OPTIONAL, "HOST", "WEB_CONCURRENCY", "GRACEFUL_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name in REQUIRED:
        monkeypatch.setenv(name, "set-for-the-test")
    return monkeypatch


@pytest.fixture
def gunicorn_conf(environment) -> dict:
    environment.setenv("PORT", "5123")
    return gunicorn_settings()


def test_gunicorn_stops_with_the_one_clear_message_when_settings_are_missing(environment):
    environment.delenv("PAGE_ACCESS_TOKEN")
    environment.setenv("OPENAI_TIMEOUT", "soon")
    with pytest.raises(SystemExit) as stopped:
        gunicorn_settings()
    message = str(stopped.value.code)
    assert "PAGE_ACCESS_TOKEN is missing" in message
    assert "OPENAI_TIMEOUT is invalid" in message


def test_graceful_timeout_covers_the_longest_answer_the_settings_allow(environment):
    environment.setenv("OPENAI_TIMEOUT", "60")
    environment.setenv("OPENAI_MAX_RETRIES", "3")
    conf = gunicorn_settings()
    # A voice message: download, transcription and answer, each model call with 4 tries, then the replies.
    assert conf["graceful_timeout"] >= 15 + 2 * 4 * 60


def test_several_workers_need_a_shared_store(environment):
    monkeypatch = environment
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    monkeypatch.setenv("STORE_URL", "memory://")
    with pytest.raises(SystemExit, match="needs a shared store"):
        gunicorn_settings()
    monkeypatch.setenv("STORE_URL", "sqlite:///bot.db")
    assert gunicorn_settings()["workers"] == 4


def test_gunicorn_conf_fits_the_service(gunicorn_conf):
    defaults: dict[str, Any] = {field.name: field.default for field in fields(Settings)}
    assert gunicorn_conf["bind"] == "0.0.0.0:5123"
    assert gunicorn_conf["wsgi_app"] == "inboxgpt.web.app:create_app()"  # found wherever the package is installed
    assert gunicorn_conf["worker_class"] == "gthread"
    assert gunicorn_conf["threads"] >= 4
    assert gunicorn_conf["workers"] == 1  # the in-memory store lives in one process
    # Graceful shutdown covers a model call with all its retries.
    assert gunicorn_conf["graceful_timeout"] > defaults["openai_timeout"] * (1 + defaults["openai_max_retries"])
    assert gunicorn_conf["timeout"] >= 20  # Meta's own limit on a webhook call


def test_gunicorn_in_the_repository_reads_the_packaged_settings(gunicorn_conf):
    """One copy of the settings: `gunicorn` run in the repository gets what `inboxgpt serve` gets."""
    root = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    values = ("wsgi_app", "bind", "workers", "worker_class", "threads", "timeout", "graceful_timeout", "keepalive")
    assert {name: root[name] for name in values} == {name: gunicorn_conf[name] for name in values}
    hooks = ("logger_class", "post_worker_init", "worker_exit", "child_exit", "on_exit")
    assert [root[name].__name__ for name in hooks] == [gunicorn_conf[name].__name__ for name in hooks]


def test_workers_keep_to_one_core_each_in_turn(gunicorn_conf):
    one_core = gunicorn_conf["one_core"]
    assert [one_core([0, 1, 2, 3], age) for age in range(1, 6)] == [1, 2, 3, 0, 1]
    assert one_core([5], 7) == 5  # the one core a server was given (taskset, a cpuset)


def test_pinning_is_on_or_off_and_nothing_else(environment):
    environment.setenv("PIN_WORKERS", "sometimes")
    with pytest.raises(SystemExit) as stopped:
        gunicorn_settings()
    assert "PIN_WORKERS must be on or off" in str(stopped.value.code)


def test_access_log_never_prints_query_strings(gunicorn_conf):
    log_format = gunicorn_conf["access_log_format"]
    assert "%(U)s" in log_format
    assert not re.search(r"%\((r|q|\{.*\}e)\)s", log_format)  # request line, query, environ


def test_dockerfile_follows_the_serving_rules():
    steps = instructions(ROOT / "Dockerfile")
    keywords = [keyword for keyword, _ in steps]
    arguments = dict(steps)
    assert re.fullmatch(r"python:3\.\d+-slim", arguments["FROM"])
    assert any(k == "RUN" and "ca-certificates" in a and "apt-get install" in a for k, a in steps)
    # Dependencies are installed before the code is copied, so their layer stays cached.
    install = next(i for i, (k, a) in enumerate(steps) if k == "RUN" and "pip install -r requirements-serve.lock" in a)
    copy_requirements = next(
        i for i, (k, a) in enumerate(steps) if k == "COPY" and a.startswith("requirements-serve.lock")
    )
    copy_code = next(i for i, (k, a) in enumerate(steps) if k == "COPY" and "inboxgpt/" in a)
    assert copy_requirements < install < copy_code
    user = arguments["USER"]
    assert user not in ("root", "0")
    assert keywords.index("USER") < keywords.index("CMD")
    assert "/healthz" in arguments["HEALTHCHECK"]
    assert arguments["CMD"] == '["inboxgpt", "serve"]'  # the packaged gunicorn settings


def test_image_installs_the_package_and_its_command():
    steps = instructions(ROOT / "Dockerfile")
    copied = [source for keyword, arguments in steps if keyword == "COPY" for source in arguments.split()[:-1]]
    entry_points = sorted(p.name for p in ROOT.glob("*.py"))
    assert entry_points == ["app.py", "gunicorn.conf.py"], "the service's code lives in the inboxgpt package"
    for needed in ("pyproject.toml", "README.md", "LICENSE", "requirements-serve.txt", "inboxgpt/"):
        assert needed in copied, f"the image lacks {needed}: pip cannot build the package without it"
    assert any(k == "RUN" and "pip install --no-deps /src" in a for k, a in steps)


def stop_timeouts(text: str) -> set[int]:
    """Every Docker stop timeout a text tells an owner to give (`--stop-timeout N`, `docker stop -t N`)."""
    return {int(n) for n in re.findall(r"(?:--stop-timeout|docker stop -t) (\d+)", text)}


def test_every_stop_timeout_the_owner_is_told_covers_the_graceful_shutdown(gunicorn_conf):
    told = {
        name: stop_timeouts((ROOT / name).read_text()) for name in ("Dockerfile", "docs/production.md", "README.md")
    }
    grace = re.search(r"stop_grace_period: (\d+)s", (ROOT / "deploy" / "compose.yaml").read_text())
    assert grace is not None
    assert told["Dockerfile"] == told["docs/production.md"] == {int(grace.group(1))}
    assert all(timeout > gunicorn_conf["graceful_timeout"] for found in told.values() for timeout in found)


def test_dockerignore_keeps_secrets_and_tests_out_of_the_image():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", "tests", "bench"} <= set(ignored)


def test_image_installs_what_the_service_imports():
    serve = (ROOT / "requirements-serve.txt").read_text()
    for package in ("flask", "requests", "openai", "python-dotenv", "gunicorn"):
        assert re.search(rf"^{package}>=", serve, re.MULTILINE)
    assert "-r requirements-serve.txt" in (ROOT / "requirements.txt").read_text()


def pinned(lock: str) -> dict[str, str]:
    """A lock file's exact versions, by normalised package name."""
    found = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", (ROOT / lock).read_text(), re.MULTILINE)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in found}


@pytest.mark.parametrize(
    ("floors", "lock"),
    [("requirements-serve.txt", "requirements-serve.lock"), ("requirements.txt", "requirements.lock")],
)
def test_the_lock_files_pin_every_requirement_at_or_above_its_floor(floors, lock):
    from packaging.version import Version

    versions = pinned(lock)
    serve = (ROOT / "requirements-serve.txt").read_text() if floors == "requirements.txt" else ""
    for name, floor in re.findall(r"^([A-Za-z0-9._-]+)>=(\S+)", (ROOT / floors).read_text() + serve, re.MULTILINE):
        version = versions.get(re.sub(r"[-_.]+", "-", name).lower())
        assert version is not None, f"{lock} does not pin {name}: run pip-compile (see CONTRIBUTING.md)"
        assert Version(version) >= Version(floor), f"{lock} pins {name} {version}, under the floor {floor}"
    if lock == "requirements.lock":
        assert pinned("requirements-serve.lock").items() <= versions.items(), "the lock files disagree: compile both"


def test_procfile_runs_gunicorn_with_the_config():
    assert (ROOT / "Procfile").read_text().strip() == "web: gunicorn -c gunicorn.conf.py"


def test_the_proxy_in_front_buffers_requests_within_the_bots_limits():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    directives = dict(re.findall(r"^\s*(\w+)\s+([^;{]+);", conf, re.MULTILINE))
    assert directives["client_max_body_size"] == "1m"  # the app's own cap
    assert directives["client_body_timeout"] == "5s"
    assert directives["client_header_timeout"] == "5s"
    assert directives["proxy_request_buffering"] == "on"
    # The access log has the path, never the query string (Meta's verification carries the verify token).
    assert "$uri" in directives["log_format"]
    assert "$request_uri" not in conf


def test_compose_runs_redis_with_persistence_and_waits_for_a_graceful_stop(gunicorn_conf):
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    assert '"--appendonly", "yes"' in compose
    grace = re.search(r"stop_grace_period: (\d+)s", compose)
    assert grace is not None
    assert int(grace.group(1)) > gunicorn_conf["graceful_timeout"]


def test_the_metrics_folder_loses_only_prometheus_files_at_start(environment, tmp_path):
    metrics_dir = tmp_path / "data"
    metrics_dir.mkdir()
    theirs = ["counter_123.db", "gauge_liveall_123.db", "histogram_7.db", "summary_7.db"]
    ours = ["bot.db", "bot.db-wal", "bot.db-shm", "counter.db", "orders_1.db"]
    for name in theirs + ours:
        (metrics_dir / name).write_bytes(b"kept?")
    environment.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    environment.setenv("STORE_URL", f"sqlite:///{metrics_dir}/bot.db")
    gunicorn_settings()
    assert sorted(path.name for path in metrics_dir.iterdir()) == sorted(ours)


def test_gunicorn_stops_with_one_message_for_a_window_that_cannot_hold_the_system_prompt(environment):
    environment.setenv("MODEL_CONTEXT_TOKENS", "300")
    environment.setenv("SYSTEM_PROMPT", "Be helpful. " * 200)
    with pytest.raises(SystemExit) as stopped:
        gunicorn_settings()
    assert "MODEL_CONTEXT_TOKENS is invalid" in str(stopped.value.code)


def test_a_local_sqlite_store_is_never_committed():
    patterns = [line for line in (ROOT / ".gitignore").read_text().splitlines() if line and not line.startswith("#")]
    for name in ("bot.db", "bot.db-wal", "bot.db-shm"):  # the README's production command makes these
        assert any(fnmatch(name, pattern) for pattern in patterns), name


def test_the_image_goes_by_the_projects_name():
    for name in ("Dockerfile", "docs/production.md", "README.md"):
        text = (ROOT / name).read_text()
        assert "messenger-gpt" not in text
    assert "docker build -t inboxgpt ." in (ROOT / "docs" / "production.md").read_text()
