"""Bind sessions: a grant asks for one more channel (or one fewer), the user completes it."""

from __future__ import annotations

from dataclasses import astuple, dataclass

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.store.tables import Tables
from pushgod.store.writer import WriteTx


@dataclass(frozen=True, slots=True)
class BindSessionRow:
    hash: str
    grant_id: str
    action: str
    requested_channel_id: str | None
    redirect_uri: str | None
    created_at: int
    expires_at: int
    completed_at: int | None
    channel_id: str | None
    reported: int


_COLUMNS = (
    "hash, grant_id, action, requested_channel_id, redirect_uri, created_at, expires_at,"
    " completed_at, channel_id, reported"
)


def get(tables: Tables, session_hash: str) -> BindSessionRow | None:
    row = tables.execute(
        f"SELECT {_COLUMNS} FROM bind_sessions WHERE hash = ?",  # noqa: S608
        (session_hash,),
    ).fetchone()
    return BindSessionRow(*row) if row else None


def insert(tx: WriteTx, row: BindSessionRow) -> None:
    tx.tables.execute(
        f"INSERT INTO bind_sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        astuple(row),
    )


def complete(tx: WriteTx, session_hash: str, channel_id: str, at: int) -> None:
    """Mark the session done, once: a second completion or a late one raises."""
    cursor = tx.tables.execute(
        "UPDATE bind_sessions SET completed_at = ?, channel_id = ?"
        " WHERE hash = ? AND completed_at IS NULL AND expires_at > ?",
        (at, channel_id, session_hash, at),
    )
    if cursor.rowcount == 0:
        raise PushgodError(
            ErrorCode.BIND_SESSION_COMPLETED, "this bind session was already completed or expired"
        )


def mark_reported(tx: WriteTx, session_hash: str) -> bool:
    """True the first time a completed session's outcome is reported to its grant."""
    cursor = tx.tables.execute(
        "UPDATE bind_sessions SET reported = 1"
        " WHERE hash = ? AND completed_at IS NOT NULL AND reported = 0",
        (session_hash,),
    )
    return cursor.rowcount > 0
