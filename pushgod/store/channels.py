"""Channel rows: lookups on the reader side, inserts and updates through the writer."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pushgod.model.changes import ChangeKind
from pushgod.store.tables import Tables
from pushgod.store.writer import WriteTx


@dataclass(frozen=True, slots=True)
class ChannelRow:
    id: str
    name: str
    password_hash: str
    retention_count: int | None
    retention_age_ms: int | None
    created_at: int
    updated_at: int
    e2ee: str | None = None
    """The fields the channel seals (model/sealing.py policy text); None: sealing is off."""

    def public(self) -> dict[str, Any]:
        """The row without its password hash."""
        data = asdict(self)
        del data["password_hash"]
        data["channel_id"] = data.pop("id")
        return data


_GET = (
    "SELECT id, name, password_hash, retention_count, retention_age_ms, created_at, updated_at,"
    " e2ee FROM channels WHERE id = ?"
)


def get(tables: Tables, channel_id: str) -> ChannelRow | None:
    row = tables.execute(_GET, (channel_id,)).fetchone()
    return ChannelRow(*row) if row else None


def list_all(tables: Tables) -> list[ChannelRow]:
    query = tables.channels.select().order_by(tables.channels.created_at, tables.channels.id)
    return [ChannelRow(**row) for row in query]


def count(tables: Tables) -> int:
    result: int = tables.channels.select().count()
    return result


def insert(tx: WriteTx, row: ChannelRow) -> None:
    tx.tables.channels.insert(**asdict(row)).execute()
    tx.emit(row.id, ChangeKind.CHANNEL, row.id, "created", row.created_at, {"name": row.name})


def update(tx: WriteTx, channel_id: str, action: str, at: int, **values: Any) -> ChannelRow | None:
    """Set columns of a channel and record `action` in its feed; None when it does not exist."""
    table = tx.tables.channels
    if not table.update(updated_at=at, **values).where(table.id == channel_id).execute():
        return None
    row = get(tx.tables, channel_id)
    assert row is not None
    tx.emit(channel_id, ChangeKind.CHANNEL, channel_id, action, at, {"name": row.name})
    return row


def delete(tx: WriteTx, channel_id: str) -> bool:
    """Delete a channel and, through the foreign keys, everything in it."""
    table = tx.tables.channels
    deleted: int = table.delete().where(table.id == channel_id).execute()
    return deleted > 0
