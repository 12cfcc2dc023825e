"""Gunicorn settings for the bot, shipped in the package: `inboxgpt serve` runs
`gunicorn -c python:inboxgpt.web.gunicorn_conf`, and the repository's gunicorn.conf.py reads this same file.

The bot's settings are checked here, in the master, before any worker starts: a missing or bad
setting stops gunicorn with the one clear message instead of a worker's traceback.
"""

import contextlib
import gc
import os
import re
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

# prometheus_client chooses between one process's registry and files shared by the workers when
# it is first imported, which the imports below do: the folder must be set before them. Files
# left by an earlier run would add its counts to this one's.
OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bot-metrics-")
METRICS_DIR = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
METRICS_DIR.mkdir(parents=True, exist_ok=True)
# Only prometheus_client's own files (counter_<pid>.db, gauge_liveall_<pid>.db...): the folder may hold
# other files, such as the SQLite store's, which are not the metrics' to delete.
METRICS_FILE = re.compile(r"(?:counter|histogram|summary|gauge_[a-z]+)_\d+\.db")
for stale in METRICS_DIR.glob("*.db"):
    if METRICS_FILE.fullmatch(stale.name):
        stale.unlink()

from gunicorn.glogging import Logger  # noqa: E402

from inboxgpt.config import ConfigError, load_settings  # noqa: E402 (after the metrics folder is set, see above)
from inboxgpt.service import answer_seconds, check_settings  # noqa: E402
from inboxgpt.store import StoreUnavailable, backend  # noqa: E402

try:
    settings = load_settings()
    check_settings(settings)
    shared_store = backend(settings.store_url).shared
except (ConfigError, StoreUnavailable) as error:
    raise SystemExit(str(error)) from None

wsgi_app = "inboxgpt.web.app:create_app()"
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"

# Worker processes. With the in-memory store, conversations and the ids of events already
# answered live in one process's memory, so there must be one; a shared store (STORE_URL
# sqlite:/// or redis://) lets several processes serve, each using a core.
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
if workers > 1 and not shared_store:
    raise SystemExit("WEB_CONCURRENCY above 1 needs a shared store: set STORE_URL to sqlite:///bot.db or redis://...")
# Meta's webhook calls take milliseconds (replies are written on the app's own thread pool,
# WORKER_THREADS). A client that trickles its body holds a request thread until the app's
# deadline (5 s) refuses it with 408: enough threads that a few such clients leave room for Meta.
# Slow headers are read before the app is called: in production, put a buffering proxy in front
# (deploy/nginx.conf).
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "32"))

# A request that takes this long is stuck: Meta gave up on it after 20 s anyway.
timeout = 30
# On SIGTERM the worker stops taking requests, then finishes the answer it has started (and,
# with the in-memory store, every queued one); this covers the longest one answer can take,
# from the timeouts and retries in the settings.
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT") or answer_seconds(settings) + 5)
# Each worker keeps to one core (PIN_WORKERS=off to let them move). One interpreter runs one thread at a time, so a
# worker gains nothing from a second core, but its threads handing the interpreter's lock between cores cost it:
# on a 2-core machine shared with other work, a reply took 3.6 ms of CPU instead of 4.8 to 5.1 ms, and came sooner
# (docs/performance.md).
PIN_WORKERS = os.environ.get("PIN_WORKERS", "on").strip().lower()
if PIN_WORKERS not in ("on", "off"):
    raise SystemExit("PIN_WORKERS must be on or off")
# Meta reuses connections; keep them a little longer than the 2 s default.
keepalive = 15

# The access log shows the path only: verification requests carry the verify token in the
# query string.
accesslog = "-"
ACCESS_LOG_FORMAT = '%(p)s %(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
access_log_format = ACCESS_LOG_FORMAT


class EscapedPathLogger(Logger):
    """Gunicorn's logger, with the path shown as sent (percent-encoded), not decoded: a client's `%0a` would
    otherwise start a line of its own, one that could pass for the service's.

    The line of the format above is written directly: gunicorn's own way gathers every header and environment
    variable of the request for any format an owner may set, and formats the time, which cost a webhook more CPU
    than the app's check of it. Another format goes gunicorn's way."""

    def access(self, resp: Any, req: object, environ: dict, request_time: timedelta) -> None:
        if self.cfg.access_log_format != ACCESS_LOG_FORMAT:
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        sent = getattr(resp, "sent", None)
        milliseconds = request_time.seconds * 1000 + request_time.microseconds // 1000
        line = (
            f'<{os.getpid()}> {environ.get("REMOTE_ADDR", "-")} "{environ.get("REQUEST_METHOD")} '
            f'{escaped_path(environ)} {environ.get("SERVER_PROTOCOL")}" {status} {"-" if sent is None else sent} '
            f"{milliseconds}ms"
        )
        self.access_log.info(line)

    def atoms(self, resp: object, req: object, environ: dict, request_time: object) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = escaped_path(environ)
        return atoms


def escaped_path(environ: dict) -> str:
    return quote(environ.get("PATH_INFO") or "", safe=PATH_CHARACTERS)


# What a path may hold unescaped: RFC 3986's unreserved characters, sub-delimiters, ':', '@' and '/'.
PATH_CHARACTERS = "/:@!$&'()*+,;=-._~"
logger_class = EscapedPathLogger


def post_worker_init(worker: object) -> None:
    """Set aside the objects the app was loaded with: the collector's full passes then walk only what answers
    create. Without this, a full pass over the openai SDK's and Flask's objects (about 50 ms of CPU) lands in the
    middle of a burst now and then, holding every webhook and answer of the process up behind it. A reply makes
    thousands of short-lived objects (HTTP headers, JSON): the young generation is collected every 10,000
    allocations rather than every 700, which measured a little faster on every figure (docs/performance.md)."""
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    if PIN_WORKERS == "on" and hasattr(os, "sched_setaffinity"):
        core = one_core(sorted(os.sched_getaffinity(0)), getattr(worker, "age", 0))
        # Every thread of the worker, those the app has started included; later ones inherit it.
        for thread in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):  # a thread that has just ended
                os.sched_setaffinity(int(thread), {core})


def one_core(allowed: list[int], worker_age: int) -> int:
    """The core a worker keeps to: the workers in turn over the cores the server may use."""
    return allowed[worker_age % len(allowed)]


def worker_exit(server: object, worker: object) -> None:
    """Close the service before the interpreter starts shutting down, so no reply is cut off."""
    from inboxgpt.web.app import EXTENSION  # the worker has imported the app by now; the master need not

    app = getattr(worker, "wsgi", None)
    service = getattr(app, "extensions", {}).get(EXTENSION)
    if service is not None:
        service.close()


def child_exit(server: object, worker: object) -> None:
    """Drop a dead worker's live gauges, so a scrape does not count its queue or token state."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(getattr(worker, "pid", 0))


def on_exit(server: object) -> None:
    """Remove the metrics folder gunicorn made for this run (one the owner set is theirs to keep)."""
    if OWN_METRICS_DIR:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
