"""What outlives a request: settings, store, model, limits, the bot, and for Messenger the dispatcher.

`Service` answers people through any channel (the terminal chat uses it); `WebhookService` adds
Messenger's Send API and the per-person queues the webhook feeds. `close()` stops their threads.
"""

from __future__ import annotations

import logging

import requests

import gpt
import messenger
from bot import Bot, Channel
from config import ConfigError, Settings
from dispatcher import Dispatcher
from gpt import ChatModel
from knowledge import open_knowledge
from limits import Limits
from messenger import Messenger
from store import StoreUnavailable, open_store
from typing_indicator import TypingIndicator

logger = logging.getLogger(__name__)


class Service:
    """The conversation's long-lived parts, answering through `channel`."""

    def __init__(self, settings: Settings, channel: Channel):
        self.settings = settings
        try:
            self.store = open_store(settings)
        except StoreUnavailable as exc:
            raise ConfigError([str(exc)]) from None
        self.model = ChatModel(settings)
        self.limits = Limits(settings, self.store)
        self.typing = TypingIndicator(channel.send_action, settings.typing_renew_seconds, settings.worker_threads)
        self._media = requests.Session()
        self.knowledge = open_knowledge(settings, self.model.embed)
        self.bot = Bot(settings, self.store, channel, self.model, self.limits, self.typing, self._media, self.knowledge)

    def close(self) -> None:
        """Stop the threads; call once nothing is being answered."""
        self.typing.close()
        self._media.close()
        self.model.close()
        self.store.close()
        if self.knowledge is not None:
            self.knowledge.close()


class WebhookService(Service):
    """The service behind the webhook: replies through the Send API, events queued per person."""

    def __init__(self, settings: Settings):
        self.messenger = Messenger(settings)
        super().__init__(settings, self.messenger)
        self.lock_ttl = lock_ttl(settings)
        self.dispatcher = Dispatcher(
            self.store,
            self.bot.handle_queued,
            settings.worker_threads,
            self.lock_ttl,
            gather=self.bot.gather_seconds if settings.burst_wait_seconds else None,
        )
        if self.store.shared:
            # Another process may have stopped with events queued, or crashed holding a lock.
            self.dispatcher.resume()
            self.dispatcher.resume_every(self.lock_ttl / 4)

    def close(self) -> None:
        """Stop taking events; answer what is in hand, and what is queued unless another process will."""
        self.dispatcher.close(finish_queued=not self.store.shared)
        super().close()
        self.messenger.close()


def answer_seconds(settings: Settings) -> float:
    """The longest one event can take to answer, from the timeouts and retries of what it calls.

    The worst event is a voice message: its download and transcription, the model's answer, then
    up to three messages (a notice, and a reply split in two), each with all its retries.
    """
    return settings.media_timeout + 2 * gpt.worst_case_seconds(settings) + 3 * messenger.worst_case_seconds(settings)


def lock_ttl(settings: Settings) -> float:
    """How long a person's lock lasts: QUEUE_LOCK_SECONDS, or twice the longest answer."""
    return settings.queue_lock_seconds or 2 * answer_seconds(settings)
