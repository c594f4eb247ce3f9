"""OAuth rows: clients, grants with their channels, codes and tokens (stored hashed)."""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.store.channels import ChannelRow
from pushgod.store.tables import Tables
from pushgod.store.writer import WriteTx


@dataclass(frozen=True, slots=True)
class OAuthClientRow:
    id: str
    kind: str  # registered | document | configured
    secret_hash: str | None
    name: str | None
    redirect_uris: tuple[str, ...]
    auth_method: str
    grant_types: tuple[str, ...]
    created_at: int
    expires_at: int | None


@dataclass(frozen=True, slots=True)
class GrantRow:
    id: str
    client_id: str
    scope: str
    resource: str
    created_at: int
    expires_at: int
    last_used_at: int | None


@dataclass(frozen=True, slots=True)
class CodeRow:
    hash: str
    grant_id: str
    redirect_uri: str
    code_challenge: str
    expires_at: int
    used_at: int | None


@dataclass(frozen=True, slots=True)
class OAuthTokenRow:
    hash: str
    kind: str  # access | refresh
    grant_id: str
    scope: str
    created_at: int
    expires_at: int
    rotated_at: int | None


class CredentialReused(PushgodError):
    """A code or refresh token was used again; the caller revokes its grant."""

    def __init__(self, grant_id: str) -> None:
        super().__init__(ErrorCode.AUTHENTICATION_FAILED, "the credential was already used")
        self.grant_id = grant_id


# -- clients ---------------------------------------------------------------------------

_CLIENT = (
    "SELECT id, kind, secret_hash, name, redirect_uris, auth_method, grant_types,"
    " created_at, expires_at FROM oauth_clients"
)


def _client(row: tuple[object, ...]) -> OAuthClientRow:
    values = list(row)
    values[4] = tuple(json.loads(str(values[4])))
    values[6] = tuple(str(values[6]).split())
    return OAuthClientRow(*values)  # type: ignore[arg-type]


def client(tables: Tables, client_id: str) -> OAuthClientRow | None:
    row = tables.execute(f"{_CLIENT} WHERE id = ?", (client_id,)).fetchone()
    return _client(row) if row else None


def clients(tables: Tables) -> list[OAuthClientRow]:
    rows = tables.execute(f"{_CLIENT} ORDER BY created_at, id").fetchall()
    return [_client(row) for row in rows]


def count_registered(tables: Tables) -> int:
    row = tables.execute("SELECT count(*) FROM oauth_clients WHERE kind = 'registered'").fetchone()
    return int(row[0])


def save_client(tx: WriteTx, row: OAuthClientRow) -> None:
    """Insert a client, or replace a cached metadata document with a fresh copy."""
    values = list(astuple(row))
    values[4] = json.dumps(list(row.redirect_uris))
    values[6] = " ".join(row.grant_types)
    tx.tables.execute(
        "INSERT OR REPLACE INTO oauth_clients (id, kind, secret_hash, name, redirect_uris,"
        " auth_method, grant_types, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        values,
    )


def delete_client(tx: WriteTx, client_id: str) -> bool:
    """Delete a client and every grant it holds (their tokens go with them)."""
    tx.tables.execute("DELETE FROM oauth_grants WHERE client_id = ?", (client_id,))
    return tx.tables.execute("DELETE FROM oauth_clients WHERE id = ?", (client_id,)).rowcount > 0


# -- grants ----------------------------------------------------------------------------

_GRANT = (
    "SELECT id, client_id, scope, resource, created_at, expires_at, last_used_at FROM oauth_grants"
)


def grant(tables: Tables, grant_id: str) -> GrantRow | None:
    row = tables.execute(f"{_GRANT} WHERE id = ?", (grant_id,)).fetchone()
    return GrantRow(*row) if row else None


def grants(tables: Tables, client_id: str | None = None) -> list[GrantRow]:
    if client_id is None:
        rows = tables.execute(f"{_GRANT} ORDER BY created_at, id").fetchall()
    else:
        rows = tables.execute(
            f"{_GRANT} WHERE client_id = ? ORDER BY created_at, id",
            (client_id,),
        ).fetchall()
    return [GrantRow(*row) for row in rows]


