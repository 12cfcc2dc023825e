"""The part of JSON Schema a tool's parameters may use, checked when the tools file is read, and the model's
arguments checked against it before any request leaves.

A small subset on purpose: an object of named properties, each a string, integer, number or boolean, with a
description, an enum, a pattern, bounds and lengths. What a model fills in and an owner's API takes needs no more,
and every keyword here is enforced: a keyword the checker would ignore is refused when the file is read instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,)}
# The keywords each type takes: a keyword on a type it does not fit (maxLength on an integer) would be ignored.
KEYWORDS: dict[str, set[str]] = {
    "string": {"enum", "pattern", "minLength", "maxLength"},
    "integer": {"enum", "minimum", "maximum"},
    "number": {"enum", "minimum", "maximum"},
    "boolean": {"enum"},
}
EVERY_TYPE = {"type", "description"}
TOP_KEYWORDS = {"type", "properties", "required", "additionalProperties"}


def schema_problems(schema: Any, where: str) -> list[str]:
    """What is wrong with a tool's `parameters`, one message per problem."""
    if not isinstance(schema, dict):
        return [f"{where}: parameters must be a table"]
    problems = [f"{where}: parameters: {key!r} is not supported" for key in sorted(set(schema) - TOP_KEYWORDS)]
    if schema.get("type", "object") != "object":
        problems.append(f'{where}: parameters must have type = "object"')
    if schema.get("additionalProperties", False) is not False:
        problems.append(f"{where}: parameters.additionalProperties can only be false (other arguments are refused)")
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        return [*problems, f"{where}: parameters.properties must be a table"]
    for name, prop in properties.items():
        problems += _property_problems(name, prop, f"{where}: parameter {name!r}")
    required = schema.get("required", [])
    if not isinstance(required, list) or any(name not in properties for name in required):
        problems.append(f"{where}: parameters.required must list names of its properties")
    return problems


def _property_problems(name: str, prop: Any, where: str) -> list[str]:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
        return [f"{where}: a name of letters, digits and _ only"]
    if not isinstance(prop, dict):
        return [f"{where}: must be a table"]
    kind = prop.get("type")
    if kind not in TYPES:
        known = EVERY_TYPE | set().union(*KEYWORDS.values())
        unknown = [f"{where}: {key!r} is not supported" for key in sorted(set(prop) - known)]
        return [*unknown, f"{where}: type must be one of {', '.join(TYPES)}"]
    problems = [
        f"{where}: {key!r} is not supported for type {kind}" for key in sorted(set(prop) - EVERY_TYPE - KEYWORDS[kind])
    ]
    if "description" in prop and not isinstance(prop["description"], str):
        problems.append(f"{where}: description must be a text")
    if "pattern" in prop:
        problems += _pattern_problems(prop["pattern"], where)
    if "enum" in prop and not _is_enum(prop["enum"], kind):
        problems.append(f"{where}: enum must be a list of {kind} values")
    problems += _bound_problems(prop, ("minimum", "maximum"), _is_number, "a number", where)
    problems += _bound_problems(prop, ("minLength", "maxLength"), _is_length, "a whole number from 0", where)
    return problems


def _pattern_problems(pattern: Any, where: str) -> list[str]:
    if not isinstance(pattern, str):
        return [f"{where}: pattern must be a text"]
    try:
        re.compile(pattern)
    except re.error:
        return [f"{where}: pattern is not a regular expression"]
    return []


def _bound_problems(prop: dict, keys: tuple[str, str], fits: Callable[[Any], bool], what: str, where: str) -> list[str]:
    """What is wrong with a pair of bounds (minimum and maximum, or minLength and maxLength)."""
    given = {key: prop[key] for key in keys if key in prop}
    problems = [f"{where}: {key} must be {what}" for key, value in given.items() if not fits(value)]
    low, high = keys
    if not problems and low in given and high in given and given[low] > given[high]:
        problems.append(f"{where}: {low} is above {high}")
    return problems


def _is_enum(enum: Any, kind: str) -> bool:
    return isinstance(enum, list) and bool(enum) and not any(_value_problems(v, {"type": kind}) for v in enum)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_length(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def argument_problems(arguments: Any, schema: dict) -> list[str]:
    """What is wrong with the model's arguments for a tool (told back to the model, so it can correct them)."""
    if not isinstance(arguments, dict):
        return ["the arguments must be a JSON object"]
    properties: dict = schema.get("properties", {})
    problems = [f"{name} is missing" for name in schema.get("required", []) if name not in arguments]
    problems += [f"{name} is not a parameter of this tool" for name in arguments if name not in properties]
    for name, value in arguments.items():
        if name in properties:
            problems += [f"{name} {problem}" for problem in _value_problems(value, properties[name])]
    return problems


def _value_problems(value: Any, prop: dict) -> list[str]:
    kind = prop["type"]
    if not isinstance(value, TYPES[kind]) or (kind != "boolean" and isinstance(value, bool)):
        return [f"must be a {kind}"]
    if isinstance(value, float) and not math.isfinite(value):
        return ["must be a finite number"]
    problems = []
    if "enum" in prop and value not in prop["enum"]:
        problems.append(f"must be one of {prop['enum']}")
    if isinstance(value, str):
        # The whole value: with re.search, "^[0-9]+$" takes "1042\n" ($ matches before a final line break).
        if "pattern" in prop and not re.fullmatch(prop["pattern"], value):
            problems.append("is not in the expected form")
        if len(value) < prop.get("minLength", 0) or len(value) > prop.get("maxLength", len(value)):
            problems.append("has the wrong length")
    elif not isinstance(value, bool) and not prop.get("minimum", value) <= value <= prop.get("maximum", value):
        problems.append("is out of range")
    return problems
