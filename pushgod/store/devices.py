"""Devices: which Thing (and so which channel) each MQTT account may update."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from pushgod.store.tables import Tables
from pushgod.store.writer import WriteTx


@dataclass(frozen=True, slots=True)
class DeviceRow:
    thing_id: str
    channel_id: str
    provisioning: str
    password_hash: str | None
    created_at: int
    rotated_at: int | None
    updates: int


_COLUMNS = "thing_id, channel_id, provisioning, password_hash, created_at, rotated_at, updates"


def get(tables: Tables, thing_id: str) -> DeviceRow | None:
    row = tables.execute(
        f"SELECT {_COLUMNS} FROM devices WHERE thing_id = ?",  # noqa: S608
        (thing_id,),
    ).fetchone()
    return DeviceRow(*row) if row else None


def list_all(tables: Tables, channel_id: str | None = None) -> list[DeviceRow]:
    if channel_id is None:
        rows = tables.execute(f"SELECT {_COLUMNS} FROM devices ORDER BY thing_id")  # noqa: S608
    else:
        rows = tables.execute(
            f"SELECT {_COLUMNS} FROM devices WHERE channel_id = ? ORDER BY thing_id",  # noqa: S608
            (channel_id,),
        )
    return [DeviceRow(*row) for row in rows.fetchall()]


def insert(tx: WriteTx, row: DeviceRow) -> None:
    tx.tables.execute(
        f"INSERT INTO devices ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        (
            row.thing_id,
            row.channel_id,
            row.provisioning,
            row.password_hash,
            row.created_at,
            row.rotated_at,
            row.updates,
        ),
    )


def set_password(tx: WriteTx, thing_id: str, password_hash: str | None, at: int) -> None:
    tx.tables.execute(
        "UPDATE devices SET password_hash = ?, rotated_at = ? WHERE thing_id = ?",
        (password_hash, at, thing_id),
    )


def delete(tx: WriteTx, thing_id: str) -> bool:
    cursor = tx.tables.execute("DELETE FROM devices WHERE thing_id = ?", (thing_id,))
    return cursor.rowcount > 0


def channels_of(tables: Tables, thing_ids: Collection[str]) -> dict[str, str]:
    """The channel of each of these devices that is registered."""
    marks = ",".join("?" * len(thing_ids))
    rows = tables.execute(
        f"SELECT thing_id, channel_id FROM devices WHERE thing_id IN ({marks})",  # noqa: S608
        tuple(thing_ids),
    )
    return dict(rows.fetchall())


def count_updates(tx: WriteTx, counts: Mapping[str, int]) -> None:
    """Count accepted updates per device (shown by `device list`)."""
    tx.tables.db.connection().executemany(
        "UPDATE devices SET updates = updates + ? WHERE thing_id = ?",
        [(count, thing_id) for thing_id, count in counts.items()],
    )


def thing_elsewhere(tables: Tables, thing_id: str, channel_id: str) -> bool:
    """Whether another channel has a Thing of this id (device topics name Things only)."""
    row = tables.execute(
        "SELECT 1 FROM things WHERE id = ? AND channel_id <> ? LIMIT 1", (thing_id, channel_id)
    ).fetchone()
    return row is not None
