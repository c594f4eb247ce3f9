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
    table = tables.things
    row = (
        table.select(table.data)
        .where((table.channel_id == channel_id) & (table.id == thing_id))
        .first()
    )
    return Thing.from_json(json.loads(row["data"])) if row else None


def save(tx: WriteTx, thing: Thing, action: str, update: dict[str, Any]) -> Change:
    """Insert or replace the thing's state and emit the change with the update it applied."""
    state = thing.to_json()
    tx.tables.things.insert(
        channel_id=thing.channel_id,
        id=thing.thing_id,
        state=thing.state.value,
        updated_at=thing.updated_at,
        data=dumps(state),
    ).on_conflict_replace().execute()
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


def history(
    tables: Tables, channel_id: str, thing_id: str, *, limit: int, before_seq: int | None
) -> list[dict[str, Any]]:
    """The thing's changes, newest first: what each update set and the state after it."""
    table = tables.changes
    condition = (
        (table.channel_id == channel_id)
        & (table.kind == ChangeKind.THING.value)
        & (table.entity_id == thing_id)
    )
    if before_seq is not None:
        condition &= table.seq < before_seq
    query = (
        table.select(table.seq, table.action, table.at, table.data)
        .where(condition)
        .order_by(table.seq.desc())
        .limit(limit)
    )
    result = []
    for row in query:
        data = json.loads(row["data"])
        result.append({"seq": row["seq"], "at": row["at"], **data})
    return result


def count_by_state(tables: Tables, channel_id: str) -> dict[str, int]:
    table = tables.things
    query = (
        table.select(table.state, fn.COUNT(table.id).alias("n"))
        .where(table.channel_id == channel_id)
        .group_by(table.state)
    )
    return {row["state"]: row["n"] for row in query}
