"""Gunicorn settings for the bot: `gunicorn -c gunicorn.conf.py` (gunicorn also reads it from the working directory)."""

import os

wsgi_app = "app:create_app()"
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"

# One process: conversations and the ids of events already answered live in its memory, and
# a second process would hold a different half of them.
workers = 1
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
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
