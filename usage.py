"""Token usage reported by the model, summed per UTC day in the store."""

from __future__ import annotations

from gpt import Completion
from limits import DAY, today
from store import Store

# Kept a week, so yesterday's totals can still be read.
KEEP = 7 * DAY
FIELDS = ("replies", "prompt_tokens", "completion_tokens")


def record(store: Store, completion: Completion, now: float) -> None:
    """Add one reply's usage to today's totals."""
    day = today(now)
    amounts = {
        "replies": 1,
        "prompt_tokens": completion.prompt_tokens or 0,
        "completion_tokens": completion.completion_tokens or 0,
    }
    for field, amount in amounts.items():
        if amount:
            store.increment(f"usage:{day}:{field}", amount, KEEP)


def totals(store: Store, now: float) -> dict[str, object]:
    """Today's totals: the date, replies, prompt and completion tokens."""
    day = today(now)
    return {"date": day, **{field: store.counter(f"usage:{day}:{field}") for field in FIELDS}}
