"""Token rows: stored by the SHA-256 of the token, never the token itself."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pushgod.store.tables import Tables
from pushgod.store.writer import WriteTx


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: str
    hash: str
    channel_id: str | None
    scopes: str
    label: str | None
    created_at: int
    expires_at: int | None
    last_used_at: int | None

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        del data["hash"]
        data["token_id"] = data.pop("id")
        data["scopes"] = self.scopes.split(",")
        return data


_BY_HASH = (
    "SELECT id, hash, channel_id, scopes, label, created_at, expires_at, last_used_at"
    " FROM tokens WHERE hash = ?"
)


def by_hash(tables: Tables, token_hash: str) -> TokenRow | None:
    row = tables.execute(_BY_HASH, (token_hash,)).fetchone()
    return TokenRow(*row) if row else None


def list_all(tables: Tables, channel_id: str | None = None) -> list[TokenRow]:
    table = tables.tokens
    query = table.select().order_by(table.created_at, table.id)
    if channel_id is not None:
        query = query.where(table.channel_id == channel_id)
    return [TokenRow(**row) for row in query]


def insert(tx: WriteTx, row: TokenRow) -> None:
    tx.tables.tokens.insert(**asdict(row)).execute()


def delete(tx: WriteTx, token_id: str) -> bool:
    table = tx.tables.tokens
    deleted: int = table.delete().where(table.id == token_id).execute()
    return deleted > 0


def touch(tx: WriteTx, token_id: str, at: int) -> None:
    table = tx.tables.tokens
    table.update(last_used_at=at).where(table.id == token_id).execute()
