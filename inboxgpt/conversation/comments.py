"""A comment answered with one private reply: written by the model from the comment, the post's text (fetched once,
kept a while) and the page's knowledge; sent through the comment's channel, which opens a conversation with the
person; kept as that conversation's first turn, so that their answer is answered as any message.

Each comment is answered once, across workers and servers (a record in the store, kept before the reply is
written), and only within 7 days of it (Meta's limit on private replies). A comment's reply is never an apology:
when the model fails, the comment is left unanswered and the owner told in the log.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from inboxgpt import metrics
from inboxgpt.channels.base import Channels
from inboxgpt.config import Settings
from inboxgpt.events import Comment
from inboxgpt.model import prompt
from inboxgpt.model.gpt import ChatModel, ModelError
from inboxgpt.model.knowledge import Knowledge
from inboxgpt.queues.store import Store, Turn
from inboxgpt.usage import Usage

logger = logging.getLogger(__name__)

RECORD_KIND = "comment"
# The conversations a commenter's private replies opened (a comment's id for a person is not their Messenger one).
CONVERSATION = "conversation-of:{commenter}"
# Meta takes a private reply within 7 days of the comment.
MAX_AGE_SECONDS = 7 * 24 * 3600
# Posts' texts kept in this process, and for how long (an owner may edit a post).
POSTS_KEPT = 256
POST_SECONDS = 3600.0
POST_CHARS = 500


@dataclass(frozen=True)
class CommentSettings:
    """What answering comments needs of the settings."""

    system_prompt: str
    vision_detail: str
    history_max_tokens: int
    public_reply: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> CommentSettings:
        return cls(
            system_prompt=settings.system_prompt,
            vision_detail=settings.vision_detail,
            history_max_tokens=settings.history_max_tokens,
            public_reply=settings.comment_public_reply,
        )


class CommentReplier:
    """Answers comments privately."""

    def __init__(
        self,
        settings: CommentSettings,
        store: Store,
        channels: Channels,
        model: ChatModel,
        knowledge: Knowledge | None,
        sent_kept_seconds: float,
        usage: Usage,
        clock: Callable[[], float] = time.time,
    ):
        self._settings = settings
        self._store = store
        self._channels = channels
        self._model = model
        self._knowledge = knowledge
        self._sent_kept_seconds = sent_kept_seconds
        self._usage = usage
        self._clock = clock
        self._posts: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._posts_lock = threading.Lock()

    def conversations(self, comment: Comment) -> list[str]:
        """The keys of the conversations the author's earlier comments opened."""
        return self._store.records(CONVERSATION.format(commenter=comment.psid), 0)

    def answer(self, comment: Comment) -> None:
        """Send the comment its private reply (and the public one, if set), unless it was answered or is too old."""
        now = self._clock()
        if comment.timestamp and now - comment.timestamp / 1000 > MAX_AGE_SECONDS:
            logger.info(
                "comment %s of psid=%s is over 7 days old: Meta takes no private reply",
                comment.comment_id,
                comment.psid,
            )
            metrics.COMMENTS.labels("too_old", comment.channel).inc()
            return
        record = json.dumps({"comment": comment.comment_id, "post": comment.post_id, "channel": comment.channel})
        if not self._store.keep_record(RECORD_KIND, comment.comment_id, record, now):
            logger.info("comment %s was answered already", comment.comment_id)
            metrics.COMMENTS.labels("answered_before", comment.channel).inc()
            return
        text = self._written(comment)
        if text is None:
            return
        sent = self._channels.reply_privately(
            comment.psid, comment.comment_id, self._channels.split(comment.psid, text)[0]
        )
        if sent is None:
            metrics.COMMENTS.labels("refused_by_meta", comment.channel).inc()
            return
        person, message_id = sent
        # Who the commenter is on Messenger, known from now on: a pause of that conversation holds their comments.
        self._store.keep_record(CONVERSATION.format(commenter=comment.psid), person, person, now)
        # The conversation it opens starts with the comment and this reply; its echo is the bot's own.
        self._store.remember_sent(person, [(message_id, text[: prompt.REMEMBERED_CHARS])], self._sent_kept_seconds)
        turn = Turn(prompt.COMMENTED.format(comment=comment.text.strip()), text)
        self._store.append(person, prompt.within_history(turn, self._settings.history_max_tokens))
        metrics.COMMENTS.labels("answered", comment.channel).inc()
        metrics.REPLIES.labels("sent", comment.channel).inc()
        logger.info("comment %s answered privately: conversation psid=%s", comment.comment_id, person)
        if self._settings.public_reply:
            self._channels.reply_publicly(comment.psid, comment.comment_id, self._settings.public_reply)

    def _written(self, comment: Comment) -> str | None:
        """The model's private reply to the comment; None if it failed (logged)."""
        post = self._post_text(comment)
        post_part = prompt.COMMENT_POST.format(text=prompt.shorten(post, POST_CHARS)) if post else ""
        said = prompt.COMMENT.format(post=post_part, comment=comment.text.strip())
        knowledge = None
        if self._knowledge is not None:
            chosen = self._knowledge.choose(f"{post}\n{comment.text}")
            knowledge = chosen.for_prompt()
        note = self._channels.formatting_note(comment.psid)
        system = prompt.system_message(self._settings.system_prompt, note)
        budget = prompt.Budget(system, 0, self._settings.history_max_tokens, self._settings.vision_detail)
        try:
            completion = self._model.complete(prompt.build(budget, [], said, knowledge=knowledge))
        except ModelError as error:
            logger.warning("comment %s not answered: the model failed (%s)", comment.comment_id, error.failure.value)
            metrics.COMMENTS.labels("model_failed", comment.channel).inc()
            return None
        self._usage.record(completion, self._clock(), comment.channel, comment.psid, kind="comment")
        return completion.text or None

    def _post_text(self, comment: Comment) -> str:
        """The post's text, from Meta once an hour at most per post."""
        now = time.monotonic()
        with self._posts_lock:
            kept = self._posts.get(comment.post_id)
        if kept is not None and now - kept[0] < POST_SECONDS:
            return kept[1]
        text = self._channels.post_text(comment.psid, comment.post_id)
        with self._posts_lock:
            self._posts[comment.post_id] = (now, text)
            self._posts.move_to_end(comment.post_id)
            while len(self._posts) > POSTS_KEPT:
                self._posts.popitem(last=False)
        return text
