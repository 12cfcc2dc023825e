"""Download what people send (voice notes) safely: from the signed webhook's URL only, HTTPS, size and time limits."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import requests

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
# Messenger sends voice clips as MP4 audio; some CDNs label them video/mp4.
AUDIO_TYPES = ("audio/", "video/mp4", "video/3gpp")


def fetchable(url: str, allow_http: bool) -> bool:
    """True for media links the bot may fetch or pass on: HTTPS, or plain HTTP where allowed for local tests."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return False  # not a URL (an unclosed "[", say): nothing to fetch
    return scheme == "https" or (allow_http and scheme == "http")


class MediaError(Exception):
    """A download was refused or failed; the message says why, without the URL."""


@contextmanager
def downloaded(
    session: requests.Session,
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    allow_http: bool,
    accepted_types: tuple[str, ...] = AUDIO_TYPES,
) -> Iterator[Path]:
    """Download `url` into a temporary file that is removed when the block ends."""
    if not fetchable(url, allow_http):
        raise MediaError("refused a URL that is not HTTPS: media is fetched over HTTPS only")
    scheme = urlsplit(url).scheme
    deadline = time.monotonic() + timeout
    try:
        with session.get(url, stream=True, timeout=timeout, allow_redirects=True) as response:
            if not response.ok:
                raise MediaError(f"the media server answered HTTP {response.status_code}")
            if urlsplit(response.url).scheme != scheme:
                raise MediaError("refused a redirect away from HTTPS")
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if not content_type.startswith(accepted_types):
                raise MediaError(f"refused content of type {content_type or 'unknown'}")
            if int(response.headers.get("Content-Length") or 0) > max_bytes:
                raise MediaError(f"refused a file over {max_bytes:,} bytes")
            suffix = "." + content_type.split("/")[-1].split("+")[0]
            with tempfile.NamedTemporaryFile(suffix=suffix) as file:
                received = 0
                for chunk in response.iter_content(CHUNK):
                    received += len(chunk)
                    if received > max_bytes:
                        raise MediaError(f"refused a file over {max_bytes:,} bytes")
                    if time.monotonic() > deadline:
                        raise MediaError(f"the download took over {timeout:g} s")
                    file.write(chunk)
                file.flush()
                yield Path(file.name)
    except requests.RequestException as exc:
        # Its text holds the URL, which is the person's private media link.
        raise MediaError(f"the download failed ({type(exc).__name__})") from None
