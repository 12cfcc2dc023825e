"""The seed design, for comparison only: the webhook asks the model inline, with the whole history,
before answering Meta.

Run by bench/load.py and bench/cost.py as `gunicorn -c gunicorn.conf.py 'bench.baseline:create_app()'`.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from typing import Any

import requests
from flask import Flask, request
from openai import OpenAI


def create_app() -> Flask:
    """A webhook that does all its work before it returns 200."""
    app = Flask(__name__)
    client = OpenAI(api_key=os.environ["OPENAI_API_KEY"], base_url=os.environ["OPENAI_BASE_URL"], max_retries=0)
    send_url = os.environ["GRAPH_API_URL"] + "/me/messages"
    token = os.environ["PAGE_ACCESS_TOKEN"]
    histories: dict[str, list[Any]] = defaultdict(list)  # grows for ever
    session = requests.Session()

    @app.post("/")
    def webhook():
        body = json.loads(request.get_data())
        for entry in body["entry"]:
            for event in entry.get("messaging", []):
                text = event.get("message", {}).get("text")
                if not text or event["message"].get("is_echo"):
                    continue
                psid = event["sender"]["id"]
                history = histories[psid]
                history.append({"role": "user", "content": text})
                answer = (
                    client.chat.completions.create(
                        model=os.environ.get("OPENAI_MODEL", "gpt-4.1-mini"),
                        messages=[{"role": "system", "content": "You are a helpful assistant."}, *history],
                    )
                    .choices[0]
                    .message.content
                )
                history.append({"role": "assistant", "content": answer})
                session.post(
                    send_url,
                    params={"access_token": token},
                    timeout=10,
                    json={"recipient": {"id": psid}, "message": {"text": (answer or "")[:2000]}},
                )
        return "EVENT_RECEIVED", 200

    print("ready: baseline", file=sys.stderr, flush=True)
    return app
