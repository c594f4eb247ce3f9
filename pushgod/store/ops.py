"""Remembered results of operations that carried an `op_id` (idempotency)."""

from __future__ import annotations

import json
from typing import Any

from pushgod.model.fields import compact_json
from pushgod.store.writer import WriteTx


def recall(tx: WriteTx, channel_id: str, key: str) -> dict[str, Any] | None:
    row = tx.tables.execute(
        "SELECT result FROM ops WHERE channel_id = ? AND key = ?", (channel_id, key)
    ).fetchone()
    return json.loads(row[0]) if row else None


def remember(tx: WriteTx, channel_id: str, key: str, result: dict[str, Any], at: int) -> None:
    tx.tables.execute(
        "INSERT INTO ops (channel_id, key, created_at, result) VALUES (?, ?, ?, ?)",
        (channel_id, key, at, compact_json(result)),
    )
