"""Logging set-up: levels for our modules and the libraries, secrets scrubbed from every line, text or JSON."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
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
        if not hasattr(record, FIELDS):
            # Kept before the message is flattened, which loses the format they are read from.
            setattr(record, FIELDS, {key: self.redact(value) for key, value in own_fields(record).items()})
        message = record.getMessage()
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


# A printf placeholder in a log call's format ("%s", "%.0f", "%(U)s"), and the key=value field it may fill.
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[-#0 +]*(?:\d+)?(?:\.\d+)?[diouxXeEfFgGcrsa%]")
FIELD_KEY = re.compile(r"(?<!\S)([a-z_]+)=$")
ENTRY_KEYS = ("time", "level", "logger", "message", "exception")
# Where a record keeps its fields once RedactSecrets has flattened its message (and so lost its format).
FIELDS = "lifted_fields"


def own_fields(record: logging.LogRecord) -> dict[str, str]:
    """The key=value fields of a log call's own format ("psid=%s model_ms=%.0f"), each with its argument.

    Read from the format, never from the message: text a client sent (a path, a message) may contain
    "psid=..." too, and must not become a field of its own.
    """
    if not isinstance(record.msg, str) or not record.args:
        return {}
    args = record.args
    fields: dict[str, str] = {}
    position = 0
    for placeholder in PLACEHOLDER.finditer(record.msg):
        spec, name = placeholder.group(0), placeholder.group(1)
        if spec == "%%":
            continue
        try:
            if name is not None and isinstance(args, Mapping):
                value = ("%" + spec[len(name) + 3 :]) % (args[name],)
            elif name is None and isinstance(args, tuple):
                value, position = spec % (args[position],), position + 1
            else:
                return fields
        except (IndexError, KeyError, TypeError, ValueError):
            return fields
        key = FIELD_KEY.search(record.msg, 0, placeholder.start())
        if key and key.group(1) not in ENTRY_KEYS:
            fields[key.group(1)] = value
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the fields of the line's format, any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, FIELDS, None)
        if fields is None:
            fields = own_fields(record)
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, raw in fields.items():
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
