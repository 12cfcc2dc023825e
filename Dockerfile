# The bot under gunicorn, with the tuned settings shipped in the package (`inboxgpt serve`):
#   docker build -t inboxgpt . && docker run --env-file .env -p 8000:8000 --stop-timeout 740 inboxgpt
FROM python:3.12-slim

# The openai SDK checks certificates against the system trust store, which a slim image lacks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000

WORKDIR /app
RUN useradd --create-home --uid 10001 bot

# Dependencies in a layer of their own: rebuilt only when the requirements change, not the code.
# The lock file's exact versions: two builds a week apart install the same thing.
COPY requirements-serve.lock .
RUN pip install -r requirements-serve.lock

# The package itself, with its `inboxgpt` command; its dependencies are the lock file's, above.
COPY pyproject.toml README.md LICENSE requirements-serve.txt /src/
COPY inboxgpt/ /src/inboxgpt/
RUN pip install --no-deps /src && rm -rf /src

USER bot
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['PORT'], timeout=4)" || exit 1

# gunicorn finishes started replies on SIGTERM, for up to its graceful_timeout (about 12 minutes with the default
# settings): give it the time, `docker run --stop-timeout 740` (docs/production.md).
STOPSIGNAL SIGTERM
CMD ["inboxgpt", "serve"]
