"""authlib's OAuth 2.1 server classes, bound to pushgod's store.

authlib is synchronous and framework-neutral: it reads through the hooks below (inline,
sub-millisecond SQLite reads on the loop) and decides. Its writes are not run inline:
each hook appends a callable to `Request.writes`, and service/oauth.py commits them in
one transaction before any response leaves, so a code or token is never handed out
before it is durable, and two exchanges of one code cannot both succeed.

What OAuth 2.1 and MCP need beyond authlib's defaults: PKCE with S256 only and always,
RFC 8707 `resource` (on the authorization and the token request, bound to the grant),
refresh tokens that rotate, and public clients (`none`) at every endpoint.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from authlib.oauth2 import AuthorizationServer as AuthlibServer
from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
    grants,
)
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge

from pushgod.model.errors import PushgodError
from pushgod.model.oauth import (
    ACCESS_TOKEN_LIFETIME_MS,
    ACCESS_TOKEN_PREFIX,
    CODE_LIFETIME_MS,
    DEFAULT_SCOPE,
    GRANT_LIFETIME_MS,
    REFRESH_TOKEN_IDLE_MS,
    REFRESH_TOKEN_PREFIX,
    SUPPORTED_SCOPES,
    check_resource,
    is_loopback_redirect,
    new_credential,
    redirect_matches,
    scope_list,
)
from pushgod.model.tokens import token_hash
from pushgod.store import oauth as rows
from pushgod.store.oauth import CodeRow, GrantRow, OAuthClientRow, OAuthTokenRow
from pushgod.store.tables import Tables
from pushgod.store.writer import WriteTx

Write = Callable[[WriteTx], None]
CLIENT_AUTH_METHODS = ["none", "client_secret_post", "client_secret_basic"]
Pairs = Sequence[tuple[str, str]]


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707: the `resource` is not one this server issues tokens for."""

    error = "invalid_target"


