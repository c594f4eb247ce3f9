"""Message rows: one per message, numbered by its change-feed sequence number."""

from __future__ import annotations

import json
from typing import Any

from peewee import fn

from pushgod.model.changes import ChangeKind
from pushgod.model.fields import compact_json
from pushgod.store.tables import Tables
from pushgod.store.writer import WriteTx

# Kept in their own columns, so left out of the JSON blob.
_COLUMNS = ("message_id", "channel_id", "created_at", "expires_at", "seq")


def insert(tx: WriteTx, message: dict[str, Any]) -> int:
    """Store a message (as returned by reads, without `seq`) and emit its change; returns seq."""
    change = tx.emit(
        message["channel_id"],
        ChangeKind.MESSAGE,
        message["message_id"],
        "created",
        message["created_at"],
        message,
        store_data=False,
    )
    tx.tables.execute(
        "INSERT INTO messages (seq, id, channel_id, created_at, expires_at, data)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            change.seq,
            message["message_id"],
            message["channel_id"],
            message["created_at"],
            message["expires_at"],
            compact_json({k: v for k, v in message.items() if k not in _COLUMNS}),
        ),
    )
    return change.seq


def decode(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "seq": row["seq"],
        "message_id": row["id"],
        "channel_id": row["channel_id"],
        "created_at": row["created_at"],
        "expires_at": row["expires_at"],
        **json.loads(row["data"]),
    }


def _live(tables: Tables, now_ms: int) -> Any:
    table = tables.messages
    return table.expires_at.is_null() | (table.expires_at > now_ms)


def recent(
    tables: Tables,
    channel_id: str,
    now_ms: int,
    *,
    limit: int,
    before_seq: int | None = None,
    since_ms: int | None = None,
) -> list[dict[str, Any]]:
    """Unexpired messages, newest first, older than `before_seq` and newer than `since_ms`."""
    table = tables.messages
    condition = (table.channel_id == channel_id) & _live(tables, now_ms)
    if before_seq is not None:
        condition &= table.seq < before_seq
    if since_ms is not None:
        condition &= table.created_at >= since_ms
    query = table.select().where(condition).order_by(table.seq.desc()).limit(limit)
    return [decode(row) for row in query]


def count_live(tables: Tables, channel_id: str, now_ms: int) -> int:
    table = tables.messages
    query = table.select(fn.COUNT(table.seq)).where(
        (table.channel_id == channel_id) & _live(tables, now_ms)
    )
    result: int = query.scalar()
    return result
