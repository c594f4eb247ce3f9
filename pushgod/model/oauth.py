"""OAuth 2.1 rules: scopes, lifetimes, credential formats, redirect URIs, client metadata.

Pure functions shared by the authorization server (service/oauth.py), the pages and the
MCP resource server. References: RFC 6749 and the OAuth 2.1 draft, RFC 8252 (loopback
redirects on any port), RFC 7591 (dynamic registration), the OAuth Client ID Metadata
Document draft (an https `client_id` naming a JSON document) and RFC 8707 (resources).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.times import DAY_MS, MINUTE_MS


class OAuthScope(StrEnum):
    TOOLS = "mcp:tools"  # send and read through the MCP tools
    CHANNELS_MANAGE = "mcp:channels:manage"  # list, bind and unbind channels


SUPPORTED_SCOPES = tuple(scope.value for scope in OAuthScope)
DEFAULT_SCOPE = OAuthScope.TOOLS.value
"""Granted when an authorization request names no scope, as PushGo does."""

CODE_LIFETIME_MS = 5 * MINUTE_MS
ACCESS_TOKEN_LIFETIME_MS = 15 * MINUTE_MS
REFRESH_TOKEN_IDLE_MS = 7 * DAY_MS
"""A refresh token unused this long expires; each rotation starts the clock again..."""
GRANT_LIFETIME_MS = 30 * DAY_MS
"""...but no refresh token outlives its grant's 30 days: then the user consents again."""
BIND_SESSION_LIFETIME_MS = 10 * MINUTE_MS
CONSENT_LIFETIME_MS = 30 * MINUTE_MS
"""How long a consent page stays usable after it was opened."""
UNUSED_CLIENT_AGE_MS = DAY_MS
"""A registered client that never obtained a grant is forgotten after this long."""
DOCUMENT_CACHE_MIN_MS = 5 * MINUTE_MS
DOCUMENT_CACHE_MAX_MS = DAY_MS
DOCUMENT_CACHE_DEFAULT_MS = 60 * MINUTE_MS

MAX_REGISTERED_CLIENTS = 10_000
MAX_REDIRECT_URIS = 10
MAX_URI_LENGTH = 2_000
MAX_CLIENT_NAME = 200
MAX_GRANT_CHANNELS = 50

ACCESS_TOKEN_PREFIX = "pgdo_"
REFRESH_TOKEN_PREFIX = "pgdr_"
CLIENT_ID_PREFIX = "pgdc_"
BIND_SESSION_PREFIX = "pgdb_"

AUTH_METHODS = ("none", "client_secret_post", "client_secret_basic")
GRANT_TYPES = ("authorization_code", "refresh_token")

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_FORBIDDEN_SCHEMES = frozenset(
    {"javascript", "data", "file", "vbscript", "about", "blob", "ftp", "ws", "wss"}
)
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


class BindAction(StrEnum):
    BIND = "bind"
    REVOKE = "revoke"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who an access token speaks for: one grant of one client, with its scopes."""

    grant_id: str
    client_id: str
    scopes: frozenset[str]
    resource: str


@dataclass(frozen=True, slots=True)
class ClientMetadata:
    """What a client says about itself, registered or published as a document."""

    name: str | None
    redirect_uris: tuple[str, ...]
    auth_method: str
    grant_types: tuple[str, ...]


def new_credential(prefix: str) -> str:
    """A bearer credential: a kind prefix and 256 random bits."""
    return prefix + secrets.token_urlsafe(32)


def scope_list(scope: str | None) -> list[str]:
    return (scope or "").split()


def is_loopback_redirect(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


def redirect_matches(registered: str, requested: str) -> bool:
    """Exact match, except that a loopback redirect may name any port (RFC 8252 §7.3).

    Claude Code registers `http://localhost/callback` and listens on an ephemeral port.
    """
    if registered == requested:
        return True
    if not (is_loopback_redirect(registered) and is_loopback_redirect(requested)):
        return False
    a, b = urlsplit(registered), urlsplit(requested)
    return (a.hostname, a.path or "/", a.query) == (b.hostname, b.path or "/", b.query)


def check_redirect_uri(uri: object) -> str:
    """A redirect URI a client may register: https, http on loopback, or an app's own scheme."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI_LENGTH:
        raise PushgodError(
            ErrorCode.INVALID_REDIRECT_URI,
            f"redirect_uris must hold URIs of at most {MAX_URI_LENGTH} characters",
        )
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise PushgodError(ErrorCode.INVALID_REDIRECT_URI, "a redirect URI is malformed") from None
    scheme = parts.scheme
    if not _SCHEME.fullmatch(scheme) or parts.fragment or "#" in uri:
        raise PushgodError(
            ErrorCode.INVALID_REDIRECT_URI, "a redirect URI must be absolute, without a fragment"
        )
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in uri):
        raise PushgodError(
            ErrorCode.INVALID_REDIRECT_URI, "a redirect URI must not contain spaces or controls"
        )
    if scheme in _FORBIDDEN_SCHEMES:
        raise PushgodError(
            ErrorCode.INVALID_REDIRECT_URI, f"{scheme}: URIs cannot be redirect URIs"
        )
    if scheme in ("http", "https") and not parts.hostname:
        raise PushgodError(ErrorCode.INVALID_REDIRECT_URI, "a redirect URI needs a host")
    if scheme == "http" and not is_loopback_redirect(uri):
        raise PushgodError(
            ErrorCode.INVALID_REDIRECT_URI,
            "http redirect URIs must be loopback (127.0.0.1, localhost or [::1]); use https",
        )
    return uri


