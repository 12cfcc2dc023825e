"""What the benchmarks share: the fakes and the service from tests/, settings, and percentiles.

Run each from the project's folder as a module, `python -m bench.load`, so that the package, tests/ and
bench/ import as they are (no path is edited).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from inboxgpt.web.signature import sign
from tests.fakes import FakeGraph, FakeOpenAI
from tests.gunicorn_service import GunicornService
from tests.helpers import APP_SECRET, OPENAI_KEY, PAGE_ID, PAGE_TOKEN, VERIFY_TOKEN, meta_json

ROOT = Path(__file__).resolve().parent.parent

BASELINE_APP = "bench.baseline:create_app()"


def settings(graph: FakeGraph, model: FakeOpenAI, **extra: str) -> dict[str, str]:
    """Service settings wired to the fakes."""
    return {
        "PAGE_ACCESS_TOKEN": PAGE_TOKEN,
        "VERIFY_TOKEN": VERIFY_TOKEN,
        "APP_SECRET": APP_SECRET,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "GRAPH_API_URL": graph.url + "/v23.0",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def start(graph: FakeGraph, model: FakeOpenAI, baseline: bool = False, **extra: str) -> GunicornService:
    """The service (or the seed design) under gunicorn with the project's config."""
    if baseline:
        service = GunicornService(settings(graph, model, **extra), app=BASELINE_APP, ready_line="ready: baseline")
    else:
        # LOG_LEVEL=WARNING hides the "ready:" line: a first request waits for the app to load.
        service = GunicornService(settings(graph, model, **extra), ready_line="Booting worker")
        service.session.get(service.url + "/healthz", timeout=30).raise_for_status()
    return service


def signed_message(psid: str, mid: str, text: str) -> tuple[bytes, dict[str, str]]:
    """A webhook body carrying one text message, as Meta sends it, and its headers (signed)."""
    event = {
        "sender": {"id": psid},
        "recipient": {"id": PAGE_ID},
        "timestamp": int(time.time() * 1000),
        "message": {"mid": mid, "text": text},
    }
    raw = meta_json({"object": "page", "entry": [{"id": PAGE_ID, "time": 0, "messaging": [event]}]})
    return raw, {"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, APP_SECRET)}


def parse(parser: argparse.ArgumentParser, **quick: object) -> argparse.Namespace:
    """Parse the command line; `--quick` swaps in these small numbers: a run of seconds, which CI makes."""
    parser.add_argument("--quick", action="store_true", help="a few seconds with small numbers (what CI runs)")
    args = parser.parse_args()
    if args.quick:
        for name, value in quick.items():
            setattr(args, name, value)
    return args


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def machine() -> str:
    """A one-line description of this machine."""
    system = f"{platform.system()} {platform.release()}"
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {system}"
