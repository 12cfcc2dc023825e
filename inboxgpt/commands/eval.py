"""`flask --app app eval FILE`: run a test set (docs/evals.md) through the conversation that answers customers,
against the configured model, knowledge and tools, with nothing sent to Meta and no tool acting."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path

import click

from inboxgpt.config import ConfigError, Settings
from inboxgpt.evals import output
from inboxgpt.evals.cases import EvalFileError, read_eval_file
from inboxgpt.evals.runner import Result, Run, Runner


def eval_command(load: Callable[[], Settings]) -> click.Command:
    """The command, reading its settings with `load`."""

    @click.command("eval")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--jobs", default=4, show_default=True, type=click.IntRange(1, 64), help="Cases run at once.")
    @click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
    @click.option(
        "--junit", type=click.Path(dir_okay=False, writable=True, path_type=Path), help="Also write JUnit XML here."
    )
    @click.option(
        "--min-pass",
        default=1.0,
        show_default=True,
        type=click.FloatRange(0, 1),
        help="Exit with 1 when the share of cases passed is below this.",
    )
    def evaluate(file: Path, jobs: int, as_json: bool, junit: Path | None, min_pass: float) -> None:
        """Run the cases and simulations of an eval FILE (TOML) and grade them; see docs/evals.md."""
        try:
            evals = read_eval_file(file)
        except EvalFileError as error:
            raise click.UsageError("\n".join(error.problems)) from None
        try:
            runner = Runner(load(), evals)
        except ConfigError as error:
            raise click.ClickException(str(error)) from None
        try:
            run = _run(runner, jobs, evals.size)
        finally:
            runner.close()
        click.echo(output.as_json(run) if as_json else output.table(run))
        if junit is not None:
            output.write_junit(run, junit, f"eval {file.stem}")
        if run.pass_rate < min_pass:
            sys.exit(1)

    return evaluate


def _run(runner: Runner, jobs: int, size: int) -> Run:
    """The run, with a progress bar on a terminal."""
    if not sys.stderr.isatty():
        return runner.run(jobs)
    lock = threading.Lock()
    with click.progressbar(length=size, label="evaluating", file=sys.stderr) as bar:

        def advance(result: Result) -> None:
            with lock:  # cases end on the runner's threads
                bar.update(1)

        return runner.run(jobs, advance)
