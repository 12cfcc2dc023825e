"""An eval file: cases (what a person says, what the answer must hold) and simulations (the judge model plays a
customer with a goal), read with the standard library's TOML reader and checked whole, one message per problem.

    [tool_results.book_table]            # what a tool answers during the eval (else a stub saying it is a test)
    booked = true

    [[case]]
    name = "sunday hours"
    say = "are you open on sunday?"      # or a list: several turns, in order; the last answer is checked
    channel = "messenger"                # optional: whose formatting the answer gets
    mentions = ["9", "2"]                # each must appear in the answer (case and accents ignored)
    not_mentions = ["pizza"]
    tool = "book_table"                  # this tool must be called
    tool_args = { people = 4 }           # with at least these arguments
    hands_over = false                   # the answer hands over to a person (or must not)
    grounded = true                      # the judge model checks each claim against the knowledge given

    [[simulation]]
    name = "books a table"
    persona = "a regular who writes short messages"
    goal = "book a table for 4 on Saturday"
    max_turns = 6
    tool = "book_table"
    tool_args = { people = 4, day = "saturday" }
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inboxgpt.channels import NAMES

DEFAULT_CHANNEL = "messenger"
DEFAULT_MAX_TURNS = 6
MAX_TURNS = 30
EXPECTATIONS = ("mentions", "not_mentions", "tool", "tool_args", "hands_over", "grounded")
CASE_KEYS = {"name", "say", "channel", *EXPECTATIONS}
SIMULATION_KEYS = {"name", "persona", "goal", "max_turns", "channel", *EXPECTATIONS}


class EvalFileError(ValueError):
    """An eval file that cannot be run: each problem in a sentence."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Expect:
    """What the answer must hold (None, or empty: not checked)."""

    mentions: tuple[str, ...] = ()
    not_mentions: tuple[str, ...] = ()
    tool: str | None = None
    tool_args: dict[str, Any] = field(default_factory=dict)
    hands_over: bool | None = None
    grounded: bool = False


@dataclass(frozen=True)
class Case:
    """What a person says, in turns, and what the last answer must hold."""

    name: str
    say: tuple[str, ...]
    channel: str
    expect: Expect


@dataclass(frozen=True)
class Simulation:
    """A customer the judge model plays, with a goal; it passes once its expectations hold within max_turns."""

    name: str
    persona: str
    goal: str
    max_turns: int
    channel: str
    expect: Expect


@dataclass(frozen=True)
class EvalFile:
    """The cases and simulations of one file, and what its tools answer."""

    cases: tuple[Case, ...] = ()
    simulations: tuple[Simulation, ...] = ()
    tool_results: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.cases) + len(self.simulations)


