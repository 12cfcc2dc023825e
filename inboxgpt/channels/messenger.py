"""The Graph API Send API: text replies and sender actions, with retries for passing failures; and handing the
thread to the page's people (pass_thread_control) and taking it back."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
import unicodedata
from collections.abc import Callable
from http import HTTPStatus
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter

from inboxgpt import metrics
from inboxgpt.config import Settings
from inboxgpt.events import INSTAGRAM, recipient

logger = logging.getLogger(__name__)

MAX_TEXT_LENGTH = 2000
# Instagram's limit: Meta's pages say both "1000 characters" and "1000 bytes"; bytes is the safe reading.
INSTAGRAM_MAX_BYTES = 1000
# Put in the metadata of every message the bot sends: its echo carries it back, telling it apart
# from a message written by a person from the page.
BOT_MARKER = "messenger-gpt:bot"
# Sending while another app (the Page Inbox, say) controls the thread.
THREAD_ELSEWHERE = 2018300
MAX_BACKOFF_SECONDS = 8.0

TRANSIENT_CODES = {1, 2, 4, 17, 32, 613, 1200}
# What a permanent error means for the page owner, logged once when it happens.
PERMANENT_MEANINGS = {
    190: "the page access token is invalid or expired: renew PAGE_ACCESS_TOKEN",
    10: "the person last wrote more than 24 hours ago, so the page may not answer",
    551: "this person is not available (they blocked the page or left Messenger)",
    100: "Meta rejected a parameter (for example the recipient id)",
    200: "the app lacks a permission: check pages_messaging is granted for this page",
    230: "the app lacks a permission: check pages_messaging is granted for this page",
}
SUBCODE_MEANINGS = {
    2018278: PERMANENT_MEANINGS[10],
    THREAD_ELSEWHERE: "another app (the Page Inbox, say) controls this conversation now",
    2018001: "no person matches this recipient id for this page",
    460: "the page access token was invalidated by a password change: renew PAGE_ACCESS_TOKEN",
    463: "the page access token has expired: renew PAGE_ACCESS_TOKEN",
}


class GraphError(Exception):
    """A Send API call that failed; `transient` says whether trying again may help."""

    def __init__(self, status: int, code: int | None, subcode: int | None, transient: bool, meaning: str):
        super().__init__(f"Graph API error (HTTP {status}, code {code}, subcode {subcode}): {meaning}")
        self.status = status
        self.code = code
        self.subcode = subcode
        self.transient = transient
        self.meaning = meaning

    @property
    def thread_elsewhere(self) -> bool:
        """True when Meta refused because another app controls the conversation."""
        return self.code == 10 and self.subcode == THREAD_ELSEWHERE


def error_from_response(response: requests.Response) -> GraphError:
    """Build a GraphError from a failed Send API response."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    code: int | None = error["code"] if isinstance(error.get("code"), int) else None
    subcode: int | None = error["error_subcode"] if isinstance(error.get("error_subcode"), int) else None
    transient = (
        response.status_code >= HTTPStatus.INTERNAL_SERVER_ERROR
        or response.status_code == HTTPStatus.TOO_MANY_REQUESTS
        or code in TRANSIENT_CODES
        or error.get("is_transient") is True
    ) and code not in PERMANENT_MEANINGS
    meaning = (
        (SUBCODE_MEANINGS.get(subcode) if subcode is not None else None)
        or (PERMANENT_MEANINGS.get(code) if code is not None else None)
        or ("a temporary failure at Meta" if transient else "the request was refused")
    )
    return GraphError(response.status_code, code, subcode, transient, meaning)


def _level(error: GraphError, quiet: bool) -> int:
    """How loudly a failed call is logged: the owner must act on a token or permission error."""
    if error.code in (190, 200, 230):
        return logging.ERROR
    # Another app controlling the thread is the page's people at work, not a fault.
    return logging.DEBUG if quiet else logging.INFO if error.thread_elsewhere else logging.WARNING


def backoff_delay(attempt: int, base: float) -> float:
    """Return the wait before retry number `attempt` (0-based): doubling, capped."""
    return min(MAX_BACKOFF_SECONDS, base * 2**attempt)


def worst_case_seconds(settings: Settings) -> float:
    """The longest one message can take to send: every retry, and the waits between them."""
    retries = settings.graph_max_retries
    waits = sum(backoff_delay(attempt, settings.graph_backoff) for attempt in range(retries))
    return settings.graph_timeout * (1 + retries) + waits


