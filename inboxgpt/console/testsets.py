"""The console's Test sets page: runs an eval file (docs/evals.md) the owner picks from EVALS_DIR (or KNOWLEDGE_DIR)
as `flask --app app eval` runs it, and shows its last run beside the one before, the cases that went from pass to
fail marked.

A run takes minutes (a model call or more a case), so it runs on a thread of the web process, one at a time in each
process; its results are kept in the store as records (the last KEPT_RUNS of each file), so every worker shows
them and they outlive a restart. A run under way when the process stops is lost.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from flask import current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from inboxgpt.console.views import blueprint, staff_name
from inboxgpt.evals.cases import EvalFile, EvalFileError, read_eval_file
from inboxgpt.evals.runner import Run, Runner
from inboxgpt.store import Store, StoreUnavailable

logger = logging.getLogger(__name__)

TESTING = "inboxgpt_console_testing"
KIND = "eval_run"
# Runs kept of each file: the page shows two, the rest is history a store need not grow with.
KEPT_RUNS = 10
# Cases run at once, as `flask eval`'s default.
JOBS = 4
BUSY = "A test set is running already: wait for it to finish."
FAILED = "The run failed before its cases were graded (the log says why)."


@dataclass(frozen=True)
class CaseResult:
    """One case of a run as the page shows it."""

    name: str
    kind: str
    passed: bool
    why: tuple[str, ...]


@dataclass(frozen=True)
class KeptRun:
    """One run of a file, as kept in the store."""

    file: str
    started: float
    seconds: float
    by: str
    cases: tuple[CaseResult, ...]
    error: str = ""

    @property
    def passed(self) -> int:
        return sum(case.passed for case in self.cases)

    def encode(self) -> str:
        cases = [{"name": c.name, "kind": c.kind, "passed": c.passed, "why": list(c.why)} for c in self.cases]
        fields = {"file": self.file, "started": self.started, "seconds": self.seconds, "by": self.by}
        return json.dumps({**fields, "cases": cases, "error": self.error})

    @classmethod
    def decode(cls, text: str) -> KeptRun:
        kept = json.loads(text)
        cases = tuple(CaseResult(c["name"], c["kind"], c["passed"], tuple(c["why"])) for c in kept["cases"])
        return cls(kept["file"], kept["started"], kept["seconds"], kept["by"], cases, kept.get("error", ""))

    @classmethod
    def of(cls, file: str, started: float, by: str, run: Run) -> KeptRun:
        cases = tuple(CaseResult(r.name, r.kind, r.passed, r.why) for r in run.results)
        return cls(file, started, run.seconds, by, cases)


@dataclass(frozen=True)
class Row:
    """A case of the last run beside the same case in the run before."""

    name: str
    kind: str
    passed: bool
    why: tuple[str, ...]
    before: bool | None  # None: not in the run before (or no run before)

    @property
    def broke(self) -> bool:
        """Passed in the run before, fails now."""
        return self.before is True and not self.passed


class Tester:
    """Runs the eval files of `folder` one at a time on a thread of its own, keeping each run in `store`."""

    def __init__(self, runner: Callable[[EvalFile], Runner], folder: Path | None, store: Store):
        self._runner = runner
        self.folder = folder
        self._store = store
        self._turn = threading.Lock()
        self.running: str | None = None
        self.thread: threading.Thread | None = None

    def files(self) -> list[str]:
        """The eval files offered: the folder's *.toml, by name."""
        if self.folder is None or not self.folder.is_dir():
            return []
        return sorted(path.name for path in self.folder.glob("*.toml") if path.is_file())

    def start(self, name: str, evals: EvalFile, by: str) -> bool:
        """Run `evals` (read from the file `name`) on a thread; False if a run is under way."""
        if not self._turn.acquire(blocking=False):
            return False
        self.running = name
        self.thread = threading.Thread(target=self._run, args=(name, evals, by), name="console-eval", daemon=True)
        self.thread.start()
        return True

    def _run(self, name: str, evals: EvalFile, by: str) -> None:
        started = time.time()
        try:
            try:
                runner = self._runner(evals)
                try:
                    kept = KeptRun.of(name, started, by, runner.run(JOBS))
                finally:
                    runner.close()
            except Exception:
                # Whatever stopped it is the owner's to see as a failed run; the web process goes on.
                logger.exception("console: the test set %s failed to run", name)
                kept = KeptRun(name, started, time.time() - started, by, (), FAILED)
            self._keep(kept)
        finally:
            self.running = None
            self._turn.release()

    def _keep(self, kept: KeptRun) -> None:
        try:
            self._store.keep_record(KIND, f"{kept.started:.6f}:{kept.file}", kept.encode(), kept.started)
            for old in self.runs(kept.file)[KEPT_RUNS:]:
                self._store.forget_record(KIND, f"{old.started:.6f}:{old.file}")
        except StoreUnavailable as error:
            logger.error("console: the run of %s was not kept: %s", kept.file, error)

    def runs(self, name: str) -> list[KeptRun]:
        """The kept runs of the file `name`, newest first."""
        kept = (KeptRun.decode(text) for text in self._store.records(KIND, 0.0))
        return sorted((run for run in kept if run.file == name), key=lambda run: -run.started)


def rows(last: KeptRun, before: KeptRun | None) -> list[Row]:
    """The last run's cases, each beside how it went the run before."""
    earlier = {case.name: case.passed for case in before.cases} if before else {}
    return [Row(case.name, case.kind, case.passed, case.why, earlier.get(case.name)) for case in last.cases]


def tester() -> Tester:
    found: Tester = current_app.extensions[TESTING]
    return found


@blueprint.route("/tests")
def test_sets() -> tuple[str, int]:
    return _page(request.args.get("file", ""), "", HTTPStatus.OK)


@blueprint.route("/tests/run", methods=["POST"])
def run_test_set() -> tuple[str, int] | BaseResponse:
    found = tester()
    name = request.form.get("file", "")
    if name not in found.files():
        return _page(name, "No such test set.", HTTPStatus.BAD_REQUEST)
    assert found.folder is not None  # files() offers none without it
    try:
        evals = read_eval_file(found.folder / name)
    except EvalFileError as error:
        return _page(name, f"{name}: " + "; ".join(error.problems), HTTPStatus.BAD_REQUEST)
    if not found.start(name, evals, staff_name()):
        return _page(name, BUSY, HTTPStatus.TOO_MANY_REQUESTS)
    return redirect(url_for("console.test_sets", file=name), code=HTTPStatus.SEE_OTHER)


def _page(chosen: str, problem: str, status: HTTPStatus) -> tuple[str, int]:
    found = tester()
    files = found.files()
    chosen = chosen if chosen in files else (files[0] if files else "")
    runs = found.runs(chosen)[:2] if chosen else []
    last, before = (runs + [None, None])[:2]
    page = render_template(
        "console/tests.html",
        files=files,
        chosen=chosen,
        running=found.running,
        last=last,
        before=before,
        rows=rows(last, before) if last else [],
        problem=problem,
        when=lambda at: time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at)),
        me=staff_name(),
    )
    return page, status
