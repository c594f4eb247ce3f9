"""Rows holding the merged current state of events and things, and their change rows.

An event's updates and a thing's history are not tables of their own: they are the
entity's rows in the change feed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pushgod.model.changes import Change, ChangeKind
from pushgod.model.events import Event
from pushgod.model.fields import compact_json
from pushgod.model.things import Thing
from pushgod.store.tables import Tables
from pushgod.store.writer import WriteTx

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class StateTable(Generic[S]):
    name: str  # a constant table name, the only text ever put into SQL below
    kind: ChangeKind
    decode: Callable[[dict[str, Any]], S]


EVENTS = StateTable("events", ChangeKind.EVENT, Event.from_json)
THINGS = StateTable("things", ChangeKind.THING, Thing.from_json)

# `kind <> 'message'` is the condition of the partial index changes_by_entity (0001):
# queries repeat it so that SQLite uses the index.
UPDATES = (
    "SELECT seq, at, data FROM changes WHERE channel_id = ? AND kind = ?"
    " AND kind <> 'message' AND entity_id = ? ORDER BY seq"
)
HISTORY = (
    "SELECT seq, at, data FROM changes WHERE channel_id = ? AND kind = ?"
    " AND kind <> 'message' AND entity_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
)
HISTORY_SIZE = (
    "SELECT COUNT(*) FROM changes WHERE channel_id = ? AND kind = ?"
    " AND kind <> 'message' AND entity_id = ?"
)


def get(tables: Tables, table: StateTable[S], channel_id: str, entity_id: str) -> S | None:
    text = get_text(tables, table, channel_id, entity_id)
    return table.decode(json.loads(text)) if text is not None else None


def get_text(tables: Tables, table: StateTable[Any], channel_id: str, entity_id: str) -> str | None:
    """The entity's state as stored: JSON text."""
    row = tables.execute(
        f"SELECT data FROM {table.name} WHERE channel_id = ? AND id = ?",  # noqa: S608
        (channel_id, entity_id),
    ).fetchone()
    return row[0] if row else None


def save(
    tx: WriteTx,
    table: StateTable[Any],
    entity_id: str,
    state: dict[str, Any],
    action: str,
    update: dict[str, Any],
) -> Change:
    """Insert or replace the state and emit the change: the update applied, the state after."""
    text = compact_json(state)
    put(tx, table, entity_id, state, text)
    return emit(tx, table, entity_id, state, text, action, update)


def put(
    tx: WriteTx, table: StateTable[Any], entity_id: str, state: dict[str, Any], text: str
) -> None:
    """Insert or replace the entity's current state (`text`: `state` as JSON), without a
    change row."""
    # An upsert updates the row in place; INSERT OR REPLACE deletes and inserts it again
    # (a third more work per Thing update).
    tx.tables.execute(
        f"INSERT INTO {table.name} (channel_id, id, state, updated_at, data)"  # noqa: S608
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel_id, id) DO UPDATE SET"
        " state = excluded.state, updated_at = excluded.updated_at, data = excluded.data",
        (state["channel_id"], entity_id, state["state"], state["updated_at"], text),
    )


def emit(
    tx: WriteTx,
    table: StateTable[Any],
    entity_id: str,
    state: dict[str, Any],
    text: str,
    action: str,
    update: dict[str, Any],
) -> Change:
    """The change row of one update: what it set and the state after it (`text`: `state`
    as JSON, which the row repeats rather than encodes again)."""
    key = table.kind.value
    return tx.emit(
        state["channel_id"],
        table.kind,
        entity_id,
        action,
        state["updated_at"],
        {key: state, "update": update},
        encoded=f'{{"{key}":{text},"update":{compact_json(update)}}}',
    )


def listing(
    tables: Tables, table: StateTable[Any], channel_id: str, states: Iterable[str], *, limit: int
) -> list[dict[str, Any]]:
    """States of the entities in the given states, most recently changed first."""
    wanted = list(states)
    rows = tables.execute(
        f"SELECT data FROM {table.name} WHERE channel_id = ?"  # noqa: S608
        f" AND state IN ({','.join('?' * len(wanted))}) ORDER BY updated_at DESC LIMIT ?",
        (channel_id, *wanted, limit),
    )
    return [json.loads(data) for (data,) in rows]


def every(tables: Tables, table: StateTable[S]) -> list[S]:
    """Every entity of every channel (the MQTT bridge republishes all Things on connect)."""
    rows = tables.execute(f"SELECT data FROM {table.name} ORDER BY channel_id, id")  # noqa: S608
    return [table.decode(json.loads(data)) for (data,) in rows]


def count_by_state(tables: Tables, table: StateTable[Any], channel_id: str) -> dict[str, int]:
    rows = tables.execute(
        f"SELECT state, COUNT(*) FROM {table.name} WHERE channel_id = ?"  # noqa: S608
        " GROUP BY state",
        (channel_id,),
    )
    return dict(rows)


def updates(
    tables: Tables, table: StateTable[Any], channel_id: str, entity_id: str
) -> list[dict[str, Any]]:
    """All of an entity's changes in order: sequence number, time and what each set."""
    rows = tables.execute(UPDATES, (channel_id, table.kind.value, entity_id))
    return [{"seq": seq, "at": at, **json.loads(data)["update"]} for seq, at, data in rows]


def history_size(tables: Tables, table: StateTable[Any], channel_id: str, entity_id: str) -> int:
    """How many change rows the entity's history holds."""
    row = tables.execute(HISTORY_SIZE, (channel_id, table.kind.value, entity_id)).fetchone()
    return int(row[0])


def history(
    tables: Tables,
    table: StateTable[Any],
    channel_id: str,
    entity_id: str,
    *,
    limit: int,
    before_seq: int | None,
) -> list[dict[str, Any]]:
    """An entity's changes newest first, each with what it set and the state after it."""
    before = before_seq if before_seq is not None else 2**63 - 1
    rows = tables.execute(HISTORY, (channel_id, table.kind.value, entity_id, before, limit))
    return [{"seq": seq, "at": at, **json.loads(data)} for seq, at, data in rows]
