"""Metrics benchmark: the CPU the Prometheus series cost per reply, in one process and under gunicorn's workers.

    python -m bench.metrics_cost

Runs, for each mode, the metric calls one answered text message makes (the webhook's request
and event counts, the reply's outcome, latencies and tokens, a Graph call's token gauge for each
of typing, seen and the message) many times, and reports the CPU per reply. Multiprocess mode
(what gunicorn.conf.py sets up) writes every sample to a memory-mapped file, so it costs more;
each mode runs in a fresh interpreter, since prometheus_client picks its mode when imported.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from bench.common import ROOT, machine, parse

ONE_REPLY = """
import time
from inboxgpt import metrics
def one_reply():
    metrics.WEBHOOK_REQUESTS.labels("200").inc()
    metrics.EVENTS.labels("message", "messenger").inc()
    for _ in range(3):  # typing_on, mark_seen, the message
        metrics.PAGE_TOKEN_VALID.set(1)
    metrics.MODEL_LATENCY.observe(0.8)
    metrics.REPLIES.labels("sent", "messenger").inc()
    metrics.REPLY_LATENCY.observe(0.9)
    metrics.MODEL_TOKENS.labels("prompt").inc(420)
    metrics.MODEL_TOKENS.labels("completion").inc(60)
for _ in range(1000):
    one_reply()
started = time.process_time()
for _ in range({replies}):
    one_reply()
print((time.process_time() - started) / {replies} * 1e6)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replies", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5, help="runs per mode; the median is reported")
    args = parse(parser, replies=5_000, runs=1)
    print(machine())
    for mode in ("one process (flask run)", "multiprocess (gunicorn)"):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        results = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as folder:
                if mode.startswith("multiprocess"):
                    env["PROMETHEUS_MULTIPROC_DIR"] = folder
                code = ONE_REPLY.format(replies=args.replies)
                out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
                results.append(float(out.stdout))
        results.sort()
        median = results[len(results) // 2]
        print(f"  {mode:<26} {median:6.1f} µs of CPU per reply (median of {args.runs}; target < 200 µs)")


if __name__ == "__main__":
    main()
