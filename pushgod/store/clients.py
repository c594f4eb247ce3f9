"""Paired clients (each one a subscribe token plus an X25519 public key) and pairing codes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pushgod.store.tables import Tables
from pushgod.store.writer import WriteTx


@dataclass(frozen=True, slots=True)
class ClientRow:
    id: str
    channel_id: str
    name: str
    public_key: str
    created_at: int

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data["client_id"] = data.pop("id")
        return data


@dataclass(frozen=True, slots=True)
class PairingCode:
    hash: str
    channel_id: str
    name: str | None
    created_at: int
    expires_at: int


_COLUMNS = "id, channel_id, name, public_key, created_at"


def for_channel(tables: Tables, channel_id: str) -> list[ClientRow]:
    rows = tables.execute(
        f"SELECT {_COLUMNS} FROM clients WHERE channel_id = ? ORDER BY created_at, id",  # noqa: S608
        (channel_id,),
    ).fetchall()
    return [ClientRow(*row) for row in rows]


def list_all(tables: Tables, channel_id: str | None = None) -> list[ClientRow]:
    if channel_id is not None:
        return for_channel(tables, channel_id)
    rows = tables.execute(f"SELECT {_COLUMNS} FROM clients ORDER BY created_at, id").fetchall()  # noqa: S608
    return [ClientRow(*row) for row in rows]


def insert(tx: WriteTx, row: ClientRow) -> None:
    tx.tables.clients.insert(**asdict(row)).execute()


def delete(tx: WriteTx, client_id: str) -> bool:
    """Delete a client by deleting its token (the client row goes with it)."""
    if not tx.tables.execute("SELECT 1 FROM clients WHERE id = ?", (client_id,)).fetchone():
        return False
    tx.tables.execute("DELETE FROM tokens WHERE id = ?", (client_id,))
    return True


def insert_code(tx: WriteTx, code: PairingCode) -> None:
    tx.tables.pairing_codes.insert(**asdict(code)).execute()


def take_code(tx: WriteTx, code_hash: str) -> PairingCode | None:
    """The pairing code with this hash, deleted so that it never works again."""
    row = tx.tables.execute(
        "SELECT hash, channel_id, name, created_at, expires_at FROM pairing_codes WHERE hash = ?",
        (code_hash,),
    ).fetchone()
    if row is None:
        return None
    tx.tables.execute("DELETE FROM pairing_codes WHERE hash = ?", (code_hash,))
    return PairingCode(*row)


def expired_codes(tx: WriteTx, now_ms: int) -> int:
    table = tx.tables.pairing_codes
    deleted: int = table.delete().where(table.expires_at <= now_ms).execute()
    return deleted
