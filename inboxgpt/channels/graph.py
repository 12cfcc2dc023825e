"""The Graph API client for the page: calls to `/me/...` with the page token, retries of passing failures, and what
each refusal means (GraphError). The channels that send through it are messenger.py and instagram.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from http import HTTPStatus
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import ConnectTimeoutError

from inboxgpt import metrics, upstream
from inboxgpt.config import Secret, Settings

logger = logging.getLogger(__name__)

# Sending while another app (the Page Inbox, say) controls the thread.
THREAD_ELSEWHERE = 2018300
# WhatsApp's refusal of a free-form message more than 24 hours after the person's last.
OUTSIDE_WINDOW_WHATSAPP = 131047
MAX_BACKOFF_SECONDS = 8.0
JSON = {"Content-Type": "application/json"}

# WhatsApp's too many messages for the number (130429) or to one person (131056) in a short time pass too.
TRANSIENT_CODES = {1, 2, 4, 17, 32, 613, 1200, 130429, 131056}
# Meta's rate limits (the app's, a user's, the page's, calls an hour), refused with these codes or HTTP 429.
THROTTLE_CODES = {4, 17, 32, 613}
# WhatsApp's pair rate allows about one message every 6 s to one person. Before each retry of a message it refused
# (131056) the client waits twelve backoffs (6 s at the default GRAPH_BACKOFF), not doubling: the allowance refills
# at a steady pace.
PAIR_RATE_CODE = 131056
PAIR_RATE_BACKOFFS = 12
# What a permanent error means for the page owner, logged once when it happens; {token} names the setting of the
# token the client sends (PAGE_ACCESS_TOKEN, or WHATSAPP_TOKEN).
PERMANENT_MEANINGS = {
    190: "the {token_name} is invalid or expired: renew {token}",
    10: "the person last wrote more than 24 hours ago, so the page may not answer",
    131047: "the person last wrote more than 24 hours ago: WhatsApp allows only approved templates now",
    551: "this person is not available (they blocked the page or left Messenger)",
    100: "Meta rejected a parameter (for example the recipient id)",
    10900: "this comment already has its private reply (one per comment)",
    10903: "this person cannot be sent a private reply (their settings, or the comment is too old)",
    200: "the app lacks a permission: check pages_messaging is granted for this page",
    230: "the app lacks a permission: check pages_messaging is granted for this page",
}
# What a passing refusal means, where Meta says more than "try again".
TRANSIENT_MEANINGS = {
    130429: "WhatsApp's limit of messages per second for the number was reached",
    PAIR_RATE_CODE: "too many messages to this person in a short time (WhatsApp's pair rate)",
}
TOKEN_NAMES = {"PAGE_ACCESS_TOKEN": "page access token", "WHATSAPP_TOKEN": "WhatsApp token"}
SUBCODE_MEANINGS = {
    2018278: PERMANENT_MEANINGS[10],
    THREAD_ELSEWHERE: "another app (the Page Inbox, say) controls this conversation now",
    2018001: "no person matches this recipient id for this page",
    460: "the {token_name} was invalidated by a password change: renew {token}",
    463: "the {token_name} has expired: renew {token}",
}


class GraphError(Exception):
    """A Send API call that failed; `transient` says whether trying again may help."""

    def __init__(self, status: int, code: int | None, subcode: int | None, transient: bool, meaning: str):
        # Only what Meta said: no HTTP status when nothing answered, no code or subcode it did not give.
        said = (("HTTP", status or None), ("code", code), ("subcode", subcode))
        known = ", ".join(f"{name} {value}" for name, value in said if value is not None)
        super().__init__(f"Graph API error ({known}): {meaning}" if known else f"Graph API error: {meaning}")
        self.status = status
        self.code = code
        self.subcode = subcode
        self.transient = transient
        self.meaning = meaning

    @property
    def throttled(self) -> bool:
        """True when Meta refused because a rate limit was reached: the same call may pass later."""
        return self.status == HTTPStatus.TOO_MANY_REQUESTS or self.code in THROTTLE_CODES

    @property
    def thread_elsewhere(self) -> bool:
        """True when Meta refused because another app controls the conversation."""
        return self.code == 10 and self.subcode == THREAD_ELSEWHERE

    @property
    def outside_window(self) -> bool:
        """True when Meta refused because the person last wrote too long ago (Messenger's 24 hours, WhatsApp's)."""
        return self.code == OUTSIDE_WINDOW_WHATSAPP or (self.code == 10 and self.subcode != THREAD_ELSEWHERE)


def error_from_response(status: int, body: bytes, token: str = "PAGE_ACCESS_TOKEN") -> GraphError:
    """Build a GraphError from a failed Send API response (`token`: the setting of the token that was sent)."""
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    code: int | None = error["code"] if isinstance(error.get("code"), int) else None
    subcode: int | None = error["error_subcode"] if isinstance(error.get("error_subcode"), int) else None
    transient = (
        status >= HTTPStatus.INTERNAL_SERVER_ERROR
        or status == HTTPStatus.TOO_MANY_REQUESTS
        or code in TRANSIENT_CODES
        or error.get("is_transient") is True
    ) and code not in PERMANENT_MEANINGS
    meaning = (
        (SUBCODE_MEANINGS.get(subcode) if subcode is not None else None)
        or (PERMANENT_MEANINGS.get(code) if code is not None else None)
        or (TRANSIENT_MEANINGS.get(code) if code is not None else None)
        or ("a temporary failure at Meta" if transient else "the request was refused")
    ).format(token=token, token_name=TOKEN_NAMES.get(token, "token"))
    return GraphError(status, code, subcode, transient, meaning)


def _level(error: GraphError, quiet: bool) -> int:
    """How loudly a failed call is logged: the owner must act on a token or permission error."""
    if error.code in (190, 200, 230):
        return logging.ERROR
    # Another app controlling the thread is the page's people at work, not a fault.
    return logging.DEBUG if quiet else logging.INFO if error.thread_elsewhere else logging.WARNING


def backoff_delay(attempt: int, base: float) -> float:
    """Return the wait before retry number `attempt` (0-based): doubling, capped."""
    return min(MAX_BACKOFF_SECONDS, base * 2**attempt)


def retry_delay(error: GraphError, attempt: int, base: float) -> float:
    """The wait before retrying a call refused with `error`: WhatsApp's pair rate's, or the doubling backoff."""
    return base * PAIR_RATE_BACKOFFS if error.code == PAIR_RATE_CODE else backoff_delay(attempt, base)


@dataclass(frozen=True)
class GraphSettings:
    """What the Graph client needs of the settings."""

    api_url: str
    # The page's token, or (bearer) the WhatsApp System User's.
    token: Secret
    app_secret: Secret
    timeout: float
    max_retries: int
    backoff: float
    # Connections kept open at once: every reply thread and its typing indicator may be sending.
    connections: int
    # The node calls go to: the page (`me`), or a WhatsApp business number's id.
    node: str = "me"
    # The token as an `Authorization: Bearer` header (WhatsApp's Cloud API), not in the query with its proof.
    bearer: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> GraphSettings:
        return cls(
            api_url=settings.graph_api_url,
            token=settings.page_access_token,
            app_secret=settings.app_secret,
            timeout=settings.graph_timeout,
            max_retries=settings.graph_max_retries,
            backoff=settings.graph_backoff,
            connections=2 * settings.worker_threads,
        )

    @classmethod
    def for_whatsapp(cls, settings: Settings) -> GraphSettings:
        """The WhatsApp Cloud API's calls: to the business number, with the System User's token."""
        assert settings.whatsapp_token is not None
        assert settings.whatsapp_phone_number_id is not None
        return replace(
            cls.from_settings(settings),
            token=settings.whatsapp_token,
            node=settings.whatsapp_phone_number_id,
            bearer=True,
        )

    def worst_case_seconds(self) -> float:
        """The longest one message can take to send: every retry, and the waits between them."""
        # Only WhatsApp's messages (sent with a Bearer token) meet its pair rate's longer waits.
        pair_rate = self.backoff * PAIR_RATE_BACKOFFS if self.bearer else 0.0
        waits = sum(max(pair_rate, backoff_delay(attempt, self.backoff)) for attempt in range(self.max_retries))
        return self.timeout * (1 + self.max_retries) + waits


class GraphClient:
    """Calls to one node of the Graph API (the page's `/me/...`, or a WhatsApp number's): one connection pool, the
    token (with its proof, or as a Bearer header), retries of passing failures, and what each refusal means. The
    Messenger and Instagram channels send through the page's; WhatsApp through its number's."""

    def __init__(self, settings: GraphSettings, sleep: Callable[[float], None] = time.sleep):
        token = settings.token.reveal()
        # Calls go straight to a urllib3 pool (see upstream.py): Meta neither redirects nor sets cookies on them.
        self._pool = upstream.pool(settings.api_url, settings.connections, settings.timeout)
        self._node = upstream.target(self._pool, f"{settings.api_url}/{settings.node}")
        self._root = upstream.target(self._pool, settings.api_url)
        # Encoded once: every call carries the same header, or the same two parameters.
        if settings.bearer:
            self._query = ""
            self._auth_headers: dict[str, str] | None = {"Authorization": f"Bearer {token}"}
        else:
            proof = hmac.new(settings.app_secret.reveal().encode(), token.encode(), hashlib.sha256).hexdigest()
            self._query = "?" + urlencode({"access_token": token, "appsecret_proof": proof})
            self._auth_headers = None
        self._headers = {**JSON, **(self._auth_headers or {})}
        self._token_setting = "WHATSAPP_TOKEN" if settings.bearer else "PAGE_ACCESS_TOKEN"
        self._token_gauge = metrics.WHATSAPP_TOKEN_VALID if settings.bearer else metrics.PAGE_TOKEN_VALID
        self.max_retries = settings.max_retries
        self._backoff = settings.backoff
        self._sleep = sleep
        self._token_works: bool | None = None

    def close(self) -> None:
        """Close the connections to the Graph API."""
        self._pool.close()

    def set_profile(self, profile: dict) -> None:
        """Set the page's Messenger profile (Get Started, greeting, ice breakers, menu); raise GraphError if refused."""
        self._attempt("messenger_profile", profile)

    def delete_profile(self, fields: list[str]) -> None:
        """Remove fields of the page's Messenger profile; raise GraphError if refused."""
        self._attempt("messenger_profile", {"fields": fields}, method="DELETE")

    def accepted(
        self,
        payload: dict,
        *,
        psid: str,
        max_retries: int,
        endpoint: str = "messages",
        quiet: bool = False,
        on_object: bool = False,
    ) -> bool:
        """Whether Meta accepted the call (`post`, with its retries); a refusal is logged, not raised."""
        what = payload.get("sender_action") or endpoint
        try:
            self.post(
                payload,
                psid=psid,
                what=what,
                max_retries=max_retries,
                endpoint=endpoint,
                quiet=quiet,
                on_object=on_object,
            )
        except GraphError:
            return False
        return True

    def post(
        self,
        payload: dict,
        *,
        psid: str,
        what: str,
        max_retries: int,
        endpoint: str = "messages",
        quiet: bool = False,
        on_object: bool = False,
    ) -> dict:
        """Call /me/`endpoint` (or, `on_object`, the Graph object's path `endpoint`, such as a comment's
        `{id}/comments`) for the person `psid` (a key, as logged), retrying passing failures; `quiet`: the caller
        logs what a refusal means."""
        attempt = 0
        while True:
            try:
                return self._attempt(endpoint, payload, node=self._root if on_object else None)
            except GraphError as error:
                if not error.transient or attempt >= max_retries:
                    logger.log(_level(error, quiet), "Graph %s for psid=%s failed: %s", what, psid, error)
                    metrics.GRAPH_ERRORS.labels(str(error.code) if error.code is not None else "none").inc()
                    raise
                logger.info("Graph %s for psid=%s failed (%s); retry %d", what, psid, error.meaning, attempt + 1)
                self._sleep(retry_delay(error, attempt, self._backoff))
                attempt += 1

    def get(self, path: str = "") -> dict:
        """Read /me or /me/`path` once; raise GraphError if Meta refuses."""
        return self._attempt(path, None, method="GET")

    def get_object(self, object_id: str, fields: str | None = None, params: Mapping[str, str] | None = None) -> dict:
        """Read the Graph object `object_id` (a WhatsApp media's id, a post's, an edge such as a business account's
        message_templates), or only its `fields`, with `params` (a page's cursor), once; raise GraphError if Meta
        refuses."""
        query = {**({"fields": fields} if fields else {}), **(params or {})}
        path = f"{object_id}?{urlencode(query)}" if query else object_id
        return self._attempt(path, None, method="GET", node=self._root)

    @property
    def auth_headers(self) -> dict[str, str]:
        """The headers that carry its token, for a download Meta asks to authorise so (WhatsApp's media); none for
        a token sent in the query."""
        return dict(self._auth_headers or {})

    @property
    def token_works(self) -> bool | None:
        """Whether its token worked on its last use in this process; None before its first use."""
        return self._token_works

    @property
    def token_setting(self) -> str:
        """The setting that holds its token (PAGE_ACCESS_TOKEN, or WHATSAPP_TOKEN)."""
        return self._token_setting

    def _attempt(self, endpoint: str, payload: dict | None, method: str = "POST", node: str | None = None) -> dict:
        """Make one call to the node's `endpoint`; return Meta's answer, or raise GraphError."""
        node = self._node if node is None else node
        query = self._query
        if query and "?" in endpoint:
            query = "&" + query[1:]  # the endpoint has a query of its own (?fields=...)
        url = f"{node}/{endpoint}{query}" if endpoint else f"{node}{query}"
        body = None if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            response = self._pool.urlopen(
                method, url, body=body, headers=self._headers if body else self._auth_headers, assert_same_host=False
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # The exception text may hold the URL and so the token: only its type is reported.
            # Only a failed connection proves nothing reached Meta; after a read timeout or a
            # broken answer the message may have been delivered, so it is not sent again.
            unsent = isinstance(exc, ConnectTimeoutError)  # a refused or unresolved connection is one too
            raise GraphError(0, None, None, unsent, f"no answer from Meta ({type(exc).__name__})") from None
        if response.status >= HTTPStatus.BAD_REQUEST:
            error = error_from_response(response.status, response.data, self._token_setting)
            if error.code == 190:
                self._token_checked(False)
            raise error
        self._token_checked(True)
        try:
            answer = json.loads(response.data)
        except ValueError:
            answer = {}
        return answer if isinstance(answer, dict) else {}

    def _token_checked(self, works: bool) -> None:
        # Set on every call, not only on a change: the most recent write of any worker is what a scrape shows.
        self._token_works = works
        self._token_gauge.set(1 if works else 0)
