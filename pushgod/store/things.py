"""Thing rows (merged current state) and their history, which is their change-feed rows."""

from __future__ import annotations

import json
from typing import Any

from peewee import fn

from pushgod.model.changes import Change, ChangeKind
from pushgod.model.things import Thing, ThingState
from pushgod.store.tables import Tables
from pushgod.store.writer import WriteTx, dumps


def get(tables: Tables, channel_id: str, thing_id: str) -> Thing | None:
    row = tables.db.execute_sql(
        "SELECT data FROM things WHERE channel_id = ? AND id = ?", (channel_id, thing_id)
    ).fetchone()
    return Thing.from_json(json.loads(row[0])) if row else None


def save(tx: WriteTx, thing: Thing, action: str, update: dict[str, Any]) -> Change:
    """Insert or replace the thing's state and emit the change with the update it applied."""
    state = thing.to_json()
    tx.tables.db.execute_sql(
        "INSERT OR REPLACE INTO things (channel_id, id, state, updated_at, data)"
        " VALUES (?, ?, ?, ?, ?)",
        (thing.channel_id, thing.thing_id, thing.state.value, thing.updated_at, dumps(state)),
    )
    return tx.emit(
        thing.channel_id,
        ChangeKind.THING,
        thing.thing_id,
        action,
        thing.updated_at,
        {"thing": state, "update": update},
    )


def listing(
    tables: Tables, channel_id: str, states: tuple[ThingState, ...], *, limit: int
) -> list[dict[str, Any]]:
    table = tables.things
    query = (
        table.select(table.data)
        .where((table.channel_id == channel_id) & table.state.in_([s.value for s in states]))
        .order_by(table.updated_at.desc())
        .limit(limit)
    )
    return [json.loads(row["data"]) for row in query]


# `kind <> 'message'` is the condition of the partial index changes_by_entity (0001).
HISTORY = (
    "SELECT seq, at, data FROM changes WHERE channel_id = ? AND kind = 'thing'"
    " AND kind <> 'message' AND entity_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
)


def history(
    tables: Tables, channel_id: str, thing_id: str, *, limit: int, before_seq: int | None
) -> list[dict[str, Any]]:
    """The thing's changes, newest first: what each update set and the state after it."""
    before = before_seq if before_seq is not None else 2**63 - 1
    rows = tables.db.execute_sql(HISTORY, (channel_id, thing_id, before, limit))
    return [{"seq": seq, "at": at, **json.loads(data)} for seq, at, data in rows]


def count_by_state(tables: Tables, channel_id: str) -> dict[str, int]:
    table = tables.things
    query = (
        table.select(table.state, fn.COUNT(table.id).alias("n"))
        .where(table.channel_id == channel_id)
        .group_by(table.state)
    )
    return {row["state"]: row["n"] for row in query}
