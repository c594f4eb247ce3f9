"""Remembered results of operations that carried an `op_id` (idempotency)."""

from __future__ import annotations

import json
from typing import Any

from pushgod.store.writer import WriteTx, dumps


def recall(tx: WriteTx, channel_id: str, key: str) -> dict[str, Any] | None:
    table = tx.tables.ops
    row = (
        table.select(table.result)
        .where((table.channel_id == channel_id) & (table.key == key))
        .first()
    )
    return json.loads(row["result"]) if row else None


def remember(tx: WriteTx, channel_id: str, key: str, result: dict[str, Any], at: int) -> None:
    tx.tables.ops.insert(
        channel_id=channel_id, key=key, created_at=at, result=dumps(result)
    ).execute()
