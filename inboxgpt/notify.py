"""The owner's webhooks: JSON posted to an address the owner gives, retried, from a thread of its own.

HANDOVER_NOTIFY_URL: a small JSON POST to the owner whenever a person asks for someone from the business or the
bot steps back for one, on any channel, so an owner without an inbox (WhatsApp has none) still hears of it.

The POST leaves from a thread of its own: it never holds up or breaks a reply. Its address is a secret (chat tools'
incoming-webhook addresses carry their key), so it is never logged; neither is what the person wrote.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass
from urllib.parse import quote

import requests

from inboxgpt.config import Secret, Settings

logger = logging.getLogger(__name__)

# Notifications waiting to leave; past this many (the owner's server down for long), new ones are dropped.
MAX_WAITING = 1000
TIMEOUT_SECONDS = 5.0
# Each post is tried this many times, waiting 1 s, then 2 s, between tries (the owner's server restarting).
ATTEMPTS = 3
RETRY_WAIT_SECONDS = 1.0
# The last message, as the owner is shown it: enough to know what it is about.
MAX_MESSAGE_CHARS = 500


@dataclass(frozen=True)
class Notice:
    """What the owner is told."""

    channel: str
    person: str  # the person's key ("wa:16505551234")
    why: str  # "asked_for_human", "page_wrote" or "undelivered"
    last_message: str
    time: float
    # The person's conversation in the owner's console (CONSOLE_URL), or "" without one.
    console: str = ""


class OwnerWebhook:
    """Posts JSON objects to an owner's URL (HANDOVER_NOTIFY_URL, LEADS_WEBHOOK_URL) from a thread of its own, each
    tried up to ATTEMPTS times; does nothing when the URL is not set, and never blocks."""

    def __init__(self, url: Secret | None, what: str):
        self._url = url
        self._what = what  # "a handover notification", as logged
        self._waiting: queue.Queue[tuple[dict, str] | None] = queue.Queue(MAX_WAITING)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        """Whether posts go anywhere (the URL is set)."""
        return self._url is not None

    def post(self, payload: dict, person: str) -> None:
        """Send `payload` (about the person keyed `person`, as logged), soon; never blocks."""
        if self._url is None:
            return
        with self._lock:
            if self._thread is None:
                # Started on first use, not at import, so that each forked server worker has its own.
                self._thread = threading.Thread(target=self._post_forever, name="owner-webhook", daemon=True)
                self._thread.start()
        try:
            self._waiting.put_nowait((payload, person))
        except queue.Full:
            logger.warning("%s was dropped: %d are waiting to be sent", self._what, MAX_WAITING)

    def close(self) -> None:
        """Send what is waiting, then stop."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            self._waiting.put(None)
            thread.join(timeout=TIMEOUT_SECONDS * 2)

    def _post_forever(self) -> None:
        with requests.Session() as session:
            while (item := self._waiting.get()) is not None:
                self._post(session, *item)

    def _post(self, session: requests.Session, payload: dict, person: str) -> None:
        assert self._url is not None
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = session.post(self._url.reveal(), json=payload, timeout=TIMEOUT_SECONDS)
                if response.status_code < 400:
                    return
                reason = f"HTTP {response.status_code}"
            except requests.RequestException as error:
                reason = type(error).__name__  # its text would hold the address
            if attempt < ATTEMPTS:
                time.sleep(RETRY_WAIT_SECONDS * 2 ** (attempt - 1))
        logger.warning("%s for psid=%s was not taken after %d tries (%s)", self._what, person, ATTEMPTS, reason)


class HandoverNotifier:
    """Posts each notice to HANDOVER_NOTIFY_URL; does nothing when it is not set."""

    def __init__(self, url: Secret | None, console_url: str | None = None):
        self._webhook = OwnerWebhook(url, "a handover notification")
        self._console_url = console_url

    @classmethod
    def from_settings(cls, settings: Settings) -> HandoverNotifier:
        return cls(settings.handover_notify_url, settings.console_url)

    @property
    def configured(self) -> bool:
        """Whether notices go anywhere (HANDOVER_NOTIFY_URL is set)."""
        return self._webhook.configured

    def notify(self, channel: str, person: str, why: str, last_message: str) -> None:
        """Tell the owner, soon; never blocks."""
        link = f"{self._console_url.rstrip('/')}/c/{quote(person, safe='')}" if self._console_url else ""
        notice = Notice(channel, person, why, last_message[:MAX_MESSAGE_CHARS], time.time(), link)
        self._webhook.post(asdict(notice), person)

    def close(self) -> None:
        """Send what is waiting, then stop."""
        self._webhook.close()
