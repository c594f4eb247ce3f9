"""Discovery: authorization server metadata (RFC 8414) and protected resource metadata
(RFC 9728), at every path PushGo serves them and MCP clients look."""

from __future__ import annotations

from aiohttp import web

from pushgod.http.keys import SETTINGS
from pushgod.model.oauth import SUPPORTED_SCOPES
from pushgod.oauth.requests import issuer, json_response, resource
from pushgod.service.oauth_server import CLIENT_AUTH_METHODS

AUTHORIZATION_SERVER_PATHS = (
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-authorization-server/oauth",
    "/oauth/.well-known/oauth-authorization-server",
    # OpenID discovery URLs some clients try first; the document is the same RFC 8414 one
    # (pushgod issues no ID tokens, so it claims nothing of OpenID Connect).
    "/.well-known/openid-configuration",
    "/.well-known/openid-configuration/oauth",
    "/oauth/.well-known/openid-configuration",
)
PROTECTED_RESOURCE_PATHS = (
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
)


async def authorization_server(request: web.Request) -> web.Response:
    base = issuer(request)
    settings = request.app[SETTINGS].oauth
    metadata = {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": list(SUPPORTED_SCOPES),
        "authorization_response_iss_parameter_supported": True,
        "client_id_metadata_document_supported": settings.client_documents,
    }
    if settings.registration:
        metadata["registration_endpoint"] = f"{base}/oauth/register"
    return json_response(200, metadata)


async def protected_resource(request: web.Request) -> web.Response:
    return json_response(
        200,
        {
            "resource": resource(request),
            "authorization_servers": [issuer(request)],
            "scopes_supported": list(SUPPORTED_SCOPES),
            "bearer_methods_supported": ["header"],
            "resource_name": "pushgod MCP",
        },
    )
