"""Paired clients, their one-time pairing codes, and each channel's sealing policy."""

from typing import Any

STATEMENTS = (
    # The comma-separated fields the channel seals (model/sealing.py); NULL: none.
    "ALTER TABLE channels ADD COLUMN e2ee TEXT",
    # A client is its token: revoking the token (or the channel) removes the client.
    """CREATE TABLE clients (
        id TEXT PRIMARY KEY REFERENCES tokens (id) ON DELETE CASCADE,
        channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        public_key TEXT NOT NULL,
        created_at INTEGER NOT NULL
    )""",
    "CREATE INDEX clients_by_channel ON clients (channel_id, created_at)",
    """CREATE TABLE pairing_codes (
        hash TEXT PRIMARY KEY,
        channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
        name TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
)


def up(migrator: Any, db: Any) -> None:
    for statement in STATEMENTS:
        db.execute_sql(statement)
