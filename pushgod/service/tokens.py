"""Token administration: create (shown once), list, revoke."""

from __future__ import annotations

import secrets

from pushgod.model.errors import ErrorCode, PushgodError
from pushgod.model.ids import parse_channel_id
from pushgod.model.times import MINUTE_MS
from pushgod.model.tokens import CHANNEL_SCOPES, Scope, generate_token, token_hash
from pushgod.service.auth import Credentials
from pushgod.service.context import Context
from pushgod.service.scoping import require_channel
from pushgod.store import tokens as token_rows
from pushgod.store.tokens import TokenRow
from pushgod.store.writer import WriteTx

MIN_LIFETIME_MS = MINUTE_MS


class Tokens:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def create(
        self,
        actor: Credentials | None,
        *,
        channel_id: str | None,
        scopes: frozenset[Scope],
        expires_in_ms: int | None = None,
        label: str | None = None,
    ) -> tuple[TokenRow, str]:
        """A channel token with `scopes`, or an admin token when `channel_id` is None."""
        self._ctx.auth.admin(actor)
        if channel_id is not None:
            channel_id = parse_channel_id(channel_id)
            self._ctx.auth.channel(channel_id)
            if not scopes or not scopes <= CHANNEL_SCOPES:
                raise PushgodError(
                    ErrorCode.INVALID_SCOPE, "a channel token needs publish, subscribe or things"
                )
            scope_text = ",".join(sorted(scopes))
        else:
            scope_text = Scope.ADMIN.value
        if expires_in_ms is not None and expires_in_ms < MIN_LIFETIME_MS:
            raise PushgodError(ErrorCode.INVALID_DURATION, "a token must live at least 1 minute")
        if label is not None and len(label) > 128:
            raise PushgodError(ErrorCode.INVALID_FIELD, "label must be at most 128 characters")
        now = self._ctx.clock()
        token = generate_token()
        row = TokenRow(
            id=secrets.token_hex(8),
            hash=token_hash(token),
            channel_id=channel_id,
            scopes=scope_text,
            label=label,
            created_at=now,
            expires_at=now + expires_in_ms if expires_in_ms is not None else None,
            last_used_at=None,
        )

        def write(tx: WriteTx) -> None:
            if channel_id is not None:
                require_channel(tx, channel_id)
            token_rows.insert(tx, row)

        await self._ctx.store.write(write)
        return row, token

    def list(self, actor: Credentials | None, channel_id: str | None = None) -> list[TokenRow]:
        self._ctx.auth.admin(actor)
        if channel_id is not None:
            channel_id = parse_channel_id(channel_id)
        return token_rows.list_all(self._ctx.store.tables, channel_id)

    async def revoke(self, actor: Credentials | None, token_id: str) -> None:
        """Delete the token; the next request that presents it is refused."""
        self._ctx.auth.admin(actor)
        if not await self._ctx.store.write(lambda tx: token_rows.delete(tx, token_id)):
            raise PushgodError(ErrorCode.TOKEN_NOT_FOUND, f"token {token_id} does not exist")
        self._ctx.hub.access_changed()