class Client(ClientMixin):  # type: ignore[misc]
    """A client as authlib sees it. Clients from the configuration (`any_redirect`) are
    trusted with any https or loopback redirect URI, as in PushGo; others must match."""

    def __init__(self, row: OAuthClientRow, *, any_redirect: bool = False) -> None:
        self.row = row
        self._any_redirect = any_redirect

    def get_client_id(self) -> str:
        return self.row.id

    def get_default_redirect_uri(self) -> None:
        return None  # OAuth 2.1: the request always names its redirect URI

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return DEFAULT_SCOPE
        return " ".join(s for s in dict.fromkeys(scope_list(scope)) if s in SUPPORTED_SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        if self._any_redirect:
            return redirect_uri.startswith("https://") or is_loopback_redirect(redirect_uri)
        return any(redirect_matches(uri, redirect_uri) for uri in self.row.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.row.secret_hash
        return stored is not None and hmac.compare_digest(token_hash(client_secret), stored)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.row.auth_method == "none":
            return method == "none"
        return method in ("client_secret_post", "client_secret_basic")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types


class Owner:
    """The resource owner of one authorization: the channels the user proved, by password."""

    def __init__(self, channel_ids: list[str]) -> None:
        self.channel_ids = channel_ids


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, query: Pairs, form: Pairs) -> None:
        self._pairs = [*query, *form]

    @property
    def data(self) -> dict[str, str]:
        return dict(self._pairs)

    @property
    def datalist(self) -> dict[str, list[str]]:
        values: dict[str, list[str]] = {}
        for name, value in self._pairs:
            values.setdefault(name, []).append(value)
        return values


class Request(OAuth2Request):  # type: ignore[misc]
    """One OAuth request, already read from the wire; carries the writes it needs.

    authlib's constructor refuses http:// URLs off loopback; pushgod decides its own
    transport policy (it warns at start-up), so the check is not run here.
    """

    def __init__(
        self,
        method: str,
        uri: str,
        headers: dict[str, str],
        query: Pairs,
        form: Pairs,
        resource: str,
    ) -> None:
        self.method = method
        self.uri = uri
        self.headers = headers
        self._body = None
        self.payload = _Payload(query, form)
        # Set by authlib as it validates: the Client, the Owner, a Code or a Token.
        self.client: Any = None
        self.auth_method: str | None = None
        self.user: Any = None
        self.authorization_code: Any = None
        self.refresh_token: Any = None
        self.credential: Any = None
        self._scope: str | None = None
        self._query = dict(query)
        self._form = dict(form)
        self.resource = resource  # this server's protected resource (the MCP endpoint)
        self.writes: list[Write] = []
        self.revoke_grants: list[str] = []

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


class Code:
    """An authorization code row with the methods authlib asks of one."""

    def __init__(self, row: CodeRow, grant: GrantRow) -> None:
        self.row = row
        self.grant = grant

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.grant.scope


class Token:
    """A token row with the methods authlib's refresh and revocation code ask of one."""

    def __init__(self, row: OAuthTokenRow, grant: GrantRow) -> None:
        self.row = row
        self.grant = grant

    def check_client(self, client: Client) -> bool:
        return self.grant.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.row.scope


class S256Challenge(CodeChallenge):  # type: ignore[misc]
    """PKCE as OAuth 2.1 has it: required of every client, S256 only, never `plain`."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: grants.BaseGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("code_challenge is required (PKCE with S256)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: Code) -> str:
        return authorization_code.row.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: Code) -> str:
        return "S256"


def _requested_resource(request: Request) -> str | None:
    values = request.payload.datalist.get("resource", [])
    if len(values) > 1:
        raise InvalidTargetError("one resource at a time")
    return values[0] if values else None


def _check_resource(request: Request, bound: str) -> None:
    try:
        if check_resource(_requested_resource(request), request.resource) != bound:
            raise InvalidTargetError("the token was granted for another resource")
    except PushgodError as error:
        raise InvalidTargetError(error.message) from None


class ResourceIndicator:
    """RFC 8707 on the authorization request: the resource must be the MCP endpoint."""

    def __call__(self, grant: grants.BaseGrant) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self._validate)

    def _validate(self, grant: grants.BaseGrant, redirect_uri: str) -> None:
        _check_resource(grant.request, grant.request.resource)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def save_authorization_code(self, code: str, request: Request) -> None:
        now = self.server.clock()
        owner: Owner = request.user
        grant = GrantRow(
            id=secrets.token_hex(8),
            client_id=request.client.get_client_id(),
            scope=request.scope,
            resource=request.resource,
            created_at=now,
            expires_at=now + GRANT_LIFETIME_MS,
            last_used_at=None,
        )
        code_row = CodeRow(
            hash=token_hash(code),
            grant_id=grant.id,
            redirect_uri=request.payload.redirect_uri,
            code_challenge=request.payload.data["code_challenge"],
            expires_at=now + CODE_LIFETIME_MS,
            used_at=None,
        )

        def write(tx: WriteTx) -> None:
            rows.insert_grant(tx, grant, owner.channel_ids)
            rows.insert_code(tx, code_row)

        request.writes.append(write)

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        tables: Tables = self.server.tables
        row = rows.code(tables, token_hash(code))
        grant = rows.grant(tables, row.grant_id) if row else None
        if row is None or grant is None or grant.client_id != client.get_client_id():
            return None
        if row.used_at is not None:
            # RFC 6749 §4.1.2: a code used twice revokes what its first use issued.
            self.request.revoke_grants.append(grant.id)
            return None
        if row.expires_at <= self.server.clock():
            return None
        return Code(row, grant)

    def validate_token_request(self) -> None:
        super().validate_token_request()
        _check_resource(self.request, self.request.authorization_code.grant.resource)

    def delete_authorization_code(self, authorization_code: Code) -> None:
        """Nothing: save_token marks the code used in the same transaction as the tokens."""

    def authenticate_user(self, authorization_code: Code) -> GrantRow:
        return authorization_code.grant


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        tables: Tables = self.server.tables
        row = rows.token(tables, token_hash(refresh_token))
        if row is None or row.kind != "refresh":
            return None
        grant = rows.grant(tables, row.grant_id)
        if grant is None:
            return None
        if row.rotated_at is not None:
            # A rotated token used again was stolen, or its successor was: end the grant.
            self.request.revoke_grants.append(grant.id)
            return None
        if row.expires_at <= self.server.clock():
            return None
        return Token(row, grant)

    def validate_token_request(self) -> None:
        super().validate_token_request()
        _check_resource(self.request, self.request.refresh_token.grant.resource)

    def authenticate_user(self, refresh_token: Token) -> GrantRow:
        return refresh_token.grant

    def revoke_old_credential(self, refresh_token: Token) -> None:
        """Nothing: save_token rotates the old token in the same transaction."""


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009. Revoking a refresh token ends its grant; an access token goes alone."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        tables: Tables = self.server.tables
        row = rows.token(tables, token_hash(token_string))
        grant = rows.grant(tables, row.grant_id) if row else None
        return Token(row, grant) if row and grant else None

    def revoke_token(self, token: Token, request: Request) -> None:
        if token.row.kind == "refresh":
            request.revoke_grants.append(token.grant.id)
        else:
            token_row = token.row
            request.writes.append(lambda tx: rows.delete_token(tx, token_row.hash))


class AuthorizationServer(AuthlibServer):  # type: ignore[misc]
    def __init__(
        self,
        tables: Tables,
        clients: Callable[[str], Client | None],
        clock: Callable[[], int],
    ) -> None:
        super().__init__(scopes_supported=list(SUPPORTED_SCOPES))
        self.tables = tables
        self.clock = clock
        self._clients = clients
        self.register_token_generator("default", self._generate_token)
        self.register_grant(
            AuthorizationCodeGrant, [S256Challenge(required=True), ResourceIndicator()]
        )
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(Revocation)

    def query_client(self, client_id: str) -> Client | None:
        return self._clients(client_id)

    def _generate_token(
        self,
        grant_type: str,
        client: Client,
        user: GrantRow | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": new_credential(ACCESS_TOKEN_PREFIX),
            "expires_in": ACCESS_TOKEN_LIFETIME_MS // 1000,
            "scope": scope,
        }
        if include_refresh_token and client.check_grant_type("refresh_token"):
            token["refresh_token"] = new_credential(REFRESH_TOKEN_PREFIX)
        return token

    def save_token(self, token: dict[str, Any], request: Request) -> None:
        now = self.clock()
        code: Code | None = request.authorization_code
        previous: Token | None = request.refresh_token
        grant = code.grant if code else previous.grant if previous else None
        if grant is None:
            raise InvalidGrantError()
        issued = [
            OAuthTokenRow(
                token_hash(token["access_token"]),
                "access",
                grant.id,
                token["scope"],
                now,
                now + ACCESS_TOKEN_LIFETIME_MS,
                None,
            )
        ]
        if "refresh_token" in token:
            issued.append(
                OAuthTokenRow(
                    token_hash(token["refresh_token"]),
                    "refresh",
                    grant.id,
                    token["scope"],
                    now,
                    min(now + REFRESH_TOKEN_IDLE_MS, grant.expires_at),
                    None,
                )
            )

        def write(tx: WriteTx) -> None:
            if code is not None:
                rows.use_code(tx, code.row, now)
            if previous is not None:
                rows.rotate_token(tx, previous.row, now)
            for row in issued:
                rows.insert_token(tx, row)
            rows.touch_grant(tx, grant.id, now)

        request.writes.append(write)

    def create_oauth2_request(self, request: Request) -> Request:
        return request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, headers

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """authlib's hook for framework signals; pushgod has none."""
