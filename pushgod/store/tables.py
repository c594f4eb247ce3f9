"""The tables as peewee `Table` objects, bound to one database per store (no global models)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from peewee import SqliteDatabase, Table


class Tables:
    """Every table of the schema, bound to `db`; each thread gets its own connection.

    Columns are attributes created at run time (`tables.messages.seq`), which no type
    checker can see, hence `Any`. The per-request paths (credential lookups, the inserts
    of a send) use SQL text through `execute` instead: building a query with
    peewee costs ~190 us here against ~8 us for running the statement (bench/README.md).
    """

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run SQL text on this thread's connection.

        The per-request paths use this rather than peewee's execute_sql, whose wrapper
        costs a few microseconds per statement; on a Raspberry Pi those add up.
        """
        cursor: sqlite3.Cursor = self.db.connection().execute(sql, params)
        return cursor

    def __init__(self, db: SqliteDatabase) -> None:
        self.db: Any = db
        self.channels: Any = Table(
            "channels",
            (
                "id",
                "name",
                "password_hash",
                "retention_count",
                "retention_age_ms",
                "created_at",
                "updated_at",
                "e2ee",
            ),
        ).bind(db)
        self.tokens: Any = Table(
            "tokens",
            (
                "id",
                "hash",
                "channel_id",
                "scopes",
                "label",
                "created_at",
                "expires_at",
                "last_used_at",
            ),
        ).bind(db)
        self.changes: Any = Table(
            "changes", ("seq", "channel_id", "kind", "entity_id", "action", "at", "data")
        ).bind(db)
        self.messages: Any = Table(
            "messages", ("seq", "id", "channel_id", "created_at", "expires_at", "data")
        ).bind(db)
        self.events: Any = Table(
            "events", ("channel_id", "id", "state", "updated_at", "data")
        ).bind(db)
        self.things: Any = Table(
            "things", ("channel_id", "id", "state", "updated_at", "data")
        ).bind(db)
        self.ops: Any = Table("ops", ("channel_id", "key", "created_at", "result")).bind(db)
        self.clients: Any = Table(
            "clients", ("id", "channel_id", "name", "public_key", "created_at")
        ).bind(db)
        self.pairing_codes: Any = Table(
            "pairing_codes", ("hash", "channel_id", "name", "created_at", "expires_at")
        ).bind(db)
        self.devices: Any = Table(
            "devices",
            (
                "thing_id",
                "channel_id",
                "provisioning",
                "password_hash",
                "created_at",
                "rotated_at",
                "updates",
            ),
        ).bind(db)