class Messenger:
    """Sends messages and sender actions to people through the Send API."""

    def __init__(
        self,
        settings: Settings,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._me = f"{settings.graph_api_url}/me"
        token = settings.page_access_token.reveal()
        proof = hmac.new(settings.app_secret.reveal().encode(), token.encode(), hashlib.sha256).hexdigest()
        # Encoded once: every call carries the same two parameters.
        self._query = urlencode({"access_token": token, "appsecret_proof": proof})
        self._timeout = settings.graph_timeout
        self._max_retries = settings.graph_max_retries
        self._backoff = settings.graph_backoff
        self._sleep = sleep
        self._page_token_works: bool | None = None
        # Every reply thread and its typing indicator may be sending at once: a connection each.
        self._adapter = HTTPAdapter(pool_connections=1, pool_maxsize=2 * settings.worker_threads)
        # Calls go straight to requests' connection pool, with the proxy and CA-bundle variables read
        # once here: a Session reads them (and ~/.netrc) again and merges its settings, cookies and
        # hooks on every call, which cost more CPU than the rest of the call. Meta neither redirects
        # nor sets cookies on these calls.
        with requests.Session() as session:
            found = session.merge_environment_settings(self._me, {}, None, None, None)
        self._proxies, self._cert = found["proxies"], found["cert"]
        self._verify: bool | str = True if found["verify"] is None else found["verify"]

    def close(self) -> None:
        """Close the connections to the Graph API."""
        self._adapter.close()

    def split(self, psid: str, text: str) -> list[str]:
        """The messages `text` becomes for this person: within their channel's length limit."""
        if recipient(psid)[0] == INSTAGRAM:
            return split_text(text, INSTAGRAM_MAX_BYTES, _utf8_units)
        return split_text(text)

    def send_text(self, psid: str, text: str) -> list[tuple[str, str]]:
        """Send `text` to a person (by key) as one or more messages, in order; return (message id, text) for each."""
        channel, to = recipient(psid)
        sent = []
        for piece in self.split(psid, text):
            if piece.strip():
                answer = self._post(
                    _text_payload(channel, to, piece), psid=psid, what="message", max_retries=self._max_retries
                )
                sent.append((str(answer.get("message_id", "")), piece))
        return sent

    def send_action(self, psid: str, action: str) -> bool:
        """Send a sender action (mark_seen, typing_on, typing_off) once; return False if it failed."""
        # Not retried: an indicator that comes late is worse than none, and the reply waits for it.
        payload = {"recipient": {"id": recipient(psid)[1]}, "sender_action": action}
        return self._accepted(payload, psid=psid, max_retries=0)

    def pass_thread(self, psid: str, target_app_id: str, metadata: str) -> bool:
        """Pass the conversation to another app (the Page Inbox); return False if Meta refused."""
        payload = {"recipient": {"id": recipient(psid)[1]}, "target_app_id": target_app_id, "metadata": metadata}
        return self._accepted(
            payload, psid=psid, max_retries=self._max_retries, endpoint="pass_thread_control", quiet=True
        )

    def take_thread(self, psid: str, metadata: str) -> bool:
        """Take the conversation back from the app that controls it; return False if Meta refused."""
        payload = {"recipient": {"id": recipient(psid)[1]}, "metadata": metadata}
        return self._accepted(
            payload, psid=psid, max_retries=self._max_retries, endpoint="take_thread_control", quiet=True
        )

    def set_profile(self, profile: dict) -> None:
        """Set the page's Messenger profile (Get Started, greeting, ice breakers, menu); raise GraphError if refused."""
        self._attempt("messenger_profile", profile)

    def delete_profile(self, fields: list[str]) -> None:
        """Remove fields of the page's Messenger profile; raise GraphError if refused."""
        self._attempt("messenger_profile", {"fields": fields}, method="DELETE")

    def _accepted(
        self, payload: dict, *, psid: str, max_retries: int, endpoint: str = "messages", quiet: bool = False
    ) -> bool:
        """Whether Meta accepted the call (`_post`, with its retries); a refusal is logged, not raised."""
        what = payload.get("sender_action") or endpoint
        try:
            self._post(payload, psid=psid, what=what, max_retries=max_retries, endpoint=endpoint, quiet=quiet)
        except GraphError:
            return False
        return True

    def _post(
        self,
        payload: dict,
        *,
        psid: str,
        what: str,
        max_retries: int,
        endpoint: str = "messages",
        quiet: bool = False,
    ) -> dict:
        """Call /me/`endpoint` for the person `psid` (a key, as logged), retrying passing failures; `quiet`: the
        caller logs what a refusal means."""
        attempt = 0
        while True:
            try:
                return self._attempt(endpoint, payload)
            except GraphError as error:
                if not error.transient or attempt >= max_retries:
                    logger.log(_level(error, quiet), "Graph %s for psid=%s failed: %s", what, psid, error)
                    metrics.GRAPH_ERRORS.labels(str(error.code) if error.code is not None else "none").inc()
                    raise
                logger.info("Graph %s for psid=%s failed (%s); retry %d", what, psid, error.meaning, attempt + 1)
                self._sleep(backoff_delay(attempt, self._backoff))
                attempt += 1

    def get(self, path: str = "") -> dict:
        """Read /me or /me/`path` once; raise GraphError if Meta refuses."""
        return self._attempt(path, None, method="GET")

    @property
    def page_token_works(self) -> bool | None:
        """Whether the page token worked on its last use in this process; None before its first use."""
        return self._page_token_works

    def _attempt(self, endpoint: str, payload: dict | None, method: str = "POST") -> dict:
        """Make one call to /me/`endpoint`; return Meta's answer, or raise GraphError."""
        url = f"{self._me}/{endpoint}?{self._query}" if endpoint else f"{self._me}?{self._query}"
        try:
            request = requests.Request(method, url, json=payload).prepare()
            response = self._adapter.send(
                request, timeout=self._timeout, verify=self._verify, cert=self._cert, proxies=self._proxies
            )
        except requests.RequestException as exc:
            # The exception text holds the URL and so the token: only its type is reported.
            # Only a failed connection proves nothing reached Meta; after a read timeout or a
            # broken answer the message may have been delivered, so it is not sent again.
            unsent = isinstance(exc, requests.ConnectionError)
            raise GraphError(0, None, None, unsent, f"no answer from Meta ({type(exc).__name__})") from None
        if not response.ok:
            error = error_from_response(response)
            if error.code == 190:
                self._token_checked(False)
            raise error
        self._token_checked(True)
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        return answer if isinstance(answer, dict) else {}

    def _token_checked(self, works: bool) -> None:
        # Set on every call, not only on a change: the most recent write of any worker is what a scrape shows.
        self._page_token_works = works
        metrics.PAGE_TOKEN_VALID.set(1 if works else 0)


# Where to cut a long reply, best first: paragraphs, lines, sentences, words.
BREAKS = (
    re.compile(r"\n\s*\n\s*"),
    re.compile(r"\n\s*"),
    re.compile(r"(?:[.!?…]['\"”’)\]]*\s+|[。！？]\s*)"),
    re.compile(r"\s+"),
)


def _text_payload(channel: str, to: str, piece: str) -> dict:
    if channel == INSTAGRAM:
        # Instagram's Send API takes the bare message; its echoes are told apart by their mids.
        return {"recipient": {"id": to}, "message": {"text": piece}}
    return {"recipient": {"id": to}, "messaging_type": "RESPONSE", "message": {"text": piece, "metadata": BOT_MARKER}}


def _utf16_units(char: str) -> int:
    # Meta counts Messenger's characters as JavaScript does: an emoji outside the BMP counts twice.
    return 2 if ord(char) > 0xFFFF else 1


def _utf8_units(char: str) -> int:
    return len(char.encode("utf-8", "surrogatepass"))


def split_text(text: str, limit: int = MAX_TEXT_LENGTH, units: Callable[[str], int] = _utf16_units) -> list[str]:
    """Split text into pieces of at most `limit` units (UTF-16 by default) whose concatenation is `text`.

    One pass: each piece reads only the characters that may go into it, so a long text costs its length.
    A piece never ends inside a character a person sees as one (an emoji joined by ZWJ, a flag, an accent).
    """
    pieces: list[str] = []
    start = 0
    while start < len(text):
        end = _fitting_end(text, start, limit, units)
        if end == len(text):
            pieces.append(text[start:])
            break
        cut = _whole_character_end(text, start, start + _best_cut(text[start:end]))
        pieces.append(text[start:cut])
        start = cut
    return pieces


def _best_cut(window: str) -> int:
    # A break in the first quarter would leave a tiny piece, so a finer kind of break further
    # on is preferred; any break still beats cutting a word in two.
    for shortest in (len(window) // 4, 0):
        for pattern in BREAKS:
            ends = [match.end() for match in pattern.finditer(window) if match.end() > shortest]
            if ends:
                return ends[-1]
    return len(window)


def _fitting_end(text: str, start: int, limit: int, units: Callable[[str], int]) -> int:
    """Where the longest piece from `start` within `limit` units ends."""
    used = 0
    for index in range(start, len(text)):
        used += units(text[index])
        if used > limit:
            return index
    return len(text)


# What joins the character before it into one that a person sees: combining marks, the zero-width joiner
# (on either side), variation selectors, skin tones and tag characters (subdivision flags).
ZWJ = "\u200d"


def _joins(before: str, char: str) -> bool:
    code = ord(char)
    return (
        before == ZWJ
        or char == ZWJ
        or unicodedata.category(char) in ("Mn", "Me", "Mc")
        or 0xFE00 <= code <= 0xFE0F
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _whole_character_end(text: str, start: int, cut: int) -> int:
    """`cut`, moved back to where a character a person sees ends (never back to `start`: a piece is never empty)."""
    while cut - 1 > start and cut < len(text):
        before, char = text[cut - 1], text[cut]
        if _regional(before) and _regional(char):
            # Flags are pairs of regional indicators: the cut is inside one if an odd number precede it.
            run = cut
            while run > start and _regional(text[run - 1]):
                run -= 1
            if (cut - run) % 2 == 0:
                return cut
        elif not _joins(before, char):
            return cut
        cut -= 1
    return cut
