"""TOOLS_FILE: the tools an owner declares, read with the standard library's TOML reader and checked at start, one
clear message per problem.

    builtin = ["save_contact", "talk_to_a_person"]

    [[tool]]
    name = "order_status"
    description = "The status of one of the shop's orders, by its number."
    method = "GET"
    url = "https://api.example.com/orders/{order_number}?customer={person}"
    headers = { Authorization = "Bearer ${ORDER_API_KEY}" }
    result = "status"
    [tool.parameters.properties.order_number]
    type = "string"
    pattern = "^[0-9]{1,10}$"

`{name}` in the URL, the body or a header is filled in by the service: a parameter's value (URL-encoded in the
URL), or the person's key (`{person}`) and channel (`{channel}`), never the model. `${NAME}` in a header is read
from the environment when the file is read: the secret is in no file the model or a log sees.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from inboxgpt.tools.schema import schema_problems

# Filled in by the service, never by the model: a parameter may not be named so.
RESERVED = ("person", "channel")
BUILTIN = ("save_contact", "talk_to_a_person")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# {name}, but not the environment's ${NAME}.
PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")
ENVIRONMENT = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 30.0
DEFAULT_MAX_BYTES = 100_000
MAX_MAX_BYTES = 5_000_000


class ToolsFileError(ValueError):
    """Raised when a TOOLS_FILE cannot be used; the settings report each of its problems among their own."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class HttpTool:
    """One tool of TOOLS_FILE: what the model is told of it, and the request it makes."""

    name: str
    description: str
    parameters: dict
    method: str
    url: str
    # Header values with the environment's secrets in them: never shown.
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    body: Any = None
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    # The part of a JSON answer the model sees ("status", "items.0.name"); None: all of it.
    result: str | None = None

    def offered(self) -> dict:
        """The tool as the chat-completions API offers it to the model."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass(frozen=True)
class ToolsFile:
    """The owner's tools and the built-in ones turned on."""

    tools: tuple[HttpTool, ...] = ()
    builtin: frozenset[str] = frozenset()


