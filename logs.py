"""Logging set-up: levels for our modules and the libraries, secrets scrubbed from every line, text or JSON."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime

REDACTED = "[redacted]"
# Libraries whose DEBUG or INFO lines carry full request URLs (with the page token) or bodies.
NOISY_LOGGERS = ("urllib3", "httpx2", "httpcore2", "openai")


class RedactSecrets(logging.Filter):
    """Replaces any secret value in a log record's message and traceback."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        # Whole values only, so a short verify token such as "tok" leaves the word "token" alone.
        alternatives = "|".join(re.escape(secret) for secret in sorted(secrets, key=len, reverse=True) if secret)
        self._pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])") if alternatives else None

    def redact(self, text: str) -> str:
        """Return `text` with every secret replaced."""
        return self._pattern.sub(REDACTED, text) if self._pattern else text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


# The key=value fields our log lines carry (psid=..., model_ms=...), lifted into JSON entries.
FIELD = re.compile(r"(?<!\S)([a-z_]+)=([^\s,;]+)")
ENTRY_KEYS = ("time", "level", "logger", "message", "exception")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the line's key=value fields, any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        for key, raw in FIELD.findall(message):
            if key not in ENTRY_KEYS:
                entry[key] = _number(raw)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def _number(raw: str) -> object:
    """A field's value as a number when it is one (timings, token counts), else as text (ids stay text)."""
    if raw.isdigit() and len(raw) < 10:
        return int(raw)
    try:
        return float(raw) if "." in raw else raw
    except ValueError:
        return raw


def configure_logging(level: str, secrets: Iterable[str], log_format: str = "text") -> None:
    """Log at `level` to stderr unless the host (gunicorn, a test) set handlers up; scrub secrets; `json` writes
    one object per line."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    scrubber = RedactSecrets(secrets)
    handlers = [*root.handlers]
    for name in ("werkzeug", "gunicorn.error", "gunicorn.access"):
        handlers += logging.getLogger(name).handlers
    for handler in handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
            handler.removeFilter(old)
        handler.addFilter(scrubber)
        if log_format == "json":
            handler.setFormatter(JsonFormatter())
