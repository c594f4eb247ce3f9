"""/mcp on the app: who is calling, and whether their token's scopes cover the call.

Served only when MCP is enabled, and the MCP SDK loads on the first request to /mcp: it takes
0.8 s to import on a PC, several seconds on a Raspberry Pi, and 40 MiB, which the daemon should
not spend before it is ready, nor ever if no assistant comes.

Two kinds of bearer (mcp/caller.py): an OAuth access token, or the gateway token (legacy
mode). Without either, 401 with the challenge MCP clients follow to discovery (RFC 9728). A
call its OAuth token's scopes do not cover gets 403 with `error="insufficient_scope"` and the
scope to ask for, as PushGo answers: the check reads the JSON-RPC body before the SDK does,
because only HTTP can carry that challenge.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aiohttp import hdrs, web

from pushgod.http.keys import SERVICES, SETTINGS
from pushgod.http.requests import bearer_token
from pushgod.mcp.guard import Guard, body_too_large
from pushgod.mcp.tools import BY_NAME, CHANNELS_URI, QUIET
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.oauth import SUPPORTED_SCOPES, OAuthScope
from pushgod.oauth.requests import CORS_HEADERS, issuer, resource

if TYPE_CHECKING:
    from pushgod.mcp.endpoint import McpEndpoint


class LazyEndpoint:
    """The MCP server and its endpoint, built on first use and run until the app stops."""

    def __init__(self, app: web.Application, guard: Guard) -> None:
        self._app = app
        self.guard = guard
        self._lock = asyncio.Lock()
        self._endpoint: McpEndpoint | None = None
        self._lifespan: AsyncIterator[None] | None = None

    async def get(self) -> McpEndpoint:
        if self._endpoint is None:
            async with self._lock:
                if self._endpoint is None:
                    self._endpoint = await self._load()
        return self._endpoint

    async def _load(self) -> McpEndpoint:
        # Imported in a thread, so that the loop goes on serving while the SDK loads.
        await asyncio.to_thread(importlib.import_module, "pushgod.mcp.endpoint")
        from pushgod.mcp import server
        from pushgod.mcp.direct import DirectTools
        from pushgod.mcp.endpoint import McpEndpoint

        settings, services = self._app[SETTINGS].mcp, self._app[SERVICES]
        endpoint = McpEndpoint(
            server.build(services, underscored_names=settings.underscored_tool_names),
            guard=self.guard,
            direct=DirectTools(QUIET, functools.partial(server.call_tool, services)),
        )
        lifespan = endpoint.lifespan(self._app)
        await anext(lifespan)
        self._lifespan = lifespan
        return endpoint

    async def on_shutdown(self, app: web.Application) -> None:
        if self._endpoint is not None:
            await self._endpoint.on_shutdown(app)

    async def on_cleanup(self, app: web.Application) -> None:
        if self._lifespan is not None:
            async for _ in self._lifespan:  # runs the rest of it: stops the session manager
                pass


MCP_ENDPOINT = web.AppKey("mcp_endpoint", LazyEndpoint)
_ALLOWED_ORIGIN = web.RequestKey("pushgod.mcp.allowed_origin", str)
CORS_HEADERS_MCP = {
    "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": (
        "Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID"
    ),
    "Access-Control-Expose-Headers": "Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate",
    "Access-Control-Max-Age": "86400",
    "Vary": "Origin",
}
"""For browser clients (MCP Inspector in direct mode) of an allowed origin: the endpoint's
Origin check has passed, so the origin is echoed rather than `*`."""
RESOURCE_METHODS = frozenset({"resources/list", "resources/read", "resources/templates/list"})


def _challenge(
    request: web.Request, status: int, error: str | None, scope: str, description: str = ""
) -> web.Response:
    metadata = f"{issuer(request)}/.well-known/oauth-protected-resource/mcp"
    parts = [f'resource_metadata="{metadata}"', f'scope="{scope}"']
    body = {"error": error or "unauthorized"}
    if error is not None:
        parts.insert(0, f'error="{error}"')
    if description:
        body["error_description"] = description
    return web.json_response(
        body,
        status=status,
        headers={
            **CORS_HEADERS,
            "WWW-Authenticate": "Bearer " + ", ".join(parts),
            "Access-Control-Expose-Headers": "WWW-Authenticate",
        },
    )


def challenge(request: web.Request, error: PushgodError | None) -> web.Response:
    """401 with the WWW-Authenticate that sends an MCP client to discovery."""
    scopes = " ".join(SUPPORTED_SCOPES)
    if error is None:
        return _challenge(request, 401, None, scopes)
    return _challenge(request, 401, "invalid_token", scopes, error.message)


def needed_scopes(parsed: Any) -> set[str]:
    """The scopes the JSON-RPC messages of a parsed body need; what is not a message needs none
    here (the SDK answers it with a JSON-RPC error)."""
    needed: set[str] = set()
    for message in parsed if isinstance(parsed, list) else [parsed]:
        if not isinstance(message, dict):
            continue
        method = message.get("method")
        if not isinstance(method, str):
            continue
        params = message.get("params")
        if method in RESOURCE_METHODS:
            needed.add(OAuthScope.CHANNELS_MANAGE)
            uri = params.get("uri") if isinstance(params, dict) else None
            if method == "resources/read" and uri != CHANNELS_URI:
                needed.add(OAuthScope.TOOLS)
        elif method == "tools/call":
            name = params.get("name") if isinstance(params, dict) else None
            tool = BY_NAME.get(name) if isinstance(name, str) else None
            if tool is not None:
                needed.add(tool.scope)
    return needed


async def handle(request: web.Request) -> web.StreamResponse:
    lazy = request.app[MCP_ENDPOINT]
    rejected = lazy.guard.reject(request)
    if rejected is not None:
        return rejected
    if hdrs.ORIGIN in request.headers:
        request[_ALLOWED_ORIGIN] = request.headers[hdrs.ORIGIN]
    if request.method == "OPTIONS":  # a CORS preflight carries no credentials
        return web.Response(status=204)
    services = request.app[SERVICES]
    address = request.remote or ""
    try:
        bearer = bearer_token(request)
        if bearer is None:
            return challenge(request, None)
        legacy = services.auth.is_gateway_token(bearer)
        principal = None if legacy else services.oauth.authenticate(bearer, resource(request))
    except PushgodError as error:
        return challenge(request, error)
    endpoint = await lazy.get()
    from pushgod.mcp.caller import legacy_token, oauth_token  # loaded with the endpoint
    from pushgod.mcp.direct import parse

    message = None
    if request.method == "POST":
        try:
            message = parse(await request.read())
        except web.HTTPRequestEntityTooLarge:
            return body_too_large(request.client_max_size)
    if principal is None:
        token = legacy_token(bearer, issuer(request), address)
        return await endpoint.handle(request, access_token=token, scopes=[], message=message)
    missing = needed_scopes(message) - principal.scopes
    if missing:
        scope = " ".join(sorted(missing))
        description = f"this call needs the {scope} scope; authorize again asking for it"
        return _challenge(request, 403, "insufficient_scope", scope, description)
    token = oauth_token(principal, bearer, issuer(request), address)
    scopes = sorted(principal.scopes)
    return await endpoint.handle(request, access_token=token, scopes=scopes, message=message)


async def _cors(request: web.BaseRequest, response: web.StreamResponse) -> None:
    origin = request.get(_ALLOWED_ORIGIN)
    if origin is not None:
        response.headers.update(CORS_HEADERS_MCP)
        response.headers["Access-Control-Allow-Origin"] = origin


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def setup(app: web.Application) -> None:
    """Add /mcp, serving the tools and resources over the app's services."""
    settings = app[SETTINGS].mcp
    try:
        guard = Guard(_names(settings.allowed_hosts), _names(settings.allowed_origins))
    except ValueError as error:
        raise PushgodError(ErrorCode.INVALID_CONFIG, f"mcp.allowed_*: {error}") from None
    lazy = LazyEndpoint(app, guard)
    app[MCP_ENDPOINT] = lazy
    app.on_shutdown.append(lazy.on_shutdown)
    app.on_cleanup.append(lazy.on_cleanup)
    app.router.add_route("*", "/mcp", handle, name="mcp")
    app.on_response_prepare.append(_cors)
