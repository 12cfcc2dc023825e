"""What outlives a request: settings, store, model, limits, the bot, and behind the webhook the dispatcher.

`Service` answers people through the channels it is given (the terminal chat gives its own);
`WebhookService` adds the page's channels over its Graph API client and the per-person queues the
webhook feeds. `close()` stops their threads.
"""

from __future__ import annotations

import logging

import requests

from inboxgpt.channels import page_channels
from inboxgpt.channels.base import Channels
from inboxgpt.channels.graph import GraphClient, GraphSettings
from inboxgpt.config import ConfigError, Settings
from inboxgpt.conversation.bot import Bot, ConversationSettings
from inboxgpt.conversation.transcript import Transcripts
from inboxgpt.limits import Limits, LimitSettings
from inboxgpt.media import Media, MediaSettings
from inboxgpt.model import prompt
from inboxgpt.model.gpt import ChatModel, ModelSettings
from inboxgpt.model.knowledge import open_knowledge
from inboxgpt.notify import HandoverNotifier, OwnerWebhook
from inboxgpt.precedence import Precedence
from inboxgpt.queues.dispatcher import Dispatcher
from inboxgpt.store import StoreUnavailable, open_store
from inboxgpt.tools.leads import Leads
from inboxgpt.tools.spec import ToolsFile
from inboxgpt.tools.toolbox import Toolbox
from inboxgpt.typing_indicator import TypingIndicator

logger = logging.getLogger(__name__)


def check_settings(settings: Settings) -> None:
    """Raise ConfigError for settings each valid alone that cannot work together (checked before anything starts:
    gunicorn's master calls it too)."""
    problems = prompt.window_problems(settings.model_context_tokens, settings.system_prompt)
    if bool(settings.whatsapp_token) != bool(settings.whatsapp_phone_number_id):
        problems.append("WHATSAPP_TOKEN and WHATSAPP_PHONE_NUMBER_ID go together: set both, or neither")
    if problems:
        raise ConfigError(problems)


class Service:
    """The conversation's long-lived parts, answering through `channels`."""

    def __init__(self, settings: Settings, channels: Channels):
        check_settings(settings)
        self.channels = channels
        self.settings = settings
        try:
            self.store = open_store(settings)
        except StoreUnavailable as exc:
            raise ConfigError([str(exc)]) from None
        self.model = ChatModel(ModelSettings.from_settings(settings))
        self.limits = Limits(LimitSettings.from_settings(settings), self.store)
        # One order for the process's work: webhooks, then model requests, then typing (see precedence.py).
        self.precedence = Precedence()
        self.typing = TypingIndicator(
            channels.send_action, settings.typing_renew_seconds, settings.worker_threads, self.precedence
        )
        self._media = requests.Session()
        self.media = media = Media(self._media, channels.media_link, MediaSettings.from_settings(settings))
        self.knowledge = open_knowledge(settings, self.model.embed)
        self.notifier = HandoverNotifier.from_settings(settings)
        self.transcripts = Transcripts(self.store, settings.transcript_days, self.notifier, names=channels.display_name)
        self.leads = Leads(self.store, OwnerWebhook(settings.leads_webhook_url, "a lead"))
        self.toolbox = None
        if settings.tools is not None:
            self.toolbox = Toolbox(settings.tools, self.leads, settings.tools_allow_private)
        self.bot = Bot(
            ConversationSettings.from_settings(settings),
            self.store,
            channels,
            self.model,
            self.limits,
            self.typing,
            media,
            self.knowledge,
            notifier=self.notifier,
            toolbox=self.toolbox,
            transcripts=self.transcripts,
        )

    def close(self) -> None:
        """Stop the threads; call once nothing is being answered."""
        self.notifier.close()
        self.leads.close()
        self.typing.close()
        self._media.close()
        self.model.close()
        self.store.close()
        if self.knowledge is not None:
            self.knowledge.close()
        self.channels.close()


class WebhookService(Service):
    """The service behind the webhook: the page's channels, events queued per person."""

    def __init__(self, settings: Settings):
        self.graph = GraphClient(GraphSettings.from_settings(settings))
        super().__init__(settings, page_channels(self.graph, settings))
        self.lock_ttl = lock_ttl(settings)
        self.dispatcher = Dispatcher(
            self.store,
            self.bot.handle_queued,
            settings.worker_threads,
            self.lock_ttl,
            gather=self.bot.gather_seconds if settings.burst_wait_seconds else None,
            precedence=self.precedence,
            background=self.bot.can_wait,
            background_threads=background_threads(settings),
        )
        if self.store.shared:
            # Another process may have stopped with events queued, or crashed holding a lock.
            self.dispatcher.resume()
            self.dispatcher.resume_every(self.lock_ttl / 4)

    def close(self) -> None:
        """Stop taking events; answer what is in hand, and what is queued unless another process will."""
        self.dispatcher.close(finish_queued=not self.store.shared)
        super().close()
        self.graph.close()


# Messages an answer may bring besides its own: that a message was cut, that it was cut to fit, that the answer was.
NOTICES_PER_ANSWER = 3


def answer_seconds(settings: Settings) -> float:
    """The longest one event can take to answer, from the deadlines, timeouts and retries of what it calls.

    The worst event is a voice message: finding and downloading it, its transcription, the model's answer within
    MODEL_ANSWER_SECONDS (each round of tools another answer, and its slowest tool), then every message it may become
    and the notices, each with all its retries.
    """
    messages = settings.max_messages_per_reply + NOTICES_PER_ANSWER
    tools = settings.tools or ToolsFile()
    rounds = settings.tool_max_rounds if tools.tools or tools.builtin else 0
    answers = 1 + rounds
    graph = [GraphSettings.from_settings(settings)]
    if settings.whatsapp_configured:
        graph.append(GraphSettings.for_whatsapp(settings))
    # A photo on WhatsApp is found through the Graph API before it is downloaded.
    send_seconds = max(client.worst_case_seconds() for client in graph)
    return (
        settings.media_timeout
        + settings.graph_timeout
        + answers * (ModelSettings.from_settings(settings).worst_case_seconds() + settings.model_answer_seconds)
        + rounds * max((tool.timeout for tool in tools.tools), default=0.0)
        + messages * send_seconds
    )


def background_threads(settings: Settings) -> int:
    """Threads that may answer comments at once: a quarter of WORKER_THREADS, so that a flood of them leaves the
    rest to people's messages."""
    return max(1, settings.worker_threads // 4)


def lock_ttl(settings: Settings) -> float:
    """How long a person's lock lasts unless renewed (the dispatcher renews it while an answer runs):
    QUEUE_LOCK_SECONDS, or the longest answer, so that a worker that crashed frees the person's queue within it."""
    return settings.queue_lock_seconds or answer_seconds(settings)
