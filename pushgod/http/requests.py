"""Reading what a request carries: its JSON body, credentials and query parameters."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from pushgod.http.keys import CHANNEL_ID
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.fields import strict_json
from pushgod.model.ids import parse_channel_id
from pushgod.model.messages import ChannelAuth
from pushgod.model.times import parse_duration_ms, parse_timestamp
from pushgod.service.auth import Credentials

MAX_BODY = 32 * 1024
"""PushGo's request body limit; larger bodies get 413 payload_too_large."""


async def json_body(request: web.Request) -> object:
    """The parsed JSON body; refuses other content types, bad syntax and duplicate keys."""
    if request.content_type != "application/json":
        raise PushgodError(
            ErrorCode.MISSING_JSON_CONTENT_TYPE, "send the body as Content-Type: application/json"
        )
    return strict_json(await request.read())


def _authorization(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    parts = header.split()
    if len(parts) != 2 or len(parts[1]) > 4096:
        raise PushgodError(
            ErrorCode.AUTHENTICATION_FAILED, "the Authorization header must be '<scheme> <value>'"
        )
    return parts[0].lower(), parts[1]


def bearer_token(request: web.Request) -> str | None:
    authorization = _authorization(request)
    return authorization[1] if authorization and authorization[0] == "bearer" else None


def sender_credentials(request: web.Request, auth: ChannelAuth) -> Credentials:
    """A send route: the body's password and an optional bearer token."""
    request[CHANNEL_ID] = auth.channel_id
    return Credentials(
        address=request.remote or "", bearer=bearer_token(request), password=auth.password
    )


def reader_credentials(request: web.Request) -> Credentials:
    """The read and admin APIs: a bearer token or HTTP Basic `channel_id:password`."""
    address = request.remote or ""
    authorization = _authorization(request)
    if authorization is None:
        return Credentials(address=address)
    scheme, value = authorization
    if scheme == "bearer":
        return Credentials(address=address, bearer=value)
    if scheme == "basic":
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, sep, password = "", "", ""
        if not sep:
            raise PushgodError(
                ErrorCode.AUTHENTICATION_FAILED, "Basic credentials must be channel_id:password"
            )
        return Credentials(
            address=address, password=password.strip(), password_channel_id=parse_channel_id(user)
        )
    raise PushgodError(ErrorCode.AUTHENTICATION_FAILED, "use the Bearer or Basic scheme")


def path_channel_id(request: web.Request) -> str:
    channel_id = parse_channel_id(request.match_info["channel_id"])
    request[CHANNEL_ID] = channel_id
    return channel_id


def _is_digits(text: str) -> bool:
    """Only 0-9: str.isdigit() also passes "²", which int() refuses."""
    return text.isascii() and text.isdigit()


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not _is_digits(text) or not low <= int(text) <= high:
        raise PushgodError(
            ErrorCode.INVALID_QUERY, f"{name} must be an integer from {low} to {high}"
        )
    return int(text)


def optional_int_param(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None:
        return None
    if not _is_digits(text) or len(text) > 18:
        raise PushgodError(ErrorCode.INVALID_QUERY, f"{name} must be a positive integer")
    return int(text)


def since_param(request: web.Request, now_ms: int) -> int | None:
    """`since=`: a unix timestamp (s or ms) or a duration back from now (`10m`, `2d`)."""
    text = request.query.get("since")
    if text is None or text in ("", "all"):
        return None
    try:
        if _is_digits(text):
            return parse_timestamp(text, "since")
        return now_ms - parse_duration_ms(text, "since")
    except PushgodError as error:
        raise PushgodError(ErrorCode.INVALID_QUERY, error.message) from None


def check_query(request: web.Request, allowed: set[str]) -> None:
    for name in request.query:
        if name not in allowed:
            raise PushgodError(ErrorCode.INVALID_QUERY, f"unknown query parameter {name!r}")
        if len(request.query.getall(name)) > 1:
            raise PushgodError(ErrorCode.INVALID_QUERY, f"query parameter {name!r} is repeated")