def parse_client_metadata(body: object, *, public_only: bool = False) -> ClientMetadata:
    """RFC 7591 client metadata: the fields pushgod uses, checked; the rest is ignored."""
    if not isinstance(body, Mapping):
        raise PushgodError(ErrorCode.INVALID_CLIENT_METADATA, "the metadata must be a JSON object")
    uris = body.get("redirect_uris")
    if not isinstance(uris, list) or not 1 <= len(uris) <= MAX_REDIRECT_URIS:
        raise PushgodError(
            ErrorCode.INVALID_REDIRECT_URI,
            f"redirect_uris must be a list of 1 to {MAX_REDIRECT_URIS} URIs",
        )
    redirect_uris = tuple(dict.fromkeys(check_redirect_uri(uri) for uri in uris))
    name = body.get("client_name")
    if name is not None and (
        not isinstance(name, str) or not name.strip() or len(name) > MAX_CLIENT_NAME
    ):
        raise PushgodError(
            ErrorCode.INVALID_CLIENT_METADATA,
            f"client_name must be text of 1 to {MAX_CLIENT_NAME} characters",
        )
    method = body.get("token_endpoint_auth_method", "none")
    allowed_methods = ("none",) if public_only else AUTH_METHODS
    if method not in allowed_methods:
        raise PushgodError(
            ErrorCode.INVALID_CLIENT_METADATA,
            f"token_endpoint_auth_method must be one of {', '.join(allowed_methods)}",
        )
    grant_types = body.get("grant_types", list(GRANT_TYPES))
    if (
        not isinstance(grant_types, list)
        or not grant_types
        or not set(grant_types) <= set(GRANT_TYPES)
        or "authorization_code" not in grant_types
    ):
        raise PushgodError(
            ErrorCode.INVALID_CLIENT_METADATA,
            "grant_types must include authorization_code and may add refresh_token",
        )
    response_types = body.get("response_types", ["code"])
    if response_types != ["code"]:
        raise PushgodError(ErrorCode.INVALID_CLIENT_METADATA, 'response_types must be ["code"]')
    scope = body.get("scope")
    if scope is not None and (
        not isinstance(scope, str) or not set(scope_list(scope)) <= set(SUPPORTED_SCOPES)
    ):
        raise PushgodError(
            ErrorCode.INVALID_CLIENT_METADATA,
            f"scope may only name {' and '.join(SUPPORTED_SCOPES)}",
        )
    return ClientMetadata(
        name=name.strip() if isinstance(name, str) else None,
        redirect_uris=redirect_uris,
        auth_method=str(method),
        grant_types=tuple(dict.fromkeys(str(g) for g in grant_types)),
    )


def is_document_client_id(client_id: str) -> bool:
    """A client ID metadata document's URL rather than an id pushgod issued."""
    return client_id.startswith("https://")


def parse_metadata_document(url: str, document: object) -> ClientMetadata:
    """A client ID metadata document: its `client_id` must be exactly the URL it came from."""
    if not isinstance(document, Mapping) or document.get("client_id") != url:
        raise PushgodError(
            ErrorCode.INVALID_CLIENT_METADATA,
            "the client metadata document's client_id is not the URL it was fetched from",
        )
    return parse_client_metadata(document, public_only=True)


def check_resource(resource: str | None, expected: str) -> str:
    """RFC 8707: the resource a token is for; only pushgod's MCP endpoint is one.

    Clients that name none (older MCP clients, PushGo scripts) get the MCP endpoint.
    """
    if resource is None:
        return expected
    if resource.rstrip("/") != expected:
        raise PushgodError(
            ErrorCode.INVALID_TARGET, f"resource must be {expected}, the MCP endpoint"
        )
    return expected


def redirect_host(uri: str) -> str:
    """What the consent page shows of a redirect URI: its host, or its scheme for apps."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return parts.netloc
    return f"{parts.scheme}:"
