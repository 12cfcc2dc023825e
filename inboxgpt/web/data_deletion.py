"""Meta's data deletion callback: `POST /data-deletion` with a `signed_request` (signed with APP_SECRET) naming a
person by their id; everything kept under every key that id can have on the page's channels is erased
(conversation/forget.py), and Meta gets a status page's address and a confirmation code. The page at that address
says what was erased and when; the store keeps only the code and that time, nothing of the person."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, jsonify, render_template_string, request, url_for

from inboxgpt import replies
from inboxgpt.channels.base import Channels
from inboxgpt.config import Secret, Settings
from inboxgpt.conversation.forget import forget_everywhere
from inboxgpt.store import Store, StoreUnavailable

logger = logging.getLogger(__name__)

# The store's records of erasures: the confirmation code and when, no more.
KIND = "data-deletion"
CODE = re.compile(r"[0-9a-f]{20}")
# An id as Meta gives it: digits (app-, page- and Instagram-scoped ids alike).
USER_ID = re.compile(r"[0-9]{1,64}")
# A request is only ever this long: a signature and a short JSON payload.
MAX_SIGNED_REQUEST_CHARS = 4096
# Meta sends a request as the person asks; one issued longer ago than this (or from the future, beyond a clock's
# drift) is refused, so that a request copied from a log cannot erase the person's later conversations for ever.
MAX_REQUEST_AGE = 24 * 3600.0
CLOCK_DRIFT = 300.0
# How long a confirmation code's status page answers.
KEEP_STATUS = 365 * 24 * 3600.0


class BadRequest(ValueError):
    """A signed request that is not one: its parts, encoding or payload."""


@dataclass(frozen=True)
class DataDeletionSettings:
    """What the callback needs of the settings: the app secret Meta signs with."""

    app_secret: Secret

    @classmethod
    def from_settings(cls, settings: Settings) -> DataDeletionSettings:
        return cls(app_secret=settings.app_secret)


def signed_user_id(signed_request: str, app_secret: str, now: float) -> str | None:
    """The user id a signed request names, or None if another secret signed it; BadRequest if it is not one, or was
    issued more than MAX_REQUEST_AGE before `now`."""
    if len(signed_request) > MAX_SIGNED_REQUEST_CHARS or signed_request.count(".") != 1:
        raise BadRequest("a signed_request is two parts joined by a dot")
    signature, payload = signed_request.split(".")
    given, content = _unbase64(signature), _unbase64(payload)
    # Both parts are base64 (ASCII) now; the signature is of the payload part as sent.
    expected = hmac.new(app_secret.encode(), payload.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(given, expected):
        return None
    try:
        data: Any = json.loads(content)
    except ValueError:
        raise BadRequest("the payload is not JSON") from None
    if not isinstance(data, dict) or str(data.get("algorithm", "")).upper() != "HMAC-SHA256":
        raise BadRequest("the payload is not an HMAC-SHA256 signed request")
    user_id = str(data.get("user_id", "")) if isinstance(data.get("user_id"), str | int) else ""
    if not USER_ID.fullmatch(user_id):
        raise BadRequest("the payload names no user id")
    issued = data.get("issued_at")
    if not isinstance(issued, int | float) or isinstance(issued, bool) or not now - issued >= -CLOCK_DRIFT:
        raise BadRequest("the payload says no time it was issued, or one to come")
    if now - issued > MAX_REQUEST_AGE:
        raise BadRequest("the request was issued more than a day ago")
    return user_id


def _unbase64(part: str) -> bytes:
    """A part of a signed request: base64url without its padding."""
    try:
        return base64.b64decode(part + "=" * (-len(part) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("a part is not base64url") from None


class DataDeletion:
    """The callback and its status pages."""

    def __init__(
        self,
        settings: DataDeletionSettings,
        store: Store,
        channels: Channels,
        clock: Callable[[], float] = time.time,
    ):
        self._secret = settings.app_secret
        self._store = store
        self._channels = channels
        self._clock = clock

    def install(self, app: Flask) -> None:
        app.add_url_rule("/data-deletion", "data_deletion", self.erase, methods=["POST"])
        app.add_url_rule("/data-deletion/<code>", "data_deletion_status", self.status, methods=["GET"])

    def erase(self) -> tuple[Response, HTTPStatus]:
        """Erase the person a signed request names: 403 if another secret signed it, 400 if it is not one, 503 if
        the store is down (Meta asks again); else the status page's address and the confirmation code."""
        try:
            user_id = signed_user_id(request.form.get("signed_request", ""), self._secret.reveal(), self._clock())
        except BadRequest as error:
            logger.warning("data deletion request refused: %s", error)
            return jsonify(error=str(error)), HTTPStatus.BAD_REQUEST
        if user_id is None:
            logger.warning("data deletion request refused: not signed with APP_SECRET")
            return jsonify(error="not signed with this app's secret"), HTTPStatus.FORBIDDEN
        code = secrets.token_hex(10)
        now = self._clock()
        try:
            erased = forget_everywhere(self._store, self._channels.keys_of(user_id))
            self._store.keep_record(KIND, code, json.dumps({"code": code, "at": now}), now, ttl=KEEP_STATUS)
        except StoreUnavailable as error:
            logger.error("data deletion request not done: the store is unavailable (%s)", error)
            return jsonify(error="the store is unavailable: ask again"), HTTPStatus.SERVICE_UNAVAILABLE
        logger.info("data deletion request %s: %d key(s) erased", code, len(erased))
        url = url_for("data_deletion_status", code=code, _external=True)
        return jsonify(url=url, confirmation_code=code), HTTPStatus.OK

    def status(self, code: str) -> tuple[str, HTTPStatus]:
        """The page a person reaches with their confirmation code: what was erased, and when (for KEEP_STATUS)."""
        found = None
        if CODE.fullmatch(code):
            try:
                records = self._store.records(KIND, self._clock() - KEEP_STATUS)
            except StoreUnavailable as error:
                logger.error("data deletion status not read: the store is unavailable (%s)", error)
                return render_template_string(replies.DATA_DELETION_UNAVAILABLE), HTTPStatus.SERVICE_UNAVAILABLE
            kept = (json.loads(record) for record in records)
            found = next((record for record in kept if record.get("code") == code), None)
        if found is None:
            return render_template_string(replies.DATA_DELETION_UNKNOWN), HTTPStatus.NOT_FOUND
        when = datetime.fromtimestamp(found["at"], UTC).strftime("%d %B %Y, %H:%M UTC")
        return render_template_string(replies.DATA_DELETION_DONE, code=code, when=when), HTTPStatus.OK
