"""OAuth: registered clients, grants and the channels they cover, codes, tokens, bind sessions.

Codes, tokens and bind session ids are stored as SHA-256 hashes, never as issued. A grant
is the principal an assistant acts as: deleting it deletes its codes, tokens and bind
sessions, and deleting a channel removes it from every grant.
"""

from typing import Any

STATEMENTS = (
    # Registered clients and cached client ID metadata documents (kind 'document',
    # fetched again after expires_at). Clients from the configuration are not stored.
    """CREATE TABLE oauth_clients (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        secret_hash TEXT,
        name TEXT,
        redirect_uris TEXT NOT NULL,
        auth_method TEXT NOT NULL,
        grant_types TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER
    ) WITHOUT ROWID""",
    """CREATE TABLE oauth_grants (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        resource TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        last_used_at INTEGER
    ) WITHOUT ROWID""",
    "CREATE INDEX oauth_grants_by_client ON oauth_grants (client_id)",
    """CREATE TABLE oauth_grant_channels (
        grant_id TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
        channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
        added_at INTEGER NOT NULL,
        PRIMARY KEY (grant_id, channel_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX oauth_grant_channels_by_channel ON oauth_grant_channels (channel_id)",
    # A used code is kept until it expires, so that its second use is recognised.
    """CREATE TABLE oauth_codes (
        hash TEXT PRIMARY KEY,
        grant_id TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
        redirect_uri TEXT NOT NULL,
        code_challenge TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER
    ) WITHOUT ROWID""",
    "CREATE INDEX oauth_codes_by_grant ON oauth_codes (grant_id)",
    # A rotated refresh token is kept until it expires, so that its reuse is recognised.
    """CREATE TABLE oauth_tokens (
        hash TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        grant_id TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
        scope TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        rotated_at INTEGER
    ) WITHOUT ROWID""",
    "CREATE INDEX oauth_tokens_by_grant ON oauth_tokens (grant_id)",
    """CREATE TABLE bind_sessions (
        hash TEXT PRIMARY KEY,
        grant_id TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
        action TEXT NOT NULL,
        requested_channel_id TEXT,
        redirect_uri TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        completed_at INTEGER,
        channel_id TEXT,
        reported INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID""",
    "CREATE INDEX bind_sessions_by_grant ON bind_sessions (grant_id)",
)


def up(migrator: Any, db: Any) -> None:
    for statement in STATEMENTS:
        db.execute_sql(statement)
