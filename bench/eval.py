"""Eval benchmark: what the eval runner adds to the model's own time.

    python -m bench.eval

`--cases` cases, each one question answered by a fake model that takes `--model-seconds` to answer, run `--jobs`
at a time through the rehearsed conversation (prompt, knowledge of the example bakery searched, the channel's
formatting, grading). With nothing else to wait for, the run takes cases × model seconds / jobs; the target is
that plus 20%. The full run exits 1 over the target; the quick one (what CI runs) only reports its figure, since a
shared CI machine's noise is not the runner's.
"""

from __future__ import annotations

import argparse
import time

from bench.common import ROOT, machine, parse
from inboxgpt.config import settings_from_mapping
from inboxgpt.evals.cases import Case, EvalFile, Expect
from inboxgpt.evals.runner import Runner
from tests.fakes import FakeOpenAI, Reply, completion
from tests.helpers import OPENAI_KEY

MARGIN = 1.2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--model-seconds", type=float, default=0.5)
    args = parse(parser, cases=24, model_seconds=0.25)

    def answer(request: dict) -> Reply:
        return completion("We open at 9 am on Sundays.", delay=args.model_seconds)

    model = FakeOpenAI(answer)
    settings = settings_from_mapping(
        {
            "OPENAI_API_KEY": OPENAI_KEY,
            "OPENAI_BASE_URL": model.base_url,
            "OPENAI_MAX_RETRIES": "0",
            "KNOWLEDGE_DIR": str(ROOT / "examples" / "knowledge"),
            "LOG_LEVEL": "WARNING",
        },
        meta_required=False,
    )
    cases = tuple(
        Case(f"case {n}", (f"are you open on sunday? ({n})",), "messenger", Expect(mentions=("9 am",)))
        for n in range(args.cases)
    )
    runner = Runner(settings, EvalFile(cases))
    try:
        started = time.monotonic()
        run = runner.run(args.jobs)
        seconds = time.monotonic() - started
    finally:
        runner.close()
        model.close()
    ideal = args.cases * args.model_seconds / args.jobs
    target = ideal * MARGIN
    print(machine())
    print(
        f"{args.cases} cases, a {args.model_seconds:g} s model, --jobs {args.jobs}: {seconds:.2f} s "
        f"(the model alone: {ideal:.2f} s; target at most {target:.2f} s); {run.passed} passed"
    )
    if run.passed != args.cases:
        print("FAILED: every case should pass")
        return 1
    if seconds > target and not args.quick:
        print("FAILED: over the target")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
