"""/mcp: the SDK's Streamable HTTP session manager in aiohttp, behind our own Host/Origin checks.

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

Sessions are stateful (`Mcp-Session-Id`), so 2025-era clients get a GET stream for server-to-client
notifications; the manager routes 2026-07-28 requests (by their `MCP-Protocol-Version` header) to
its per-request path on its own. Each session is bound to the principal that opened it (client id,
issuer, subject of the access token): the same session id under another principal answers 404.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import hdrs, web
from mcp.server import MCPServer, Server
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.subscriptions import ListenHandler
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import INVALID_REQUEST, ErrorData, JSONRPCError
from sse_starlette.sse import AppStatus
from starlette.authentication import AuthCredentials

from pushgod.mcp.transport import AsgiBridge

log = logging.getLogger(__name__)

SESSION_IDLE_TIMEOUT_S: Final = 30 * 60
"""A session with no request in flight (an open GET stream counts as one) for this long is closed;
its id then answers 404 and the client initializes again. The SDK's default, stated here."""

MAX_SESSIONS: Final = 100
"""Open sessions at most; a request that would open one more gets 503. Clients that never DELETE
leave a session behind until the idle timeout, and a Raspberry Pi should not hold thousands
(the SDK default is 10,000)."""

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


class McpEndpoint:
    """Serves `server` at one aiohttp route: `await endpoint.handle(request, ...)`.

    Wiring (the caller authenticates first, then hands over the verified token):

        app.cleanup_ctx.append(endpoint.lifespan)   # after the services it uses
        app.on_shutdown.append(endpoint.on_shutdown)
        app.router.add_route("*", "/mcp", handler)  # handler calls endpoint.handle(...)

    One endpoint serves one application lifetime: the SDK's session manager runs only once.
    """

    def __init__(
        self,
        server: Server[Any] | MCPServer,
        *,
        allowed_hosts: Sequence[str],
        allowed_origins: Sequence[str],
    ) -> None:
        self._hosts = tuple(_parse_allowed_host(entry) for entry in allowed_hosts)
        self._origins = frozenset(_parse_allowed_origin(entry) for entry in allowed_origins)
        # Only creates the session manager; the Starlette app it returns is not served.
        server.streamable_http_app(
            json_response=False,  # SSE answers carry request-scoped notifications
            stateless_http=False,  # sessions: GET streams and server-to-client notifications
            session_idle_timeout=SESSION_IDLE_TIMEOUT_S,
            max_sessions=MAX_SESSIONS,
            # Body size: aiohttp's client_max_size binds first (the bridge reads the body through
            # it); the SDK's own 4 MiB limit stays as a second line.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._manager = server.session_manager
        self._bridge = AsgiBridge(self._manager.handle_request)

    def reject(self, request: web.Request) -> web.Response | None:
        """The 421 or 403 answer for a request whose Host or Origin is not allowed, else None.

        `handle` calls this itself; a caller may call it before authenticating too, so that a
        browser from a foreign origin gets 403 rather than 401.
        """
        host_header = request.headers.get(hdrs.HOST)
        host = _parse_host(host_header) if host_header is not None else None
        if self._hosts and (host is None or not any(entry.allows(host) for entry in self._hosts)):
            log.warning(
                "/mcp: refused Host %r; add it to the allowed hosts if it is ours", host_header
            )
            return _jsonrpc_error(421, "Host header is not allowed")
        origin_header = request.headers.get(hdrs.ORIGIN)
        if origin_header is not None and not self._origin_allowed(origin_header, host):
            log.warning("/mcp: refused Origin %r", origin_header)
            return _jsonrpc_error(403, "Origin header is not allowed")
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

    async def handle(
        self, request: web.Request, *, access_token: AccessToken, scopes: Sequence[str]
    ) -> web.StreamResponse:
        """Serve one /mcp request on behalf of an already verified `access_token`.

        `scopes` are the scopes granted to this request (`scope["auth"]`). The token becomes the
        SDK's authenticated user: tools read it with `get_access_token()`, and the session manager
        binds each new session to its principal.
        """
        rejection = self.reject(request)
        if rejection is not None:
            return rejection
        user = AuthenticatedUser(access_token)
        reset = auth_context_var.set(user)
        try:
            return await self._bridge(request, {"user": user, "auth": AuthCredentials(scopes)})
        except web.HTTPRequestEntityTooLarge:
            return _jsonrpc_error(
                413, f"request body is larger than {request.client_max_size} bytes"
            )
        finally:
            auth_context_var.reset(reset)

    async def lifespan(self, app: web.Application) -> AsyncIterator[None]:
        """A `cleanup_ctx` entry: runs the session manager for the application's lifetime.

        The manager's anyio task group must be entered and left in one task, so it runs in a task
        of its own rather than in aiohttp's startup and cleanup steps.
        """
        started, stop = asyncio.Event(), asyncio.Event()

        async def run() -> None:
            async with self._manager.run():
                started.set()
                await stop.wait()

        task = asyncio.create_task(run(), name="pushgod.mcp.sessions")
        waiting = asyncio.create_task(started.wait(), name="pushgod.mcp.sessions.started")
        await asyncio.wait((task, waiting), return_when=asyncio.FIRST_COMPLETED)
        if not started.is_set():
            waiting.cancel()
            await task  # it ended before starting: raise its error
            raise RuntimeError("the MCP session manager stopped while starting")
        task.add_done_callback(lambda done: _log_early_exit(done, stop))
        try:
            yield
        finally:
            try:
                stop.set()
                await task
                await self._bridge.aclose()
            finally:
                # sse-starlette's shutdown flag is process-wide and nothing else clears it; once
                # this app's streams are gone, clear it so a later app in the process can stream.
                AppStatus.should_exit = False

    async def on_shutdown(self, app: web.Application) -> None:
        """End open streams so shutdown does not wait for clients to leave.

        aiohttp runs on_shutdown before it waits for running handlers. sse-starlette 3.7 ends every
        `EventSourceResponse` (2025-era GET and POST streams) once `AppStatus.should_exit` is set,
        within its 0.5 s watcher poll; the flag is process-wide, so another app serving in the same
        process loses its streams too. 2026-07-28 `subscriptions/listen` streams are not
        sse-starlette's: their handler is told to close them gracefully.
        """
        AppStatus.should_exit = True
        entry = self._manager.app.get_request_handler("subscriptions/listen")
        if entry is not None and isinstance(entry.handler, ListenHandler):
            entry.handler.close()


def _log_early_exit(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    if not stop.is_set() and not task.cancelled():
        log.error("the MCP session manager stopped; /mcp will fail", exc_info=task.exception())


def _jsonrpc_error(status: int, message: str) -> web.Response:
    error = JSONRPCError(
        jsonrpc="2.0", id=None, error=ErrorData(code=INVALID_REQUEST, message=message)
    )
    return web.Response(
        status=status,
        text=error.model_dump_json(by_alias=True, exclude_unset=True),
        content_type="application/json",
    )


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
