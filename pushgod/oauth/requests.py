"""From aiohttp to the OAuth service and back: the issuer, the request, the response."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from pushgod.http.keys import SETTINGS
from pushgod.service.oauth import Response
from pushgod.service.oauth_server import Request

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, MCP-Protocol-Version",
    "Access-Control-Max-Age": "86400",
}
"""Browser-based MCP clients (MCP Inspector) call discovery, registration, token and
revocation from another origin. None of them uses cookies, so any origin may."""

MCP_PATH = "/mcp"


def issuer(request: web.Request) -> str:
    """server.public_base_url, else the origin this request was addressed to."""
    configured = request.app[SETTINGS].server.public_base_url
    return configured or f"{request.scheme}://{request.host}"


def resource(request: web.Request) -> str:
    """The one protected resource tokens are issued for: the MCP endpoint (RFC 8707)."""
    return issuer(request) + MCP_PATH


def oauth_request(request: web.Request, form: list[tuple[str, str]] | None = None) -> Request:
    return Request(
        method=request.method,
        uri=issuer(request) + request.raw_path,
        headers=dict(request.headers),
        query=list(request.query.items()),
        form=form or [],
        resource=resource(request),
    )


async def read_form(request: web.Request) -> list[tuple[str, str]]:
    """The url-encoded body as (name, value) pairs; files and other bodies read as empty."""
    form = await request.post()
    return [(name, value) for name, value in form.items() if isinstance(value, str)]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers={**CORS_HEADERS, **(headers or {})},
    )


def render(response: Response) -> web.Response:
    """authlib's (status, body, headers) as an aiohttp response, with CORS."""
    status, body, headers = response
    headers_out = {**CORS_HEADERS, **dict(headers)}
    if isinstance(body, dict):
        headers_out.pop("Content-Type", None)
        return web.Response(
            status=status,
            text=json.dumps(body),
            content_type="application/json",
            headers=headers_out,
        )
    return web.Response(status=status, text=body or "", headers=headers_out)


async def preflight(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=CORS_HEADERS)