def read_tools(path: Path, environ: Mapping[str, str] = os.environ) -> ToolsFile:
    """The tools of a TOOLS_FILE; raise ToolsFileError listing every problem in it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ToolsFileError([f"TOOLS_FILE: cannot read {path} ({exc.strerror or type(exc).__name__})"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ToolsFileError([f"TOOLS_FILE: {path} is not valid TOML ({exc})"]) from None
    problems = [f"TOOLS_FILE: {key!r} is not a setting of the file" for key in sorted(set(data) - {"tool", "builtin"})]
    builtin = data.get("builtin", [])
    if not isinstance(builtin, list) or any(name not in BUILTIN for name in builtin):
        problems.append(f"TOOLS_FILE: builtin may list {', '.join(BUILTIN)}")
        builtin = []
    declared = data.get("tool", [])
    if not isinstance(declared, list):
        declared, problems = [], [*problems, "TOOLS_FILE: write each tool as a [[tool]] table"]
    tools = []
    for number, table in enumerate(declared, 1):
        tool, found = _tool(table, number, environ)
        problems += found
        if tool is not None:
            tools.append(tool)
    names = [tool.name for tool in tools] + list(builtin)
    problems += [
        f"TOOLS_FILE: two tools are named {name!r}" for name in sorted({n for n in names if names.count(n) > 1})
    ]
    if problems:
        raise ToolsFileError(problems)
    return ToolsFile(tuple(tools), frozenset(builtin))


KNOWN = {"name", "description", "parameters", "method", "url", "headers", "body", "timeout", "max_bytes", "result"}


def _tool(table: Any, number: int, environ: Mapping[str, str]) -> tuple[HttpTool | None, list[str]]:
    """One [[tool]] table as a tool, and its problems (the tool is None if it has any)."""
    if not isinstance(table, dict):
        return None, [f"TOOLS_FILE: tool {number} must be a table"]
    name = table.get("name")
    where = f"TOOLS_FILE: tool {name!r}" if isinstance(name, str) else f"TOOLS_FILE: tool {number}"
    problems = [f"{where}: {key!r} is not a setting of a tool" for key in sorted(set(table) - KNOWN)]
    if not isinstance(name, str) or not NAME.fullmatch(name) or name in BUILTIN:
        problems.append(f"{where}: name must be 1 to 64 letters, digits, _ or -, and not a built-in tool's")
    description = table.get("description")
    if not isinstance(description, str) or not description.strip():
        problems.append(f"{where}: description is missing (the model chooses tools by it)")
    parameters = table.get("parameters", {"type": "object", "properties": {}})
    problems += schema_problems(parameters, where)
    headers, header_problems = _headers(table.get("headers", {}), where, environ)
    problems += header_problems + _request_problems(table, parameters, where) + _limit_problems(table, where)
    if problems:
        return None, problems
    schema = {"type": "object", "properties": {}, **parameters}
    method = str(table.get("method", "GET")).upper()
    timeout, max_bytes = float(table.get("timeout", DEFAULT_TIMEOUT)), table.get("max_bytes", DEFAULT_MAX_BYTES)
    body, result = table.get("body"), table.get("result")
    return HttpTool(
        str(name), str(description), schema, method, table["url"], headers, body, timeout, max_bytes, result
    ), []


def _request_problems(table: dict, parameters: Any, where: str) -> list[str]:
    """What is wrong with a tool's method, URL and placeholders."""
    problems = []
    if str(table.get("method", "GET")).upper() not in METHODS:
        problems.append(f"{where}: method must be one of {', '.join(METHODS)}")
    url = table.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        problems.append(f"{where}: url must be an http:// or https:// address")
    elif PLACEHOLDER.search(urlsplit(url).netloc):
        problems.append(f"{where}: url: the host may not be filled in by the model")
    properties = parameters.get("properties", {}) if isinstance(parameters, dict) else {}
    properties = properties if isinstance(properties, dict) else {}
    taken = [name for name in RESERVED if name in properties]
    problems += [f"{where}: {{{name}}} is filled in by the service: rename the parameter" for name in taken]
    headers = table.get("headers", {})
    templates = [url, *_strings(table.get("body")), *(headers.values() if isinstance(headers, dict) else ())]
    named = {name for text in templates if isinstance(text, str) for name in PLACEHOLDER.findall(text)}
    problems += [f"{where}: {{{name}}} names no parameter" for name in sorted(named - set(properties) - set(RESERVED))]
    return problems


def _limit_problems(table: dict, where: str) -> list[str]:
    """What is wrong with a tool's timeout, size cap and result path."""
    problems = []
    timeout = table.get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= MAX_TIMEOUT:
        problems.append(f"{where}: timeout must be seconds, above 0 and at most {MAX_TIMEOUT:g}")
    max_bytes = table.get("max_bytes", DEFAULT_MAX_BYTES)
    if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or not 0 < max_bytes <= MAX_MAX_BYTES:
        problems.append(f"{where}: max_bytes must be a number of bytes, at most {MAX_MAX_BYTES:,}")
    result = table.get("result")
    if result is not None and (not isinstance(result, str) or not result.strip()):
        problems.append(f'{where}: result must name a part of the answer, such as "order.status"')
    return problems


def _headers(headers: Any, where: str, environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The headers with their `${NAME}` read from the environment, and what is wrong (never a value)."""
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        return {}, [f"{where}: headers must be a table of texts"]
    problems = []
    filled = {}
    for header, value in headers.items():
        if not HEADER_NAME.fullmatch(header):
            problems.append(f"{where}: header {header!r} is not a header's name")
        missing = [name for name in ENVIRONMENT.findall(value) if not environ.get(name)]
        problems += [f"{where}: header {header}: {name} is not set in the environment" for name in missing]
        filled[header] = ENVIRONMENT.sub(lambda found: environ.get(found.group(1), ""), value)
        if CONTROL.search(filled[header]):
            problems.append(f"{where}: header {header}: its value has a control character (a line break?)")
    return filled, problems


def _strings(value: Any) -> list[str]:
    """Every text in a body template, however deep."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []
