"""Connections to the services the bot calls on every reply (the Graph API, the model's server): one urllib3
connection pool per service, set up as requests would set it up.

urllib3 is requests' own engine. Called directly it costs a fraction of a requests call (no session settings,
hooks or cookie jar merged per call), and of httpx's pure-Python HTTP/1.1 parser, which the openai SDK uses
otherwise (model/transport.py puts this pool under the SDK). The proxy variables (HTTPS_PROXY, NO_PROXY...) and
the CA bundle variables (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE) are read once, here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_environ_proxies, select_proxy

CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


def pool(url: str, connections: int, timeout: float) -> urllib3.HTTPConnectionPool:
    """A pool of up to `connections` kept-alive connections to the host of `url`, through the proxy the
    environment names for it, if any. It never retries or follows a redirect by itself: its callers decide."""
    ca = (
        next((os.environ[name] for name in CA_BUNDLE_VARIABLES if os.environ.get(name)), None) or DEFAULT_CA_BUNDLE_PATH
    )
    options: dict[str, Any] = {
        "num_pools": 1,
        "maxsize": connections,
        "block": False,  # a burst beyond `connections` opens more, kept only up to `connections`
        "retries": False,
        "timeout": urllib3.Timeout(timeout),
        "ca_cert_dir" if Path(ca).is_dir() else "ca_certs": ca,
    }
    proxy = select_proxy(url, get_environ_proxies(url))
    manager = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
    return manager.connection_from_url(url)


def target(pool: urllib3.HTTPConnectionPool, url: str) -> str:
    """What `pool.urlopen` is given for `url`: its path and query, or the whole URL when the pool sends plain
    HTTP through a proxy (which needs it whole; the pool's host is then the proxy's, so `urlopen` is called with
    `assert_same_host=False`)."""
    if pool.proxy is not None and pool.scheme == "http":
        return url
    return urllib3.util.parse_url(url).request_uri
