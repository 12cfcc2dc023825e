"""An eval file run: each case and simulation in a rehearsed conversation of its own, `jobs` at a time, graded
against what it expects. A case that goes wrong in any way (a model answering nonsense, slowly, or not at all) is
a failed case that says why; the run goes on."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from inboxgpt.config import Settings
from inboxgpt.conversation.routing import plain_words as folded
from inboxgpt.evals.cases import Case, EvalFile, Expect, Simulation
from inboxgpt.evals.judge import Judge
from inboxgpt.evals.rehearsal import Answered, Rehearsal
from inboxgpt.evals.watch import CallMade, Explanation

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """How one case or simulation went: passed or not and why, the conversation, and what its answers drew on."""

    name: str
    kind: str  # "case" or "simulation"
    passed: bool
    why: tuple[str, ...] = ()
    turns: tuple[Answered, ...] = ()
    seconds: float = 0.0

    @property
    def answer(self) -> str:
        """The last answer."""
        return self.turns[-1].answer if self.turns else ""

    @property
    def calls(self) -> tuple[CallMade, ...]:
        return tuple(call for turn in self.turns for call in turn.explanation.calls)

    @property
    def sections(self) -> tuple[str, ...]:
        """The knowledge sections the answers were given, each once, in order."""
        return tuple(dict.fromkeys(title for turn in self.turns for title in turn.explanation.sections))

    def total(self) -> Explanation:
        """The tokens, cost and model calls of every answer together."""
        explanations = [turn.explanation for turn in self.turns]
        return Explanation(
            sections=self.sections,
            calls=self.calls,
            model_calls=sum(e.model_calls for e in explanations),
            prompt_tokens=sum(e.prompt_tokens for e in explanations),
            completion_tokens=sum(e.completion_tokens for e in explanations),
            cost=sum(e.cost for e in explanations),
            estimated=any(e.estimated for e in explanations),
            seconds=self.seconds,
        )


@dataclass(frozen=True)
class Run:
    """Every result, in the file's order."""

    results: tuple[Result, ...] = field(default_factory=tuple)
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return sum(result.passed for result in self.results)

    @property
    def pass_rate(self) -> float:
        return self.passed / len(self.results) if self.results else 1.0