def bound_channel(tables: Tables, grant_id: str, channel_id: str) -> ChannelRow | None:
    """The channel, if the grant holds it, in one read: every OAuth tool call checks it."""
    row = tables.execute(
        "SELECT c.id, c.name, c.password_hash, c.retention_count, c.retention_age_ms,"
        " c.created_at, c.updated_at, c.e2ee FROM oauth_grant_channels g"
        " JOIN channels c ON c.id = g.channel_id WHERE g.grant_id = ? AND g.channel_id = ?",
        (grant_id, channel_id),
    ).fetchone()
    return ChannelRow(*row) if row else None


def grant_channels(tables: Tables, grant_id: str) -> list[str]:
    rows = tables.execute(
        "SELECT channel_id FROM oauth_grant_channels WHERE grant_id = ? ORDER BY added_at,"
        " channel_id",
        (grant_id,),
    ).fetchall()
    return [row[0] for row in rows]


def granted_channels(tables: Tables, grant_id: str) -> list[tuple[str, str, int]]:
    """(channel id, channel name, when it joined the grant) of each channel a grant holds."""
    rows = tables.execute(
        "SELECT g.channel_id, c.name, g.added_at FROM oauth_grant_channels g"
        " JOIN channels c ON c.id = g.channel_id WHERE g.grant_id = ?"
        " ORDER BY g.added_at, g.channel_id",
        (grant_id,),
    ).fetchall()
    return [(row[0], row[1], row[2]) for row in rows]


def insert_grant(tx: WriteTx, row: GrantRow, channel_ids: list[str]) -> None:
    tx.tables.execute(
        "INSERT INTO oauth_grants (id, client_id, scope, resource, created_at, expires_at,"
        " last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        astuple(row),
    )
    for channel_id in channel_ids:
        add_grant_channel(tx, row.id, channel_id, row.created_at)


def add_grant_channel(tx: WriteTx, grant_id: str, channel_id: str, at: int) -> None:
    tx.tables.execute(
        "INSERT OR IGNORE INTO oauth_grant_channels (grant_id, channel_id, added_at)"
        " VALUES (?, ?, ?)",
        (grant_id, channel_id, at),
    )


def remove_grant_channel(tx: WriteTx, grant_id: str, channel_id: str) -> bool:
    cursor = tx.tables.execute(
        "DELETE FROM oauth_grant_channels WHERE grant_id = ? AND channel_id = ?",
        (grant_id, channel_id),
    )
    return cursor.rowcount > 0


def delete_grant(tx: WriteTx, grant_id: str) -> bool:
    return tx.tables.execute("DELETE FROM oauth_grants WHERE id = ?", (grant_id,)).rowcount > 0


def touch_grant(tx: WriteTx, grant_id: str, at: int) -> None:
    tx.tables.execute("UPDATE oauth_grants SET last_used_at = ? WHERE id = ?", (at, grant_id))


# -- codes -----------------------------------------------------------------------------


def code(tables: Tables, code_hash: str) -> CodeRow | None:
    row = tables.execute(
        "SELECT hash, grant_id, redirect_uri, code_challenge, expires_at, used_at"
        " FROM oauth_codes WHERE hash = ?",
        (code_hash,),
    ).fetchone()
    return CodeRow(*row) if row else None


def insert_code(tx: WriteTx, row: CodeRow) -> None:
    tx.tables.execute(
        "INSERT INTO oauth_codes (hash, grant_id, redirect_uri, code_challenge, expires_at,"
        " used_at) VALUES (?, ?, ?, ?, ?, ?)",
        astuple(row),
    )


def use_code(tx: WriteTx, row: CodeRow, at: int) -> None:
    """Mark the code used, or raise CredentialReused when another exchange got there first."""
    cursor = tx.tables.execute(
        "UPDATE oauth_codes SET used_at = ? WHERE hash = ? AND used_at IS NULL", (at, row.hash)
    )
    if cursor.rowcount == 0:
        raise CredentialReused(row.grant_id)


# -- tokens ----------------------------------------------------------------------------

