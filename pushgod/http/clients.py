"""Paired clients: redeeming a pairing code, and the public keys senders seal to."""

from __future__ import annotations

from aiohttp import web

from pushgod.http.envelope import ok
from pushgod.http.keys import SERVICES
from pushgod.http.requests import check_query, json_body, path_channel_id, reader_credentials
from pushgod.http.routing import Param, Route
from pushgod.model import fields as f
from pushgod.model.errors import ErrorCode

PAIR_SCHEMA: f.Schema = {
    "code": f.WireField(f.Kind.STRING, "The pairing code `pushgod client pair` printed."),
    "public_key": f.WireField(
        f.Kind.STRING, "The client's X25519 public key: 32 bytes, base64url (docs/e2ee.md)."
    ),
    "name": f.WireField(f.Kind.STRING, "A name for the client (1-64 characters)."),
}


async def pair(request: web.Request) -> web.Response:
    check_query(request, set())
    data = f.check_shape(await json_body(request), PAIR_SCHEMA)
    services = request.app[SERVICES]
    return ok(
        await services.clients.redeem(
            request.remote or "",
            f.required_text(data.get("code"), "code", ErrorCode.PAIRING_CODE_INVALID),
            data.get("public_key"),
            data.get("name"),
        )
    )


async def keys(request: web.Request) -> web.Response:
    check_query(request, set())
    services = request.app[SERVICES]
    return ok(await services.clients.keys(reader_credentials(request), path_channel_id(request)))


ROUTES = [
    Route(
        "POST",
        "/api/v1/pair",
        pair,
        "pair",
        "Redeem a one-time pairing code: a subscribe token for a client's public key",
        "clients",
        body=PAIR_SCHEMA,
        required=("code", "public_key"),
    ),
    Route(
        "GET",
        "/api/v1/channels/{channel_id}/keys",
        keys,
        "channel-keys",
        "The channel's sealing policy and its paired clients' public keys",
        "clients",
        ("bearerToken", "channelBasic"),
        params=(Param("channel_id", "Channel id.", {"type": "string"}, "path", True),),
    ),
]
