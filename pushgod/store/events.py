"""Event rows (merged current state) and their updates, which are their change-feed rows."""

from __future__ import annotations

import json
from typing import Any

from peewee import fn

from pushgod.model.changes import Change, ChangeKind
from pushgod.model.events import Event, EventState
from pushgod.store.tables import Tables
from pushgod.store.writer import WriteTx, dumps


def get(tables: Tables, channel_id: str, event_id: str) -> Event | None:
    row = tables.db.execute_sql(
        "SELECT data FROM events WHERE channel_id = ? AND id = ?", (channel_id, event_id)
    ).fetchone()
    return Event.from_json(json.loads(row[0])) if row else None


def save(tx: WriteTx, event: Event, action: str, update: dict[str, Any]) -> Change:
    """Insert or replace the event's state and emit the change with the update it applied."""
    state = event.to_json()
    tx.tables.db.execute_sql(
        "INSERT OR REPLACE INTO events (channel_id, id, state, updated_at, data)"
        " VALUES (?, ?, ?, ?, ?)",
        (event.channel_id, event.event_id, event.state.value, event.updated_at, dumps(state)),
    )
    return tx.emit(
        event.channel_id,
        ChangeKind.EVENT,
        event.event_id,
        action,
        event.updated_at,
        {"event": state, "update": update},
    )


def listing(
    tables: Tables,
    channel_id: str,
    states: tuple[EventState, ...],
    *,
    limit: int,
) -> list[dict[str, Any]]:
    """Events in the given states, most recently changed first."""
    table = tables.events
    query = (
        table.select(table.data)
        .where((table.channel_id == channel_id) & table.state.in_([s.value for s in states]))
        .order_by(table.updated_at.desc())
        .limit(limit)
    )
    return [json.loads(row["data"]) for row in query]


# `kind <> 'message'` is the condition of the partial index changes_by_entity (0001).
UPDATES = (
    "SELECT seq, at, data FROM changes WHERE channel_id = ? AND kind = 'event'"
    " AND kind <> 'message' AND entity_id = ? ORDER BY seq"
)


def updates(tables: Tables, channel_id: str, event_id: str) -> list[dict[str, Any]]:
    """The event's updates in order, each with its sequence number and time."""
    rows = tables.db.execute_sql(UPDATES, (channel_id, event_id))
    return [{"seq": seq, "at": at, **json.loads(data)["update"]} for seq, at, data in rows]


def count_by_state(tables: Tables, channel_id: str) -> dict[str, int]:
    table = tables.events
    query = (
        table.select(table.state, fn.COUNT(table.id).alias("n"))
        .where(table.channel_id == channel_id)
        .group_by(table.state)
    )
    return {row["state"].lower(): row["n"] for row in query}
