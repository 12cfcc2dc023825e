"""Gunicorn settings for the bot: `gunicorn -c gunicorn.conf.py` (gunicorn also reads it from the working directory)."""

import os

from dotenv import dotenv_values

wsgi_app = "app:create_app()"
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"

# Worker processes. With the in-memory store, conversations and the ids of events already
# answered live in one process's memory, so there must be one; a shared store (STORE_URL
# sqlite:/// or redis://) lets several processes serve, each using a core.
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
store_url = os.environ.get("STORE_URL") or dotenv_values(".env").get("STORE_URL") or "memory://"
if workers > 1 and store_url.startswith("memory"):
    raise SystemExit("WEB_CONCURRENCY above 1 needs a shared store: set STORE_URL to sqlite:///bot.db or redis://...")
# Meta's webhook calls take milliseconds (replies are written on the app's own thread pool,
# WORKER_THREADS), so a few request threads are plenty; gthread keeps a slow client from
# holding up Meta.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))

# A request that takes this long is stuck: Meta gave up on it after 20 s anyway.
timeout = 30
# On SIGTERM the worker stops taking requests, then finishes the replies it has started;
# this must cover one model call with its retries (OPENAI_TIMEOUT x (1 + OPENAI_MAX_RETRIES)).
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "90"))
# Meta reuses connections; keep them a little longer than the 2 s default.
keepalive = 15

# The access log shows the path only: verification requests carry the verify token in the
# query string.
accesslog = "-"
access_log_format = '%(p)s %(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
