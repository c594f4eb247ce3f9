"""Reading the change feed back: the replay a stream sends before its live items."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from pushgod.model.changes import Change, ChangeKind
from pushgod.store.messages import decode
from pushgod.store.tables import Tables

PAGE = 500
_MESSAGE_COLUMNS = "m.seq, m.id, m.channel_id, m.created_at, m.expires_at, m.data"


def _query(kinds: Iterable[ChangeKind], newest_first: bool, with_time: bool) -> str:
    marks = ",".join("?" for _ in kinds)
    order = "DESC" if newest_first else "ASC"
    # A message's change row holds no payload: the message row (same seq) does. A
    # message that expired or was deleted is left out.
    return (
        f"SELECT c.seq, c.kind, c.entity_id, c.action, c.at, c.data, {_MESSAGE_COLUMNS}"  # noqa: S608
        " FROM changes c LEFT JOIN messages m ON m.seq = c.seq"
        f" WHERE c.channel_id = ? AND c.seq > ? AND c.kind IN ({marks})"
        + (" AND c.at >= ?" if with_time else "")
        + " AND (c.kind <> 'message' OR (m.seq IS NOT NULL"
        " AND (m.expires_at IS NULL OR m.expires_at > ?)))"
        f" ORDER BY c.seq {order} LIMIT ?"
    )


def _change(channel_id: str, row: tuple[Any, ...]) -> Change:
    seq, kind, entity_id, action, at, data = row[:6]
    if kind == ChangeKind.MESSAGE.value:
        names = ("seq", "id", "channel_id", "created_at", "expires_at", "data")
        payload = decode(dict(zip(names, row[6:], strict=True)))
        del payload["seq"]  # the item carries it; live items' messages do not
    else:
        payload = json.loads(data)
    return Change(seq, channel_id, ChangeKind(kind), entity_id, action, at, payload)


def replay(
    tables: Tables,
    channel_id: str,
    kinds: frozenset[ChangeKind],
    now_ms: int,
    *,
    after_seq: int = 0,
    at_ms: int | None = None,
) -> Iterator[Change]:
    """The channel's changes of `kinds` after `after_seq` (and at or after `at_ms`), in
    order, read a page at a time."""
    ordered = sorted(kinds)
    sql = _query(ordered, newest_first=False, with_time=at_ms is not None)
    while True:
        params: list[Any] = [channel_id, after_seq, *ordered]
        if at_ms is not None:
            params.append(at_ms)
        rows = tables.execute(sql, [*params, now_ms, PAGE]).fetchall()
        for row in rows:
            yield _change(channel_id, row)
        if len(rows) < PAGE:
            return
        after_seq = rows[-1][0]


def newest(
    tables: Tables, channel_id: str, kinds: frozenset[ChangeKind], now_ms: int
) -> Change | None:
    """The channel's newest change of `kinds`, if any."""
    ordered = sorted(kinds)
    sql = _query(ordered, newest_first=True, with_time=False)
    row = tables.execute(sql, [channel_id, 0, *ordered, now_ms, 1]).fetchone()
    return _change(channel_id, row) if row else None


_AFTER = (
    f"SELECT c.seq, c.kind, c.entity_id, c.action, c.at, c.data, {_MESSAGE_COLUMNS}, c.channel_id"  # noqa: S608
    " FROM changes c LEFT JOIN messages m ON m.seq = c.seq"
    " WHERE c.seq > ? AND c.seq < ? AND (c.kind <> 'message' OR m.seq IS NOT NULL)"
    " ORDER BY c.seq"
)


def committed_after(tables: Tables, after_seq: int, before_seq: int | None) -> list[Change]:
    """Every channel's changes between two sequence numbers, in order: what another
    process committed, for the daemon to publish."""
    rows = tables.execute(_AFTER, (after_seq, before_seq or 2**62)).fetchall()
    return [_change(row[-1], row[:-1]) for row in rows]
