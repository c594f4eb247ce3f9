"""The app factory: wires settings, services, middlewares and every area's routes."""

from __future__ import annotations

from aiohttp import web

from pushgod.config import Settings
from pushgod.http import admin, channels, clients, health, openapi, sender, streams
from pushgod.http.keys import SERVICES, SETTINGS
from pushgod.http.middlewares import errors, stamp_response
from pushgod.http.requests import MAX_BODY
from pushgod.http.routing import add_routes
from pushgod.service.services import Services


def create_app(settings: Settings, services: Services) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[errors])
    app[SETTINGS] = settings
    app[SERVICES] = services
    app.on_response_prepare.append(stamp_response)
    app.on_shutdown.append(_end_streams)
    routes = [
        *health.ROUTES,
        *sender.ROUTES,
        *channels.ROUTES,
        *streams.ROUTES,
        *clients.ROUTES,
        *admin.ROUTES,
    ]
    add_routes(app, [*routes, openapi.route(routes)])
    if settings.mcp.enabled:
        # authlib, Jinja2 and the MCP SDK load only when MCP is on.
        from pushgod.mcp import routes as mcp
        from pushgod.oauth import routes as oauth

        oauth.setup(app)
        mcp.setup(app)
    return app


async def _end_streams(app: web.Application) -> None:
    """Shutdown: open streams say why they end and finish, so nothing waits on them."""
    app[SERVICES].streams.close_all()
