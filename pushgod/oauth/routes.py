"""The OAuth area of the app: its routes, its templates and the key its forms are MACed with.

Served only when MCP is enabled, so a daemon without it never loads authlib or Jinja2.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from pushgod.http.routing import Route, add_routes
from pushgod.oauth import binding, consent, discovery, endpoints
from pushgod.oauth.forms import FORM_SECRET
from pushgod.oauth.requests import preflight

WEB = Path(__file__).parent.parent / "web"


def _metadata_routes() -> list[Route]:
    routes = []
    for index, path in enumerate(discovery.AUTHORIZATION_SERVER_PATHS):
        name = f"oauth-metadata-n{index}"
        summary = "Authorization server metadata (RFC 8414)"
        routes.append(Route("GET", path, discovery.authorization_server, name, summary, "oauth"))
    for index, path in enumerate(discovery.PROTECTED_RESOURCE_PATHS):
        name = f"oauth-resource-n{index}"
        summary = "Protected resource metadata (RFC 9728)"
        routes.append(Route("GET", path, discovery.protected_resource, name, summary, "oauth"))
    return routes


ROUTES = [
    *_metadata_routes(),
    Route("POST", "/oauth/register", endpoints.register, "oauth-register", "RFC 7591", "oauth"),
    Route("POST", "/oauth/token", endpoints.token, "oauth-token", "Token endpoint", "oauth"),
    Route("POST", "/oauth/revoke", endpoints.revoke, "oauth-revoke", "RFC 7009", "oauth"),
    Route("GET", "/oauth/authorize", consent.show, "oauth-consent", "Consent page", "oauth"),
    Route("POST", "/oauth/authorize", consent.decide, "oauth-decide", "Consent decision", "oauth"),
    Route("GET", "/mcp/bind/session", binding.show, "mcp-bind", "Bind a channel", "oauth"),
    Route("POST", "/mcp/bind/session", binding.complete, "mcp-bind-post", "Bind it", "oauth"),
    Route("GET", "/mcp/revoke/session", binding.show, "mcp-revoke", "Unbind a channel", "oauth"),
    Route("POST", "/mcp/revoke/session", binding.complete, "mcp-revoke-post", "Unbind", "oauth"),
]
CORS_PATHS = (
    *discovery.AUTHORIZATION_SERVER_PATHS,
    *discovery.PROTECTED_RESOURCE_PATHS,
    "/oauth/register",
    "/oauth/token",
    "/oauth/revoke",
)


def setup(app: web.Application) -> None:
    app[FORM_SECRET] = secrets.token_bytes(32)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(WEB / "templates"),
        autoescape=True,
    )
    add_routes(app, ROUTES)
    for index, path in enumerate(CORS_PATHS):
        app.router.add_route("OPTIONS", path, preflight, name=f"oauth-preflight-n{index}")
    app.router.add_static("/oauth/static", WEB / "static", name="oauth-static")
