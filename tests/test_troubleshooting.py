"""docs/troubleshooting.md quotes the bot's real log lines: each one is written by the module it names, with one of
that module's formats; and the lines a failure produces read as the page quotes them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.helpers import PSID, load

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "troubleshooting.md"
LOG_BLOCK = re.compile(r"^```log\n(.*?)^```", re.MULTILINE | re.DOTALL)
LEVELS = {"debug", "info", "warning", "error", "critical", "exception", "log"}


def quoted_lines() -> list[str]:
    return [line for block in LOG_BLOCK.findall(PAGE.read_text()) for line in block.splitlines() if line]


def log_formats() -> dict[str, list[str]]:
    """Each module's log formats (the first text argument of `logger.info(...)` and the like), by logger name."""
    formats: dict[str, list[str]] = {}
    for path in (ROOT / "inboxgpt").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LEVELS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "logger"
            ):
                continue
            texts = [arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
            if texts:
                formats.setdefault(module, []).append(texts[0])
    return formats


def pattern(log_format: str) -> re.Pattern[str]:
    """A %-format as a regular expression matching the lines it writes."""
    parts = re.split(r"(%(?:\.\d+)?[sdgf]|%%)", log_format)
    fields = {"%%": "%", "%d": r"-?\d+"}
    return re.compile(
        "".join(fields.get(part, ".+") if part.startswith("%") and len(part) > 1 else re.escape(part) for part in parts)
    )


def test_the_page_quotes_log_lines():
    assert len(quoted_lines()) >= 10


@pytest.mark.parametrize("line", quoted_lines())
def test_each_quoted_line_is_one_the_named_module_writes(line):
    parts = re.fullmatch(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) ([\w.]+): (.*)", line)
    assert parts is not None, f"not a log line: {line}"
    _, logger_name, message = parts.groups()
    formats = log_formats().get(logger_name)
    assert formats, f"no module {logger_name} logs anything"
    assert any(pattern(log_format).fullmatch(message) for log_format in formats), message


def quoted(part: str) -> str:
    """The message of the page's quoted line that holds `part`, as written (its own person id kept)."""
    return next(line.split(": ", 1)[1] for line in quoted_lines() if part in line)


def test_a_refused_permission_is_logged_as_the_page_quotes_it(post, graph, caplog):
    graph.fail_next(403, code=200, messages_only=True)
    post(load("text.json"))
    expected = quoted("code 200").replace("6543210987654321", PSID)
    assert expected in [record.getMessage() for record in caplog.records]
    assert "code 200, subcode" not in caplog.text  # Meta gave no subcode: none is made up


def test_a_wrong_verify_token_is_logged_as_the_page_quotes_it(client, caplog):
    client.get("/?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1")
    assert quoted("webhook verification refused") in caplog.text
