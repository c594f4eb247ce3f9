"""OAuth for AI assistants: clients, consent, tokens, the resource check, administration.

An assistant never holds a channel password. The user opens the consent page, proves
each channel with its password, and allows; the client gets a grant covering exactly
those channels, and tokens scoped to the MCP endpoint. The grant is the principal the
assistant acts as: revoking it ends its tokens at once.

Protocol decisions are authlib's (service/oauth_server.py); this module fetches what
authlib cannot (client ID metadata documents), commits what authlib decided, and owns
everything else.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2.rfc6749 import InvalidClientError, InvalidGrantError, OAuth2Error

from pushgod.config import parse_clients
from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.ids import parse_channel_id
from pushgod.model.oauth import (
    ACCESS_TOKEN_PREFIX,
    CLIENT_ID_PREFIX,
    DOCUMENT_CACHE_DEFAULT_MS,
    DOCUMENT_CACHE_MAX_MS,
    DOCUMENT_CACHE_MIN_MS,
    GRANT_TYPES,
    MAX_GRANT_CHANNELS,
    MAX_REGISTERED_CLIENTS,
    Principal,
    is_document_client_id,
    parse_client_metadata,
    parse_metadata_document,
    scope_list,
)
from pushgod.model.tokens import token_hash
from pushgod.service.auth import Credentials
from pushgod.service.context import Context
from pushgod.store import oauth as rows
from pushgod.store.channels import ChannelRow
from pushgod.store.oauth import CredentialReused, GrantRow, OAuthClientRow
from pushgod.store.writer import WriteTx

from .oauth_server import AuthorizationServer, Client, Owner, Request

log = logging.getLogger(__name__)

Response = tuple[int, Any, list[tuple[str, str]]]
"""Status, body (a dict for JSON, else text) and headers, as authlib produces them."""


@dataclass(frozen=True, slots=True)
class Consent:
    """A valid authorization request, as the consent page shows it."""

    client_id: str
    client_name: str
    redirect_uri: str
    scopes: list[str]


@dataclass(frozen=True, slots=True)
class GrantInfo:
    grant: GrantRow
    channel_ids: list[str]
    access_tokens: int
    refresh_tokens: int

    def public(self) -> dict[str, Any]:
        return {
            "grant_id": self.grant.id,
            "client_id": self.grant.client_id,
            "scope": self.grant.scope,
            "resource": self.grant.resource,
            "channel_ids": self.channel_ids,
            "created_at": self.grant.created_at,
            "expires_at": self.grant.expires_at,
            "last_used_at": self.grant.last_used_at,
            "access_tokens": self.access_tokens,
            "refresh_tokens": self.refresh_tokens,
        }


def client_public(row: OAuthClientRow, grants: int) -> dict[str, Any]:
    return {
        "client_id": row.id,
        "kind": row.kind,
        "client_name": row.name,
        "redirect_uris": list(row.redirect_uris),
        "token_endpoint_auth_method": row.auth_method,
        "created_at": row.created_at or None,
        "grants": grants,
    }


class OAuth:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._configured = {
            client_id: OAuthClientRow(
                id=client_id,
                kind="configured",
                secret_hash=token_hash(secret),
                name=client_id,
                redirect_uris=(),
                auth_method="client_secret_post",
                grant_types=GRANT_TYPES,
                created_at=0,
                expires_at=None,
            )
            for client_id, secret in parse_clients(ctx.settings.oauth.predefined_clients)
        }
        self._server = AuthorizationServer(ctx.store.tables, self.client, ctx.clock)

    # -- clients -----------------------------------------------------------------------

    def client(self, client_id: str) -> Client | None:
        configured = self._configured.get(client_id)
        if configured is not None:
            return Client(configured, any_redirect=True)
        row = rows.client(self._ctx.store.tables, client_id)
        if row is None:
            return None
        if row.kind == "document" and (row.expires_at or 0) <= self._ctx.clock():
            return None
        return Client(row)

    async def resolve_client(self, client_id: str | None) -> None:
        """Fetch the client ID metadata document `client_id` names, unless cached.

        Raises invalid_client_metadata when it cannot be fetched or does not hold.
        """
        settings = self._ctx.settings.oauth
        if not client_id or not is_document_client_id(client_id) or not settings.client_documents:
            return
        if self.client(client_id) is not None:
            return
        from pushgod.service.client_metadata import fetch_client_metadata  # only when used

        document, max_age_s = await fetch_client_metadata(
            client_id, allow_private=settings.client_documents_private_hosts
        )
        metadata = parse_metadata_document(client_id, document)
        cache_ms = DOCUMENT_CACHE_DEFAULT_MS if max_age_s is None else max_age_s * 1000
        now = self._ctx.clock()
        row = OAuthClientRow(
            id=client_id,
            kind="document",
            secret_hash=None,
            name=metadata.name,
            redirect_uris=metadata.redirect_uris,
            auth_method="none",
            grant_types=metadata.grant_types,
            created_at=now,
            expires_at=now + min(max(cache_ms, DOCUMENT_CACHE_MIN_MS), DOCUMENT_CACHE_MAX_MS),
        )
        await self._ctx.store.write(lambda tx: rows.save_client(tx, row))

    async def register(self, body: object) -> dict[str, Any]:
        """RFC 7591 dynamic registration; public clients (`none`) get no secret."""
        if not self._ctx.settings.oauth.registration:
            raise PushgodError(ErrorCode.ROUTE_NOT_FOUND, "dynamic registration is turned off")
        metadata = parse_client_metadata(body)
        now = self._ctx.clock()
        secret = None if metadata.auth_method == "none" else secrets.token_urlsafe(32)
        row = OAuthClientRow(
            id=CLIENT_ID_PREFIX + secrets.token_urlsafe(16),
            kind="registered",
            secret_hash=token_hash(secret) if secret else None,
            name=metadata.name,
            redirect_uris=metadata.redirect_uris,
            auth_method=metadata.auth_method,
            grant_types=metadata.grant_types,
            created_at=now,
            expires_at=None,
        )

        def write(tx: WriteTx) -> None:
            if rows.count_registered(tx.tables) >= MAX_REGISTERED_CLIENTS:
                raise PushgodError(
                    ErrorCode.SERVER_BUSY, "too many registered clients", retry_after=3600
                )
            rows.save_client(tx, row)

        await self._ctx.store.write(write)
        response: dict[str, Any] = {
            "client_id": row.id,
            "client_id_issued_at": now // 1000,
            "redirect_uris": list(row.redirect_uris),
            "grant_types": list(row.grant_types),
            "response_types": ["code"],
            "token_endpoint_auth_method": row.auth_method,
        }
        if row.name is not None:
            response["client_name"] = row.name
        if secret is not None:
            response["client_secret"] = secret
            response["client_secret_expires_at"] = 0
        return response

    # -- the authorization endpoint ----------------------------------------------------

    async def consent(self, request: Request) -> Consent:
        """Check an authorization request before the consent page shows it.

        Raises authlib's OAuth2Error: with `redirect_uri` set once the client and its
        redirect URI are known to be good (the error goes back to the client), without
        it otherwise (the user sees an error page; never redirect to an unchecked URI).
        """
        try:
            await self.resolve_client(request.payload.client_id)
        except PushgodError as error:
            raise InvalidClientError(description=error.message) from None
        grant = self._server.get_consent_grant(request=request)
        client: Client = request.client
        return Consent(
            client_id=client.get_client_id(),
            client_name=client.row.name or client.get_client_id(),
            redirect_uri=grant.redirect_uri,
            scopes=scope_list(request.scope),
        )

    async def decide(self, request: Request, channel_ids: list[str] | None, issuer: str) -> str:
        """The user allowed (for `channel_ids`) or denied: the URL to send them back to."""
        grant = self._server.get_consent_grant(request=request)
        owner = None
        if channel_ids:
            owner = Owner(list(dict.fromkeys(channel_ids))[:MAX_GRANT_CHANNELS])
        try:
            _, _, headers = self._server.create_authorization_response(
                request=request, grant_user=owner, grant=grant
            )
        except OAuth2Error as error:
            _, _, headers = self._server.handle_error_response(request, error)
        await self._commit(request)
        return with_issuer(dict(headers)["Location"], issuer)

    def error_response(self, request: Request, error: OAuth2Error) -> Response:
        response: Response = self._server.handle_error_response(request, error)
        return response

    # -- the token and revocation endpoints --------------------------------------------

    async def token(self, request: Request) -> Response:
        try:
            await self.resolve_client(request.payload.client_id)
        except PushgodError as error:
            return self.error_response(request, InvalidClientError(description=error.message))
        response: Response = self._server.create_token_response(request)
        if response[0] == 200:
            try:
                await self._commit(request)
            except CredentialReused as reused:
                request.revoke_grants.append(reused.grant_id)
                response = self.error_response(request, InvalidGrantError("already used"))
        if request.revoke_grants:
            await self._revoke(request.revoke_grants)
            log.warning(
                "revoked OAuth grant %s: a code or refresh token was used again",
                ", ".join(request.revoke_grants),
            )
        return response

    async def revoke(self, request: Request) -> Response:
        try:
            await self.resolve_client(request.payload.client_id)
        except PushgodError as error:
            return self.error_response(request, InvalidClientError(description=error.message))
        response: Response = self._server.create_endpoint_response("revocation", request)
        if response[0] == 200:
            await self._commit(request)
            await self._revoke(request.revoke_grants)  # the client revoked a refresh token
        return response

    async def _commit(self, request: Request) -> None:
        writes = list(request.writes)
        if writes:
            await self._ctx.store.write(lambda tx: [write(tx) for write in writes])

    async def _revoke(self, grant_ids: list[str]) -> None:
        if not grant_ids:
            return

        def write(tx: WriteTx) -> None:
            for grant_id in grant_ids:
                rows.delete_grant(tx, grant_id)

        await self._ctx.store.write(write)
        self._ctx.hub.access_changed()

    # -- the resource server -----------------------------------------------------------

    def authenticate(self, bearer: str | None, resource: str) -> Principal:
        """The principal of a live access token issued for `resource`, else raise."""
        found = None
        if bearer is not None and bearer.startswith(ACCESS_TOKEN_PREFIX):
            found = rows.token_and_grant(self._ctx.store.tables, token_hash(bearer))
        if found is None or found[0].kind != "access" or found[0].expires_at <= self._ctx.clock():
            raise PushgodError(
                ErrorCode.AUTHENTICATION_FAILED, "the access token is unknown, revoked or expired"
            )
        row, grant = found
        if grant.resource != resource:
            raise PushgodError(
                ErrorCode.AUTHENTICATION_FAILED, "the access token was issued for another resource"
            )
        return Principal(grant.id, grant.client_id, frozenset(scope_list(row.scope)), resource)

    def channel_ids(self, principal: Principal) -> list[str]:
        return rows.grant_channels(self._ctx.store.tables, principal.grant_id)

    async def check_channel(self, channel_id: str, password: str, address: str) -> ChannelRow:
        """A channel a person proved with its password on a page (rate limited per address)."""
        channel_id = parse_channel_id(channel_id)
        credentials = Credentials(address=address, password=password)
        channel: ChannelRow = await self._ctx.auth.channel_access(
            channel_id, credentials, frozenset()
        )
        return channel

    # -- administration ----------------------------------------------------------------

    def clients(self, actor: Credentials | None) -> list[dict[str, Any]]:
        self._ctx.auth.admin(actor)
        tables = self._ctx.store.tables
        stored = [*self._configured.values(), *rows.clients(tables)]
        return [client_public(row, len(rows.grants(tables, row.id))) for row in stored]

    async def revoke_client(self, actor: Credentials | None, client_id: str) -> None:
        """Forget a client and end every grant it holds."""
        self._ctx.auth.admin(actor)
        if client_id in self._configured:
            raise PushgodError(
                ErrorCode.INVALID_FIELD,
                "this client comes from the configuration (oauth.predefined_clients): "
                "remove it there; its grants can be revoked one by one",
            )
        if not await self._ctx.store.write(lambda tx: rows.delete_client(tx, client_id)):
            raise PushgodError(
                ErrorCode.OAUTH_CLIENT_NOT_FOUND, f"OAuth client {client_id} does not exist"
            )
        self._ctx.hub.access_changed()

    def grants(self, actor: Credentials | None) -> list[GrantInfo]:
        self._ctx.auth.admin(actor)
        tables = self._ctx.store.tables
        return [
            GrantInfo(
                grant, rows.grant_channels(tables, grant.id), *rows.token_counts(tables, grant.id)
            )
            for grant in rows.grants(tables)
        ]

    async def revoke_grant(self, actor: Credentials | None, grant_id: str) -> None:
        """End a grant: its access and refresh tokens stop working at once."""
        self._ctx.auth.admin(actor)
        if not await self._ctx.store.write(lambda tx: rows.delete_grant(tx, grant_id)):
            raise PushgodError(ErrorCode.GRANT_NOT_FOUND, f"grant {grant_id} does not exist")
        self._ctx.hub.access_changed()


def with_issuer(location: str, issuer: str) -> str:
    """Add RFC 9207's `iss` to an authorization response, so clients can tell servers apart."""
    parts = urlsplit(location)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("iss", issuer)]
    return urlunsplit(parts._replace(query=urlencode(query)))