_TOKEN_ROWS = (
    "SELECT hash, kind, grant_id, scope, created_at, expires_at, rotated_at"  # noqa: S105
    " FROM oauth_tokens"
)


def token_and_grant(tables: Tables, token_hash: str) -> tuple[OAuthTokenRow, GrantRow] | None:
    """A token and its grant, in one read: every /mcp request with an access token needs both."""
    row = tables.execute(
        "SELECT t.hash, t.kind, t.grant_id, t.scope, t.created_at, t.expires_at, t.rotated_at,"
        " g.id, g.client_id, g.scope, g.resource, g.created_at, g.expires_at, g.last_used_at"
        " FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id WHERE t.hash = ?",
        (token_hash,),
    ).fetchone()
    return (OAuthTokenRow(*row[:7]), GrantRow(*row[7:])) if row else None


def token(tables: Tables, token_hash: str) -> OAuthTokenRow | None:
    row = tables.execute(f"{_TOKEN_ROWS} WHERE hash = ?", (token_hash,)).fetchone()
    return OAuthTokenRow(*row) if row else None


def insert_token(tx: WriteTx, row: OAuthTokenRow) -> None:
    tx.tables.execute(
        "INSERT INTO oauth_tokens (hash, kind, grant_id, scope, created_at, expires_at,"
        " rotated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        astuple(row),
    )


def rotate_token(tx: WriteTx, row: OAuthTokenRow, at: int) -> None:
    """Retire a refresh token for its successor; CredentialReused if it already was."""
    cursor = tx.tables.execute(
        "UPDATE oauth_tokens SET rotated_at = ? WHERE hash = ? AND rotated_at IS NULL",
        (at, row.hash),
    )
    if cursor.rowcount == 0:
        raise CredentialReused(row.grant_id)


def delete_token(tx: WriteTx, token_hash: str) -> None:
    tx.tables.execute("DELETE FROM oauth_tokens WHERE hash = ?", (token_hash,))


def token_counts(tables: Tables, grant_id: str) -> tuple[int, int]:
    """Live (access, refresh) tokens of a grant, for listings."""
    row = tables.execute(
        "SELECT sum(kind = 'access'), sum(kind = 'refresh') FROM oauth_tokens"
        " WHERE grant_id = ? AND rotated_at IS NULL",
        (grant_id,),
    ).fetchone()
    return int(row[0] or 0), int(row[1] or 0)


# -- housekeeping ----------------------------------------------------------------------


def delete_expired(tx: WriteTx, now: int, abandoned_before: int) -> int:
    """Expired codes, tokens, bind sessions and grants, and clients nobody used.

    A grant or registered client created before `abandoned_before` goes once nothing can
    use it any more: a grant with no live refresh token or unused code, a client with no grant.
    """
    execute = tx.tables.execute
    deleted = execute("DELETE FROM oauth_codes WHERE expires_at <= ?", (now,)).rowcount
    deleted += execute("DELETE FROM oauth_tokens WHERE expires_at <= ?", (now,)).rowcount
    deleted += execute("DELETE FROM bind_sessions WHERE expires_at <= ?", (now,)).rowcount
    # A grant lives while it can still mint tokens: it has a live refresh token or code.
    deleted += execute(
        "DELETE FROM oauth_grants WHERE (expires_at <= ? OR created_at <= ?)"
        " AND NOT EXISTS (SELECT 1 FROM oauth_tokens t WHERE t.grant_id = oauth_grants.id"
        "   AND t.kind = 'refresh' AND t.rotated_at IS NULL)"
        " AND NOT EXISTS (SELECT 1 FROM oauth_codes c WHERE c.grant_id = oauth_grants.id"
        "   AND c.used_at IS NULL)",
        (now, abandoned_before),
    ).rowcount
    deleted += execute(
        "DELETE FROM oauth_clients WHERE (kind = 'document' AND expires_at <= ?)"
        " OR (kind = 'registered' AND created_at <= ? AND NOT EXISTS"
        "   (SELECT 1 FROM oauth_grants g WHERE g.client_id = oauth_clients.id))",
        (now, abandoned_before),
    ).rowcount
    return deleted
