"""The admin API under /api/v1/admin: channels and tokens, for admin tokens."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pushgod.http.envelope import ok
from pushgod.http.keys import SERVICES
from pushgod.http.requests import check_query, json_body, reader_credentials
from pushgod.http.routing import Param, Route
from pushgod.model import fields as f
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.ids import parse_channel_id
from pushgod.model.sealing import DEFAULT_POLICY
from pushgod.model.times import parse_duration_ms
from pushgod.model.tokens import parse_scopes

ADMIN_AUTH = ("bearerToken",)

CHANNEL_CREATE: f.Schema = {
    "name": f.WireField(f.Kind.STRING, "Channel name, 1-128 characters."),
    "password": f.WireField(f.Kind.STRING, "Password, 8-128 bytes; generated when omitted."),
    "retention_count": f.WireField(f.Kind.INTEGER, "Messages kept; default from config."),
    "retention_age": f.WireField(f.Kind.STRING, "How long messages are kept, e.g. 7d."),
}
CHANNEL_UPDATE: f.Schema = CHANNEL_CREATE | {
    "password": f.WireField(f.Kind.STRING, "New password; the old one stops working at once."),
    "e2ee": f.WireField(
        f.Kind.STRING,
        "Sealing for paired clients: off, on (the default fields) or the fields to seal, "
        "e.g. message.title,message.body,thing.attrs.location (docs/e2ee.md).",
    ),
}
TOKEN_CREATE: f.Schema = {
    "channel_id": f.WireField(f.Kind.STRING, "The channel the token acts on."),
    "scopes": f.WireField(f.Kind.STRINGS, "publish, subscribe and/or things."),
    "admin": f.WireField(f.Kind.BOOLEAN, "true for a global admin token (no channel_id)."),
    "expires_in": f.WireField(f.Kind.STRING, "Lifetime such as 30d; never expires if omitted."),
    "label": f.WireField(f.Kind.STRING, "A note for the token list."),
}


def _duration(data: dict[str, Any], name: str) -> int | None:
    return parse_duration_ms(data[name], name) if name in data else None


async def list_channels(request: web.Request) -> web.Response:
    check_query(request, set())
    services = request.app[SERVICES]
    rows = services.channels.list(reader_credentials(request))
    return ok({"channels": [row.public() for row in rows]})


async def create_channel(request: web.Request) -> web.Response:
    credentials = reader_credentials(request)
    request.app[SERVICES].auth.admin(credentials)
    data = f.check_shape(await json_body(request), CHANNEL_CREATE)
    if "name" not in data:
        raise PushgodError(ErrorCode.INVALID_CHANNEL_NAME, "name is required")
    row, password = await request.app[SERVICES].channels.create(
        credentials,
        data["name"],
        data.get("password"),
        retention_count=data.get("retention_count"),
        retention_age_ms=_duration(data, "retention_age"),
    )
    return ok(row.public() | {"password": password})


async def update_channel(request: web.Request) -> web.Response:
    credentials = reader_credentials(request)
    request.app[SERVICES].auth.admin(credentials)
    data = f.check_shape(await json_body(request), CHANNEL_UPDATE)
    changes: dict[str, Any] = {}
    if "retention_count" in data:
        changes["retention_count"] = data["retention_count"]
    if "retention_age" in data:
        changes["retention_age_ms"] = _duration(data, "retention_age")
    if "e2ee" in data:
        choice = data["e2ee"].strip()
        changes["e2ee"] = {"off": None, "on": ",".join(DEFAULT_POLICY)}.get(choice, choice)
    row = await request.app[SERVICES].channels.update(
        credentials,
        request.match_info["channel_id"],
        name=data.get("name"),
        password=data.get("password"),
        **changes,
    )
    return ok(row.public())


async def delete_channel(request: web.Request) -> web.Response:
    channel_id = request.match_info["channel_id"]
    await request.app[SERVICES].channels.delete(reader_credentials(request), channel_id)
    return ok({"channel_id": parse_channel_id(channel_id), "deleted": True})


async def list_tokens(request: web.Request) -> web.Response:
    check_query(request, {"channel_id"})
    services = request.app[SERVICES]
    rows = services.tokens.list(reader_credentials(request), request.query.get("channel_id"))
    return ok({"tokens": [row.public() for row in rows]})


async def create_token(request: web.Request) -> web.Response:
    credentials = reader_credentials(request)
    request.app[SERVICES].auth.admin(credentials)
    data = f.check_shape(await json_body(request), TOKEN_CREATE)
    admin = data.get("admin", False)
    if admin == ("channel_id" in data) or admin == ("scopes" in data):
        raise PushgodError(
            ErrorCode.INVALID_SCOPE, "give channel_id and scopes, or admin: true, not both"
        )
    row, token = await request.app[SERVICES].tokens.create(
        credentials,
        channel_id=data.get("channel_id"),
        scopes=frozenset() if admin else parse_scopes(",".join(data["scopes"])),
        expires_in_ms=_duration(data, "expires_in"),
        label=data.get("label"),
    )
    return ok(row.public() | {"token": token})


async def revoke_token(request: web.Request) -> web.Response:
    token_id = request.match_info["token_id"]
    await request.app[SERVICES].tokens.revoke(reader_credentials(request), token_id)
    return ok({"token_id": token_id, "revoked": True})


CHANNEL_ID = Param("channel_id", "Channel id.", {"type": "string"}, "path", True)
TOKEN_ID = Param("token_id", "Token id (not the token).", {"type": "string"}, "path", True)
CHANNELS = "/api/v1/admin/channels"
TOKENS = "/api/v1/admin/tokens"

ROUTES = [
    Route("GET", CHANNELS, list_channels, "admin-channels", "List channels", "admin", ADMIN_AUTH),
    Route(
        "POST",
        CHANNELS,
        create_channel,
        "admin-channel-create",
        "Create a channel; the reply shows its password once",
        "admin",
        ADMIN_AUTH,
        CHANNEL_CREATE,
        ("name",),
    ),
    Route(
        "PATCH",
        f"{CHANNELS}/{{channel_id}}",
        update_channel,
        "admin-channel-update",
        "Rename a channel, change its password, retention or sealing",
        "admin",
        ADMIN_AUTH,
        CHANNEL_UPDATE,
        params=(CHANNEL_ID,),
    ),
    Route(
        "DELETE",
        f"{CHANNELS}/{{channel_id}}",
        delete_channel,
        "admin-channel-delete",
        "Delete a channel and everything in it",
        "admin",
        ADMIN_AUTH,
        params=(CHANNEL_ID,),
    ),
    Route(
        "GET",
        TOKENS,
        list_tokens,
        "admin-tokens",
        "List tokens (never the tokens themselves)",
        "admin",
        ADMIN_AUTH,
        params=(Param("channel_id", "Only this channel's tokens.", {"type": "string"}),),
    ),
    Route(
        "POST",
        TOKENS,
        create_token,
        "admin-token-create",
        "Create a token; the reply shows it once",
        "admin",
        ADMIN_AUTH,
        TOKEN_CREATE,
    ),
    Route(
        "DELETE",
        f"{TOKENS}/{{token_id}}",
        revoke_token,
        "admin-token-revoke",
        "Revoke a token at once",
        "admin",
        ADMIN_AUTH,
        params=(TOKEN_ID,),
    ),
]
