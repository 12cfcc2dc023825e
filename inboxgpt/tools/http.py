"""One call of an owner's HTTP tool, made safely on the model's behalf.

The model only fills in parameter values; the service renders the request from the owner's template (each value
URL-encoded in the URL), with the person and channel it knows. The host is resolved once and the connection made to
the address checked: loopback, private, link-local (cloud metadata), shared and reserved addresses are refused
unless TOOLS_ALLOW_PRIVATE=on, and redirects are not followed, so no answer can send the call elsewhere. Every call
is bounded in time and size; whatever fails becomes a short message for the model, never a traceback, the URL's
secrets or a header.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import urllib3

from inboxgpt.tools.spec import PLACEHOLDER, HttpTool

# What the model is given of a tool's answer, at most.
MAX_RESULT_CHARS = 4000
CHUNK = 16 * 1024


class ToolError(Exception):
    """A call that did not give an answer; its message is for the model (and the log): short, nothing secret."""


@dataclass(frozen=True)
class Caller:
    """Who a call is made for: filled in by the service, never by the model."""

    person: str
    channel: str


def call_tool(tool: HttpTool, arguments: Mapping[str, Any], caller: Caller, allow_private: bool) -> str:
    """Make the tool's request with the model's (checked) arguments; return what the model is shown of the answer,
    or raise ToolError."""
    values = {**arguments, "person": caller.person, "channel": caller.channel}
    url = PLACEHOLDER.sub(lambda found: quote(str(values.get(found.group(1), "")), safe=""), tool.url)
    parts = urlsplit(url)
    assert parts.hostname is not None  # checked when the file was read
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _allowed_address(parts.hostname, port, allow_private)
    headers = {name: _filled(value, values) for name, value in tool.headers.items()}
    headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
    body = None
    if tool.body is not None:
        body = json.dumps(_rendered(tool.body, values), ensure_ascii=False).encode()
        headers.setdefault("Content-Type", "application/json")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    data = _request(tool, parts.scheme, address, port, parts.hostname, target, headers, body)
    return _shown(data, tool.result)


def _allowed_address(host: str, port: int, allow_private: bool) -> str:
    """The address the call connects to: the host's first, if every one it resolves to may be called."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise ToolError("the tool's host could not be found") from None
    addresses = [str(info[4][0]) for info in found]
    if not addresses:
        raise ToolError("the tool's host could not be found")
    if not allow_private:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not ip.is_global or ip.is_multicast:
                raise ToolError("refused: the tool's host is a private or local address (TOOLS_ALLOW_PRIVATE is off)")
    return addresses[0]


def _request(
    tool: HttpTool,
    scheme: str,
    address: str,
    port: int,
    host: str,
    target: str,
    headers: dict[str, str],
    body: bytes | None,
) -> bytes:
    """Send the request to the checked address (TLS still checked against the host's name); the answer's body."""
    deadline = time.monotonic() + tool.timeout
    timeout = urllib3.Timeout(total=tool.timeout)
    pool: urllib3.HTTPConnectionPool
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address, port, timeout=timeout, retries=False, server_hostname=host, assert_hostname=host
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    try:
        response = pool.urlopen(tool.method, target, body=body, headers=headers, redirect=False, preload_content=False)
        try:
            if 300 <= response.status < 400:
                raise ToolError(f"the tool's server answered with a redirect (HTTP {response.status}), not followed")
            if response.status >= 400:
                raise ToolError(f"the tool's server answered HTTP {response.status}")
            data = b""
            for chunk in response.stream(CHUNK):
                data += chunk
                if len(data) > tool.max_bytes:
                    raise ToolError(f"the tool's answer was over {tool.max_bytes:,} bytes")
                if time.monotonic() > deadline:  # a body that trickles in: each read alone is within the timeout
                    raise ToolError(f"the tool's server did not answer within {tool.timeout:g} s")
            return data
        finally:
            response.release_conn()
    except urllib3.exceptions.TimeoutError:
        raise ToolError(f"the tool's server did not answer within {tool.timeout:g} s") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ToolError(f"the tool's server could not be reached ({type(exc).__name__})") from None
    finally:
        pool.close()


def _shown(data: bytes, result: str | None) -> str:
    """What the model sees of an answer: the part `result` names when it is JSON, else the text; cut to size."""
    text = data.decode("utf-8", errors="replace")
    if result is not None:
        try:
            value: Any = json.loads(text)
        except ValueError:
            raise ToolError("the tool's answer was not JSON") from None
        for key in result.split("."):
            if isinstance(value, dict) and key in value:
                value = value[key]
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                raise ToolError(f"the tool's answer has no {result}")
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text[:MAX_RESULT_CHARS]


def _filled(template: str, values: Mapping[str, Any]) -> str:
    """A header or body text with its placeholders filled in."""
    return PLACEHOLDER.sub(lambda found: str(values.get(found.group(1), "")), template)


def _rendered(template: Any, values: Mapping[str, Any]) -> Any:
    """A JSON body template filled in: a text that is one placeholder alone takes the value as it is (a number stays
    a number); other texts are filled in as text."""
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template)
        return values.get(whole.group(1)) if whole else _filled(template, values)
    if isinstance(template, dict):
        return {key: _rendered(item, values) for key, item in template.items()}
    if isinstance(template, list):
        return [_rendered(item, values) for item in template]
    return template
