"""An eval run written out: a table for the terminal (each failure then told in full: why, what was said and
answered, the tool calls made, the knowledge sections used), JSON, and a JUnit XML file for CI servers."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

from inboxgpt.evals.runner import Result, Run
from inboxgpt.evals.watch import CallMade, shortened

# The answer as a failure shows it, at most.
ANSWER_CHARS = 600
NAME_WIDTH = 40


def table(run: Run) -> str:
    """One line per case, the failures told in full below, and the totals."""
    width = min(NAME_WIDTH, max((len(result.name) for result in run.results), default=4))
    lines = [f"{'':4}  {'name':<{width}}  {'time':>6}  why"]
    for result in run.results:
        mark = "pass" if result.passed else "FAIL"
        lines.append(f"{mark:4}  {result.name[:width]:<{width}}  {result.seconds:5.1f}s  {'; '.join(result.why)}")
    for result in run.results:
        if not result.passed:
            lines += ["", *failure(result)]
    lines += ["", summary(run)]
    return "\n".join(lines)


def failure(result: Result) -> list[str]:
    """Why a case failed, and what it was made of."""
    lines = [f"FAIL {result.name} ({result.kind}): {'; '.join(result.why)}"]
    for turn in result.turns:
        lines.append(f"  person> {turn.said}")
        lines.append(f"  answer> {shortened(turn.answer, ANSWER_CHARS) or '(no answer)'}")
    lines.append("  tool calls: " + (", ".join(_call(call) for call in result.calls) or "none"))
    lines.append("  knowledge used: " + (", ".join(result.sections) or "none"))
    return lines


def summary(run: Run) -> str:
    total = len(run.results)
    spent = [result.total() for result in run.results]
    tokens = sum(one.prompt_tokens + one.completion_tokens for one in spent)
    cost = sum(one.cost for one in spent)
    return (
        f"{run.passed} of {total} passed ({run.pass_rate:.0%}) in {run.seconds:.1f} s; "
        f"{tokens:,} tokens, ${cost:.4f} (the judge's not counted)"
    )


def as_json(run: Run) -> str:
    return json.dumps(
        {
            "passed": run.passed,
            "failed": len(run.results) - run.passed,
            "pass_rate": run.pass_rate,
            "seconds": round(run.seconds, 3),
            "results": [_result(result) for result in run.results],
        },
        ensure_ascii=False,
        indent=2,
    )


def write_junit(run: Run, path: Path, suite: str) -> None:
    """The run as JUnit XML (one testsuite, a testcase per case, its failure's message and details)."""
    failures = len(run.results) - run.passed
    root = ElementTree.Element(
        "testsuite", name=suite, tests=str(len(run.results)), failures=str(failures), errors="0", skipped="0"
    )
    root.set("time", f"{run.seconds:.3f}")
    for result in run.results:
        case = ElementTree.SubElement(root, "testcase", classname=f"{suite}.{result.kind}", name=result.name)
        case.set("time", f"{result.seconds:.3f}")
        if not result.passed:
            failed = ElementTree.SubElement(case, "failure", message="; ".join(result.why))
            failed.text = "\n".join(failure(result))
    ElementTree.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _result(result: Result) -> dict[str, Any]:
    total = result.total()
    return {
        "name": result.name,
        "kind": result.kind,
        "passed": result.passed,
        "why": list(result.why),
        "turns": [{"said": turn.said, "answer": turn.answer, "handed_over": turn.handed_over} for turn in result.turns],
        "tool_calls": [
            {"name": call.name, "arguments": call.values(), "result": call.result, "outcome": call.outcome}
            for call in result.calls
        ],
        "knowledge_sections": list(result.sections),
        "prompt_tokens": total.prompt_tokens,
        "completion_tokens": total.completion_tokens,
        "cost": round(total.cost, 6),
        "seconds": round(result.seconds, 3),
    }


def _call(call: CallMade) -> str:
    return f"{call.name}({call.arguments or '{}'}) -> {call.outcome}: {shortened(call.result, 120)}"
