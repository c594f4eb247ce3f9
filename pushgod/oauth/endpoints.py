"""The OAuth endpoints clients call directly: registration, token, revocation.

They answer in RFC 6749 / RFC 7591 JSON (`error`, `error_description`), never pushgod's
envelope, because that is what OAuth clients parse.
"""

from __future__ import annotations

from aiohttp import web

from pushgod.http.keys import SERVICES
from pushgod.http.requests import json_body
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.oauth.requests import json_response, oauth_request, read_form, render

_REGISTRATION_ERRORS = {ErrorCode.INVALID_REDIRECT_URI, ErrorCode.INVALID_CLIENT_METADATA}


async def register(request: web.Request) -> web.Response:
    """RFC 7591: 201 with the client's id (and a secret only for confidential clients)."""
    try:
        client = await request.app[SERVICES].oauth.register(await json_body(request))
    except PushgodError as error:
        if error.code is ErrorCode.ROUTE_NOT_FOUND:
            raise web.HTTPNotFound() from None
        if error.code is ErrorCode.SERVER_BUSY:
            return json_response(
                503,
                {"error": "temporarily_unavailable", "error_description": error.message},
                {"Retry-After": str(error.retry_after or 60)},
            )
        code = error.code if error.code in _REGISTRATION_ERRORS else "invalid_client_metadata"
        return json_response(400, {"error": code, "error_description": error.message})
    return json_response(201, client, {"Cache-Control": "no-store"})


async def token(request: web.Request) -> web.Response:
    oauth = request.app[SERVICES].oauth
    return render(await oauth.token(oauth_request(request, await read_form(request))))


async def revoke(request: web.Request) -> web.Response:
    oauth = request.app[SERVICES].oauth
    return render(await oauth.revoke(oauth_request(request, await read_form(request))))
