"""One call of an owner's HTTP tool, made safely on the model's behalf.

The model only fills in parameter values; the service renders the request from the owner's template (each value
URL-encoded in the URL, and never making a path segment empty, `.` or `..`; no control character in a header), with
the person and channel it knows. The host is resolved once and the connection made to the address checked: anything
but a global unicast address (loopback, private, link-local cloud metadata, shared, reserved, and IPv6 forms that
embed one of those IPv4 addresses) is refused unless TOOLS_ALLOW_PRIVATE=on, and redirects are not followed, so no
answer can send the call elsewhere. Every call is bounded in size and by a wall-clock deadline; whatever fails becomes
a short message for the model, never a traceback, the URL's secrets or a header.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import urllib3

from inboxgpt.deadlines import POOLS, deadline
from inboxgpt.tools.spec import CONTROL, PLACEHOLDER, HttpTool

# What the model is given of a tool's answer, at most.
MAX_RESULT_CHARS = 4000
CHUNK = 16 * 1024
# Where IPv6 addresses carry an IPv4 one: IPv4-compatible (::a.b.c.d, deprecated), NAT64's well-known prefix.
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# IPv6's global unicast space: what is outside (site-local fec0::/10, unique local, NAT64's local-use prefix...) is
# not the internet, whatever `is_global` of this Python says.
GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
PATH_DOTS = ("", ".", "..")


class ToolError(Exception):
    """A call that did not give an answer; its message is for the model (and the log): short, nothing secret."""


class RefusedValue(ToolError):
    """A value of the model's that the request cannot carry; told back so that the model can correct it."""


@dataclass(frozen=True)
class Caller:
    """Who a call is made for: filled in by the service, never by the model."""

    person: str
    channel: str


def call_tool(tool: HttpTool, arguments: Mapping[str, Any], caller: Caller, allow_private: bool) -> str:
    """Make the tool's request with the model's (checked) arguments; return what the model is shown of the answer,
    or raise ToolError."""
    values = {**arguments, "person": caller.person, "channel": caller.channel}
    parts = urlsplit(_url(tool.url, values))
    assert parts.hostname is not None  # checked when the file was read
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _allowed_address(parts.hostname, port, allow_private)
    headers = {name: _header(name, _filled(value, values)) for name, value in tool.headers.items()}
    headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
    body = None
    if tool.body is not None:
        body = json.dumps(_rendered(tool.body, values), ensure_ascii=False, allow_nan=False).encode()
        headers.setdefault("Content-Type", "application/json")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    data = _request(tool, parts.scheme, address, port, parts.hostname, target, headers, body)
    return _shown(data, tool.result)


def _url(template: str, values: Mapping[str, Any]) -> str:
    """The tool's URL with each value URL-encoded in its place. A value cannot add a `/`, and may not make a segment
    of the path empty, `.` or `..` either: `/bookings/{id}/items/{item}` with item ".." would be `/bookings/{id}`."""
    scheme, netloc, path, query, fragment = urlsplit(template)
    segments = []
    for segment in path.split("/"):
        filled = _encoded(segment, values)
        if filled in PATH_DOTS and PLACEHOLDER.search(segment):
            names = " and ".join(PLACEHOLDER.findall(segment))
            raise RefusedValue(f'{names} may not be empty, "." or "..": it is a part of the address\'s path')
        segments.append(filled)
    return urlunsplit((scheme, netloc, "/".join(segments), _encoded(query, values), fragment))


def _encoded(template: str, values: Mapping[str, Any]) -> str:
    return PLACEHOLDER.sub(lambda found: quote(str(values.get(found.group(1), "")), safe=""), template)


def _header(name: str, value: str) -> str:
    """A header's value as it can be sent: no control character (a line break would end the header), and text
    beyond Latin-1 (a name such as Łukasz) sent as UTF-8 bytes, which http.client writes as Latin-1 text."""
    if CONTROL.search(value):
        raise RefusedValue(f"a value for the {name} header may not contain control characters (such as a line break)")
    return value.encode().decode("latin-1")


def _allowed_address(host: str, port: int, allow_private: bool) -> str:
    """The address the call connects to: the host's first, if every one it resolves to may be called."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise ToolError("the tool's host could not be found") from None
    addresses = [str(info[4][0]) for info in found]
    if not addresses:
        raise ToolError("the tool's host could not be found")
    if not allow_private and not all(_public(ipaddress.ip_address(a.split("%", 1)[0])) for a in addresses):
        raise ToolError("refused: the tool's host is a private or local address (TOOLS_ALLOW_PRIVATE is off)")
    return addresses[0]


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is global unicast; an IPv6 address that carries an IPv4 one is as public as that one."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and (ip in IPV4_COMPATIBLE or ip in NAT64):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
        if embedded is not None:
            return _public(embedded)
        if ip not in GLOBAL_UNICAST:
            return False
    return ip.is_global and not ip.is_multicast


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
    """Send the request to the checked address (TLS still checked against the host's name); the answer's body, all
    of it within the tool's timeout by the clock, however slowly the server sends its headers or body."""
    late = ToolError(f"the tool's server did not answer within {tool.timeout:g} s")
    tls = {"server_hostname": host, "assert_hostname": host} if scheme == "https" else {}
    with deadline(tool.timeout) as limit:
        pool = POOLS[scheme](address, port, timeout=urllib3.Timeout(total=tool.timeout), retries=False, **tls)
        try:
            response = pool.urlopen(
                tool.method, target, body=body, headers=headers, redirect=False, preload_content=False
            )
            try:
                data = _body(response, tool.max_bytes)
            finally:
                response.release_conn()
            if limit.passed:  # the watchdog's cut can look like the end of a body sent without a length
                raise late
            return data
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if limit.passed or isinstance(exc, urllib3.exceptions.TimeoutError):
                raise late from None
            raise ToolError(f"the tool's server could not be reached ({type(exc).__name__})") from None
        finally:
            pool.close()


def _body(response: urllib3.BaseHTTPResponse, max_bytes: int) -> bytes:
    """The answer's body, if it is one the model may see."""
    if 300 <= response.status < 400:
        raise ToolError(f"the tool's server answered with a redirect (HTTP {response.status}), not followed")
    if response.status >= 400:
        raise ToolError(f"the tool's server answered HTTP {response.status}")
    data = b""
    for chunk in response.stream(CHUNK):
        data += chunk
        if len(data) > max_bytes:
            raise ToolError(f"the tool's answer was over {max_bytes:,} bytes")
    return data


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
