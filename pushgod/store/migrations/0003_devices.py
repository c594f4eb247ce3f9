"""Devices: the MQTT accounts that may update one Thing each."""

from typing import Any

STATEMENTS = (
    # thing_id is also the device's MQTT username, so it is unique across channels.
    # password_hash holds the Mosquitto password-file hash in files mode (the file is
    # rebuilt from it); dynamic security keeps its own, so it is NULL there.
    """CREATE TABLE devices (
        thing_id TEXT PRIMARY KEY,
        channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
        provisioning TEXT NOT NULL,
        password_hash TEXT,
        created_at INTEGER NOT NULL,
        rotated_at INTEGER,
        updates INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID""",
    "CREATE INDEX devices_by_channel ON devices (channel_id, thing_id)",
)


def up(migrator: Any, db: Any) -> None:
    for statement in STATEMENTS:
        db.execute_sql(statement)
