"""A comment answered with one private reply: written by the model from the comment, the post's text (fetched once,
kept a while) and the page's knowledge; sent through the comment's channel, which opens a conversation with the
person; kept as that conversation's first turn, so that their answer is answered as any message.

Each comment is answered once, across workers and servers (a record in the store, kept before the reply is
written), and only within 7 days of it (Meta's limit on private replies). A comment's reply is never an apology:
when the model fails, or moderation flags the comment or the reply, the comment is left unanswered and the owner
told in the log. Private replies leave at their channel's pace (shared by every worker through the store); one
refused by a rate limit is tried again after a while, the same text, a few times.
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
from inboxgpt.channels.graph import GraphError
from inboxgpt.config import Settings
from inboxgpt.conversation.moderation import flagged
from inboxgpt.events import Comment
from inboxgpt.model import prompt
from inboxgpt.model.errors import ModelError
from inboxgpt.model.gpt import ChatModel
from inboxgpt.model.knowledge import Knowledge
from inboxgpt.store import Store, Turn
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
# Sends of a private reply Meta refuses for a rate limit, and the waits between them, in GRAPH_BACKOFFs (at the
# default 0.5 s: 30 s, 1 and 2 minutes): Meta's limits count by the hour, so a retry a second later would fail too.
THROTTLED_WAITS = (60, 120, 240)


@dataclass(frozen=True)
class CommentSettings:
    """What answering comments needs of the settings."""

    system_prompt: str
    vision_detail: str
    history_max_tokens: int
    public_reply: str | None
    moderation: str = "off"
    # The unit of the waits after a refusal for a rate limit (GRAPH_BACKOFF).
    backoff: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings) -> CommentSettings:
        return cls(
            system_prompt=settings.system_prompt,
            vision_detail=settings.vision_detail,
            history_max_tokens=settings.history_max_tokens,
            public_reply=settings.comment_public_reply,
            moderation=settings.moderation,
            backoff=settings.graph_backoff,
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
        wait: Callable[[float], object] = time.sleep,
    ):
        self._settings = settings
        self._store = store
        self._channels = channels
        self._model = model
        self._knowledge = knowledge
        self._sent_kept_seconds = sent_kept_seconds
        self._usage = usage
        self._clock = clock
        self._wait = wait
        self._posts: OrderedDict[str, tuple[float, str]] = OrderedDict()
        # Posts whose text one thread is reading from Meta now: the others wait for it rather than read it too.
        self._reading: dict[str, threading.Event] = {}
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
        if not self._claimed(comment, now):
            logger.info("comment %s was answered already", comment.comment_id)
            metrics.COMMENTS.labels("answered_before", comment.channel).inc()
            return
        if self._settings.moderation != "off" and self._flagged(comment, comment.text, "message"):
            return
        text = self._written(comment)
        if text is None:
            return
        if self._settings.moderation == "both" and self._flagged(comment, text, "answer"):
            return
        # One message: a private reply opens the conversation, and nothing more can go before the person answers.
        piece = self._channels.split(comment.psid, text)[0]
        if piece != text:
            logger.info("private reply to comment %s was longer than one message: its first went", comment.comment_id)
        sent = self._sent(comment, piece)
        if sent is None:
            return
        person, message_id = sent
        # Who the commenter is on Messenger, known from now on: a pause of that conversation holds their comments.
        self._store.keep_record(CONVERSATION.format(commenter=comment.psid), person, person, now)
        # The conversation it opens starts with the comment and what reached the person.
        self._store.remember_sent(person, [(message_id, piece[: prompt.REMEMBERED_CHARS])], self._sent_kept_seconds)
        turn = Turn(prompt.COMMENTED.format(comment=comment.text.strip()), piece)
        self._store.append(person, prompt.within_history(turn, self._settings.history_max_tokens))
        metrics.COMMENTS.labels("answered", comment.channel).inc()
        metrics.REPLIES.labels("sent", comment.channel).inc()
        logger.info("comment %s answered privately: conversation psid=%s", comment.comment_id, person)
        if self._settings.public_reply:
            self._channels.reply_publicly(comment.psid, comment.comment_id, self._settings.public_reply)

    def _claimed(self, comment: Comment, now: float) -> bool:
        """Keep the comment's record: False if another worker answers it, or answered it."""
        record = json.dumps({"comment": comment.comment_id, "post": comment.post_id, "channel": comment.channel})
        return self._store.keep_record(RECORD_KIND, comment.comment_id, record, now)

    def _flagged(self, comment: Comment, text: str, what: str) -> bool:
        """Whether moderation flags the comment ("message") or its reply ("answer"): then it gets no private reply
        (a notice would be the page's first words to them)."""
        if not flagged(self._model, comment.psid, text, (), what):
            return False
        logger.info("comment %s not answered: moderation flagged its %s", comment.comment_id, what)
        metrics.COMMENTS.labels("moderated", comment.channel).inc()
        return True

    def _sent(self, comment: Comment, piece: str) -> tuple[str, str] | None:
        """Send the private reply at the channel's pace: the conversation's key and the message's id, or None if
        Meta refused (logged). A refusal for a rate limit is tried again after a wait, the record released meanwhile:
        if this process stops, the comment, still queued, is answered by the next."""
        for wait in (*THROTTLED_WAITS, None):
            self._take_turn(comment)
            try:
                sent = self._channels.reply_privately(comment.psid, comment.comment_id, piece)
            except GraphError as error:
                if not error.throttled:
                    metrics.COMMENTS.labels("refused_by_meta", comment.channel).inc()
                    return None
                self._store.forget_record(RECORD_KIND, comment.comment_id)
                if wait is None:
                    break
                logger.info("private reply to comment %s refused for a rate limit: tried later", comment.comment_id)
                self._wait(wait * self._settings.backoff)
                if not self._claimed(comment, self._clock()):
                    return None  # another worker took it meanwhile
                continue
            if sent is None:
                metrics.COMMENTS.labels("refused_by_meta", comment.channel).inc()
            return sent
        logger.warning(
            "comment %s not answered: Meta refused its private reply for a rate limit %d times",
            comment.comment_id,
            len(THROTTLED_WAITS) + 1,
        )
        metrics.COMMENTS.labels("throttled", comment.channel).inc()
        return None

    def _take_turn(self, comment: Comment) -> None:
        """Wait for the channel's next free moment for a private reply: the moments are counted in the store, so that
        every worker and server together keeps to the pace."""
        gap = self._channels.private_reply_gap(comment.psid)
        if not gap:
            return
        moment = int(self._clock() // gap)
        while self._store.increment(f"private-reply:{comment.channel}:{moment}", 1, 2 * gap + 60) != 1:
            # The next moment is counted here, not read back from the clock: at today's epoch a float division can
            # put the start of a moment in the one before it, and the wait would never end.
            moment = max(moment + 1, int(self._clock() // gap))
            self._wait(max(0.0, moment * gap - self._clock()))

    def _written(self, comment: Comment) -> str | None:
        """The model's private reply to the comment; None if it failed (logged)."""
        post = self._post_text(comment)
        post_part = prompt.COMMENT_POST.format(text=prompt.shorten(post, POST_CHARS)) if post else ""
        length = self._channels.message_length(comment.psid)
        said = prompt.COMMENT.format(post=post_part, comment=comment.text.strip(), length=length)
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
        """The post's text, from Meta once an hour at most per post: read by one thread while the others wait."""
        post_id = comment.post_id
        while True:
            with self._posts_lock:
                kept = self._posts.get(post_id)
                if kept is not None and time.monotonic() - kept[0] < POST_SECONDS:
                    return kept[1]
                reading = self._reading.get(post_id)
                if reading is None:
                    reading = self._reading[post_id] = threading.Event()
                    break
            reading.wait()  # then the text is kept (or, if reading it failed, this thread reads it)
        try:
            text = self._channels.post_text(comment.psid, post_id)
            with self._posts_lock:
                self._posts[post_id] = (time.monotonic(), text)
                self._posts.move_to_end(post_id)
                while len(self._posts) > POSTS_KEPT:
                    self._posts.popitem(last=False)
        finally:
            with self._posts_lock:
                del self._reading[post_id]
            reading.set()
        return text
