"""The first schema: channels, tokens, the change feed, messages, events, things, ops."""

from typing import Any

STATEMENTS = (
    """CREATE TABLE channels (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        retention_count INTEGER,
        retention_age_ms INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    """CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        channel_id TEXT REFERENCES channels (id) ON DELETE CASCADE,
        scopes TEXT NOT NULL,
        label TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        last_used_at INTEGER
    )""",
    """CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        action TEXT NOT NULL,
        at INTEGER NOT NULL,
        data TEXT
    )""",
    "CREATE INDEX changes_by_channel ON changes (channel_id, seq)",
    # An event's updates and a thing's history are read by entity; a message's change
    # row never is, so messages stay out of this index (a third less work per send).
    # Queries must repeat the condition for SQLite to use the index.
    "CREATE INDEX changes_by_entity ON changes (channel_id, kind, entity_id, seq)"
    " WHERE kind <> 'message'",
    """CREATE TABLE messages (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX messages_by_channel ON messages (channel_id, seq)",
    "CREATE INDEX messages_by_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL",
    """CREATE TABLE events (
        channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        state TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (channel_id, id)
    )""",
    "CREATE INDEX events_by_state ON events (channel_id, state, updated_at)",
    """CREATE TABLE things (
        channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        state TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (channel_id, id)
    )""",
    "CREATE INDEX things_by_state ON things (channel_id, state, updated_at)",
    """CREATE TABLE ops (
        channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        result TEXT NOT NULL,
        PRIMARY KEY (channel_id, key)
    ) WITHOUT ROWID""",
    "CREATE INDEX ops_by_age ON ops (created_at)",
)


def up(migrator: Any, db: Any) -> None:
    for statement in STATEMENTS:
        db.execute_sql(statement)
