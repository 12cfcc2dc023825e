"""Comments in a Page's or an Instagram account's webhook: `entry[].changes[]` beside `messaging`.

Facebook sends the Page's `feed` changes (`item: "comment"`, `verb: "add"`, with `comment_id`, `post_id`, `from`,
`message`, `created_time`); Instagram its `comments` and `live_comments` (`id`, `text`, `from`, `media`). A new
comment by a person becomes a Comment event; an edit, a removal, a like, any other feed change and the Page's (or
account's) own comments are counted as skipped: answering its own comment would have the bot talk to itself.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from inboxgpt.channels.graph_webhook import identifier, object_field, text_field
from inboxgpt.events import Comment

if TYPE_CHECKING:
    from inboxgpt.channels.base import Channel

# Instagram's fields that carry comments (a live video's too).
INSTAGRAM_FIELDS = ("comments", "live_comments")
# Times below this are in seconds (Facebook's created_time), above it in milliseconds (an entry's time).
MAX_SECONDS = 10**11


def read_comments(body: dict, channel: Channel) -> tuple[list[Comment], Counter]:
    """The comments among a body's `changes`, as events; everything else there counted as skipped."""
    comments: list[Comment] = []
    skipped: Counter = Counter()
    for entry in body["entry"]:
        entry = object_field(entry)
        owner = identifier(entry.get("id"))
        changes = entry.get("changes")
        for change in changes if isinstance(changes, list) else ():
            change = object_field(change)
            value, field = object_field(change.get("value")), text_field(change.get("field"))
            if not value or field is None:
                skipped["malformed"] += 1
                continue
            if field == "feed":
                comment, kind = _facebook(value, owner, channel)
            elif field in INSTAGRAM_FIELDS:
                comment, kind = _instagram(value, owner, channel, entry.get("time"))
            else:
                comment, kind = None, field[:40]
            if comment is None:
                skipped[kind] += 1
            else:
                comments.append(comment)
    return comments, skipped


def _facebook(value: dict, page_id: str | None, channel: Channel) -> tuple[Comment | None, str]:
    if value.get("item") != "comment":
        return None, f"feed_{str(value.get('item'))[:30]}"
    if value.get("verb") != "add":
        return None, f"comment_{str(value.get('verb'))[:30]}"  # edited, remove, hide...
    author = identifier(object_field(value.get("from")).get("id"))
    comment_id, post_id = identifier(value.get("comment_id")), identifier(value.get("post_id"))
    text = text_field(value.get("message"))
    if author is None or comment_id is None or post_id is None or text is None:
        return None, "malformed"
    if author == page_id:
        return None, "own_comment"
    when = _milliseconds(value.get("created_time"))
    return Comment(channel.key(author), comment_id, post_id, text, when, channel.name), "comment"


def _instagram(value: dict, account_id: str | None, channel: Channel, time: Any) -> tuple[Comment | None, str]:
    author = identifier(object_field(value.get("from")).get("id"))
    comment_id, media_id = identifier(value.get("id")), identifier(object_field(value.get("media")).get("id"))
    text = text_field(value.get("text"))
    if author is None or comment_id is None or media_id is None or text is None:
        return None, "malformed"
    if author == account_id:
        return None, "own_comment"
    return Comment(channel.key(author), comment_id, media_id, text, _milliseconds(time), channel.name), "comment"


def _milliseconds(value: Any) -> int:
    """A time in seconds or milliseconds since 1970 (Meta writes both), in milliseconds; 0 if not one."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return 0
    return int(value * 1000) if value < MAX_SECONDS else int(value)
