"""Download what people send (voice notes, and photos their channel does not link openly) safely: from a link the
signed webhook or the Graph API gave, HTTPS only, within a size limit and MEDIA_TIMEOUT by the clock (however slowly
the server sends), checked against its checksum."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import requests

from inboxgpt.config import Settings
from inboxgpt.deadlines import WatchedAdapter, deadline
from inboxgpt.events import Attachment

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
# Messenger sends voice clips as MP4 audio; some CDNs label them video/mp4.
AUDIO_TYPES = ("audio/", "video/mp4", "video/3gpp")
IMAGE_TYPES = ("image/",)
# Types a server gives when it does not say: the platform's own word for the file is taken instead.
UNSAID_TYPES = ("", "application/octet-stream", "binary/octet-stream")


def fetchable(url: str, allow_http: bool) -> bool:
    """True for media links the bot may fetch or pass on: HTTPS, or plain HTTP where allowed for local tests."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return False  # not a URL (an unclosed "[", say): nothing to fetch
    return scheme == "https" or (allow_http and scheme == "http")


class MediaError(Exception):
    """A download was refused or failed; the message says why, without the URL."""


@dataclass(frozen=True)
class MediaLink:
    """Where a person's photo or voice note can be downloaded, as their channel says."""

    url: str
    # Sent with the download: a channel's credentials (WhatsApp's Bearer token), so never shown.
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    # The checksum the platform gave (hex or base64), checked once the file is in.
    sha256: str | None = None
    # What the platform says the file is, for a download server that does not say.
    mime_type: str | None = None

    @property
    def private(self) -> bool:
        """Only the bot may download it (it needs credentials): the model cannot be given the link."""
        return bool(self.headers)


@dataclass(frozen=True)
class MediaSettings:
    """What downloads need of the settings."""

    max_image_bytes: int
    max_audio_bytes: int
    timeout: float
    allow_http: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaSettings:
        return cls(
            max_image_bytes=settings.max_image_bytes,
            max_audio_bytes=settings.max_audio_bytes,
            timeout=settings.media_timeout,
            allow_http=settings.allow_http_media,
        )


class Media:
    """A person's photos and voice notes, found through their channel (`locate`) and downloaded when needed."""

    def __init__(
        self, session: requests.Session, locate: Callable[[str, Attachment], MediaLink], settings: MediaSettings
    ):
        # The session is the downloads' own: its connections are put under each download's deadline.
        for scheme in ("https://", "http://"):
            session.mount(scheme, WatchedAdapter())
        self._session = session
        self._locate = locate
        self._settings = settings

    def photo_url(self, key: str, photo: Attachment) -> str:
        """What the model is shown for a photo: its link when the model may fetch it, else the photo itself inline
        as a `data:` URL. Raise MediaError if it cannot be had."""
        link = self._locate(key, photo)
        if not link.private:
            return link.url
        with self.downloaded(link, self._settings.max_image_bytes, IMAGE_TYPES) as (path, content_type):
            return f"data:{content_type};base64,{base64.b64encode(path.read_bytes()).decode()}"

    def photo(self, key: str, photo: Attachment) -> tuple[bytes, str]:
        """A photo's bytes and type, downloaded within the limits (the console shows it through the service, never
        by its link, which may carry a token); MediaError if it cannot be had."""
        link = self._locate(key, photo)
        with self.downloaded(link, self._settings.max_image_bytes, IMAGE_TYPES) as (path, content_type):
            return path.read_bytes(), content_type

    @contextmanager
    def audio(self, key: str, voice: Attachment) -> Iterator[Path]:
        """A voice note downloaded into a temporary file, removed when the block ends; MediaError if it cannot be."""
        link = self._locate(key, voice)
        with self.downloaded(link, self._settings.max_audio_bytes, AUDIO_TYPES) as (path, _):
            yield path

    @contextmanager
    def downloaded(
        self, link: MediaLink, max_bytes: int, accepted_types: tuple[str, ...]
    ) -> Iterator[tuple[Path, str]]:
        """Download `link` into a temporary file removed when the block ends; give its path and content type."""
        with ExitStack() as files:
            yield self._download(link, max_bytes, accepted_types, files)

    def _download(
        self, link: MediaLink, max_bytes: int, accepted_types: tuple[str, ...], files: ExitStack
    ) -> tuple[Path, str]:
        """The file downloaded into a temporary file (removed when `files` closes), and its content type. The
        deadline ends with the download, not with the caller's use of the file."""
        settings = self._settings
        if not fetchable(link.url, settings.allow_http):
            raise MediaError("refused a URL that is not HTTPS: media is fetched over HTTPS only")
        scheme = urlsplit(link.url).scheme
        late = MediaError(f"the download took over {settings.timeout:g} s")
        with deadline(settings.timeout) as limit:
            try:
                # requests drops the headers' credentials itself if a redirect leaves the host.
                with self._session.get(
                    link.url, headers=dict(link.headers), stream=True, timeout=settings.timeout, allow_redirects=True
                ) as response:
                    if not response.ok:
                        raise MediaError(f"the media server answered HTTP {response.status_code}")
                    if urlsplit(response.url).scheme != scheme:
                        raise MediaError("refused a redirect away from HTTPS")
                    content_type = _content_type(response, link, max_bytes, accepted_types)
                    suffix = "." + content_type.split("/")[-1].split("+")[0]
                    # Closed (and removed) by `files` once the caller is done with it.
                    file = files.enter_context(tempfile.NamedTemporaryFile(suffix=suffix))  # noqa: SIM115
                    digest = _received(response, file, max_bytes)
                    if limit.passed:  # the watchdog's cut can look like the end of a file sent without a length
                        raise late
                    if not _matches(link.sha256, digest):
                        raise MediaError("the download does not match its checksum")
                    file.flush()
                    return Path(file.name), content_type
            except requests.RequestException as exc:
                if limit.passed:
                    raise late from None
                # Its text holds the URL, which is the person's private media link.
                raise MediaError(f"the download failed ({type(exc).__name__})") from None


def _content_type(response: requests.Response, link: MediaLink, max_bytes: int, accepted_types: tuple[str, ...]) -> str:
    """What the server says the file is (or the platform, when the server does not say), if it is to be taken."""
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type in UNSAID_TYPES and link.mime_type:
        content_type = link.mime_type.split(";")[0].strip().lower()
    if not content_type.startswith(accepted_types):
        raise MediaError(f"refused content of type {content_type or 'unknown'}")
    if int(response.headers.get("Content-Length") or 0) > max_bytes:
        raise MediaError(f"refused a file over {max_bytes:,} bytes")
    return content_type


def _received(response: requests.Response, file: IO[bytes], max_bytes: int) -> bytes:
    """The body written to `file`, within `max_bytes`; its SHA-256 digest."""
    digest = hashlib.sha256()
    received = 0
    for chunk in response.iter_content(CHUNK):
        received += len(chunk)
        if received > max_bytes:
            raise MediaError(f"refused a file over {max_bytes:,} bytes")
        digest.update(chunk)
        file.write(chunk)
    return digest.digest()


def _matches(given: str | None, digest: bytes) -> bool:
    """Whether a file with this SHA-256 digest is the one the platform described: its checksum in hex, or in
    base64 (WhatsApp's webhooks show base64). A checksum in neither form cannot be checked and is let pass."""
    if not given:
        return True
    given = given.strip()
    if len(given) == 2 * len(digest):
        try:
            return bytes.fromhex(given) == digest
        except ValueError:
            pass
    try:
        decoded = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) == len(digest):
        return decoded == digest
    logger.info("a media checksum in an unknown form was not checked")
    return True
