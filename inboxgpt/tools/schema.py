"""The part of JSON Schema a tool's parameters may use, checked when the tools file is read, and the model's
arguments checked against it before any request leaves.

A small subset on purpose: an object of named properties, each a string, integer, number or boolean, with a
description, an enum, a pattern, bounds and lengths. What a model fills in and an owner's API takes needs no more,
and every keyword here is enforced: a keyword the checker would ignore is refused when the file is read instead.
"""

from __future__ import annotations

import re
from typing import Any

TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,)}
KEYWORDS = {"type", "description", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength"}
TOP_KEYWORDS = {"type", "properties", "required", "additionalProperties"}


def schema_problems(schema: Any, where: str) -> list[str]:
    """What is wrong with a tool's `parameters`, one message per problem."""
    if not isinstance(schema, dict):
        return [f"{where}: parameters must be a table"]
    problems = [f"{where}: parameters: {key!r} is not supported" for key in sorted(set(schema) - TOP_KEYWORDS)]
    if schema.get("type", "object") != "object":
        problems.append(f'{where}: parameters must have type = "object"')
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
    problems = [f"{where}: {key!r} is not supported" for key in sorted(set(prop) - KEYWORDS)]
    if prop.get("type") not in TYPES:
        problems.append(f"{where}: type must be one of {', '.join(TYPES)}")
    if "pattern" in prop:
        try:
            re.compile(str(prop["pattern"]))
        except re.error:
            problems.append(f"{where}: pattern is not a regular expression")
    if "enum" in prop and not isinstance(prop["enum"], list):
        problems.append(f"{where}: enum must be a list")
    return problems


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
    problems = []
    if "enum" in prop and value not in prop["enum"]:
        problems.append(f"must be one of {prop['enum']}")
    if isinstance(value, str):
        if "pattern" in prop and not re.search(prop["pattern"], value):
            problems.append("is not in the expected form")
        if len(value) < prop.get("minLength", 0) or len(value) > prop.get("maxLength", len(value)):
            problems.append("has the wrong length")
    elif not isinstance(value, bool) and not prop.get("minimum", value) <= value <= prop.get("maximum", value):
        problems.append("is out of range")
    return problems
