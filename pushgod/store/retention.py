"""Deleting what retention, TTL and history bounds no longer keep, in bounded chunks."""

from __future__ import annotations

from pushgod.model.changes import ChangeKind
from pushgod.store.writer import WriteTx

CHUNK = 2_000
"""Rows deleted per write, so the writer is never held for long."""


def _delete_messages(tx: WriteTx, where: str, params: list[object]) -> int:
    """Delete up to CHUNK messages matching `where` (a constant clause), and their change rows."""
    db = tx.tables
    # The SQL below is built from constant clauses and "?" placeholders only.
    seqs = [
        row[0]
        for row in db.execute(
            f"SELECT seq FROM messages WHERE {where} LIMIT {CHUNK}",  # noqa: S608
            params,
        ).fetchall()
    ]
    if not seqs:
        return 0
    marks = ",".join("?" * len(seqs))
    db.execute(f"DELETE FROM changes WHERE seq IN ({marks})", seqs)  # noqa: S608
    db.execute(f"DELETE FROM messages WHERE seq IN ({marks})", seqs)  # noqa: S608
    return len(seqs)


def expired_messages(tx: WriteTx, now_ms: int) -> int:
    return _delete_messages(tx, "expires_at IS NOT NULL AND expires_at <= ?", [now_ms])


def old_messages(tx: WriteTx, channel_id: str, created_before: int) -> int:
    return _delete_messages(tx, "channel_id = ? AND created_at < ?", [channel_id, created_before])


def excess_messages(tx: WriteTx, channel_id: str, keep: int) -> int:
    """Delete the oldest messages of a channel beyond the newest `keep`."""
    row = tx.tables.execute(
        "SELECT seq FROM messages WHERE channel_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
        [channel_id, keep],
    ).fetchone()
    if row is None:
        return 0
    return _delete_messages(tx, "channel_id = ? AND seq <= ?", [channel_id, row[0]])


def entity_history(
    tx: WriteTx, channel_id: str, kind: ChangeKind, entity_id: str, keep: int
) -> None:
    """Keep only the newest `keep` change rows of one event or thing."""
    tx.tables.execute(
        "DELETE FROM changes WHERE channel_id = ? AND kind = ? AND entity_id = ?"
        " AND kind <> 'message' AND seq <= ("
        " SELECT seq FROM changes WHERE channel_id = ? AND kind = ? AND entity_id = ?"
        " AND kind <> 'message' ORDER BY seq DESC LIMIT 1 OFFSET ?)",
        [channel_id, kind.value, entity_id] * 2 + [keep],
    )


def closed_events(tx: WriteTx, updated_before: int) -> int:
    """Delete up to CHUNK closed events last changed before the cut-off, with their updates."""
    db = tx.tables
    rows = db.execute(
        "SELECT channel_id, id FROM events WHERE state = 'CLOSED' AND updated_at < ? LIMIT ?",
        [updated_before, CHUNK],
    ).fetchall()
    for channel_id, event_id in rows:
        db.execute(
            "DELETE FROM changes"
            " WHERE channel_id = ? AND kind = ? AND entity_id = ? AND kind <> 'message'",
            [channel_id, ChangeKind.EVENT.value, event_id],
        )
        db.execute("DELETE FROM events WHERE channel_id = ? AND id = ?", [channel_id, event_id])
    return len(rows)


def old_ops(tx: WriteTx, created_before: int) -> int:
    cursor = tx.tables.execute(
        "DELETE FROM ops WHERE (channel_id, key) IN"
        " (SELECT channel_id, key FROM ops WHERE created_at < ? LIMIT ?)",
        [created_before, CHUNK],
    )
    deleted: int = cursor.rowcount
    return deleted
