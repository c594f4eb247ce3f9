"""/mcp on the app: the OAuth bearer check in front of the MCP endpoint.

Served only when MCP is enabled; the SDK (about 1 s and 70 MiB to import on a small
machine) loads only then. An unauthenticated request gets 401 with the challenge MCP
clients follow to discovery (RFC 9728): `resource_metadata` names where to start.
"""

from __future__ import annotations

from aiohttp import web
from mcp.server import MCPServer
from mcp.server.auth.provider import AccessToken

from pushgod import __version__
from pushgod.http.keys import SERVICES, SETTINGS
from pushgod.http.requests import bearer_token
from pushgod.mcp.endpoint import McpEndpoint
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.oauth import SUPPORTED_SCOPES
from pushgod.oauth.requests import CORS_HEADERS, issuer, resource

MCP_ENDPOINT = web.AppKey("mcp_endpoint", McpEndpoint)
INSTRUCTIONS = (
    "pushgod delivers notifications and keeps device state for its user. Send one-off "
    "alerts as Messages, report long work as Events (create, update, close) and keep "
    "persistent objects as Things."
)


def challenge(request: web.Request, error: PushgodError | None) -> web.Response:
    """401 with the WWW-Authenticate that sends an MCP client to discovery."""
    metadata = f"{issuer(request)}/.well-known/oauth-protected-resource/mcp"
    parts = [f'resource_metadata="{metadata}"', f'scope="{" ".join(SUPPORTED_SCOPES)}"']
    body: dict[str, str] = {"error": "invalid_token" if error else "unauthorized"}
    if error is not None:
        parts.insert(0, 'error="invalid_token"')
        body["error_description"] = error.message
    return web.json_response(
        body,
        status=401,
        headers={
            **CORS_HEADERS,
            "WWW-Authenticate": "Bearer " + ", ".join(parts),
            "Access-Control-Expose-Headers": "WWW-Authenticate",
        },
    )


async def handle(request: web.Request) -> web.StreamResponse:
    endpoint = request.app[MCP_ENDPOINT]
    rejected = endpoint.reject(request)
    if rejected is not None:
        return rejected
    try:
        bearer = bearer_token(request)
        if bearer is None:
            return challenge(request, None)
        principal = request.app[SERVICES].oauth.authenticate(bearer, resource(request))
    except PushgodError as error:
        return challenge(request, error)
    access = AccessToken(
        token=bearer,
        client_id=principal.client_id,
        scopes=sorted(principal.scopes),
        expires_at=None,
        resource=principal.resource,
        subject=principal.grant_id,
        claims={"iss": issuer(request)},
    )
    return await endpoint.handle(request, access_token=access, scopes=sorted(principal.scopes))


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def setup(app: web.Application) -> MCPServer:
    """Add /mcp; returns the MCP server, for the tools to be registered on it."""
    settings = app[SETTINGS].mcp
    server = MCPServer("pushgod", version=__version__, instructions=INSTRUCTIONS)
    try:
        endpoint = McpEndpoint(
            server,
            allowed_hosts=_names(settings.allowed_hosts),
            allowed_origins=_names(settings.allowed_origins),
        )
    except ValueError as error:
        raise PushgodError(ErrorCode.INVALID_CONFIG, f"mcp.allowed_*: {error}") from None
    app[MCP_ENDPOINT] = endpoint
    app.cleanup_ctx.append(endpoint.lifespan)
    app.on_shutdown.append(endpoint.on_shutdown)
    app.router.add_route("*", "/mcp", handle, name="mcp")
    return server
