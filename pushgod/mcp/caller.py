"""Who calls a tool: an assistant holding an OAuth grant, or a legacy script.

The `/mcp` route verifies the bearer and hands the SDK an `AccessToken`; tools read it back
with `get_access_token()` and turn it into a `Caller`. Two modes, as in PushGo:

* **OAuth** (`oauth2`): the token's grant names the channels; a `password` argument is refused
  (`password_forbidden_in_oauth_mode`), so a model never learns to pass one around.
* **Legacy**: the bearer is the gateway token (`server.gateway_token`, `PUSHGO_TOKEN`), and every
  channel tool call carries the channel's `password` (`password_required_in_legacy_mode`).
  Binding and the channel resources need a grant (`auth_mode_not_supported`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.oauth import Principal
from pushgod.service.auth import Credentials

LEGACY_CLIENT_ID: Final = "pushgo-legacy"


class AuthMode(StrEnum):
    OAUTH = "oauth2"
    LEGACY = "legacy"


@dataclass(frozen=True, slots=True)
class Caller:
    mode: AuthMode
    issuer: str
    address: str
    grant: Principal | None
    bearer: str | None

    def credentials(self, password: str | None) -> Credentials:
        """What the service layer checks for a channel this caller names."""
        if self.grant is not None:
            if password is not None:
                raise PushgodError(
                    ErrorCode.PASSWORD_FORBIDDEN_IN_OAUTH_MODE,
                    "do not send password: this assistant acts on the channels bound to it",
                )
            return Credentials(address=self.address, grant=self.grant)
        if password is None:
            raise PushgodError(
                ErrorCode.PASSWORD_REQUIRED_IN_LEGACY_MODE,
                "password is required: this connection uses the gateway token (legacy mode)",
            )
        return Credentials(address=self.address, bearer=self.bearer, password=password)

    def principal(self) -> Principal:
        """The grant, for the tools that manage it; legacy mode has none."""
        if self.grant is None:
            raise PushgodError(
                ErrorCode.AUTH_MODE_NOT_SUPPORTED,
                "channel binding needs OAuth; this connection uses the gateway token",
            )
        return self.grant


def oauth_token(principal: Principal, bearer: str, issuer: str, address: str) -> AccessToken:
    """The SDK's view of a verified OAuth access token."""
    return AccessToken(
        token=bearer,
        client_id=principal.client_id,
        scopes=sorted(principal.scopes),
        expires_at=None,
        resource=principal.resource,
        subject=principal.grant_id,
        claims={"iss": issuer, "mode": AuthMode.OAUTH, "address": address},
    )


def legacy_token(bearer: str, issuer: str, address: str) -> AccessToken:
    """The SDK's view of a request that presented the gateway token."""
    return AccessToken(
        token=bearer,
        client_id=LEGACY_CLIENT_ID,
        scopes=[],
        expires_at=None,
        claims={"iss": issuer, "mode": AuthMode.LEGACY, "address": address},
    )


def current_caller() -> Caller:
    """The caller of the tool or resource being served (the token `/mcp` verified)."""
    token = get_access_token()
    if token is None:  # /mcp never serves a request without one
        raise PushgodError(ErrorCode.AUTHENTICATION_FAILED, "no access token")
    claims = token.claims or {}
    mode = AuthMode(claims["mode"])
    grant = None
    if mode is AuthMode.OAUTH:
        assert token.subject is not None and token.resource is not None
        grant = Principal(token.subject, token.client_id, frozenset(token.scopes), token.resource)
    return Caller(
        mode=mode,
        issuer=claims["iss"],
        address=claims["address"],
        grant=grant,
        bearer=token.token if mode is AuthMode.LEGACY else None,
    )
