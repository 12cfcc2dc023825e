"""The openai SDK's requests, carried by a urllib3 pool (upstream.py) instead of httpx's own HTTP/1.1 code.

The SDK keeps its client: its request building, retries, timeouts and error types are unchanged, since httpx
lets any transport carry a client's requests. What changes is the cost of each: httpx parses HTTP in pure
Python (about 60 µs for each event of a streamed answer), where urllib3 leaves it to http.client's C-backed
buffers. Failures are raised as the httpx errors they stand for, so the SDK treats them as it always has.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from inboxgpt import upstream

logger = logging.getLogger(__name__)

# The most read at once: a streamed answer's events are handed on as they arrive, however few.
READ_SIZE = 65536


class PooledTransport(httpx2.BaseTransport):
    """Sends an httpx request through a urllib3 pool to the model's server, and streams the answer back."""

    def __init__(self, base_url: str, connections: int, timeout: float):
        self._pool = upstream.pool(base_url, connections, timeout)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        timeouts = request.extensions.get("timeout") or {}
        headers = urllib3.HTTPHeaderDict()
        for name, value in request.headers.raw:
            headers.add(name.decode("latin-1"), value.decode("latin-1"))
        with _as_httpx_errors():
            response = self._pool.urlopen(
                request.method,
                upstream.target(self._pool, str(request.url)),
                body=request.read(),
                headers=headers,
                timeout=urllib3.Timeout(connect=timeouts.get("connect"), read=timeouts.get("read")),
                preload_content=False,
                decode_content=False,  # httpx decodes what the Content-Encoding says
                assert_same_host=False,  # through a plain-HTTP proxy, the pool's host is the proxy's
            )
        return httpx2.Response(
            status_code=response.status,
            headers=list(response.headers.items()),
            stream=_Body(response),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode("latin-1")},
        )

    def close(self) -> None:
        self._pool.close()


class _Body(httpx2.SyncByteStream):
    """An answer's body, as it arrives; its connection goes back to the pool once it is read to the end."""

    def __init__(self, response: urllib3.BaseHTTPResponse):
        self._response = response
        self._whole = False

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            while data := self._response.read1(READ_SIZE, decode_content=False):
                yield data
        self._whole = True

    def close(self) -> None:
        if not self._whole:
            # Left midway (an answer not wanted, a deadline): the rest is not read, so the connection is closed.
            self._response.close()
        self._response.release_conn()


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    """urllib3's failures as the httpx errors the SDK knows; their text names no secret (the key is a header)."""
    try:
        yield
    except NewConnectionError as error:  # refused, unresolved: a kind of ConnectTimeoutError to urllib3
        raise httpx2.ConnectError(str(error)) from error
    except ConnectTimeoutError as error:
        raise httpx2.ConnectTimeout(str(error)) from error
    except ReadTimeoutError as error:
        raise httpx2.ReadTimeout(str(error)) from error
    except ProxyError as error:
        raise httpx2.ProxyError(str(error)) from error
    except SSLError as error:
        raise httpx2.ConnectError(str(error)) from error
    except ProtocolError as error:
        raise httpx2.RemoteProtocolError(str(error)) from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise httpx2.ReadError(str(error)) from error