class Runner:
    """Runs an eval file against the settings' model, knowledge and tools."""

    def __init__(self, settings: Settings, evals: EvalFile):
        self._evals = evals
        self._rehearsal = Rehearsal(settings, evals.tool_results)
        self._judge = Judge(settings)

    def run(self, jobs: int, progress: Callable[[Result], None] = lambda result: None) -> Run:
        """Every case and simulation, `jobs` at a time; `progress` told of each as it ends."""
        started = time.monotonic()
        work: list[Callable[[], Result]] = [*(self._case_work(c) for c in self._evals.cases)]
        work += [self._simulation_work(s) for s in self._evals.simulations]

        def one(job: Callable[[], Result]) -> Result:
            result = job()
            progress(result)
            return result

        with ThreadPoolExecutor(max(1, jobs), thread_name_prefix="eval") as pool:
            results = tuple(pool.map(one, work))
        return Run(results, time.monotonic() - started)

    def close(self) -> None:
        self._judge.close()
        self._rehearsal.close()

    def _case_work(self, case: Case) -> Callable[[], Result]:
        return lambda: _guarded(case.name, "case", lambda: self._case(case))

    def _simulation_work(self, simulation: Simulation) -> Callable[[], Result]:
        return lambda: _guarded(simulation.name, "simulation", lambda: self._simulation(simulation))

    def _case(self, case: Case) -> Result:
        started = time.monotonic()
        conversation = self._rehearsal.conversation(case.channel)
        turns = tuple(conversation.say(text) for text in case.say)
        why = self._graded(case.expect, turns, last_only=True)
        return Result(case.name, "case", not why, tuple(why), turns, time.monotonic() - started)

    def _simulation(self, simulation: Simulation) -> Result:
        """The judge plays the customer until the expectations hold, the customer is done, or max_turns."""
        started = time.monotonic()
        conversation = self._rehearsal.conversation(simulation.channel)
        turns: list[Answered] = []
        why: list[str] = []
        goal_met = False
        while len(turns) < simulation.max_turns:
            exchanged = [(turn.said, turn.answer) for turn in turns]
            says = self._judge.customer(simulation.persona, simulation.goal, simulation.channel, exchanged)
            goal_met = says.goal_met
            if says.gave_up:
                why.append("the customer gave up" + (f": {says.text}" if says.text else ""))
            if says.goal_met or says.gave_up:
                break
            turns.append(conversation.say(says.text))
            if simulation.expect.tool and _tool_missing(simulation.expect, _calls(turns)) is None:
                break  # what the customer came for was done
        why += self._graded(simulation.expect, tuple(turns), last_only=False)
        if not simulation.expect.tool and not goal_met and not why:
            why.append("the customer never said the goal was met")
        if why and len(turns) == simulation.max_turns:
            why.insert(0, f"stopped at max_turns ({simulation.max_turns})")
        return Result(simulation.name, "simulation", not why, tuple(why), tuple(turns), time.monotonic() - started)

    def _graded(self, expect: Expect, turns: Sequence[Answered], last_only: bool) -> list[str]:
        """Why the answers fail `expect` (none: they pass): the last answer's text, or every answer's."""
        if not turns:
            return ["no message was said"]
        checked = turns[-1:] if last_only else turns
        why = _text_problems(expect, " ".join(turn.answer for turn in checked))
        if (missing := _tool_missing(expect, _calls(turns))) is not None:
            why.append(missing)
        handed_over = turns[-1].handed_over
        if expect.hands_over is not None and handed_over != expect.hands_over:
            why.append("handed over to a person" if handed_over else "did not hand over to a person")
        if expect.grounded and not why:
            last = turns[-1]
            verdict = self._judge.grounded(last.said, last.answer, last.explanation.knowledge)
            if not verdict.grounded:
                why.append(verdict.why)
        return why


def _guarded(name: str, kind: str, work: Callable[[], Result]) -> Result:
    """The result of `work`, or a failed result saying what went wrong: one case never stops the others."""
    started = time.monotonic()
    try:
        return work()
    except Exception as error:  # noqa: BLE001 - any failure is this case's, reported with it
        logger.warning("eval %s %r failed: %s", kind, name, type(error).__name__)
        return Result(name, kind, False, (f"error: {type(error).__name__}",), seconds=time.monotonic() - started)


def _calls(turns: Sequence[Answered]) -> list[CallMade]:
    return [call for turn in turns for call in turn.explanation.calls]


def _text_problems(expect: Expect, answer: str) -> list[str]:
    shown = folded(answer)
    why = []
    if missing := [mention for mention in expect.mentions if folded(mention) not in shown]:
        why.append("missing " + ", ".join(repr(mention) for mention in missing))
    if present := [mention for mention in expect.not_mentions if folded(mention) in shown]:
        why.append("mentions " + ", ".join(repr(mention) for mention in present))
    return why


def _tool_missing(expect: Expect, calls: Sequence[CallMade]) -> str | None:
    """Why the expected tool call was not made (None: it was, or none is expected)."""
    if expect.tool is None:
        return None
    named = [call for call in calls if call.name == expect.tool]
    if not named:
        return f"{expect.tool} was not called"
    if any(_has_arguments(call.values(), expect) for call in named):
        return None
    wanted = ", ".join(f"{key}={value!r}" for key, value in expect.tool_args.items())
    return f"{expect.tool} was not called with {wanted}"


def _has_arguments(values: dict, expect: Expect) -> bool:
    """Whether a call's arguments hold each expected one (texts compared as mentions are: 4 and "4" alike)."""
    return all(
        key in values and folded(str(values[key])) == folded(str(want)) for key, want in expect.tool_args.items()
    )
