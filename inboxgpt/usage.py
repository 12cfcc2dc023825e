"""Token usage reported by the model, summed per UTC day in the store."""

from __future__ import annotations

from dataclasses import dataclass

from inboxgpt.channels import NAMES
from inboxgpt.events import FIRST_CHANNEL
from inboxgpt.limits import DAY, today
from inboxgpt.model.gpt import Completion
from inboxgpt.queues.store import Store

# Kept a week, so yesterday's totals can still be read.
KEEP = 7 * DAY


def record(store: Store, completion: Completion, now: float, channel: str = FIRST_CHANNEL, kind: str = "") -> None:
    """Add one reply's usage to today's totals, and the reply to its channel's count (and its kind's: "comment")."""
    day = today(now)
    amounts = {
        "replies": 1,
        f"replies:{channel}": 1,
        f"replies:kind:{kind}": 1 if kind else 0,
        "prompt_tokens": completion.prompt_tokens or 0,
        "completion_tokens": completion.completion_tokens or 0,
    }
    for field, amount in amounts.items():
        if amount:
            store.increment(f"usage:{day}:{field}", amount, KEEP)


@dataclass(frozen=True)
class Totals:
    """One UTC day's usage."""

    date: str
    replies: int
    prompt_tokens: int
    completion_tokens: int
    replies_by_channel: dict[str, int]
    # Of the replies, the private replies to comments.
    comment_replies: int = 0


def totals(store: Store, now: float) -> Totals:
    """Today's totals: replies (and by channel), prompt and completion tokens."""
    day = today(now)
    return Totals(
        date=day,
        replies=store.counter(f"usage:{day}:replies"),
        prompt_tokens=store.counter(f"usage:{day}:prompt_tokens"),
        completion_tokens=store.counter(f"usage:{day}:completion_tokens"),
        replies_by_channel={channel: store.counter(f"usage:{day}:replies:{channel}") for channel in NAMES},
        comment_replies=store.counter(f"usage:{day}:replies:kind:comment"),
    )
