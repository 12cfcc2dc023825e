"""Check that a webhook POST was signed by Meta with the app secret."""

from __future__ import annotations

import hashlib
import hmac


def sign(body: bytes, app_secret: str) -> str:
    """Return the `X-Hub-Signature-256` value Meta sends for `body`."""
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def is_valid_signature(body: bytes, header: str | None, app_secret: str) -> bool:
    """Return True if `header` is the `sha256=<hex>` signature of the raw `body`; never raises."""
    if not header or not app_secret:
        return False
    expected = sign(body, app_secret).encode("ascii")
    # Bytes, because compare_digest raises TypeError on non-ASCII strings.
    given = header.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected, given)
