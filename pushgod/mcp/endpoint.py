"""/mcp: the SDK's Streamable HTTP session manager in aiohttp, behind our own Host/Origin checks.

Host and Origin are checked first (mcp/guard.py); nothing else reaches the SDK.

Sessions are stateful (`Mcp-Session-Id`), so 2025-era clients get a GET stream for server-to-client
notifications; the manager routes 2026-07-28 requests (by their `MCP-Protocol-Version` header) to
its per-request path on its own. Each session is bound to the principal that opened it (client id,
issuer, subject of the access token): the same session id under another principal answers 404.
The one call assistants repeat, a tool call in a session, may skip the SDK's transport
(mcp/direct.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

from aiohttp import web
from mcp.server import MCPServer, Server
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.subscriptions import ListenHandler
from mcp.server.transport_security import TransportSecuritySettings
from sse_starlette.sse import AppStatus
from starlette.authentication import AuthCredentials

from pushgod.mcp.direct import DirectCalls, DirectTools
from pushgod.mcp.guard import Guard, body_too_large
from pushgod.mcp.transport import AsgiBridge

log = logging.getLogger(__name__)

SESSION_IDLE_TIMEOUT_S: Final = 30 * 60
"""A session with no request in flight (an open GET stream counts as one) for this long is closed;
its id then answers 404 and the client initializes again. The SDK's default, stated here."""

MAX_SESSIONS: Final = 100
"""Open sessions at most; a request that would open one more gets 503. Clients that never DELETE
leave a session behind until the idle timeout, and a Raspberry Pi should not hold thousands
(the SDK default is 10,000)."""


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
        allowed_hosts: Sequence[str] = (),
        allowed_origins: Sequence[str] = (),
        guard: Guard | None = None,
        direct: DirectTools | None = None,
    ) -> None:
        """`guard` checks Host and Origin; without one, a Guard of the two allowlists. Calls of
        the `direct` tools may be answered without the SDK's transport (mcp/direct.py)."""
        self.guard = guard or Guard(allowed_hosts, allowed_origins)
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
        self._direct = DirectCalls(self._manager, direct) if direct is not None else None

    async def handle(
        self,
        request: web.Request,
        *,
        access_token: AccessToken,
        scopes: Sequence[str],
        message: Any = None,
    ) -> web.StreamResponse:
        """Serve one /mcp request on behalf of an already verified `access_token`.

        `scopes` are the scopes granted to this request (`scope["auth"]`). The token becomes the
        SDK's authenticated user: tools read it with `get_access_token()`, and the session manager
        binds each new session to its principal. `message` is the POST body as `direct.parse`
        read it, for the direct path; None leaves the request to the SDK.
        """
        rejection = self.guard.reject(request)
        if rejection is not None:
            return rejection
        user = AuthenticatedUser(access_token)
        reset = auth_context_var.set(user)
        try:
            if message is not None and self._direct is not None:
                answer = await self._direct.answer(request, message, user)
                if answer is not None:
                    return answer
            return await self._bridge(request, {"user": user, "auth": AuthCredentials(scopes)})
        except web.HTTPRequestEntityTooLarge:
            return body_too_large(request.client_max_size)
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
