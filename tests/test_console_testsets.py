"""The console's Test sets page through Flask's test client against the fake model: an eval file of EVALS_DIR run
on a thread of the web process, one run at a time, kept in the store, its last run shown beside the one before with
the cases that went from pass to fail marked."""

from __future__ import annotations

import json
import re

import pytest

from inboxgpt.console import testsets
from inboxgpt.console.testsets import KIND, TESTING
from inboxgpt.web.app import EXTENSION
from tests.fakes import completion
from tests.test_console import CSRF
from tests.test_console_reports import console  # noqa: F401 (a fixture)

EVALS = """
[[case]]
name = "sunday hours"
say = "are you open on sunday?"
mentions = ["9"]

[[case]]
name = "no pizza"
say = "do you sell pizza?"
not_mentions = ["pizza"]
"""


@pytest.fixture
def bench(console, tmp_path):  # noqa: F811 (the fixture)
    folder = tmp_path / "evals"
    folder.mkdir()
    (folder / "bakery.toml").write_text(EVALS)
    (folder / "broken.toml").write_text('[[case]]\nname = "no say"\n')
    (folder / "notes.md").write_text("not an eval file")
    return console(EVALS_DIR=str(folder))


def run(browser, app, name: str, token: str | None = None):
    """Starts a run of `name` from the page's form; waits for it to end."""
    found = CSRF.search(browser.get("/console/tests").get_data(as_text=True))
    assert found
    response = browser.post("/console/tests/run", data={"file": name, "csrf_token": token or found.group(1)})
    thread = app.extensions[TESTING].thread
    if thread is not None:
        thread.join()
    return response


def test_a_run_beside_the_one_before_marks_the_cases_that_broke(bench, openai_server):
    app, browser = bench
    page = browser.get("/console/tests").get_data(as_text=True)
    assert re.findall(r'<option value="([^"]+)"', page) == ["bakery.toml", "broken.toml"]  # the *.toml only
    assert "bakery.toml has not been run yet." in page

    openai_server.default = lambda request: completion("Yes, from 9 to 2. No, we only bake bread.")
    first = run(browser, app, "bakery.toml")
    assert first.status_code == 303
    assert first.headers["Location"].endswith("/console/tests?file=bakery.toml")
    openai_server.default = lambda request: completion("Yes, from 10. We only bake bread.")
    run(browser, app, "bakery.toml")

    page = browser.get("/console/tests?file=bakery.toml").get_data(as_text=True)
    assert "1 of 2 passed" in page
    assert "The one before, " in page
    assert "2 of 2 passed." in page
    rows = re.findall(r"<tr( class=\"broke\")?>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", page)
    assert [(bool(broke), name, now.startswith("<strong>fail"), before) for broke, name, now, before in rows] == [
        (True, "sunday hours", True, "pass"),
        (False, "no pizza", False, "pass"),
    ]
    assert '<td class="note-cell">missing &#39;9&#39;</td>' in page  # why it failed
    assert page.count("was passing") == 1
    kept = [json.loads(text) for text in app.extensions[EXTENSION].store.records(KIND, 0)]
    assert [(run["file"], run["by"], len(run["cases"])) for run in kept] == [("bakery.toml", "maria", 2)] * 2


def test_one_run_at_a_time(bench, openai_server):
    app, browser = bench
    tester = app.extensions[TESTING]
    with tester._turn:  # a run under way
        response = run(browser, app, "bakery.toml")
    assert response.status_code == 429
    assert "A test set is running already" in response.get_data(as_text=True)
    assert openai_server.requests == []


def test_only_the_folders_eval_files_run_and_a_bad_one_says_why(bench, openai_server):
    app, browser = bench
    for name in ("../bakery.toml", "notes.md", "missing.toml"):
        assert run(browser, app, name).status_code == 400
    broken = run(browser, app, "broken.toml")
    assert broken.status_code == 400
    assert "broken.toml: " in broken.get_data(as_text=True)
    assert run(browser, app, "bakery.toml", token="forged").status_code == 400
    assert openai_server.requests == []
    assert app.extensions[EXTENSION].store.records(KIND, 0) == []


def test_only_the_last_runs_of_a_file_are_kept(bench, openai_server, monkeypatch):
    app, browser = bench
    monkeypatch.setattr(testsets, "KEPT_RUNS", 2)
    openai_server.default = lambda request: completion("From 9.")
    for _ in range(3):
        run(browser, app, "bakery.toml")
    assert len(app.extensions[EXTENSION].store.records(KIND, 0)) == 2


def test_a_run_that_cannot_start_is_kept_as_failed(bench, openai_server, monkeypatch):
    app, browser = bench
    tester = app.extensions[TESTING]

    def broken(evals):
        raise RuntimeError("no model")

    monkeypatch.setattr(tester, "_runner", broken)
    run(browser, app, "bakery.toml")
    page = browser.get("/console/tests").get_data(as_text=True)
    assert "The run failed before its cases were graded" in page
    assert tester.running is None
