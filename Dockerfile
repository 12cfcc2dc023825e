# The bot under gunicorn: docker build -t messenger-gpt . && docker run --env-file .env -p 8000:8000 messenger-gpt
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

COPY app.py gunicorn.conf.py ./
COPY inboxgpt/ ./inboxgpt/

USER bot
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['PORT'], timeout=4)" || exit 1

# gunicorn finishes started replies on SIGTERM; give it the time: docker stop -t 95.
STOPSIGNAL SIGTERM
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
