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
    table = tables.events
    row = (
        table.select(table.data)
        .where((table.channel_id == channel_id) & (table.id == event_id))
        .first()
    )
    return Event.from_json(json.loads(row["data"])) if row else None


def save(tx: WriteTx, event: Event, action: str, update: dict[str, Any]) -> Change:
    """Insert or replace the event's state and emit the change with the update it applied."""
    state = event.to_json()
    tx.tables.events.insert(
        channel_id=event.channel_id,
        id=event.event_id,
        state=event.state.value,
        updated_at=event.updated_at,
        data=dumps(state),
    ).on_conflict_replace().execute()
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


def updates(tables: Tables, channel_id: str, event_id: str) -> list[dict[str, Any]]:
    """The event's updates in order, each with its sequence number and time."""
    table = tables.changes
    query = (
        table.select(table.seq, table.action, table.at, table.data)
        .where(
            (table.channel_id == channel_id)
            & (table.kind == ChangeKind.EVENT.value)
            & (table.entity_id == event_id)
        )
        .order_by(table.seq)
    )
    return [
        {"seq": row["seq"], "at": row["at"], **json.loads(row["data"])["update"]} for row in query
    ]


def count_by_state(tables: Tables, channel_id: str) -> dict[str, int]:
    table = tables.events
    query = (
        table.select(table.state, fn.COUNT(table.id).alias("n"))
        .where(table.channel_id == channel_id)
        .group_by(table.state)
    )
    return {row["state"].lower(): row["n"] for row in query}
