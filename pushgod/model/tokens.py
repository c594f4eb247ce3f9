"""Scoped bearer tokens: scopes, the token format and how tokens are stored (hashed)."""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum

from pushgod.model.errors import ErrorCode, PushgodError

TOKEN_PREFIX = "pgd_"


class Scope(StrEnum):
    PUBLISH = "publish"  # send Messages, Events and Things
    SUBSCRIBE = "subscribe"  # read history and state
    THINGS = "things"  # create and update Things only (devices)
    ADMIN = "admin"  # everything, every channel, and the admin API


CHANNEL_SCOPES = frozenset({Scope.PUBLISH, Scope.SUBSCRIBE, Scope.THINGS})


def parse_scopes(text: str) -> frozenset[Scope]:
    """Comma-separated channel scopes, e.g. `publish,subscribe`."""
    scopes = set()
    for part in text.split(","):
        name = part.strip().lower()
        if not name:
            continue
        try:
            scope = Scope(name)
        except ValueError:
            raise PushgodError(
                ErrorCode.INVALID_SCOPE,
                f"unknown scope {name!r}: use publish, subscribe or things",
            ) from None
        if scope not in CHANNEL_SCOPES:
            raise PushgodError(
                ErrorCode.INVALID_SCOPE, "admin is not a channel scope: create an admin token"
            )
        scopes.add(scope)
    if not scopes:
        raise PushgodError(ErrorCode.INVALID_SCOPE, "at least one scope is required")
    return frozenset(scopes)


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Tokens carry 256 random bits, so a plain SHA-256 is a safe way to store them."""
    return hashlib.sha256(token.encode()).hexdigest()