def read_eval_file(path: Path) -> EvalFile:
    """The eval file at `path`; EvalFileError naming every problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise EvalFileError([f"{path.name} cannot be read: {error}"]) from None
    problems: list[str] = []
    unknown = set(data) - {"case", "simulation", "tool_results"}
    if unknown:
        problems.append(f"unknown tables or keys: {', '.join(sorted(unknown))}")
    cases = [_case(table, n, problems) for n, table in enumerate(_tables(data, "case", problems), 1)]
    simulations = [_simulation(t, n, problems) for n, t in enumerate(_tables(data, "simulation", problems), 1)]
    results = _tool_results(data.get("tool_results", {}), problems)
    names = [one.name for one in [*cases, *simulations] if one is not None]
    if repeated := sorted({name for name in names if names.count(name) > 1}):
        problems.append(f"names used twice: {', '.join(repeated)}")
    if not names and not problems:
        problems.append("no [[case]] or [[simulation]] in the file")
    if problems:
        raise EvalFileError(problems)
    return EvalFile(
        tuple(case for case in cases if case is not None),
        tuple(simulation for simulation in simulations if simulation is not None),
        results,
    )


def _tables(data: dict, key: str, problems: list[str]) -> list[dict]:
    tables = data.get(key, [])
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        problems.append(f"{key} must be written [[{key}]]")
        return []
    return tables


def _case(table: dict, number: int, problems: list[str]) -> Case | None:
    where = f"case {number}"
    found: list[str] = []
    name = _name(table, where, found)
    where = f"case {name!r}" if name else where
    say = table.get("say")
    turns = (say,) if isinstance(say, str) else tuple(say) if isinstance(say, list) else ()
    if not turns or not all(isinstance(turn, str) and turn.strip() for turn in turns):
        found.append(f"{where}: say must be a message, or a list of messages, none empty")
    found += [f"{where}: unknown key {key!r}" for key in sorted(set(table) - CASE_KEYS)]
    channel = _channel(table, where, found)
    expect = _expect(table, where, found)
    problems += found
    return None if found else Case(name, turns, channel, expect)


def _simulation(table: dict, number: int, problems: list[str]) -> Simulation | None:
    where = f"simulation {number}"
    found: list[str] = []
    name = _name(table, where, found)
    where = f"simulation {name!r}" if name else where
    persona, goal = table.get("persona", "a customer"), table.get("goal")
    if not isinstance(persona, str) or not persona.strip():
        found.append(f"{where}: persona must be a text")
    if not isinstance(goal, str) or not goal.strip():
        found.append(f"{where}: goal must be a text")
    max_turns = table.get("max_turns", DEFAULT_MAX_TURNS)
    if not isinstance(max_turns, int) or isinstance(max_turns, bool) or not 1 <= max_turns <= MAX_TURNS:
        found.append(f"{where}: max_turns must be a whole number from 1 to {MAX_TURNS}")
    found += [f"{where}: unknown key {key!r}" for key in sorted(set(table) - SIMULATION_KEYS)]
    channel = _channel(table, where, found)
    expect = _expect(table, where, found)
    problems += found
    return None if found else Simulation(name, persona, str(goal), max_turns, channel, expect)


def _name(table: dict, where: str, found: list[str]) -> str:
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        found.append(f"{where}: name must be a text")
        return ""
    return name.strip()


def _channel(table: dict, where: str, found: list[str]) -> str:
    channel = table.get("channel", DEFAULT_CHANNEL)
    if channel not in NAMES:
        found.append(f"{where}: channel must be one of {', '.join(NAMES)}")
    return str(channel)


def _expect(table: dict, where: str, found: list[str]) -> Expect:
    texts = {}
    for key in ("mentions", "not_mentions"):
        value = table.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(one, str) and one.strip() for one in value):
            found.append(f"{where}: {key} must be a list of texts")
            value = []
        texts[key] = tuple(value)
    tool = table.get("tool")
    if tool is not None and (not isinstance(tool, str) or not tool.strip()):
        found.append(f"{where}: tool must be a tool's name")
    tool_args = table.get("tool_args", {})
    if not isinstance(tool_args, dict):
        found.append(f"{where}: tool_args must be a table, like {{ people = 4 }}")
        tool_args = {}
    if tool_args and tool is None:
        found.append(f"{where}: tool_args needs tool")
    hands_over, grounded = table.get("hands_over"), table.get("grounded", False)
    if hands_over is not None and not isinstance(hands_over, bool):
        found.append(f"{where}: hands_over must be true or false")
    if not isinstance(grounded, bool):
        found.append(f"{where}: grounded must be true or false")
    return Expect(texts["mentions"], texts["not_mentions"], tool, tool_args, hands_over, grounded is True)


def _tool_results(results: Any, problems: list[str]) -> dict[str, str]:
    """Each tool's answer during the eval, as the model reads it: a table as JSON, a text as it is."""
    if not isinstance(results, dict):
        problems.append("tool_results must be tables: [tool_results.NAME]")
        return {}
    answers = {}
    for name, value in results.items():
        if isinstance(value, str):
            answers[name] = value
        elif isinstance(value, dict):
            answers[name] = json.dumps(value, ensure_ascii=False, default=str)
        else:
            problems.append(f"tool_results.{name} must be a table or a text")
    return answers
