"""/mcp's first line: the Host and Origin of a request, checked before the MCP SDK loads.

The SDK's own DNS-rebinding check is switched off: it knows only exact strings and `host:*`
patterns, and answers in plain text. `McpEndpoint` checks instead, before anything reaches the SDK:

* **Host** must be one of `allowed_hosts` (case-insensitive; an entry without a port matches any
  port; an empty list allows any Host). Otherwise **421 Misdirected Request**, the status the SDK
  itself uses for a bad Host: the request reached a server that is not the one it was meant for.
* **Origin**, when present (browsers send it; MCP clients running as processes do not), must be in
  `allowed_origins` or name the same host and port as the request's Host (the scheme is not
  compared, because TLS is often ended by a reverse proxy in front of pushgod). Otherwise
  **403 Forbidden**, as the MCP spec requires (2025-11-25, Transports, Streamable HTTP).
  Same-origin acceptance leans on the Host check against DNS rebinding, so a deployment reachable
  from browsers should list its names in `allowed_hosts`.

Both rejections carry a JSON-RPC error with no request id, the shape the SDK uses for its own
transport errors: `{"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": ...}}`.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import hdrs, web

log = logging.getLogger(__name__)

INVALID_REQUEST: Final = -32600
"""JSON-RPC's code for a request the server will not take."""

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_HOST = re.compile(
    r"(?:\[(?P<ipv6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9._~%!$&'()*+,;=-]+))(?::(?P<port>[0-9]{1,5}))?"
)
_ORIGIN = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<authority>[^/?#@\s]+)/?")


@dataclass(frozen=True, slots=True)
class _HostPort:
    host: str
    port: int | None  # None: not given

    def allows(self, other: _HostPort) -> bool:
        """As an allowlist entry: the same host, and the same port unless this entry has none."""
        return self.host == other.host and (self.port is None or self.port == other.port)


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: str
    port: int | None  # the scheme's default port when not given; None for an unknown scheme


class Guard:
    """The Host and Origin allowlists; building one validates them (ValueError)."""

    def __init__(self, allowed_hosts: Sequence[str], allowed_origins: Sequence[str]) -> None:
        self._hosts = tuple(_parse_allowed_host(entry) for entry in allowed_hosts)
        self._origins = frozenset(_parse_allowed_origin(entry) for entry in allowed_origins)

    def reject(self, request: web.Request) -> web.Response | None:
        """The 421 or 403 answer for a request whose Host or Origin is not allowed, else None.

        Called before authenticating, so that a browser from a foreign origin gets 403
        rather than 401.
        """
        host_header = request.headers.get(hdrs.HOST)
        host = _parse_host(host_header) if host_header is not None else None
        if self._hosts and (host is None or not any(entry.allows(host) for entry in self._hosts)):
            log.warning(
                "/mcp: refused Host %r; add it to the allowed hosts if it is ours", host_header
            )
            return jsonrpc_error(421, "Host header is not allowed")
        origin_header = request.headers.get(hdrs.ORIGIN)
        if origin_header is not None and not self._origin_allowed(origin_header, host):
            log.warning("/mcp: refused Origin %r", origin_header)
            return jsonrpc_error(403, "Origin header is not allowed")
        return None

    def _origin_allowed(self, value: str, host: _HostPort | None) -> bool:
        origin = _parse_origin(value)
        if origin is None:  # "null" (sandboxed frames, file:) or malformed
            return False
        if origin in self._origins:
            return True
        if host is None or origin.scheme not in _DEFAULT_PORTS:
            return False
        return (
            host.host == origin.host and (host.port or _DEFAULT_PORTS[origin.scheme]) == origin.port
        )


def body_too_large(limit: int) -> web.Response:
    return jsonrpc_error(413, f"request body is larger than {limit} bytes")


def jsonrpc_error(status: int, message: str) -> web.Response:
    """A transport-level refusal as the SDK words its own: a JSON-RPC error without an id."""
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": message}}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


@functools.lru_cache(maxsize=64)  # every /mcp request parses its Host twice (route, endpoint)
def _parse_host(value: str) -> _HostPort | None:
    """`name`, `name:port`, `[v6]` or `[v6]:port`, lowercased; None when malformed."""
    match = _HOST.fullmatch(value.strip().lower())
    if match is None:
        return None
    port = int(match["port"]) if match["port"] is not None else None
    if port is not None and not 0 < port < 65536:
        return None
    return _HostPort(match["ipv6"] or match["name"], port)


def _parse_origin(value: str) -> _Origin | None:
    """`scheme://host[:port]` (a trailing slash tolerated), with the default port filled in."""
    match = _ORIGIN.fullmatch(value.strip().lower())
    if match is None:
        return None
    authority = _parse_host(match["authority"])
    if authority is None:
        return None
    scheme = match["scheme"]
    port = authority.port if authority.port is not None else _DEFAULT_PORTS.get(scheme)
    return _Origin(scheme, authority.host, port)


def _parse_allowed_host(entry: str) -> _HostPort:
    parsed = _parse_host(entry)
    if parsed is None:
        raise ValueError(f"allowed host {entry!r} is not a host or host:port")
    return parsed


def _parse_allowed_origin(entry: str) -> _Origin:
    parsed = _parse_origin(entry)
    if parsed is None:
        raise ValueError(f"allowed origin {entry!r} is not scheme://host[:port]")
    return parsed
