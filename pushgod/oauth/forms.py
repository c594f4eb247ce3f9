"""What keeps the pages' forms honest: a CSRF token, and the channels already proven.

Double-submit with a MAC: a random cookie (HttpOnly, SameSite=Strict) and, in the form,
a MAC of it under a per-process key; a cross-site page can neither read the cookie nor
compute the MAC. The channels a person proved on a consent page ride along in the form,
MACed together with that cookie and the authorization request they belong to, so no
password has to be kept between one click and the next.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets

from aiohttp import web

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.ids import parse_channel_id
from pushgod.model.oauth import CONSENT_LIFETIME_MS
from pushgod.service.context import now_ms

CSRF_COOKIE = "pushgod_csrf"
FORM_SECRET = web.AppKey("form_secret", bytes)


def _mac(key: bytes, *parts: str) -> str:
    digest = hmac.new(key, "\0".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_token(request: web.Request) -> tuple[str, str | None]:
    """The form's CSRF token, and a new cookie to set when the browser has none yet."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    new_cookie = None
    if len(cookie) < 32:
        cookie = new_cookie = secrets.token_urlsafe(32)
    return _mac(request.app[FORM_SECRET], "csrf", cookie), new_cookie


def set_csrf_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    response.set_cookie(
        CSRF_COOKIE, value, httponly=True, samesite="Strict", secure=request.secure, path="/"
    )


def check_csrf(request: web.Request, form_token: str) -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    expected = _mac(request.app[FORM_SECRET], "csrf", cookie)
    if not cookie or not hmac.compare_digest(expected.encode(), form_token.encode()):
        raise PushgodError(ErrorCode.FORM_EXPIRED, "the form's CSRF token does not match")


def sign_channels(request: web.Request, binding: str, channel_ids: list[str]) -> str:
    """The proven channels, bound to this browser's cookie and this authorization request."""
    payload = base64.urlsafe_b64encode(
        json.dumps([channel_ids, now_ms() + CONSENT_LIFETIME_MS]).encode()
    ).decode()
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return payload + "." + _mac(request.app[FORM_SECRET], "channels", cookie, binding, payload)


def proven_channels(request: web.Request, binding: str, signed: str) -> list[str]:
    """The channels `sign_channels` vouched for; none when absent, tampered with or stale."""
    payload, _, mac = signed.partition(".")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    expected = _mac(request.app[FORM_SECRET], "channels", cookie, binding, payload)
    if not payload or not hmac.compare_digest(expected.encode(), mac.encode()):
        return []
    try:
        channel_ids, expires_at = json.loads(base64.urlsafe_b64decode(payload))
        if expires_at <= now_ms():
            return []
        return [parse_channel_id(channel_id) for channel_id in channel_ids]
    except (ValueError, TypeError, PushgodError):
        return []
