"""Logging set-up: levels for our modules and the libraries, and secrets scrubbed from every line."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

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


def configure_logging(level: str, secrets: Iterable[str]) -> None:
    """Log at `level` to stderr unless the host (gunicorn, a test) set handlers up; scrub secrets."""
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
